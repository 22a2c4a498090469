/**
 * The generator's resumable training state (`generator_state.ckpt`): everything the training
 * loop needs to continue exactly where it stopped — current weights, Adam moments and step,
 * every RNG stream, the iteration, the data iterator (this pass's shuffled order and the
 * position in it), the best-so-far weights/score/detections and the curves so far. One file,
 * written atomically, so a killed run leaves either the previous state or the new one.
 *
 * Stored in the shared tensor-file container (lib/tensor_file.ts, which also keeps −∞ best
 * score, NaN RNG spare and NaN AP exact), magic `FSTLGST1`. Groups: `params`, `adam.m`,
 * `adam.v`, `best`.
 *
 * {@linkcode saveLoopState} and {@linkcode restoreLoopState} move a training loop's
 * {@linkcode GeneratorLoopState} to and from this file; resuming checks that the file was
 * written for the same config and the same data.
 *
 * @module
 */
import {
  decodeTensorFile,
  encodeTensorFile,
  type HostTensors,
  loadTensorFile,
  requireFormat,
  saveTensorFile,
  type TensorFileKind,
} from "../../lib/tensor_file.ts";
import { InputError } from "../../lib/errors.ts";
import type { Rng } from "../../lib/rng.ts";
import type { Detection } from "../../lib/types.ts";
import type { CurvePoint } from "../../lib/plugin_types.ts";
import type { VideoMeta } from "../../datasets/types.ts";
import type { EvalResult } from "../evaluation.ts";
import type { GeneratorConfig } from "./presets.ts";
import { type Adam, type GeneratorParams, restoreParams, snapshotParams } from "./model.ts";

/** File name of the resumable state inside a run's output folder. */
export const STATE_FILE = "generator_state.ckpt";

export type { HostTensors } from "../../lib/tensor_file.ts";

/** The non-tensor part of the training state. */
export interface TrainStateMeta {
  /** Always `fustal-generator-state`. */
  format: "fustal-generator-state";
  /** Format version (1). */
  version: 1;
  /** Iterations completed (the next one to run is `iteration + 1`). */
  iteration: number;
  /** Input feature dim D. */
  inputDim: number;
  /** Embedding dim H. */
  hidden: number;
  /** Class names (class id = index). */
  classes: string[];
  /** The run's configuration (checked against the resuming run's). */
  config: GeneratorConfig;
  /** Adam steps taken. */
  adamStep: number;
  /** `Rng.state()` of each stream, by name. */
  rng: Record<string, number[]>;
  /** Ids of the current pass's shuffled training videos. */
  order: string[];
  /** Position of the next batch in `order`. */
  pos: number;
  /** Number of training / test videos (a cheap check that the dataset is the same). */
  videos: { train: number; test: number };
  /** Best-so-far selection (its weights are the `best` group). */
  best: { step: number; score: number; test?: Detection[]; eval?: EvalResult };
  /** Curves so far. */
  curves: Record<string, CurvePoint[]>;
  /** Wall seconds spent training before this state was written (informational). */
  trainSeconds: number;
}

/** Config keys that do not change the results, so they may differ on resume. */
const FREE_KEYS = new Set(["cacheBytes", "checkpointEvery"]);

/** Keys (dotted for nested objects) whose values differ between two configs. */
export function configDiff(saved: GeneratorConfig, now: GeneratorConfig): string[] {
  const diff: string[] = [];
  const walk = (a: unknown, b: unknown, prefix: string) => {
    const isObj = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
    if (isObj(a) && isObj(b)) {
      const ra = a as Record<string, unknown>, rb = b as Record<string, unknown>;
      for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
        const key = prefix ? `${prefix}.${k}` : k;
        if (!prefix && FREE_KEYS.has(k)) continue;
        walk(ra[k], rb[k], key);
      }
    } else if (JSON.stringify(a) !== JSON.stringify(b)) diff.push(prefix);
  };
  walk(saved, now, "");
  return diff;
}

/** The generator training-state kind of tensor file. */
const TRAIN_STATE: TensorFileKind = {
  finiteOnly: true,
  magic: "FSTLGST1",
  name: "generator training state",
  checkMeta: requireFormat("fustal-generator-state", 1),
};

/** Encodes a training state to bytes. */
export function encodeTrainState(
  meta: TrainStateMeta,
  groups: Record<string, HostTensors>,
): Uint8Array {
  return encodeTensorFile(meta, groups, TRAIN_STATE);
}

/** Decodes training-state bytes; `file` names errors. */
export function decodeTrainState(
  bytes: Uint8Array,
  file: string,
): { meta: TrainStateMeta; groups: Record<string, HostTensors> } {
  return decodeTensorFile<TrainStateMeta>(bytes, file, TRAIN_STATE);
}

/** Writes a training state atomically. */
export function saveTrainState(
  file: string,
  meta: TrainStateMeta,
  groups: Record<string, HostTensors>,
): Promise<void> {
  return saveTensorFile(file, meta, groups, TRAIN_STATE);
}

/** Reads a training state (one-line errors naming the file). */
export function loadTrainState(
  file: string,
): Promise<{ meta: TrainStateMeta; groups: Record<string, HostTensors> }> {
  return loadTensorFile<TrainStateMeta>(file, TRAIN_STATE);
}

