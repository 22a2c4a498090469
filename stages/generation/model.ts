/**
 * The generator network (FuSTAL `CrossVideo-Generator/core/model.py`, `CoLA`), its parameters, the
 * optimiser (`train_generator.py`) and the checkpoint file.
 *
 * Network: temporal conv D→H (kernel 3, zero padding 1, bias) + ReLU = embedding E; dropout
 * on E (training); 1×1 conv H→C without bias + ReLU = CAS. With the native BLAS the kernel-3
 * conv runs as three shifted products on the zero-padded rows ({@linkcode forwardPadded},
 * `lib/blas_conv.ts`). Elsewhere it is im2col + matMul, because tfjs-wasm has no
 * `Conv2DBackpropFilter` (conv1d cannot train there), and every matMul goes through
 * {@linkcode matMulExplicit}, whose gradient uses explicit transposes: tfjs-wasm runs
 * `transposeA/B` matMuls ~10x slower.
 *
 * Weight layout: `w1` is [3D, H]; row k·D + d multiplies feature d of snippet t + k − 1, i.e.
 * `w1[k*D + d][h]` = PyTorch `Conv1d.weight[h][d][k]`. `w2` is [H, C] (= `weight[c][h][0]`ᵀ).
 *
 * @module
 */
import { tf } from "../../deps.ts";
import type { Rng } from "../../lib/rng.ts";
import { matMulT } from "../../lib/blas.ts";
import { convRows, convRowsAvailable, convRowsFilter } from "../../lib/blas_conv.ts";
import {
  loadTensorFile,
  requireFormat,
  saveTensorFile,
  type TensorFileKind,
} from "../../lib/tensor_file.ts";

/** Trainable tensors of the generator. */
export interface GeneratorParams {
  /** Embedding conv weight [3D, H]. */
  w1: tf.Variable;
  /** Embedding conv bias [H]. */
  b1: tf.Variable;
  /** Classifier weight [H, C] (no bias). */
  w2: tf.Variable;
}

/** Names of the parameters, in checkpoint order. */
export const PARAM_NAMES = ["w1", "b1", "w2"] as const;

function uniformInit(n: number, bound: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.next() - 1) * bound;
  return a;
}

/**
 * Fresh parameters with PyTorch's default init: U(−1/√fan_in, 1/√fan_in) for weights and the
 * conv bias (fan_in 3D for the conv, H for the classifier). Drawn from `rng` so the same seed
 * gives the same model on every backend.
 */
export function createParams(D: number, H: number, C: number, rng: Rng): GeneratorParams {
  const b1 = 1 / Math.sqrt(3 * D), b2 = 1 / Math.sqrt(H);
  return {
    w1: tf.variable(tf.tensor2d(uniformInit(3 * D * H, b1, rng), [3 * D, H]), true),
    b1: tf.variable(tf.tensor1d(uniformInit(H, b1, rng)), true),
    w2: tf.variable(tf.tensor2d(uniformInit(H * C, b2, rng), [H, C]), true),
  };
}

/** Copies parameter values to host arrays (for the best-checkpoint snapshot). */
export async function snapshotParams(p: GeneratorParams): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const n of PARAM_NAMES) out[n] = (await p[n].data()) as Float32Array;
  return out;
}

/** Writes host arrays back into the variables. */
export function restoreParams(p: GeneratorParams, values: Record<string, Float32Array>): void {
  for (const n of PARAM_NAMES) {
    tf.tidy(() => p[n].assign(tf.tensor(values[n], p[n].shape)));
  }
}

/** Frees the variables. */
export function disposeParams(p: GeneratorParams): void {
  for (const n of PARAM_NAMES) p[n].dispose();
}

const mmFull = tf.customGrad(
  ((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        matMulT(dy, saved[1], false, true),
        matMulT(saved[0], dy, true, false),
      ],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0],
);

/**
 * `a @ b` (rank 2 or batched rank 3) whose gradient is computed with explicit transposes and
 * plain matMuls on plain wasm, and with sgemm's transpose flags when a native BLAS runs the
 * matMuls (`lib/blas.ts`: `matMulT`).
 */
export function matMulExplicit<T extends tf.Tensor>(a: T, b: tf.Tensor): T {
  return mmFull(a, b) as T;
}

/**
 * `cols @ w` where `cols` is data (no gradient): the gradient of `w` is `colsᵀ @ dy`, with
 * `colsT` when the caller has it (built on the host, which is cheaper than a tfjs-wasm
 * transpose) or a transpose of `cols` otherwise. `cols` is captured, not an input, so no
 * gradient is computed for it.
 */
