/**
 * The student's training state and the files it lives in: the weights, their EMA copy, the AdamW
 * moments and the counters ({@linkcode TrainState}); the resume checkpoint `student.ckpt`
 * (FuSTAL `Student-Training/train.py`, `save_checkpoint` / `--resume`); the EMA snapshots kept
 * over the teacher stage with their test detections; the detections taken at the EMA switch;
 * and loading a checkpoint's weights for inference.
 *
 * The checkpoint holds everything a resumed run needs to continue bit-for-bit: the weights, the
 * EMA copy, the AdamW moments, the step count, the loss normaliser and the random stream's state.
 *
 * @module
 */
import * as path from "node:path";
import { type Tensor, tf } from "../../deps.ts";
import { InputError } from "../../lib/errors.ts";
import { exists, readJson } from "../../lib/io.ts";
import { Rng } from "../../lib/rng.ts";
import type { CurvePoint, StudentResult } from "../../lib/plugin_types.ts";
import type { Detection } from "../../lib/types.ts";
import { loadCheckpoint, saveCheckpoint, type TensorGroups } from "./checkpoint.ts";
import { initValues, type ParamSpec, paramSpecs } from "./model.ts";
import type { StudentConfig } from "./presets.ts";

/** File name of the checkpoint inside the output folder. */
export const CHECKPOINT_FILE = "student.ckpt";
/**
 * Side file with the test detections taken at the EMA switch (written before the next checkpoint).
 */
export const BEFORE_SWITCH_FILE = "before_switch.json";
/**
 * Full checkpoint (weights, EMA, optimiser, random stream) at the end of the first stage, the
 * EMA switch: what the student learnt from the generator's labels alone. A run with EMA off can
 * continue from it (`TrainOptions.startFrom`) instead of training those epochs again.
 */
export const SWITCH_FILE = "switch.ckpt";

/** File name of the EMA snapshot kept after epoch `epoch` (see `StudentConfig.snapshots`). */
export function snapshotFile(epoch: number): string {
  return `epoch_${epoch}.ckpt`;
}

/** File name of the test detections of the snapshot kept after epoch `epoch`. */
function snapshotJsonFile(epoch: number): string {
  return snapshotFile(epoch).replace(/\.ckpt$/, ".json");
}

/**
 * Epochs (counted as epochs completed) after which the weights are kept and evaluated:
 * `cfg.snapshots` points evenly spaced over the teacher stage, the last at `cfg.epochs`
 * (paper: 71, 81, 91, 101; default: 10, 11). Without EMA or with fewer than two
 * snapshots, only the end.
 */
export function snapshotEpochs(
  cfg: Pick<StudentConfig, "epochs" | "switchEpoch" | "ema" | "snapshots">,
): number[] {
  const n = cfg.snapshots ?? 1;
  const stage = cfg.epochs - cfg.switchEpoch;
  if (!cfg.ema || n < 2 || stage < 1) return [cfg.epochs];
  const out = new Set<number>();
  for (let k = 1; k <= n; k++) out.add(cfg.switchEpoch + Math.round((k * stage) / n));
  return [...out].filter((e) => e > cfg.switchEpoch).sort((a, b) => a - b);
}

/** What a checkpoint's `meta` holds. */
export interface CheckpointMeta {
  /** Format tag of a student checkpoint. */
  format: "fustal-student";
  /** Checkpoint format version. */
  version: 1;
  /** The student configuration the weights belong to. */
  config: StudentConfig;
  /** Class names, in class-id order. */
  classes: string[];
  /** Input feature dimension D. */
  inDim: number;
  /** Epochs completed. */
  epoch: number;
  /** Optimiser steps taken. */
  step: number;
  /** Running loss normaliser (see `StudentConfig.lossNormMomentum`). */
  lossNorm: number;
  /** State of the training random stream ({@linkcode Rng.state}). */
  rng: number[];
  /** Seed of the run. */
  seed: number;
  /** Named training curves so far. */
  curves: Record<string, CurvePoint[]>;
  /** Training time so far, seconds (summed over resumed calls). */
  trainSeconds: number;
}

