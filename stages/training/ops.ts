/**
 * Tensor building blocks of the student, written so that they train on every tfjs backend
 * (docs/METHOD.md, "Backend notes"): no `conv1d` (wasm lacks Conv2DBackpropFilter), no max-pool
 * kernel (its wasm gradient is wrong with > 1 channel), no gather, and matMul gradients with
 * explicit transposes (transposed matMul is ~10x slower on wasm).
 *
 * Layout everywhere: `[batch, time, channels]` (time-major, channels last), so a kernel-k conv
 * is k shifted slices concatenated on the channel axis (im2col) and one plain matMul; with the
 * native BLAS, k shifted products on the padded rows instead (no im2col copy).
 *
 * @module
 */
import { tf } from "../../deps.ts";
import { matMulT } from "../../lib/blas.ts";
import { convRows, convRowsAvailable, convRowsFilter } from "../../lib/blas_conv.ts";
import {
  maxPool3s2Heap,
  maxPool3s2HeapAvailable,
  maxPool3s2HeapGrad,
} from "../../lib/wasm_maxpool.ts";

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

// The convolutions, norms and GELU below are single tape nodes with hand-written gradients
// (tf.customGrad): their forward intermediates (padded copies, k shifted slices, im2col
// columns, normalised activations) are freed as soon as the output exists and recomputed in
// the backward pass, and the backward temporaries are freed per op. Written as chains of tfjs
// ops, every intermediate stayed alive until the end of the step: at 576 rows, width 128
// they made most of the 564 MB peak (1,934 Identity, 1,003 Multiply, 1,048 Reshape, 252
// PadV2 kernel calls per step; bench/BENCH.md).

// deno-lint-ignore no-explicit-any
type CustomFn = any;

/** Shifted-slice sum that undoes an im2col gather: dx[t] = sum_j d_j[t - j + p], t < T. */
function foldTaps(parts: T[], t: number, p: number): T {
  const [b, , c] = parts[0].shape;
  const k = parts.length;
  let acc: T | null = null;
  for (let j = 0; j < k; j++) {
    // part j holds d cols[t', j] = d xp[t' + j]: place it at offset j of the padded axis
    const placed = tf.pad(parts[j], [[0, 0], [j, k - 1 - j], [0, 0]]);
    acc = acc ? tf.add(acc, placed) : placed;
  }
  return tf.slice(acc!, [0, p, 0], [b, t, c]);
}

function im2col(x: T, k: number): T {
  const [b, t, cin] = x.shape;
  if (k === 1) return tf.reshape(x, [b * t, cin]);
  const p = (k - 1) / 2;
  const xp = tf.pad(x, [[0, 0], [p, p], [0, 0]]);
  const taps: T[] = [];
  for (let j = 0; j < k; j++) taps.push(tf.slice(xp, [0, j, 0], [b, t, cin]));
  return tf.reshape(tf.concat(taps, 2), [b * t, k * cin]);
}

/**
 * The value and gradient of {@linkcode conv1d} on the native BLAS: shifted products on the
 * zero-padded rows (`lib/blas_conv.ts`) instead of im2col. The input gradient is the same kind
 * of convolution of the padded output gradient, with the taps in reverse order and each tap's
 * weight block transposed: dx[s] = Σ_i dy[s + i − p] · W_{k−1−i}ᵀ.
 */
function shiftedConv(x: T, w: T, k: number) {
  const [b, t, cin] = x.shape;
  const cout = w.shape[1] as number, p = (k - 1) / 2;
  const padded = (v: T) => tf.pad(v, [[0, 0], [p, p], [0, 0]]) as tf.Tensor3D;
  const value = tf.tidy(() => tf.reshape(convRows(padded(x), w as tf.Tensor2D, k), [b, t, cout]));
  return {
    value,
    gradFunc: (dy: T, saved: T[]) =>
      tf.tidy(() => {
        const [sx, sw] = saved;
        const dw = convRowsFilter(padded(sx), tf.reshape(dy, [b * t, cout]) as tf.Tensor2D, k);
        const flipped = tf.concat(
          Array.from(
            { length: k },
            (_, i) => tf.transpose(tf.slice(sw, [(k - 1 - i) * cin, 0], [cin, cout])),
          ),
          0,
        ) as tf.Tensor2D;
        const dx = tf.reshape(convRows(padded(dy), flipped, k), [b, t, cin]);
        return [dx, dw];
      }),
  };
}

