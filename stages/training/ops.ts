/**
 * Tensor building blocks of the student, written so that they train on every tfjs backend
 * (`../shared/STACK-NOTES.md`): no `conv1d` (wasm lacks Conv2DBackpropFilter), no max-pool
 * kernel (its wasm gradient is wrong with > 1 channel), no gather, and matMul gradients with
 * explicit transposes (transposed matMul is ~10x slower on wasm).
 *
 * Layout everywhere: `[batch, time, channels]` (time-major, channels last), so a kernel-k conv
 * is k shifted slices concatenated on the channel axis (im2col) and one plain matMul.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import { matMulT } from "../../lib/blas.ts";

type T = tf.Tensor;

/**
 * matMul whose gradient uses explicit transposes followed by plain matMuls on plain wasm
 * (fast there), and sgemm's transpose flags under a native BLAS (`lib/blas.ts`).
 */
export const matMul: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((a: tf.Tensor2D, b: tf.Tensor2D, save: any) => {
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as tf.Tensor2D[];
        return [matMulT(dy, sb, false, true), matMulT(sa, dy, true, false)];
      },
    };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** Identity in the forward pass, zero gradient backwards (PyTorch `.detach()`). */
export const detach: (x: T) => T = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((x: T) => ({ value: tf.clone(x), gradFunc: (dy: T) => tf.zerosLike(dy) })) as any,
) as unknown as (x: T) => T;

/**
 * 1-D convolution, "same" zero padding, stride 1: x [B,T,Cin], w [k*Cin, Cout] (rows ordered
 * tap-major: rows j*Cin..(j+1)*Cin-1 multiply x[t - (k-1)/2 + j]).
 */
export function conv1d(x: T, w: T, bias?: T): T {
  const [b, t, cin] = x.shape;
  const k = w.shape[0] / cin;
  let cols: T;
  if (k === 1) {
    cols = x;
  } else {
    const p = (k - 1) / 2;
    const xp = tf.pad(x, [[0, 0], [p, p], [0, 0]]);
    const taps: T[] = [];
    for (let j = 0; j < k; j++) taps.push(tf.slice(xp, [0, j, 0], [b, t, cin]));
    cols = tf.concat(taps, 2);
  }
  let y: T = matMul(tf.reshape(cols, [b * t, k * cin]) as tf.Tensor2D, w as tf.Tensor2D);
  if (bias) y = tf.add(y, bias);
  return tf.reshape(y, [b, t, w.shape[1] as number]);
}

/**
 * Depthwise 1-D conv, "same" zero padding: x [B,T,C], w [k, C] (tap j reads x[t-(k-1)/2+j]),
 * written as a sum of shifted slices (wasm has no depthwise-conv gradient).
 */
export function depthwiseConv1d(x: T, w: T, bias?: T): T {
  const [b, t, c] = x.shape;
  const k = w.shape[0];
  const p = (k - 1) / 2;
  const xp = p > 0 ? tf.pad(x, [[0, 0], [p, p], [0, 0]]) : x;
  let y: T | null = null;
  for (let j = 0; j < k; j++) {
    const tap = tf.mul(tf.slice(xp, [0, j, 0], [b, t, c]), tf.slice(w, [j, 0], [1, c]));
    y = y ? tf.add(y, tap) : tap;
  }
  return bias ? tf.add(y!, bias) : y!;
}

/** Channel LayerNorm (per time step, biased variance, eps 1e-5) with affine g, b [C]. */
export function layerNorm(x: T, g: T, b: T, eps = 1e-5): T {
  const { mean, variance } = tf.moments(x, -1, true);
  const xn = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(xn, g), b);
}

/** GroupNorm over (channels of a group x all time steps), eps 1e-5, affine g, b [C]. */
export function groupNorm(x: T, groups: number, g: T, b: T, eps = 1e-5): T {
  const [bs, t, c] = x.shape;
  const xg = tf.reshape(x, [bs, t, groups, c / groups]);
  const { mean, variance } = tf.moments(xg, [1, 3], true);
  const xn = tf.reshape(tf.mul(tf.sub(xg, mean), tf.rsqrt(tf.add(variance, eps))), [bs, t, c]);
  return tf.add(tf.mul(xn, g), b);
}

/** Exact (erf) GELU. */
export function gelu(x: T): T {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/**
 * Max-pool kernel 3, stride 2, padding 1 (padding acts as -inf) along time of x [B,T,C] with
 * T even: out[i] = max(x[2i-1], x[2i], x[2i+1]). Built from `maximum` of reshaped/shifted
 * views because the wasm max-pool gradient is wrong with several channels.
 */
export function maxPool3s2(x: T): T {
  const [b, t, c] = x.shape;
  if (t % 2 !== 0) throw new Error(`maxPool3s2: length ${t} is odd`);
  const pairs = tf.reshape(x, [b, t / 2, 2, c]);
  const even = tf.reshape(tf.slice(pairs, [0, 0, 0, 0], [b, t / 2, 1, c]), [b, t / 2, c]);
  const odd = tf.reshape(tf.slice(pairs, [0, 0, 1, 0], [b, t / 2, 1, c]), [b, t / 2, c]);
  const m = tf.maximum(even, odd);
  if (t === 2) return m;
  // x[2i-1] = odd[i-1]; position 0 sees the -inf padding, i.e. only max(even, odd).
  const prevOdd = tf.concat([
    tf.fill([b, 1, c], -3.4e38),
    tf.slice(odd, [0, 0, 0], [b, t / 2 - 1, c]),
  ], 1);
  return tf.maximum(m, prevOdd);
}

/**
 * Rows `idx` of x [R, C] (`tf.gather` forward). On wasm the gradient is a scatter-add done on
 * the host: wasm has no UnsortedSegmentSum, so `tf.gather`'s own gradient cannot run there. Used
 * for the few positive points of a batch, so the host round trip is small.
 */
export function gatherRows(x: tf.Tensor2D, idx: Int32Array): tf.Tensor2D {
  // Other backends have the scatter kernel, and WebGPU in Deno cannot read tensors
  // synchronously (`dataSync` needs a canvas there): use tf.gather's own gradient.
  if (tf.getBackend() !== "wasm") return tf.gather(x, tf.tensor1d(idx, "int32"));
  const [rows, cols] = x.shape;
  const f = tf.customGrad(
    ((xx: tf.Tensor2D) => ({
      value: tf.gather(xx, tf.tensor1d(idx, "int32")),
      gradFunc: (dy: tf.Tensor2D) => {
        const d = dy.dataSync();
        const out = new Float32Array(rows * cols);
        for (let i = 0; i < idx.length; i++) {
          const o = idx[i] * cols;
          for (let c = 0; c < cols; c++) out[o + c] += d[i * cols + c];
        }
        return tf.tensor2d(out, [rows, cols]);
      },
      // deno-lint-ignore no-explicit-any
    })) as any,
  ) as unknown as (a: tf.Tensor2D) => tf.Tensor2D;
  return f(x);
}
