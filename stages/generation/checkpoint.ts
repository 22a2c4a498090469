/**
 * The generator's resumable training state (`generator_state.ckpt`): everything the training
 * loop needs to continue exactly where it stopped — current weights, Adam moments and step,
 * every RNG stream, the iteration, the data iterator (this pass's shuffled order and the
 * position in it), the best-so-far weights/score/detections and the curves so far. One file,
 * written atomically, so a killed run leaves either the previous state or the new one.
 *
 * Format (little-endian): 8 bytes magic `FSTLGST1`; uint32 header byte length; UTF-8 JSON
 * header `{meta, tensors: [{group, name, shape, offset}]}` padded with spaces to a multiple of
 * 4 bytes; then every tensor as float32 (offsets in floats from the data start). Groups:
 * `params`, `adam.m`, `adam.v`, `best`. Non-finite numbers in `meta` (−∞ best score, NaN
 * RNG spare, NaN AP) are stored as `{"$num": "NaN" | "Infinity" | "-Infinity"}` so they
 * round-trip exactly (plain JSON would turn them into null).
 *
 * @module
 */
import { InputError } from "../../lib/errors.ts";
import { atomicWrite, readBytes } from "../../lib/io.ts";
import type { Detection } from "../../lib/types.ts";
import type { CurvePoint } from "../../lib/plugin_types.ts";
import type { EvalResult } from "../evaluation.ts";
import type { GeneratorConfig } from "./presets.ts";

const MAGIC = "FSTLGST1";

/** File name of the resumable state inside a run's output folder. */
export const STATE_FILE = "generator_state.ckpt";

/** Named host tensors of one group. */
export type HostTensors = Record<string, { shape: number[]; data: Float32Array }>;

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

function replacer(_k: string, v: unknown): unknown {
  if (typeof v === "number" && !Number.isFinite(v)) return { $num: String(v) };
  return v;
}

function reviver(_k: string, v: unknown): unknown {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === "$num") return Number(o.$num);
  }
  return v;
}

/** Encodes a training state to bytes. */
export function encodeTrainState(
  meta: TrainStateMeta,
  groups: Record<string, HostTensors>,
): Uint8Array {
  const index: { group: string; name: string; shape: number[]; offset: number }[] = [];
  let floats = 0;
  for (const [group, ts] of Object.entries(groups)) {
    for (const [name, t] of Object.entries(ts)) {
      index.push({ group, name, shape: t.shape, offset: floats });
      floats += t.data.length;
    }
  }
  let header = new TextEncoder().encode(JSON.stringify({ meta, tensors: index }, replacer));
  const pad = (4 - (header.length % 4)) % 4;
  if (pad) {
    const h2 = new Uint8Array(header.length + pad).fill(0x20);
    h2.set(header);
    header = h2;
  }
  const out = new Uint8Array(12 + header.length + floats * 4);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, 12);
  // The data start is a multiple of 4, so a Float32Array view is aligned; every supported
  // platform (x86, arm) is little-endian, which is the file's byte order.
  const data = new Float32Array(out.buffer, 12 + header.length, floats);
  let o = 0;
  for (const ts of Object.values(groups)) {
    for (const t of Object.values(ts)) {
      data.set(t.data, o);
      o += t.data.length;
    }
  }
  return out;
}

/** Decodes training-state bytes; `file` names errors. */
export function decodeTrainState(
  bytes: Uint8Array,
  file: string,
): { meta: TrainStateMeta; groups: Record<string, HostTensors> } {
  const bad = (why: string) => new InputError(`${file}: not a generator training state (${why})`);
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw bad("bad magic");
  }
  const hl = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  if (12 + hl > bytes.length) throw bad("truncated header");
  let header: {
    meta: TrainStateMeta;
    tensors: { group: string; name: string; shape: number[]; offset: number }[];
  };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + hl)), reviver);
  } catch {
    throw bad("corrupt header");
  }
  if (header.meta?.format !== "fustal-generator-state" || header.meta.version !== 1) {
    throw bad("unknown format or version");
  }
  // Copy so the arrays are aligned and independent of `bytes`.
  const all = new Float32Array(bytes.slice(12 + hl).buffer);
  const groups: Record<string, HostTensors> = {};
  for (const t of header.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.offset + n > all.length) throw bad(`truncated data (${t.group}/${t.name})`);
    (groups[t.group] ??= {})[t.name] = {
      shape: t.shape,
      data: all.subarray(t.offset, t.offset + n),
    };
  }
  return { meta: header.meta, groups };
}

/** Writes a training state atomically. */
export function saveTrainState(
  file: string,
  meta: TrainStateMeta,
  groups: Record<string, HostTensors>,
): Promise<void> {
  return atomicWrite(file, encodeTrainState(meta, groups));
}

/** Reads a training state (one-line errors naming the file). */
export async function loadTrainState(
  file: string,
): Promise<{ meta: TrainStateMeta; groups: Record<string, HostTensors> }> {
  return decodeTrainState(await readBytes(file), file);
}
