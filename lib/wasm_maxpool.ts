/**
 * The student's max-pool (kernel 3, stride 2, padding 1 along time) as two kernels of the
 * tfjs-wasm backend that read and write the heap directly.
 *
 * The portable max-pool of `stages/training/ops.ts` is a chain of slices, a concat and two
 * `maximum`s, and its gradient adds `greaterEqual`/`less` masks and products. On activations,
 * tfjs-wasm 4.22's `Maximum`, `GreaterEqual` and `Less` take about 4-10 ns per element
 * (`Multiply` about 0.2 ns), so at the `default` student shapes the pools' kernels took about
 * 20 ms of a 240 ms training step (tf.profile); these kernels save ~15 ms of it (median of 20
 * paired steps). A max over random data with `? :` is slow in V8 too (5.7 ns per element, the
 * branch mispredicts; 0.7 ns on predictable data), so each comparison here selects bits instead,
 * `a ^ ((a ^ b) & -(b > a))`: 1.5 ns per element.
 *
 * The results are the portable pool's bit for bit (finite inputs), ties included:
 * out[i] = max(x[2i], x[2i+1], x[2i−1]) where a later candidate wins only when strictly greater
 * (`maximum`'s gradient sends ties to its first argument), and the gradient of each output goes
 * to that winner.
 *
 * Registered on the `wasm` backend as `FustalMaxPool3s2` and `FustalMaxPool3s2Grad`; no
 * gradients of their own (the caller wraps them in `tf.customGrad`).
 *
 * @module
 */
import { tf } from "../deps.ts";
import { wasmKernelRegistrar } from "./wasm_override.ts";
import { heapView, type WasmBackendLike } from "./blas.ts";

const FORWARD = "FustalMaxPool3s2";
const BACKWARD = "FustalMaxPool3s2Grad";

interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: WasmBackendLike;
}

function bits(f: Float32Array): Int32Array {
  return new Int32Array(f.buffer, f.byteOffset, f.length);
}

/** x [B, T, C] → [B, T/2, C]. */
function forwardKernel({ inputs: { x }, backend }: KernelArgs) {
  const [B, T, C] = x.shape, H = T / 2;
  const out = backend.makeOutput([B, H, C], "float32");
  // Views after makeOutput: growing the heap replaces its buffer.
  const xf = heapView(backend, x), xb = bits(xf), yb = bits(heapView(backend, out));
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < H; i++) {
      const o = (b * H + i) * C, e = (b * T + 2 * i) * C, d = e + C, p = e - C;
      for (let c = 0; c < C; c++) {
        const ev = xf[e + c], od = xf[d + c];
        // -1 when the odd row wins (strictly greater), else 0: a mask, no branch
        const k1 = -(od > ev as unknown as number);
        const eb = xb[e + c];
        const m = eb ^ ((eb ^ xb[d + c]) & k1);
        if (i === 0) {
          yb[o + c] = m;
        } else {
          const pv = xf[p + c];
          const k2 = -((pv > ev as unknown as number) & (pv > od as unknown as number));
          yb[o + c] = m ^ ((m ^ xb[p + c]) & k2);
        }
      }
    }
  }
  return out;
}

/** x [B, T, C] and dy [B, T/2, C] → dx [B, T, C]: each output's gradient at its winner. */
function backwardKernel({ inputs: { x, dy }, backend }: KernelArgs) {
  const [B, T, C] = x.shape, H = T / 2;
  const out = backend.makeOutput([B, T, C], "float32");
  const xf = heapView(backend, x), gf = heapView(backend, dy), dx = heapView(backend, out);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < H; i++) {
      const o = (b * H + i) * C, e = (b * T + 2 * i) * C, d = e + C, p = e - C;
      for (let c = 0; c < C; c++) {
        const ev = xf[e + c], od = xf[d + c];
        const w1 = +(od > ev);
        // the previous odd row wins: its share goes to row 2i − 1, the odd row of output i − 1
        const w2 = i === 0 ? 0 : (+(xf[p + c] > ev) & +(xf[p + c] > od));
        const g = gf[o + c];
        const kept = g * (1 - w2);
        // `+ 0` turns −0 into +0, as the portable gradient's sums of padded parts do
        dx[e + c] = kept * (1 - w1) + 0;
        dx[d + c] = kept * w1 + 0;
        if (i > 0) dx[p + c] += g * w2;
      }
    }
  }
  return out;
}

const register = wasmKernelRegistrar({ [FORWARD]: forwardKernel, [BACKWARD]: backwardKernel });

/** Whether {@linkcode maxPool3s2Heap} can run: the wasm backend is active. */
export function maxPool3s2HeapAvailable(): boolean {
  return tf.getBackend() === "wasm";
}

function check(x: tf.Tensor, where: string): void {
  if (!maxPool3s2HeapAvailable()) throw new Error(`${where}: needs the wasm backend`);
  if (x.rank !== 3 || x.dtype !== "float32" || (x.shape[1] as number) % 2 !== 0) {
    throw new Error(`${where}: bad input [${x.shape}] (${x.dtype})`);
  }
}

/**
 * Max-pool, kernel 3, stride 2, padding 1 (padding acts as −inf) along time of x [B, T, C],
 * T even. No gradient of its own: see {@linkcode maxPool3s2HeapGrad}.
 */
export function maxPool3s2Heap(x: tf.Tensor3D): tf.Tensor3D {
  check(x, "maxPool3s2Heap");
  register();
  return tf.engine().runKernel(FORWARD, { x }, {}) as tf.Tensor3D;
}

/** The input gradient of {@linkcode maxPool3s2Heap} at x for output gradient dy. */
export function maxPool3s2HeapGrad(x: tf.Tensor3D, dy: tf.Tensor3D): tf.Tensor3D {
  check(x, "maxPool3s2HeapGrad");
  const [b, t, c] = x.shape;
  if (dy.rank !== 3 || dy.shape[0] !== b || dy.shape[1] !== t / 2 || dy.shape[2] !== c) {
    throw new Error(`maxPool3s2HeapGrad: gradient [${dy.shape}] for input [${x.shape}]`);
  }
  register();
  return tf.engine().runKernel(BACKWARD, { x, dy }, {}) as tf.Tensor3D;
}
