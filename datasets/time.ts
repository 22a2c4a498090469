/**
 * The one place where seconds and feature-grid positions are converted.
 *
 * A grid position g (fractional allowed) maps to `(g * stride + offset) / fps` seconds.
 * - CoLA snippets (fps 25, stride 16, offset 0): row i covers [0.64 i, 0.64 (i + 1)) s, so
 *   g is a snippet *boundary* (FuSTAL `core/utils.py`, `get_proposal_oic`).
 * - ActionFormer windows (video fps, stride 4, window 16, offset 8): row g is *centred* at
 *   (4 g + 8) / fps s (actionformer_release `libs/datasets/thumos14.py`): 10 s at 30 fps is g = 73.
 *
 * @module
 */
import type { FeatureGrid } from "./types.ts";

/** Grid of the CoLA layout: non-overlapping 16-frame snippets at 25 fps. */
export const COLA_GRID: Readonly<FeatureGrid> = { fps: 25, stride: 16, window: 16, offset: 0 };

/** Grid of the ActionFormer layout at a video's frame rate (window 16, stride 4). */
export function actionFormerGrid(fps: number): FeatureGrid {
  return { fps, stride: 4, window: 16, offset: 8 };
}

/**
 * Grid of a sequence whose `length` rows are spread evenly over `duration` seconds
 * (ActivityNet feature files; rescaled sequences): row g is centred at (g + 0.5) * duration/length.
 */
export function uniformGrid(duration: number, length: number): FeatureGrid {
  const step = duration / Math.max(1, length);
  return { fps: 1 / step, stride: 1, window: 1, offset: 0.5 };
}

/** Seconds of grid position `g`. */
export function gridToSeconds(grid: FeatureGrid, g: number): number {
  return (g * grid.stride + grid.offset) / grid.fps;
}

/** Grid position of time `t` seconds (may be negative or fractional). */
export function secondsToGrid(grid: FeatureGrid, t: number): number {
  return (t * grid.fps - grid.offset) / grid.stride;
}

/** Seconds between two consecutive rows. */
export function secondsPerRow(grid: FeatureGrid): number {
  return grid.stride / grid.fps;
}

/**
 * The grid positions a video's `length` feature rows cover: `[0, length]` on a snippet grid
 * (offset 0: positions are snippet boundaries), `[0, length - 1]` on a centred grid (positions
 * are row centres). Training targets are clipped to it.
 */
export function gridExtent(grid: FeatureGrid, length: number): [number, number] {
  return [0, Math.max(0, grid.offset === 0 ? length : length - 1)];
}