/** The best weights so far and what they scored (kept through a resume). */
export interface BestSelection {
  /** Iteration of the weights (0 = untrained). */
  step: number;
  /** Their test average mAP (−∞ before any evaluation). */
  score: number;
  /** The weights, by parameter name. */
  values: Record<string, Float32Array>;
  /** Their test detections, when evaluated. */
  test?: Detection[];
  /** Their test evaluation, when evaluated. */
  eval?: EvalResult;
}

/**
 * What the generator's training loop carries from one iteration to the next: all of it goes
 * into the state file, so a resumed loop continues exactly where it stopped.
 */
export interface GeneratorLoopState {
  /** Current weights. */
  params: GeneratorParams;
  /** The optimiser (its step count and moments). */
  opt: Adam;
  /** Every RNG stream of the run, by name. */
  streams: Record<string, Rng>;
  /** The current pass's shuffled training videos. */
  order: VideoMeta[];
  /** Position of the next batch in `order`. */
  pos: number;
  /** Best selection so far. */
  best: BestSelection;
  /** Curves so far. */
  curves: Record<string, CurvePoint[]>;
  /** Wall seconds trained by the earlier invocations of a resumed run. */
  trainedBefore: number;
}

/** The run a state belongs to (written with it, checked on resume). */
export interface LoopStateContext {
  /** Input feature dim D. */
  inputDim: number;
  /** Embedding dim H. */
  hidden: number;
  /** Class names (class id = index). */
  classes: readonly string[];
  /** The run's configuration. */
  config: GeneratorConfig;
  /** The training videos (those with a weak label). */
  train: readonly VideoMeta[];
  /** Number of test videos. */
  testCount: number;
}

/** A group of weights with the shapes of `params`' variables. */
function weightGroup(
  params: GeneratorParams,
  values: Record<string, Float32Array>,
): HostTensors {
  const sh = {
    w1: [...params.w1.shape],
    b1: [...params.b1.shape],
    w2: [...params.w2.shape],
  };
  return Object.fromEntries(
    Object.entries(values).map(([k, data]) => [k, { shape: sh[k as keyof typeof sh], data }]),
  );
}

/**
 * Writes the loop state after `iteration` completed iterations to `file` (atomically);
 * `trainSeconds` is the wall time trained so far (informational).
 */
export async function saveLoopState(
  file: string,
  iteration: number,
  s: GeneratorLoopState,
  ctx: LoopStateContext,
  trainSeconds: number,
): Promise<void> {
  const { m, v } = await s.opt.moments();
  await saveTrainState(file, {
    format: "fustal-generator-state",
    version: 1,
    iteration,
    inputDim: ctx.inputDim,
    hidden: ctx.hidden,
    classes: [...ctx.classes],
    config: ctx.config,
    adamStep: s.opt.t,
    rng: Object.fromEntries(Object.entries(s.streams).map(([k, r]) => [k, r.state()])),
    order: s.order.map((mt) => mt.id),
    pos: s.pos,
    videos: { train: ctx.train.length, test: ctx.testCount },
    best: { step: s.best.step, score: s.best.score, test: s.best.test, eval: s.best.eval },
    curves: s.curves,
    trainSeconds,
  }, {
    params: weightGroup(s.params, await snapshotParams(s.params)),
    "adam.m": m,
    "adam.v": v,
    best: weightGroup(s.params, s.best.values),
  });
}

/**
 * Restores the loop state `s` from `file` and returns the iteration it was written after. A
 * file written with a different config (keys other than {@linkcode configDiff}'s free ones) or
 * for different data (feature dim, hidden size, classes or videos) is an InputError naming it.
 */
export async function restoreLoopState(
  file: string,
  s: GeneratorLoopState,
  ctx: LoopStateContext,
): Promise<number> {
  const { meta, groups } = await loadTrainState(file);
  const diff = configDiff(meta.config, ctx.config);
  if (diff.length) {
    throw new InputError(
      `${file}: saved with a different generator config (${diff.join(", ")}); ` +
        `use the same settings or run without --resume`,
    );
  }
  const byId = new Map(ctx.train.map((mt) => [mt.id, mt]));
  const sameData = meta.inputDim === ctx.inputDim && meta.hidden === ctx.hidden &&
    JSON.stringify(meta.classes) === JSON.stringify(ctx.classes) &&
    meta.videos.train === ctx.train.length && meta.videos.test === ctx.testCount &&
    meta.order.every((id) => byId.has(id));
  if (!sameData) {
    throw new InputError(
      `${file}: saved for a different dataset (feature dim, classes or videos differ)`,
    );
  }
  const values = (g: HostTensors) =>
    Object.fromEntries(Object.entries(g).map(([k, t]) => [k, t.data]));
  restoreParams(s.params, values(groups.params));
  s.opt.setMoments(meta.adamStep, groups["adam.m"] ?? {}, groups["adam.v"] ?? {});
  for (const [k, r] of Object.entries(s.streams)) r.setState(meta.rng[k]);
  s.order = meta.order.map((id) => byId.get(id)!);
  s.pos = meta.pos;
  s.best = {
    step: meta.best.step,
    score: meta.best.score,
    values: values(groups.best),
    test: meta.best.test,
    eval: meta.best.eval,
  };
  s.curves = meta.curves;
  s.trainedBefore = meta.trainSeconds;
  return meta.iteration;
}
