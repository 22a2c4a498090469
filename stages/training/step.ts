/**
 * One optimiser step of the student (FuSTAL `Student-Training/libs/utils/train_utils.py`,
 * `train_one_epoch`, the body of its loop): the loss normaliser update, forward and backward
 * (accumulated over micro-batches), the loss-divergence check, AdamW and the EMA update; and the
 * guard that stops a run whose weights blow up.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import { DivergenceError, InputError, LossWatch } from "../../lib/errors.ts";
import { leanVariableGrads } from "../../lib/grads.ts";
import { isHeapExhausted } from "../../lib/wasm_heap.ts";
import { milKs, milTopkMask, studentLosses } from "./losses.ts";
import { forward, type Layout } from "./model.ts";
import { applyAdamW, learningRate, updateEma } from "./optim.ts";
import type { StudentConfig } from "./presets.ts";
import type { TrainState } from "./state.ts";

/** One training batch on the host (level-0 rows `t0` per item), as the loss needs it. */
export interface StepBatch {
  /** [B * t0 * D] features. */
  x: Float32Array;
  /** Valid rows per item. */
  lens: number[];
  /** Drop-path keep factors per branch level: two [B] arrays. */
  dropPath: [Float32Array, Float32Array][];
  /** MIL dropout keep factors [B * t0 * K]. */
  milKeep: Float32Array;
  /** Class targets [B * L * K]. */
  cls: Float32Array;
  /** Regression targets [B * L * 2]. */
  reg: Float32Array;
  /** Weak labels [B * K]. */
  weak: Float32Array;
  /** Loss normaliser of this step. */
  norm: number;
  /** Precomputed MIL top-k mask [B * t0 * K] (WebGPU). */
  milMask?: Float32Array;
}

/**
 * A batch as the host side builds it: a {@linkcode StepBatch} before the step adds its loss
 * normaliser and MIL mask, with the number of positive points of its targets.
 */
export interface HostBatch extends Omit<StepBatch, "norm" | "milMask"> {
  /** Positive (point, class) targets of the batch (feeds the loss normaliser). */
  numPos: number;
}

/** Loss terms of a whole batch and the gradients keyed by variable name. */
export interface StepGrads {
  /** Total loss. */
  total: tf.Scalar;
  /** Classification term. */
  cls: tf.Scalar;
  /** Regression term. */
  reg: tf.Scalar;
  /** MIL term (unweighted). */
  mil: tf.Scalar;
  /** d total / d variable, keyed by the variables' names (as `tf.variableGrads`). */
  grads: tf.NamedTensorMap;
}

/** The loss terms of one step, read back to the host. */
export interface StepLosses {
  /** Total loss. */
  total: number;
  /** Classification term. */
  cls: number;
  /** Regression term. */
  reg: number;
  /** MIL term (unweighted). */
  mil: number;
}

/**
 * The inputs of one micro-batch: a {@linkcode StepBatch} whose arrays hold items `s0`..`s1`
 * only, with the whole batch's loss normaliser (`norm`), MIL k per item and MIL item count.
 */
export interface MicroBatch extends StepBatch {
  /** MIL k of each item (from the whole batch). */
  milKs: number[];
  /** Items of the whole batch with a weak label (the MIL normaliser). */
  milRows: number;
}

/**
 * Splits `b` into micro-batches of `cfg.microBatch` items (0: one micro-batch, the whole
 * batch). Every term of the loss is a sum over items divided by a batch-level normaliser (the
 * running positive count, the MIL item count) and the MIL k is a batch quantity, so each
 * micro-batch carries the whole batch's normalisers and k.
 */
export function microBatches(
  cfg: StudentConfig,
  layout: Layout,
  D: number,
  K: number,
  b: StepBatch,
): MicroBatch[] {
  const B = b.lens.length;
  const t0 = layout.lengths[0];
  const mb = cfg.microBatch > 0 ? Math.min(cfg.microBatch, B) : B;
  const ks = milKs(b.lens, t0, cfg);
  let milRows = 0;
  for (let i = 0; i < B; i++) {
    for (let c = 0; c < K; c++) {
      if (b.weak[i * K + c] !== 0) {
        milRows++;
        break;
      }
    }
  }
  const out: MicroBatch[] = [];
  for (let s0 = 0; s0 < B; s0 += mb) {
    const s1 = Math.min(B, s0 + mb);
    const sub = (a: Float32Array, per: number) =>
      s0 === 0 && s1 === B ? a : a.subarray(s0 * per, s1 * per);
    out.push({
      x: sub(b.x, t0 * D),
      lens: b.lens.slice(s0, s1),
      dropPath: b.dropPath.map(([p, q]) => [p.subarray(s0, s1), q.subarray(s0, s1)]),
      milKeep: sub(b.milKeep, t0 * K),
      cls: sub(b.cls, layout.total * K),
      reg: sub(b.reg, layout.total * 2),
      weak: sub(b.weak, K),
      norm: b.norm,
      milMask: b.milMask ? sub(b.milMask, t0 * K) : undefined,
      milKs: ks.slice(s0, s1),
      milRows,
    });
  }
  return out;
}

