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
import type { Detection } from "../../lib/types.ts";
import type { CurvePoint } from "../../lib/plugin_types.ts";
import type { EvalResult } from "../evaluation.ts";
import type { GeneratorConfig } from "./presets.ts";

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
