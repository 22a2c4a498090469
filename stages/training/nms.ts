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

function iou(x: Scored, y: Scored): number {
  const la = x.b - x.a + 1e-6;
  const lb = y.b - y.a + 1e-6;
  const inter = Math.max(0, Math.min(x.b, y.b) - Math.max(x.a, y.a));
  return inter / (la + lb - inter);
}

/**
 * Gaussian Soft-NMS: repeatedly emit the highest remaining score (first occurrence on ties),
 * decay every later candidate by exp(-IoU^2 / sigma), and drop (swap-with-last) those that
 * fall below `minScore`. Returns at most `maxOut` candidates in emission order, with their
 * decayed scores. The input array is not modified.
 */
export function softNms(
  cands: Scored[],
  sigma: number,
  minScore: number,
  maxOut: number,
): Scored[] {
  const a = cands.map((c) => ({ ...c }));
  let n = a.length;
  const out: Scored[] = [];
  for (let i = 0; i < n && out.length < maxOut; i++) {
    let best = i;
    for (let q = i + 1; q < n; q++) if (a[q].score > a[best].score) best = q;
    [a[i], a[best]] = [a[best], a[i]];
    const cur = a[i];
    out.push({ ...cur });
    let q = i + 1;
    while (q < n) {
      const o = iou(cur, a[q]);
      a[q].score *= Math.exp(-(o * o) / sigma);
      if (a[q].score < minScore) {
        a[q] = a[n - 1];
        n--;
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
