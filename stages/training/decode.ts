/**
 * Trident boundary decoding (TriDet `libs/modeling/meta_archs.py`, `TriDet.decode_offset`): the
 * distance from a point to its start (end) is the expectation, over B+1 bins, of a softmax of the
 * start (end) logits in a window of B+1
 * neighbouring positions plus the point's relative offsets. Distances are in units of the
 * level's stride.
 *
 * Two forms: {@linkcode tridentDistances} on tensors (differentiable, all points and classes at
 * once, for the losses) and {@linkcode decodePoint} on host arrays (inference, kept
 * candidates only).
 *
 * @module
 */
import { tf } from "../../deps.ts";
import { gatherRows } from "./ops.ts";

/**
 * Differentiable trident distances for every (point, class) of the concatenated layout.
 * `start`, `end`: [B, L, K] logits (zero outside levels: the layout's gaps are >= `nb` rows);
 * `off`: [B, L, 2(nb+1)] offsets (left half, then right half).
 * @returns `dl`, `dr`: [B, L, K] distances in strides.
 */
export function tridentDistances(
  start: tf.Tensor3D,
  end: tf.Tensor3D,
  off: tf.Tensor3D,
  nb: number,
): { dl: tf.Tensor3D; dr: tf.Tensor3D } {
  const [b, l, k] = start.shape;
  const sp = tf.pad(start, [[0, 0], [nb, 0], [0, 0]]);
  const ep = tf.pad(end, [[0, 0], [0, nb], [0, 0]]);
  const ws: tf.Tensor[] = [];
  const we: tf.Tensor[] = [];
  for (let j = 0; j <= nb; j++) {
    ws.push(tf.slice(sp, [0, j, 0], [b, l, k])); // S[t - nb + j]
    we.push(tf.slice(ep, [0, j, 0], [b, l, k])); // E[t + j]
  }
  const oL = tf.reshape(tf.slice(off, [0, 0, 0], [b, l, nb + 1]), [b, l, 1, nb + 1]);
  const oR = tf.reshape(tf.slice(off, [0, 0, nb + 1], [b, l, nb + 1]), [b, l, 1, nb + 1]);
  const pl = tf.softmax(tf.add(tf.stack(ws, 3), oL));
  const pr = tf.softmax(tf.add(tf.stack(we, 3), oR));
  const wl = tf.tensor1d(Array.from({ length: nb + 1 }, (_, j) => nb - j));
  const wr = tf.tensor1d(Array.from({ length: nb + 1 }, (_, j) => j));
  return {
    dl: tf.sum(tf.mul(pl, wl), 3) as tf.Tensor3D,
    dr: tf.sum(tf.mul(pr, wr), 3) as tf.Tensor3D,
  };
}

/**
 * Differentiable trident distances at selected rows only: `rows` are indices into the
 * flattened [B * L] layout (each at least `nb` rows from either end of its item, which the
 * layout's gaps guarantee for real points). Same values as {@linkcode tridentDistances} at
 * those rows, at a fraction of the cost (training needs them at positive points only).
 * @returns `dl`, `dr`: [N, K] distances in strides.
 */
export function tridentAtRows(
  start: tf.Tensor3D,
  end: tf.Tensor3D,
  off: tf.Tensor3D,
  rows: Int32Array,
  nb: number,
): { dl: tf.Tensor2D; dr: tf.Tensor2D } {
  const [b, l, k] = start.shape;
  const n = rows.length;
  const no = off.shape[2];
  const is = new Int32Array(n * (nb + 1));
  const ie = new Int32Array(n * (nb + 1));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= nb; j++) {
      is[i * (nb + 1) + j] = rows[i] - nb + j;
      ie[i * (nb + 1) + j] = rows[i] + j;
    }
  }
  const win = (t: tf.Tensor3D, idx: Int32Array) =>
    tf.transpose(tf.reshape(gatherRows(tf.reshape(t, [b * l, k]), idx), [n, nb + 1, k]), [0, 2, 1]);
  const o = gatherRows(tf.reshape(off, [b * l, no]), rows);
  const oL = tf.reshape(tf.slice(o, [0, 0], [n, nb + 1]), [n, 1, nb + 1]);
  const oR = tf.reshape(tf.slice(o, [0, nb + 1], [n, nb + 1]), [n, 1, nb + 1]);
  const pl = tf.softmax(tf.add(win(start, is), oL));
  const pr = tf.softmax(tf.add(win(end, ie), oR));
  const wl = tf.tensor1d(Array.from({ length: nb + 1 }, (_, j) => nb - j));
  const wr = tf.tensor1d(Array.from({ length: nb + 1 }, (_, j) => j));
  return {
    dl: tf.sum(tf.mul(pl, wl), 2) as tf.Tensor2D,
    dr: tf.sum(tf.mul(pr, wr), 2) as tf.Tensor2D,
  };
}

/**
 * Expectation of `sum_j w(j) softmax(logits)_j` over the first `nb + 1` values, with
 * w(j) = nb - j (left) or j (right).
 */
function expectation(logits: Float64Array, nb: number, left: boolean): number {
  let mx = -Infinity;
  for (let j = 0; j <= nb; j++) mx = Math.max(mx, logits[j]);
  let z = 0;
  let s = 0;
  for (let j = 0; j <= nb; j++) {
    const e = Math.exp(logits[j] - mx);
    z += e;
    s += e * (left ? nb - j : j);
  }
  return s / z;
}

// Scratch windows of decodePoint, reused across calls: a detection pass decodes ~10^4
// candidates per video, and two fresh arrays per candidate cost more than the arithmetic.
let scratchS = new Float64Array(0);
let scratchE = new Float64Array(0);

/**
 * Host decoding of one (point, class): `start`/`end` are [L*K] row-major logits of one video
 * in the concatenated layout, `off` is [L * 2(nb+1)]; `p` is the layout row, `c` the class.
 * Rows outside the array read as 0 (the layout's gaps already hold zeros).
 * @returns distances (in strides) to the start and end.
 */
export function decodePoint(
  start: ArrayLike<number>,
  end: ArrayLike<number>,
  off: ArrayLike<number>,
  rows: number,
  k: number,
  nb: number,
  p: number,
  c: number,
): [number, number] {
  if (scratchS.length < nb + 1) {
    scratchS = new Float64Array(nb + 1);
    scratchE = new Float64Array(nb + 1);
  }
  const ls = scratchS, le = scratchE;
  const no = 2 * (nb + 1);
  for (let j = 0; j <= nb; j++) {
    const ps = p - nb + j;
    const pe = p + j;
    ls[j] = (ps >= 0 ? start[ps * k + c] : 0) + off[p * no + j];
    le[j] = (pe < rows ? end[pe * k + c] : 0) + off[p * no + nb + 1 + j];
  }
  return [expectation(ls, nb, true), expectation(le, nb, false)];
}