const conv1dCore = tf.customGrad(
  ((x: T, w: T, save: CustomFn) => {
    const [b, t, cin] = x.shape;
    const k = w.shape[0] / cin, cout = w.shape[1] as number;
    save([x, w]);
    // (a weight that does not match the input, k not an integer, fails in the matMul below)
    if (k > 1 && Number.isInteger(k) && convRowsAvailable()) return shiftedConv(x, w, k);
    const value = tf.tidy(() =>
      tf.reshape(tf.matMul(im2col(x, k) as tf.Tensor2D, w as tf.Tensor2D), [b, t, cout])
    );
    return {
      value,
      gradFunc: (dy: T, saved: T[]) =>
        tf.tidy(() => {
          const [sx, sw] = saved;
          const dy2 = tf.reshape(dy, [b * t, cout]);
          // weight gradient from recomputed columns (cheaper than keeping k copies of x)
          const dw = matMulT(im2col(sx, k), dy2, true, false);
          if (k === 1) return [tf.reshape(matMulT<T>(dy2, sw, false, true), [b, t, cin]), dw];
          // input gradient per tap from that tap's rows of w (a contiguous row slice): no
          // channel-axis split of the [B·T, k·Cin] columns gradient (slow on wasm, measured)
          const parts = Array.from({ length: k }, (_, j) =>
            tf.reshape(
              matMulT<T>(dy2, tf.slice(sw, [j * cin, 0], [cin, cout]), false, true),
              [b, t, cin],
            ));
          return [foldTaps(parts, t, (k - 1) / 2), dw];
        }),
    };
  }) as CustomFn,
) as unknown as (x: T, w: T) => T;

/**
 * 1-D convolution, "same" zero padding, stride 1: x [B,T,Cin], w [k*Cin, Cout] (rows ordered
 * tap-major: rows j*Cin..(j+1)*Cin-1 multiply x[t - (k-1)/2 + j]). im2col + one matMul, as a
 * single op with its own gradient (columns recomputed in the backward pass).
 */
export function conv1d(x: T, w: T, bias?: T): T {
  const y = conv1dCore(x, w);
  return bias ? tf.add(y, bias) : y;
}

const depthwiseCore = tf.customGrad(
  ((x: T, w: T, save: CustomFn) => {
    const [b, t, c] = x.shape;
    const k = w.shape[0];
    const p = (k - 1) / 2;
    save([x, w]);
    const taps = (xx: T) => {
      const xp = p > 0 ? tf.pad(xx, [[0, 0], [p, p], [0, 0]]) : xx;
      return Array.from({ length: k }, (_, j) => tf.slice(xp, [0, j, 0], [b, t, c]));
    };
    const value = tf.tidy(() => {
      const wj = tf.split(w, k, 0);
      let y: T | null = null;
      taps(x).forEach((s, j) => {
        const m = tf.mul(s, wj[j]);
        y = y ? tf.add(y, m) : m;
      });
      return y!;
    });
    return {
      value,
      gradFunc: (dy: T, saved: T[]) =>
        tf.tidy(() => {
          const [sx, sw] = saved;
          const wj = tf.split(sw, k, 0);
          const dw = tf.concat(taps(sx).map((s) => tf.sum(tf.mul(dy, s), [0, 1], false)), 0);
          const dx = foldTaps(wj.map((wr) => tf.mul(dy, wr)), t, p);
          return [dx, tf.reshape(dw, [k, c])];
        }),
    };
  }) as CustomFn,
) as unknown as (x: T, w: T) => T;

/**
 * Depthwise 1-D conv, "same" zero padding: x [B,T,C], w [k, C] (tap j reads x[t-(k-1)/2+j]),
 * a sum of shifted slices (wasm has no depthwise-conv gradient) as one op with its own
 * gradient.
 */
export function depthwiseConv1d(x: T, w: T, bias?: T): T {
  const y = depthwiseCore(x, w);
  return bias ? tf.add(y, bias) : y;
}

/**
 * Normalisation of x with affine g, b on its last axis, as one op: forward
 * (x - mean) * rsqrt(var + eps) * g + b, backward the closed form
 * dx = r * (dxh - mean(dxh) - xh * mean(dxh * xh)) with dxh = dy * g. `meanOf(v)` gives the
 * mean of v over each normalised set, in a shape that broadcasts against x.
 */
function normOp(meanOf: (v: T) => T, eps: number) {
  return tf.customGrad(
    ((x: T, g: T, b: T, save: CustomFn) => {
      // The backward pass reads the normalised xh and the scale r of the forward pass (saved
      // in place of x: the same size) instead of recomputing the moments.
      const { xh, r } = tf.tidy(() => {
        const d = tf.sub(x, meanOf(x));
        const r = tf.rsqrt(tf.add(meanOf(tf.square(d)), eps));
        return { xh: tf.mul(d, r), r };
      });
      save([xh, r, g]);
      const value = tf.tidy(() => tf.add(tf.mul(xh, g), b));
      return {
        value,
        gradFunc: (dy: T, saved: T[]) =>
          tf.tidy(() => {
            const [xh, r, sg] = saved;
            const lead = xh.shape.map((_, i) => i).slice(0, -1);
            const dg = tf.sum(tf.mul(dy, xh), lead);
            const db = tf.sum(dy, lead);
            const dxh = tf.mul(dy, sg);
            const m1 = meanOf(dxh);
            const m2 = meanOf(tf.mul(dxh, xh));
            const dx = tf.mul(r, tf.sub(tf.sub(dxh, m1), tf.mul(xh, m2)));
            return [dx, dg, db];
          }),
      };
    }) as CustomFn,
  ) as unknown as (x: T, g: T, b: T) => T;
}

