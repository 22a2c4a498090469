/**
 * Crop / truncation augmentation (TriDet `libs/datasets/data_utils.py`, `truncate_feats`): pick a
 * window of the video (90-100 % of it, or
 * `maxSeqLen` rows when longer) that keeps at least one pseudo segment by >= 50 %, and clip the
 * kept segments to it.
 *
 * @module
 */
import type { Rng } from "../../lib/rng.ts";
import type { GridSegment } from "./assign.ts";

/** Python 3 `round` (half to even). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** A crop: rows [start, start + length) and the segments it keeps (window coordinates). */
export interface Crop {
  start: number;
  length: number;
  segs: GridSegment[];
}

/** Chooses a crop of a `len`-row video with segments `segs` (grid units). */
export function cropWindow(
  len: number,
  segs: GridSegment[],
  maxSeqLen: number,
  ratio: [number, number],
  truncThresh: number,
  rng: Rng,
  trials = 200,
): Crop {
  let L: number;
  if (len <= maxSeqLen) {
    const lo = Math.max(roundHalfEven(ratio[0] * len), 1);
    const hi = Math.min(roundHalfEven(ratio[1] * len), len);
    L = rng.int(lo, Math.max(lo, hi));
    if (L === len) return { start: 0, length: len, segs: segs.map((s) => ({ ...s })) };
  } else {
    L = maxSeqLen;
  }
  let st = 0;
  let kept: GridSegment[] = [];
  for (let k = 0; k < trials; k++) {
    st = rng.int(0, len - L);
    const ed = st + L;
    kept = [];
    for (const s of segs) {
      const inter = Math.max(0, Math.min(s.b, ed) - Math.max(s.a, st));
      const r = inter / Math.abs(s.b - s.a);
      if (r >= truncThresh) {
        kept.push({ a: Math.max(s.a, st) - st, b: Math.min(s.b, ed) - st, c: s.c });
      }
    }
    if (kept.length > 0) break;
  }
  return { start: st, length: L, segs: kept };
}
