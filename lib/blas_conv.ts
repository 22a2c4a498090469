/**
 * Temporal convolution as shifted matrix products on the native BLAS, without im2col.
 *
 * A kernel-k, stride-1 convolution over zero-padded rows is a sum of k products: output row t
 * of a video is `Σ_j x[t + j] · W_j`, where `W_j` is the j-th block of D rows of the weight and
 * `x` the video's rows padded with (k − 1)/2 zeros at each end. In row-major memory the rows
 * `x[j .. j + T)` are one contiguous block starting j rows later, so every term is one sgemm on
 * an offset into the input tensor: no [rows, k·D] im2col matrix is built, copied to the heap or
 * kept for the backward pass (at the published generator size that matrix is 295 MB per step).
 * The weight gradient is the same sum transposed: `dW_j = Σ_videos x[j .. j + T)ᵀ · dy`.
 *
 * The two kernels are registered on the `wasm` backend (names `FustalConvRows` and
 * `FustalConvRowsFilter`) and called through {@linkcode convRows} / {@linkcode convRowsFilter}
 * only while the BLAS kernels are active ({@linkcode blasActive}); other backends keep their
 * im2col path. They take no gradients themselves: callers wrap them in `tf.customGrad`.
 *
 * @module
 */
import { tf } from "../deps.ts";
import { blasActive, heapSgemm } from "./blas.ts";

const FORWARD = "FustalConvRows";
const FILTER = "FustalConvRowsFilter";

interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: { makeOutput(shape: number[], dtype: string): tf.TensorInfo };
  attrs: { taps: number };
}

/** [B, T + k − 1, D] padded rows and [k·D, H] weight → [B·T, H]. */
function forwardKernel({ inputs: { x, w }, backend, attrs: { taps } }: KernelArgs) {
  const [B, P, D] = x.shape, H = w.shape[1], T = P - taps + 1;
  const out = backend.makeOutput([B * T, H], "float32");
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < taps; j++) {
      heapSgemm(
        backend,
        false,
        false,
        T,
        H,
        D,
        { t: x, off: (b * P + j) * D, ld: D },
        { t: w, off: j * D * H, ld: H },
        j === 0 ? 0 : 1,
        { t: out, off: b * T * H, ld: H },
      );
    }
  }
  return out;
}

/** [B, T + k − 1, D] padded rows and [B·T, H] output gradient → [k·D, H] weight gradient. */
function filterKernel({ inputs: { x, dy }, backend, attrs: { taps } }: KernelArgs) {
  const [B, P, D] = x.shape, H = dy.shape[1], T = P - taps + 1;
  const out = backend.makeOutput([taps * D, H], "float32");
  for (let j = 0; j < taps; j++) {
    for (let b = 0; b < B; b++) {
      heapSgemm(
        backend,
        true,
        false,
        D,
        H,
        T,
        { t: x, off: (b * P + j) * D, ld: D },
        { t: dy, off: b * T * H, ld: H },
        b === 0 ? 0 : 1,
        { t: out, off: j * D * H, ld: H },
      );
    }
  }
  return out;
}

let registered = false;
function register(): void {
  if (registered) return;
  for (const [name, f] of [[FORWARD, forwardKernel], [FILTER, filterKernel]] as const) {
    tf.registerKernel({
      kernelName: name,
      backendName: "wasm",
      kernelFunc: f as unknown as tf.KernelFunc,
    });
  }
  registered = true;
}

/** Whether {@linkcode convRows} can run now (wasm with the native BLAS kernels on). */
export function convRowsAvailable(): boolean {
  return blasActive();
}

function check(x: tf.Tensor3D, taps: number, where: string): void {
  if (!convRowsAvailable()) throw new Error(`${where}: needs the native BLAS kernels`);
  if (x.rank !== 3 || x.dtype !== "float32" || !(taps >= 1 && x.shape[1] >= taps)) {
    throw new Error(`${where}: bad input [${x.shape}] for ${taps} taps`);
  }
}

/**
 * `taps`-tap stride-1 convolution of padded rows: `x` [B, T + taps − 1, D] (each video's rows
 * with its zero padding), `w` [taps·D, H] (rows j·D + d multiply feature d of row t + j) →
 * [B·T, H]. No gradient of its own.
 */
export function convRows(x: tf.Tensor3D, w: tf.Tensor2D, taps: number): tf.Tensor2D {
  check(x, taps, "convRows");
  if (w.shape[0] !== taps * x.shape[2]) throw new Error(`convRows: weight [${w.shape}]`);
  register();
  return tf.engine().runKernel(FORWARD, { x, w }, { taps } as never) as tf.Tensor2D;
}

/** The weight gradient of {@linkcode convRows}: `dy` [B·T, H] → [taps·D, H]. */
export function convRowsFilter(x: tf.Tensor3D, dy: tf.Tensor2D, taps: number): tf.Tensor2D {
  check(x, taps, "convRowsFilter");
  const T = x.shape[1] - taps + 1;
  if (dy.shape[0] !== x.shape[0] * T) throw new Error(`convRowsFilter: gradient [${dy.shape}]`);
  register();
  return tf.engine().runKernel(FILTER, { x, dy }, { taps } as never) as tf.Tensor2D;
}
