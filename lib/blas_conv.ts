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
import { wasmKernelRegistrar } from "./wasm_override.ts";
import { blasActive, heapSgemm, heapView, type WasmBackendLike } from "./blas.ts";

const FORWARD = "FustalConvRows";
const FILTER = "FustalConvRowsFilter";

interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: WasmBackendLike;
  attrs: { taps: number };
}

// The videos are folded into the rows of one product per tap: the padded input read as
// [B·P, D] (P = T + taps − 1 rows per video) gives, at row b·P + t, the output row t of video b
// (its taps never leave the video), and at the last taps − 1 rows of each video a value that
// mixes two videos and is thrown away. One product per tap over all videos instead of one per
// video and tap means few, large sgemm calls (3 instead of 48 for the default generator's 16
// short videos), at the cost of (taps − 1) / P extra rows and a copy of the output rows.

/** [B, T + k − 1, D] padded rows and [k·D, H] weight → [B·T, H]. */
function forwardKernel({ inputs: { x, w }, backend, attrs: { taps } }: KernelArgs) {
  const [B, P, D] = x.shape, H = w.shape[1], T = P - taps + 1;
  const rows = B * P - (taps - 1);
  const out = backend.makeOutput([B * T, H], "float32");
  const full = B === 1 ? out : backend.makeOutput([rows, H], "float32");
  for (let j = 0; j < taps; j++) {
    heapSgemm(
      backend,
      false,
      false,
      rows,
      H,
      D,
      { t: x, off: j * D, ld: D },
      { t: w, off: j * D * H, ld: H },
      j === 0 ? 0 : 1,
      { t: full, off: 0, ld: H },
      taps * rows * H * D, // threads as for the one im2col product these replace
    );
  }
  if (full !== out) {
    const src = heapView(backend, full), dst = heapView(backend, out);
    for (let b = 0; b < B; b++) dst.set(src.subarray(b * P * H, (b * P + T) * H), b * T * H);
    backend.disposeData(full.dataId);
  }
  return out;
}

/** [B, T + k − 1, D] padded rows and [B·T, H] output gradient → [k·D, H] weight gradient. */
function filterKernel({ inputs: { x, dy }, backend, attrs: { taps } }: KernelArgs) {
  const [B, P, D] = x.shape, H = dy.shape[1], T = P - taps + 1;
  const rows = B * P - (taps - 1);
  const out = backend.makeOutput([taps * D, H], "float32");
  // The gradient on the folded rows: zero on the thrown-away rows.
  let g = dy;
  if (B > 1) {
    g = backend.makeOutput([rows, H], "float32");
    const src = heapView(backend, dy), dst = heapView(backend, g);
    for (let b = 0; b < B; b++) {
      dst.set(src.subarray(b * T * H, (b + 1) * T * H), b * P * H);
      if (b < B - 1) dst.fill(0, (b * P + T) * H, (b + 1) * P * H);
    }
  }
  for (let j = 0; j < taps; j++) {
    heapSgemm(
      backend,
      true,
      false,
      D,
      H,
      rows,
      { t: x, off: j * D, ld: D },
      { t: g, off: 0, ld: H },
      0,
      { t: out, off: j * D * H, ld: H },
      taps * rows * H * D,
    );
  }
  if (g !== dy) backend.disposeData(g.dataId);
  return out;
}

const register = wasmKernelRegistrar({ [FORWARD]: forwardKernel, [FILTER]: filterKernel });

/** Whether {@linkcode convRows} can run now (wasm with the native BLAS kernels on). */
export function convRowsAvailable(): boolean {
  return blasActive();
}

function check(x: tf.Tensor3D, taps: number, where: string): void {
  if (!convRowsAvailable()) throw new Error(`${where}: needs the native BLAS kernels`);
  if (
    x.rank !== 3 || x.dtype !== "float32" || !Number.isInteger(taps) || taps < 1 ||
    x.shape[1] < taps
  ) {
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