export function matMulData(
  cols: tf.Tensor2D,
  w: tf.Tensor,
  colsT: tf.Tensor2D | null = null,
): tf.Tensor2D {
  const f = tf.customGrad(
    ((wv: tf.Tensor) => ({
      value: tf.matMul(cols, wv as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor) => [
        colsT ? tf.matMul(colsT, dy as tf.Tensor2D) : matMulT(cols, dy, true, false),
      ],
    })) as unknown as Parameters<typeof tf.customGrad>[0],
  );
  return f(w) as tf.Tensor2D;
}

/**
 * Host im2col of row-major [B, T, D] features for a kernel-3, padding-1 conv: `cols` is
 * [B·T, 3D] (x_{t−1}, x_t, x_{t+1}, zeros outside each video) and `colsT` its transpose.
 */
export function hostIm2col(
  x: Float32Array,
  B: number,
  T: number,
  D: number,
  withTranspose = true,
): { cols: Float32Array; colsT: Float32Array | null } {
  const R = B * T, W = 3 * D;
  const cols = new Float32Array(R * W);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const r = b * T + t;
      for (let k = 0; k < 3; k++) {
        const s = t + k - 1;
        if (s < 0 || s >= T) continue;
        const src = (b * T + s) * D;
        cols.set(x.subarray(src, src + D), r * W + k * D);
      }
    }
  }
  if (!withTranspose) return { cols, colsT: null };
  const colsT = new Float32Array(R * W);
  // blocked transpose (cache-friendly)
  const BS = 64;
  for (let r0 = 0; r0 < R; r0 += BS) {
    const r1 = Math.min(R, r0 + BS);
    for (let j0 = 0; j0 < W; j0 += BS) {
      const j1 = Math.min(W, j0 + BS);
      for (let r = r0; r < r1; r++) {
        const base = r * W;
        for (let j = j0; j < j1; j++) colsT[j * R + r] = cols[base + j];
      }
    }
  }
  return { cols, colsT };
}

/** im2col for a kernel-3, padding-1 temporal conv: [B, T, D] → [B·T, 3D] (t−1, t, t+1). */
export function im2col3(x: tf.Tensor3D): tf.Tensor2D {
  const [B, T, D] = x.shape;
  const xp = tf.pad(x, [[0, 0], [1, 1], [0, 0]]);
  const cols = tf.concat(
    [0, 1, 2].map((k) => tf.slice(xp, [0, k, 0], [B, T, D])),
    2,
  );
  return tf.reshape(cols, [B * T, 3 * D]);
}

/** Forward outputs: embeddings (post-ReLU, pre-dropout) and CAS, rows = B·T. */
export interface ForwardOut {
  /** [B·T, H]. */
  emb: tf.Tensor2D;
  /** [B·T, C], ≥ 0. */
  cas: tf.Tensor2D;
}

/** ReLU, dropout and the classifier on the pre-activation embedding `z` [B·T, H]. */
function forwardFrom(p: GeneratorParams, z: tf.Tensor2D, dropMask: tf.Tensor2D | null): ForwardOut {
  const emb = tf.relu(z) as tf.Tensor2D;
  const h = dropMask ? tf.mul(emb, dropMask) : emb;
  const cas = tf.relu(matMulExplicit(h as tf.Tensor2D, p.w2)) as tf.Tensor2D;
  return { emb, cas };
}

/**
 * Forward pass on im2col rows (`colsT`: their transpose, optional). `dropMask` (same shape as the
 * embedding; 0 or 1/(1−p)) is the embedding dropout of training; null in eval mode.
 */
export function forwardCols(
  p: GeneratorParams,
  cols: tf.Tensor2D,
  dropMask: tf.Tensor2D | null,
  colsT: tf.Tensor2D | null = null,
): ForwardOut {
  return forwardFrom(p, tf.add(matMulData(cols, p.w1, colsT), p.b1) as tf.Tensor2D, dropMask);
}

/**
 * Row-major [B, T, D] features laid out as [B, T + 2, D] with one zero row before and after each
 * video: the input of {@linkcode forwardPadded}.
 */
export function padRows(x: Float32Array, B: number, T: number, D: number): Float32Array {
  const out = new Float32Array(B * (T + 2) * D);
  for (let b = 0; b < B; b++) {
    out.set(x.subarray(b * T * D, (b + 1) * T * D), (b * (T + 2) + 1) * D);
  }
  return out;
}