/** The loss terms of one micro-batch: the training-mode forward pass and the student's losses. */
export function microBatchLoss(
  vars: Record<string, tf.Variable>,
  cfg: StudentConfig,
  layout: Layout,
  D: number,
  m: MicroBatch,
): ReturnType<typeof studentLosses> {
  const out = forward(vars, cfg, {
    x: m.x,
    lens: m.lens,
    t0: layout.lengths[0],
    dim: D,
    dropPath: m.dropPath,
  }, true);
  return studentLosses(out, layout, {
    cls: m.cls,
    reg: m.reg,
    norm: m.norm,
    weak: m.weak,
    milKeep: m.milKeep,
    lens: m.lens,
    milMask: m.milMask,
    milKs: m.milKs,
    milRows: m.milRows,
  }, cfg);
}

/**
 * Loss terms and gradients of one micro-batch (forward and backward): `tf.variableGrads` through
 * {@linkcode leanVariableGrads}, bit-identical, freeing each intermediate gradient and saved
 * tensor as soon as the backward walk is past it.
 */
export function microBatchGrads(
  vars: Record<string, tf.Variable>,
  cfg: StudentConfig,
  layout: Layout,
  D: number,
  m: MicroBatch,
): StepGrads {
  let parts: tf.Scalar[] = [];
  const { value, grads } = leanVariableGrads(() => {
    const terms = microBatchLoss(vars, cfg, layout, D, m);
    parts = [tf.keep(terms.cls), tf.keep(terms.reg), tf.keep(terms.mil)];
    return terms.total;
  }, Object.values(vars));
  return { total: value, cls: parts[0], reg: parts[1], mil: parts[2], grads };
}

/**
 * `acc + next`, term by term and gradient by gradient (in that order, `acc` first); disposes
 * both. A variable one of them does not reach (e.g. a dropped path) keeps the other's gradient.
 */
export function addGrads(acc: StepGrads, next: StepGrads): StepGrads {
  const grads = acc.grads;
  for (const k of new Set([...Object.keys(grads), ...Object.keys(next.grads)])) {
    const a = grads[k], g = next.grads[k];
    if (!a || !g) {
      if (g) grads[k] = g;
      continue;
    }
    grads[k] = tf.add(a, g);
    tf.dispose([a, g]);
  }
  const sum = (a: tf.Scalar, b: tf.Scalar) => {
    const r = tf.add(a, b) as tf.Scalar;
    tf.dispose([a, b]);
    return r;
  };
  return {
    total: sum(acc.total, next.total),
    cls: sum(acc.cls, next.cls),
    reg: sum(acc.reg, next.reg),
    mil: sum(acc.mil, next.mil),
    grads,
  };
}

/**
 * Loss and gradients of a batch, accumulated over micro-batches of `cfg.microBatch` items
 * (0: one pass; {@linkcode microBatches}): the micro-batch gradients are summed in order
 * (micro-batch 0 + 1 + ...), which equals the whole-batch gradient up to float32 rounding.
 * Only one micro-batch's activations are alive at a time.
 */
export function accumulatedGrads(
  vars: Record<string, tf.Variable>,
  cfg: StudentConfig,
  layout: Layout,
  D: number,
  K: number,
  b: StepBatch,
): StepGrads {
  let acc: StepGrads | null = null;
  for (const m of microBatches(cfg, layout, D, K, b)) {
    const g = microBatchGrads(vars, cfg, layout, D, m);
    acc = acc ? addGrads(acc, g) : g;
  }
  return acc!;
}

/**
 * Computes the loss and gradients of a step: {@linkcode accumulatedGrads}, or a function with
 * the same result computed elsewhere (the worker pool, `pool.ts`).
 */
export type GradientsFn = (
  vars: Record<string, tf.Variable>,
  cfg: StudentConfig,
  layout: Layout,
  D: number,
  K: number,
  b: StepBatch,
) => StepGrads | Promise<StepGrads>;

/**
 * The one-line error for an exhausted wasm heap (tfjs-wasm has 32-bit memory: at most 4 GB),
 * naming the settings to lower; null when `e` is something else.
 */
export function heapExhaustedError(e: unknown, cfg: StudentConfig, D: number): InputError | null {
  if (!isHeapExhausted(e)) return null;
  const mb = cfg.microBatch > 0 ? Math.min(cfg.microBatch, cfg.batch) : cfg.batch;
  return new InputError(
    `student: the wasm heap (4 GB) is exhausted by ${mb} item(s) x ${cfg.maxSeqLen} rows x ` +
      `width ${cfg.dim} (${D}-d input) per pass: lower the micro-batch ` +
      `(--student-option microBatch=${Math.max(1, Math.floor(mb / 2))}), or maxSeqLen / dim`,
  );
}

/**
 * The MIL top-k mask of `b` computed ahead of the loss, on WebGPU only (it cannot read tensors
 * synchronously inside the loss): one extra forward pass with the same inputs and dropouts
 * gives the level-0 logits. Undefined elsewhere, or when no item's k cuts anything.
 */