/** The trainable state of a student run (device tensors and host counters). */
export interface TrainState {
  /** Parameter specifications, in model order. */
  specs: ParamSpec[];
  /** The trained weights, by parameter name. */
  vars: Record<string, tf.Variable>;
  /** The EMA copy of the weights (null without EMA). */
  ema: Record<string, tf.Tensor> | null;
  /** AdamW first moments. */
  m: Record<string, tf.Tensor>;
  /** AdamW second moments. */
  v: Record<string, tf.Tensor>;
  /** Epochs completed. */
  epoch: number;
  /** Optimiser steps taken. */
  step: number;
  /** Running loss normaliser. */
  lossNorm: number;
  /** Named training curves so far. */
  curves: Record<string, CurvePoint[]>;
  /** Training time so far, seconds. */
  trainSeconds: number;
}

let varCounter = 0;

/**
 * A state with weights from `groups` (a checkpoint's tensors) or else `values`, the AdamW
 * moments and the EMA copy from `groups` when there (else zeros and the weights); counters at 0.
 */
export function makeState(
  specs: ParamSpec[],
  values: Map<string, Float32Array>,
  useEma: boolean,
  groups?: TensorGroups,
): TrainState {
  const uid = `student${varCounter++}`;
  const vars: Record<string, tf.Variable> = {};
  const m: Record<string, tf.Tensor> = {};
  const v: Record<string, tf.Tensor> = {};
  const ema: Record<string, tf.Tensor> | null = useEma ? {} : null;
  for (const p of specs) {
    const src = groups?.model?.[p.name]?.data ?? values.get(p.name);
    if (!src) throw new InputError(`checkpoint: missing parameter ${p.name}`);
    const init = tf.tensor(src, p.shape);
    vars[p.name] = tf.variable(init, true, `${uid}/${p.name}`);
    init.dispose();
    m[p.name] = tf.keep(
      tf.tensor(groups?.["adam.m"]?.[p.name]?.data ?? new Float32Array(src.length), p.shape),
    );
    v[p.name] = tf.keep(
      tf.tensor(groups?.["adam.v"]?.[p.name]?.data ?? new Float32Array(src.length), p.shape),
    );
    if (ema) ema[p.name] = tf.keep(tf.tensor(groups?.ema?.[p.name]?.data ?? src, p.shape));
  }
  return { specs, vars, ema, m, v, epoch: 0, step: 0, lossNorm: 0, curves: {}, trainSeconds: 0 };
}

/** A fresh state: weights drawn from a stream derived from `seed`, loss normaliser at its init. */
export function freshState(cfg: StudentConfig, D: number, K: number, seed: number): TrainState {
  const specs = paramSpecs(cfg, D, K);
  const state = makeState(specs, initValues(specs, new Rng(seed ^ 0x5eed5eed)), cfg.ema);
  state.lossNorm = cfg.lossNormInit;
  return state;
}

/**
 * The state saved in checkpoint `file` for a run on `classes` with `D`-d features; sets `rng` to
 * the saved stream. The checkpoint's configuration is returned and wins over the caller's.
 */
export async function restoreState(
  file: string,
  classes: string[],
  D: number,
  rng: Rng,
): Promise<{ state: TrainState; config: StudentConfig; meta: CheckpointMeta }> {
  const ck = await loadCheckpoint(file);
  const meta = ck.meta as CheckpointMeta;
  if (meta.format !== "fustal-student") {
    throw new InputError(`${file}: not a student checkpoint`);
  }
  if (meta.inDim !== D || meta.classes.join("\n") !== classes.join("\n")) {
    throw new InputError(`${file}: checkpoint was trained on other features or classes`);
  }
  const config = { ...meta.config };
  const state = makeState(paramSpecs(config, D, classes.length), new Map(), config.ema, ck.groups);
  state.epoch = meta.epoch;
  state.step = meta.step;
  state.lossNorm = meta.lossNorm;
  state.curves = meta.curves;
  state.trainSeconds = meta.trainSeconds;
  rng.setState(meta.rng);
  return { state, config, meta };
}

/** Frees the EMA weights of `s` and turns its EMA off. */
export function dropEma(s: TrainState): void {
  if (s.ema) tf.dispose(Object.values(s.ema));
  s.ema = null;
}

/** Frees every tensor of `s`. */
export function disposeState(s: TrainState): void {
  tf.dispose(Object.values(s.vars));
  tf.dispose(Object.values(s.m));
  tf.dispose(Object.values(s.v));
  if (s.ema) tf.dispose(Object.values(s.ema));
}