/**
 * The same forward pass as {@linkcode forwardCols} on padded rows `xp` [B, T + 2, D]
 * ({@linkcode padRows}), for wasm with the native BLAS ({@linkcode convRowsAvailable}): the
 * kernel-3 conv runs as three shifted sgemms on the rows, without im2col (`lib/blas_conv.ts`).
 */
export function forwardPadded(
  p: GeneratorParams,
  xp: tf.Tensor3D,
  dropMask: tf.Tensor2D | null,
): ForwardOut {
  const conv = tf.customGrad(
    ((w1: tf.Tensor) => ({
      value: convRows(xp, w1 as tf.Tensor2D, 3),
      gradFunc: (dy: tf.Tensor) => [convRowsFilter(xp, dy as tf.Tensor2D, 3)],
    })) as unknown as Parameters<typeof tf.customGrad>[0],
  );
  return forwardFrom(p, tf.add(conv(p.w1), p.b1) as tf.Tensor2D, dropMask);
}

/**
 * Eval-mode CAS for several videos at once. Videos are laid end to end with one zero row
 * between them (and at both ends), so one kernel-3 conv over the joined sequence equals a
 * zero-padded conv over each video. Returns one row-major T_i x C array per video.
 *
 * @param seqs per-video row-major T_i x D features.
 * @param maxRows rows per chunk (bounds memory; videos are never split).
 */
export async function inferCas(
  p: GeneratorParams,
  seqs: { data: Float32Array; T: number }[],
  D: number,
  maxRows = 16384,
): Promise<Float32Array[]> {
  const C = p.w2.shape[1] as number;
  const out: Float32Array[] = new Array(seqs.length);
  let i = 0;
  while (i < seqs.length) {
    let rows = 1, j = i;
    while (j < seqs.length && (j === i || rows + seqs[j].T + 1 <= maxRows)) rows += seqs[j++].T + 1;
    const buf = new Float32Array(rows * D);
    const starts: number[] = [];
    let r = 1;
    for (let v = i; v < j; v++) {
      buf.set(seqs[v].data.subarray(0, seqs[v].T * D), r * D);
      starts.push(r - 1); // row index in the im2col output (centre row r ↔ output r − 1)
      r += seqs[v].T + 1;
    }
    const cas = tf.tidy(() => {
      // The joined sequence is one zero-padded "video" of rows − 2 centre rows.
      if (convRowsAvailable()) return forwardPadded(p, tf.tensor3d(buf, [1, rows, D]), null).cas;
      const x = tf.tensor2d(buf, [rows, D]);
      const cols = tf.concat([0, 1, 2].map((k) => tf.slice(x, [k, 0], [rows - 2, D])), 1);
      return forwardCols(p, cols as tf.Tensor2D, null).cas;
    });
    const data = (await cas.data()) as Float32Array;
    cas.dispose();
    for (let v = i; v < j; v++) {
      const s = starts[v - i];
      out[v] = data.slice(s * C, (s + seqs[v].T) * C);
    }
    i = j;
  }
  return out;
}

/** Adam hyper-parameters (`train_generator.py`, `core/config.py`). */
export interface AdamConfig {
  /** Learning rate (constant). */
  lr: number;
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Denominator ε. */
  eps: number;
  /** Classic coupled L2: added to the gradient (not AdamW's decoupled decay). */
  weightDecay: number;
}

/**
 * Adam with coupled L2 weight decay, PyTorch semantics: g ← g + λw; m, v moments;
 * w ← w − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
 */