async function webgpuMilMask(
  vars: Record<string, tf.Variable>,
  cfg: StudentConfig,
  layout: Layout,
  D: number,
  K: number,
  b: HostBatch,
): Promise<Float32Array | undefined> {
  const t0 = layout.lengths[0];
  const bsz = b.lens.length;
  const ks = milKs(b.lens, t0, cfg);
  if (tf.getBackend() !== "webgpu" || !(cfg.milWeight > 0) || !ks.some((k) => k < t0)) {
    return undefined;
  }
  const zd = tf.tidy(() => {
    const out = forward(
      vars,
      cfg,
      { x: b.x, lens: b.lens, t0, dim: D, dropPath: b.dropPath },
      true,
    );
    const z = tf.slice(out.cls, [0, layout.offsets[0], 0], [bsz, t0, K]);
    return tf.mul(z, tf.tensor3d(b.milKeep, [bsz, t0, K]));
  });
  const mask = milTopkMask((await zd.data()) as Float32Array, bsz, t0, K, ks);
  zd.dispose();
  return mask;
}

/**
 * Stops a run that diverges: a non-finite or exploding loss ({@linkcode LossWatch}), or weights
 * (with their EMA) whose L1 size is non-finite or 1e6 times its size at the start of the run.
 */
export class DivergenceGuard {
  /** The loss watch of the run. */
  readonly watch: LossWatch = new LossWatch("student");
  #startSize: number;

  private constructor(startSize: number) {
    this.#startSize = startSize;
  }

  /** A guard measuring the weights of `s` now as the start size. */
  static async start(s: TrainState): Promise<DivergenceGuard> {
    return new DivergenceGuard(await weightSize(s));
  }

  /** Throws a {@linkcode DivergenceError} when the weights of `s` have blown up. */
  async checkWeights(s: TrainState): Promise<void> {
    const total = await weightSize(s);
    if (!Number.isFinite(total) || total > 1e6 * Math.max(1, this.#startSize)) {
      throw new DivergenceError(
        "student",
        s.step,
        this.watch.last,
        `the weights grew from ${this.#startSize.toPrecision(3)} to ${total.toPrecision(3)} (L1)`,
      );
    }
  }
}

/** The L1 size of the weights and the EMA copy of `s`. */
async function weightSize(s: TrainState): Promise<number> {
  const all = [...s.specs.map((p) => s.vars[p.name]), ...(s.ema ? Object.values(s.ema) : [])];
  const t = tf.tidy(() => tf.addN(all.map((v) => tf.sum(tf.abs(v)))));
  const total = (await t.data())[0];
  t.dispose();
  return total;
}

/** What every step of a run shares. */
export interface StepContext {
  /** The configuration in use. */
  cfg: StudentConfig;
  /** Layout of the training window (`cfg.maxSeqLen` rows). */
  layout: Layout;
  /** Input feature dimension. */
  D: number;
  /** Number of classes. */
  K: number;
  /** Which parameters take weight decay. */
  decay: Map<string, boolean>;
  /** Warm-up steps of the learning rate. */
  warm: number;
  /** The run's divergence guard (its loss watch sees every step's loss). */
  guard: DivergenceGuard;
  /** How the gradients are computed (default {@linkcode accumulatedGrads}). */
  gradients?: GradientsFn;
}

/**
 * One optimiser step of `s` on batch `b`: updates the running loss normaliser, computes the
 * loss and gradients, checks the loss (before any checkpoint of this step is written, so the
 * last one on disk stays good), applies AdamW at the warm-up learning rate, moves the EMA copy
 * and counts the step. Returns the loss terms.
 */
export async function optimiserStep(
  s: TrainState,
  ctx: StepContext,
  b: HostBatch,
): Promise<StepLosses> {
  const { cfg, layout, D, K } = ctx;
  s.lossNorm = cfg.lossNormMomentum * s.lossNorm +
    (1 - cfg.lossNormMomentum) * Math.max(b.numPos, 1);
  const milMask = await webgpuMilMask(s.vars, cfg, layout, D, K, b);
  let step: StepGrads;
  try {
    step = await (ctx.gradients ?? accumulatedGrads)(s.vars, cfg, layout, D, K, {
      x: b.x,
      lens: b.lens,
      dropPath: b.dropPath,
      milKeep: b.milKeep,
      cls: b.cls,
      reg: b.reg,
      weak: b.weak,
      norm: s.lossNorm,
      milMask,
    });
  } catch (e) {
    throw heapExhaustedError(e, cfg, D) ?? e;
  }
  const grads = step.grads;
  const total = (await step.total.data())[0];
  const [cls, reg, mil] = await Promise.all(
    [step.cls, step.reg, step.mil].map(async (p) => (await p.data())[0]),
  );
  tf.dispose([step.total, step.cls, step.reg, step.mil]);
  ctx.guard.watch.check(s.step, total);
  await applyAdamW(s, grads, ctx.decay, cfg, learningRate(s.step, cfg.lr, ctx.warm));
  tf.dispose(Object.values(grads));
  updateEma(s, cfg.emaDecay);
  s.step++;
  return { total, cls, reg, mil };
}
