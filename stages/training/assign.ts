/**
 * Label assignment (TriDet `meta_archs.py`, `label_points_single_video`): every point of every
 * level is matched to the shortest pseudo segment that contains it within the centre-sampling
 * radius and whose max(left, right) lies
 * in the level's regression range. Ties (lengths within 1e-3 of the shortest) make the point
 * multi-label; the regression target is the first arg-min's (left, right) in strides.
 *
 * @module
 */
import type { Layout } from "./model.ts";

/** A pseudo segment in level-0 grid units with its class id. */
export interface GridSegment {
  /** Start (grid units). */
  a: number;
  /** End (grid units). */
  b: number;
  /** Class id. */
  c: number;
}

/** Targets of one item in the concatenated layout. */
export interface Targets {
  /** [L * K] multi-hot class targets. */
  cls: Float32Array;
  /** [L * 2] (left, right) regression targets in strides (positive points only). */
  reg: Float32Array;
  /** [L] 1 at positive points. */
  pos: Float32Array;
  /** Number of positive points among the valid ones. */
  numPos: number;
}

/**
 * Assigns targets for one item of `len` valid level-0 rows.
 * @param ranges regression range [lo, hi] (inclusive, level-0 units) per level.
 */
export function assignTargets(
  segs: GridSegment[],
  layout: Layout,
  len: number,
  numClasses: number,
  ranges: [number, number][],
  radius: number,
): Targets {
  const L = layout.total;
  const cls = new Float32Array(L * numClasses);
  const reg = new Float32Array(L * 2);
  const pos = new Float32Array(L);
  let numPos = 0;
  if (segs.length === 0) return { cls, reg, pos, numPos };
  for (let l = 0; l < layout.lengths.length; l++) {
    const s = layout.strides[l];
    const [lo, hi] = ranges[l];
    for (let t = 0; t < layout.lengths[l]; t++) {
      const p = t * s;
      if (p >= len) break; // padding: never a valid point (the level mask is p < len)
      let best = Infinity;
      let arg = -1;
      const lens = new Float64Array(segs.length);
      for (let n = 0; n < segs.length; n++) {
        const { a, b } = segs[n];
        const left = p - a;
        const right = b - p;
        const mu = (a + b) / 2;
        const inside = p - Math.max(mu - radius * s, a) > 0 && Math.min(mu + radius * s, b) - p > 0;
        const m = Math.max(left, right);
        const inRange = m >= lo && m <= hi;
        lens[n] = inside && inRange ? b - a : Infinity;
        if (lens[n] < best) {
          best = lens[n];
          arg = n;
        }
      }
      if (arg < 0) continue;
      const row = layout.offsets[l] + t;
      for (let n = 0; n < segs.length; n++) {
        if (lens[n] <= best + 1e-3) cls[row * numClasses + segs[n].c] = 1;
      }
      reg[row * 2] = (p - segs[arg].a) / s;
      reg[row * 2 + 1] = (segs[arg].b - p) / s;
      pos[row] = 1;
      numPos++;
    }
  }
  return { cls, reg, pos, numPos };
}