export class Adam {
  #cfg: AdamConfig;
  #m: Map<string, tf.Variable> = new Map();
  #v: Map<string, tf.Variable> = new Map();
  /** Steps taken so far. */
  t = 0;
  /** An optimiser with no state yet (moments are created on the first update). */
  constructor(cfg: AdamConfig) {
    this.#cfg = cfg;
  }
  /** Applies one update to `vars` with `grads` (same keys). */
  apply(vars: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>): void {
    const { lr, beta1, beta2, eps, weightDecay } = this.#cfg;
    this.t++;
    const bc1 = 1 - Math.pow(beta1, this.t), bc2 = 1 - Math.pow(beta2, this.t);
    for (const [name, w] of Object.entries(vars)) {
      const gRaw = grads[name];
      if (!gRaw) continue;
      if (!this.#m.has(name)) {
        this.#m.set(name, tf.variable(tf.zerosLike(w), false));
        this.#v.set(name, tf.variable(tf.zerosLike(w), false));
      }
      const m = this.#m.get(name)!, v = this.#v.get(name)!;
      tf.tidy(() => {
        const g = weightDecay ? tf.add(gRaw, tf.mul(w, weightDecay)) : gRaw;
        const m2 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v2 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(v2), Math.sqrt(bc2)), eps);
        m.assign(m2);
        v.assign(v2);
        w.assign(tf.sub(w, tf.mul(tf.div(m2, denom), lr / bc1)));
      });
    }
  }
  /**
   * Host copies of the first and second moments by parameter name (empty before the first
   * update), for the resumable training state.
   */
  async moments(): Promise<{
    m: Record<string, { shape: number[]; data: Float32Array }>;
    v: Record<string, { shape: number[]; data: Float32Array }>;
  }> {
    const host = async (src: Map<string, tf.Variable>) => {
      const out: Record<string, { shape: number[]; data: Float32Array }> = {};
      for (const [k, t] of src) {
        out[k] = { shape: [...t.shape], data: (await t.data()) as Float32Array };
      }
      return out;
    };
    return { m: await host(this.#m), v: await host(this.#v) };
  }
  /** Restores the step count and the moments saved by {@linkcode Adam.moments}. */
  setMoments(
    t: number,
    m: Record<string, { shape: number[]; data: Float32Array }>,
    v: Record<string, { shape: number[]; data: Float32Array }>,
  ): void {
    this.dispose();
    this.t = t;
    const toVar = (x: { shape: number[]; data: Float32Array }) => {
      const init = tf.tensor(x.data, x.shape);
      const out = tf.variable(init, false);
      init.dispose();
      return out;
    };
    for (const [k, x] of Object.entries(m)) {
      this.#m.set(k, toVar(x));
      this.#v.set(k, toVar(v[k]));
    }
  }
  /** Frees the moment buffers. */
  dispose(): void {
    for (const t of [...this.#m.values(), ...this.#v.values()]) t.dispose();
    this.#m.clear();
    this.#v.clear();
  }
}

/** Header of a generator checkpoint file. */
export interface CheckpointHeader {
  /** Always `fustal-generator`. */
  format: "fustal-generator";
  /** Format version (2: the shared tensor-file container). */
  version: 2;
  /** Input feature dim D. */
  inputDim: number;
  /** Embedding dim H. */
  hidden: number;
  /** Class names (class id = index). */
  classes: string[];
  /** Iteration the weights are from. */
  step: number;
  /** Its selection score (average test mAP; -Infinity when there was no test split). */
  score: number;
  /** The training configuration (informational). */
  config?: Record<string, unknown>;
  /**
   * Tensors in the data block: byte offset from the data start, shape. Derived from the
   * file's tensor index on load (not stored in the meta).
   */
  tensors: { name: string; shape: number[]; offset: number }[];
}

/** The generator checkpoint kind of tensor file; the weights are the `params` group. */
const GENERATOR_CHECKPOINT: TensorFileKind = {
  finiteOnly: true,
  magic: "FSTLGEN2",
  name: "generator checkpoint",
  checkMeta: requireFormat("fustal-generator", 2),
};

/**
 * Writes a checkpoint atomically, in the shared tensor-file container (lib/tensor_file.ts)
 * with magic `FSTLGEN2`: the header's `meta` is {@linkcode CheckpointHeader} without
 * `tensors`, and the weights are the `params` group in {@linkcode PARAM_NAMES} order.
 */
export function saveCheckpoint(
  file: string,
  values: Record<string, Float32Array>,
  shapes: Record<string, number[]>,
  meta: Omit<CheckpointHeader, "format" | "version" | "tensors">,
): Promise<void> {
  const params = Object.fromEntries(
    PARAM_NAMES.map((name) => [name, { shape: shapes[name], data: values[name] }]),
  );
  return saveTensorFile(
    file,
    { format: "fustal-generator", version: 2, ...meta },
    { params },
    GENERATOR_CHECKPOINT,
  );
}

/** Reads a checkpoint written by {@linkcode saveCheckpoint}; errors name the file. */
export async function loadCheckpoint(
  file: string,
): Promise<{ header: CheckpointHeader; values: Record<string, Float32Array> }> {
  const { meta, groups } = await loadTensorFile<Omit<CheckpointHeader, "tensors">>(
    file,
    GENERATOR_CHECKPOINT,
  );
  const values: Record<string, Float32Array> = {};
  const tensors: CheckpointHeader["tensors"] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(groups.params ?? {})) {
    values[name] = t.data;
    tensors.push({ name, shape: t.shape, offset });
    offset += t.data.byteLength;
  }
  return { header: { ...meta, tensors }, values };
}
