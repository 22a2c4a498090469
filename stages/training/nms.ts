/**
 * Post-processing NMS variants (TriDet `libs/utils/nms.py`, `batched_nms`): Gaussian Soft-NMS with
 * the exact semantics of TriDet's C++ kernel, and plain (hard) NMS as an option.
 *
 * @module
 */

/** A candidate: segment [a, b] (any unit) with a score. */
export interface Scored {
  /** Segment start (same unit as `b`). */
  a: number;
  /** Segment end. */
  b: number;
  /** Confidence score (Soft-NMS returns the decayed score). */
  score: number;
}

/** IoU of segments [xa, xb] and [ya, yb] as TriDet's kernel computes it (lengths + 1e-6). */
function segmentIou(xa: number, xb: number, ya: number, yb: number): number {
  const inter = Math.max(0, Math.min(xb, yb) - Math.max(xa, ya));
  return inter / ((xb - xa + 1e-6) + (yb - ya + 1e-6) - inter);
}

function iou(x: Scored, y: Scored): number {
  return segmentIou(x.a, x.b, y.a, y.b);
}

/**
 * Gaussian Soft-NMS: repeatedly emit the highest remaining score (first occurrence on ties),
 * decay every later candidate by exp(-IoU^2 / sigma), and drop (swap-with-last) those that
 * fall below `minScore`. Returns at most `maxOut` candidates in emission order, with their
 * decayed scores. The input array is not modified.
 *
 * The work is quadratic in the candidates of a class (up to 2000 per pyramid level), so it runs
 * on parallel Float64Arrays rather than objects, and a candidate that does not overlap the
 * emitted one (IoU 0) skips the decay: its factor would be exp(-0) = 1, so every score stays the
 * same double as in the plain loop. With the typed-array top-k of `infer.ts`, this took the
 * post-processing of a default detection pass from 7.96 to 4.64 s (bench/BENCH.md).
 */
export function softNms(
  cands: Scored[],
  sigma: number,
  minScore: number,
  maxOut: number,
): Scored[] {
  let n = cands.length;
  const sa = new Float64Array(n), sb = new Float64Array(n), sc = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    sa[i] = cands[i].a;
    sb[i] = cands[i].b;
    sc[i] = cands[i].score;
  }
  const out: Scored[] = [];
  for (let i = 0; i < n && out.length < maxOut; i++) {
    let best = i;
    for (let q = i + 1; q < n; q++) if (sc[q] > sc[best]) best = q;
    const ca = sa[best], cb = sb[best], cs = sc[best];
    sa[best] = sa[i], sb[best] = sb[i], sc[best] = sc[i];
    sa[i] = ca, sb[i] = cb, sc[i] = cs;
    out.push({ a: ca, b: cb, score: cs });
    let q = i + 1;
    while (q < n) {
      const o = segmentIou(ca, cb, sa[q], sb[q]);
      if (o > 0) sc[q] *= Math.exp(-(o * o) / sigma);
      if (sc[q] < minScore) {
        n--;
        sa[q] = sa[n], sb[q] = sb[n], sc[q] = sc[n];
      } else {
        q++;
      }
    }
  }
  return out;
}

/** Plain NMS: by descending score (stable), drop candidates with IoU > `thresh` to a kept one. */
export function hardNms(cands: Scored[], thresh: number, maxOut: number): Scored[] {
  const order = cands.map((c, i) => ({ c, i })).sort((x, y) => y.c.score - x.c.score || x.i - y.i);
  const kept: Scored[] = [];
  for (const { c } of order) {
    if (kept.length >= maxOut) break;
    if (kept.every((k) => iou(k, c) <= thresh)) kept.push({ ...c });
  }
  return kept;
}
