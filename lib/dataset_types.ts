/**
 * The dataset contract every stage and adapter shares. A dataset is metadata for all videos
 * (small, in memory) plus features loaded one video at a time (never the whole set).
 *
 * Feature grids: feature row g of a video is centred (or starts, for snippet grids) at
 * `(g * stride + offset) / fps` seconds. The conversions live in `datasets/time.ts` only.
 *
 * The records live in `lib/` so that the plugin contract (`lib/plugin_types.ts`) needs
 * nothing from `datasets/`; `datasets/types.ts` re-exports them.
 *
 * @module
 */
import type { Segment } from "./types.ts";

/** Which role a video plays: training videos or evaluation videos. */
export type Split = "train" | "test";

/** Timing of a video's feature rows. */
export interface FeatureGrid {
  /** Frames per second the grid is counted in (CoLA: 25; ActionFormer: the video's fps). */
  fps: number;
  /** Frames between consecutive rows (CoLA 16, ActionFormer 4). */
  stride: number;
  /** Frames covered by one row (16 for both I3D layouts). */
  window: number;
  /** Frame offset of row 0's reference point: CoLA 0 (snippet start), ActionFormer 8 (centre). */
  offset: number;
}

/** One annotated action instance, in seconds, with its class id. */
export interface Annotation {
  /** Class name as in the annotation file. */
  label: string;
  /** Index into {@linkcode DatasetInfo.classes}. */
  classId: number;
  /** `[start, end]` in seconds. */
  segment: Segment;
}

/** Metadata of one video (no features). */
export interface VideoMeta {
  /** Video id as in the annotation file. */
  id: string;
  /** Role: train or test (normalised from the file's subset name). */
  split: Split;
  /** The file's own subset name (e.g. `Validation`, `train`, `validation`). */
  subset: string;
  /** Duration in seconds (estimated from the features when the file has none). */
  duration: number;
  /** Native frame rate (25 when unknown). */
  fps: number;
  /** Timing of feature rows. */
  grid: FeatureGrid;
  /** Number of feature rows (known after the header is read; -1 if not yet known). */
  length: number;
  /** Annotations (may be empty, e.g. for unlabeled user videos). */
  annotations: Annotation[];
  /** Weak video-level label: sorted unique class ids of the annotations. */
  labels: number[];
}

/** Features of one video: `length` rows of `dim` float32 values, row-major (time-major). */
export interface VideoFeatures {
  /** Row-major T x D values. */
  data: Float32Array;
  /** T. */
  length: number;
  /** D. */
  dim: number;
}

/** Summary of an opened dataset. */
export interface DatasetInfo {
  /** Layout the adapter read (`actionformer`, `cola`, `activitynet`, or a plugin's). */
  layout: string;
  /** Root folder (or file) it was opened from. */
  root: string;
  /** Class names; class id = index. */
  classes: string[];
  /** Feature dimension D. */
  featureDim: number;
  /** The annotation file the metadata (and so the evaluation ground truth) came from. */
  annotationFile?: string;
  /** Annotated videos left out because they have no feature file (see the warnings). */
  skipped?: string[];
  /** The warning lines issued while opening (late segments, skipped videos). */
  warnings?: string[];
}

/** An opened dataset: metadata for every video, features on demand. */
export interface Dataset extends DatasetInfo {
  /** Metadata of the videos of a split (all when omitted), in a stable order. */
  list(split?: Split): VideoMeta[];
  /** Loads one video's features (whole sequence). Errors name the file and the problem. */
  load(id: string): Promise<VideoFeatures>;
  /** Streams (meta, features) pairs one video at a time. */
  videos(split?: Split): AsyncIterable<{ meta: VideoMeta; features: VideoFeatures }>;
}