async function hostGroup(
  ts: Record<string, tf.Tensor>,
): Promise<Record<string, { shape: number[]; data: Float32Array }>> {
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, t] of Object.entries(ts)) {
    out[k] = { shape: t.shape, data: (await t.data()) as Float32Array };
  }
  return out;
}

/** What a checkpoint records beside the state: the run's identity and its random stream. */
export interface RunIdentity {
  /** The configuration in use. */
  config: StudentConfig;
  /** Class names, in class-id order. */
  classes: string[];
  /** Input feature dimension D. */
  inDim: number;
  /** The training random stream (its state is saved). */
  rng: Rng;
  /** Seed of the run. */
  seed: number;
}

/**
 * Writes `s` to checkpoint `file` (atomically). A snapshot (`weightsOnly`) keeps the weights and
 * their EMA for inference, not the optimiser.
 */
export async function writeCheckpoint(
  file: string,
  s: TrainState,
  run: RunIdentity,
  weightsOnly = false,
): Promise<void> {
  const meta: CheckpointMeta = {
    format: "fustal-student",
    version: 1,
    config: run.config,
    classes: run.classes,
    inDim: run.inDim,
    epoch: s.epoch,
    step: s.step,
    lossNorm: s.lossNorm,
    rng: run.rng.state(),
    seed: run.seed,
    curves: s.curves,
    trainSeconds: s.trainSeconds,
  };
  const groups: TensorGroups = weightsOnly ? { model: await hostGroup(s.vars) } : {
    model: await hostGroup(s.vars),
    "adam.m": await hostGroup(s.m),
    "adam.v": await hostGroup(s.v),
  };
  if (s.ema) groups.ema = await hostGroup(s.ema);
  await saveCheckpoint(file, meta, groups);
}

/** The test detections saved at the EMA switch in `file`, when it exists. */
export async function readBeforeSwitch(
  file: string,
): Promise<{ ema?: Detection[]; raw?: Detection[] } | null> {
  if (!(await exists(file))) return null;
  return (await readJson(file)) as { ema?: Detection[]; raw?: Detection[] };
}

/** Path of the detections of the snapshot after epoch `epoch` in `outDir` (none without one). */
export function snapshotJson(outDir: string | undefined, epoch: number): string | null {
  return outDir ? path.join(outDir, snapshotJsonFile(epoch)) : null;
}

/**
 * The snapshots before the end already taken by epoch `epoch` whose detections were saved in
 * `outDir` (a resumed run reports them too).
 */
export async function savedSnapshots(
  outDir: string | undefined,
  cfg: StudentConfig,
  epoch: number,
): Promise<NonNullable<StudentResult["snapshots"]>> {
  const snapshots: NonNullable<StudentResult["snapshots"]> = [];
  for (const e of snapshotEpochs(cfg)) {
    const f = snapshotJson(outDir, e);
    if (e < cfg.epochs && e <= epoch && f && (await exists(f))) {
      const saved = (await readJson(f)) as { epoch: number; test: Detection[] };
      snapshots.push({
        epoch: e,
        test: saved.test,
        checkpoint: path.join(outDir!, snapshotFile(e)),
      });
    }
  }
  return snapshots;
}

/** Loads a checkpoint's weights for inference (`ema` weights when present unless `raw`). */
export async function loadStudent(
  file: string,
  which: "ema" | "raw" = "ema",
): Promise<{ params: Record<string, Tensor>; meta: CheckpointMeta }> {
  const ck = await loadCheckpoint(file);
  const meta = ck.meta as CheckpointMeta;
  if (!meta || meta.format !== "fustal-student") {
    throw new InputError(`${file}: not a student checkpoint`);
  }
  const group = which === "ema" && ck.groups.ema ? ck.groups.ema : ck.groups.model;
  const specs = paramSpecs(meta.config, meta.inDim, meta.classes.length);
  const params: Record<string, tf.Tensor> = {};
  for (const p of specs) {
    const h = group[p.name];
    if (!h) throw new InputError(`${file}: missing parameter ${p.name}`);
    params[p.name] = tf.tensor(h.data, p.shape);
  }
  return { params, meta };
}