/** Channel LayerNorm (per time step, biased variance, eps 1e-5) with affine g, b [C]. */
export function layerNorm(x: T, g: T, b: T, eps = 1e-5): T {
  return normOp((v) => tf.mean(v, -1, true), eps)(x, g, b);
}

/**
 * GroupNorm over (channels of a group x all time steps), eps 1e-5, affine g, b [C].
 *
 * The group means are two products: a row of ones sums each video over time ([B, 1, T] x
 * [B, T, C]), and a block matrix averages the channels of each group and spreads the mean back
 * over them ([B, C] x [C, C]), so every mean arrives as [B, 1, C]. The same as reducing the
 * [B, T, groups, C / groups] view over its axes 1 and 3 (up to float32 sums), but tfjs-wasm
 * transposes for that reduction and broadcasts [B, 1, groups, 1] against it elementwise at
 * ~1.2 ns per element where [B, 1, C] takes ~0.25. Forward and backward of one [8, 576, 128]
 * GroupNorm of 16 groups (a `default` student's first level), medians: 10.2 -> 4.6 ms with the
 * native BLAS, 12.2 -> 8.7 ms on plain wasm.
 */
export function groupNorm(x: T, groups: number, g: T, b: T, eps = 1e-5): T {
  const [bs, t, c] = x.shape as [number, number, number];
  const per = c / groups;
  if (!Number.isInteger(per)) throw new Error(`groupNorm: ${c} channels in ${groups} groups`);
  const block = new Float32Array(c * c);
  for (let i = 0; i < c; i++) {
    const g0 = Math.floor(i / per) * per;
    block.fill(1 / (t * per), i * c + g0, i * c + g0 + per);
  }
  const meanOf = (v: T) =>
    tf.tidy(() => {
      const sums = tf.matMul(tf.ones([bs, 1, t]), v as tf.Tensor3D);
      return tf.reshape(tf.matMul(tf.reshape(sums, [bs, c]), tf.tensor2d(block, [c, c])), [
        bs,
        1,
        c,
      ]);
    });
  return normOp(meanOf, eps)(x, g, b);
}

const geluOp = tf.customGrad(
  ((x: T, save: CustomFn) => {
    // 1 + erf(x / sqrt 2) = 2 Phi(x), kept for the backward pass: recomputing it there cost as
    // much as the forward pass's erf (tfjs-wasm's Erf is about 4 ns per element, a twelfth of a
    // default student step), for one more tensor of x's size per GELU.
    const erf1 = tf.tidy(() => tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
    save([x, erf1]);
    return {
      value: tf.tidy(() => tf.mul(tf.mul(x, 0.5), erf1)),
      gradFunc: (dy: T, saved: T[]) =>
        tf.tidy(() => {
          const [sx, serf1] = saved;
          // d/dx x Phi(x) = Phi(x) + x phi(x)
          const cdf = tf.mul(serf1, 0.5);
          const pdf = tf.mul(tf.exp(tf.mul(tf.square(sx), -0.5)), 1 / Math.sqrt(2 * Math.PI));
          return [tf.mul(dy, tf.add(cdf, tf.mul(sx, pdf)))];
        }),
    };
  }) as CustomFn,
) as unknown as (x: T) => T;

/** Exact (erf) GELU, one op with its own gradient. */
export function gelu(x: T): T {
  return geluOp(x);
}

// On wasm: the same pool and gradient, bit for bit, as two heap kernels (lib/wasm_maxpool.ts):
// tfjs-wasm's maximum and comparison kernels made the chain below ~20 ms of a default step.
const maxPoolHeapOp = tf.customGrad(
  ((x: tf.Tensor3D, save: CustomFn) => {
    save([x]);
    return {
      value: maxPool3s2Heap(x),
      gradFunc: (dy: tf.Tensor3D, saved: tf.Tensor3D[]) => [maxPool3s2HeapGrad(saved[0], dy)],
    };
  }) as CustomFn,
) as unknown as (x: T) => T;

/**
 * Max-pool kernel 3, stride 2, padding 1 (padding acts as -inf) along time of x [B,T,C] with
 * T even: out[i] = max(x[2i-1], x[2i], x[2i+1]); the gradient of each output goes to its
 * arg-max (ties: x[2i], then x[2i+1], then x[2i-1]). On wasm two heap kernels, elsewhere
 * {@linkcode maxPool3s2Chain}: the same values and gradients.
 */
export function maxPool3s2(x: T): T {
  const t = x.shape[1] as number;
  if (t % 2 !== 0) throw new Error(`maxPool3s2: length ${t} is odd`);
  if (maxPool3s2HeapAvailable() && x.dtype === "float32") return maxPoolHeapOp(x);
  return maxPool3s2Chain(x);
}

/**
 * {@linkcode maxPool3s2} from `maximum` of reshaped/shifted views, on every backend (the wasm
 * max-pool gradient is wrong with several channels), differentiated by tfjs.
 */
export function maxPool3s2Chain(x: T): T {
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
