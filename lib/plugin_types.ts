/**
 * The plugin contract. A plugin is a plain object `{ kind, name, ... }`; every built-in stage
 * is a plugin registered the same way a user's is. A plugin module needs nothing from this
 * project: these types are optional (importable by URL from `mod.ts`).
 *
 * Data flows one way: dataset -> generator -> proposals -> filter -> student -> evaluation,
 * through plain records ({@linkcode Detection}: segments in seconds, like the JSON files).
 *
 * @module
 */
import type { Detection } from "./types.ts";
import type { Dataset, VideoFeatures, VideoMeta } from "./dataset_types.ts";
import type { BackendInfo } from "./backend.ts";

/** A point of a training curve. */
export interface CurvePoint {
  /** Iteration (or epoch) index. */
  step: number;
  /** Value at that step. */
  value: number;
}

/** A live progress indicator handed to stages (no-op when not on a TTY). */
export interface ProgressSink {
  /** Reports `done` units finished, with a short note (e.g. the loss). */
  update(done: number, note?: string): void;
  /** Closes the indicator. */
  done(note?: string): void;
}

/** What every stage receives besides its data. */
export interface StageContext {
  /** Stage options (plugin-specific; built-ins document theirs). */
  options: Record<string, unknown>;
  /** Seed of the run. */
  seed: number;
  /** Backend in use (tfjs is already initialised on it). */
  backend?: BackendInfo;
  /** Folder where the stage may write checkpoints and side files (atomically). */
  outDir?: string;
  /** Continue from checkpoints in `outDir` when true. */
  resume?: boolean;
  /** Writes one log line (to stderr). */
  log(line: string): void;
  /** Opens a progress indicator with `total` units. */
  progress(label: string, total: number): ProgressSink;
}

/** Output of a generator: pseudo proposals on training videos, detections on test videos. */
export interface GeneratorResult {
  /** Proposals on the training videos (the pseudo-label source). */
  train: Detection[];
  /** The generator's own detections on the test videos. */
  test: Detection[];
  /** Named training curves (e.g. `loss`, `testAverageMAP`). */
  curves?: Record<string, CurvePoint[]>;
  /** Anything else worth reporting (iterations, best step, seconds). */
  info?: Record<string, unknown>;
}

/** Output of a student: detections on the test videos. */
export interface StudentResult {
  /** Final detections on the test videos (EMA weights when EMA is on). */
  test: Detection[];
  /** Detections of the student just before the EMA-teacher switch (for the ablation table). */
  testBeforeSwitch?: Detection[];
  /** Named training curves. */
  curves?: Record<string, CurvePoint[]>;
  /** Path of the final checkpoint, if written. */
  checkpoint?: string;
  /**
   * Test detections of the weights kept at several epochs (oldest first; the last is the
   * final weights, whose detections are `test`). Each stage of the pipeline scores them all.
   */
  snapshots?: { epoch: number; test: Detection[]; checkpoint?: string }[];
  /** Anything else worth reporting. */
  info?: Record<string, unknown>;
}

/** Context of one filter call: one video's proposals at a time. */
export interface FilterContext {
  /** The video the proposals belong to. */
  videoId: string;
  /** Filter options (thresholds etc.). */
  options: Record<string, unknown>;
  /** Video metadata when a dataset is at hand (absent when filtering files alone). */
  video?: VideoMeta;
}

/** Opens datasets of a layout. */
export interface DatasetPlugin {
  /** Plugin kind tag. */
  kind: "dataset";
  /** Name config and CLI use to pick it (unique per kind). */
  name: string;
  /** One-line description shown by the plugin listing. */
  description?: string;
  /** Options the plugin reads: name -> one-line description (listed by `plugins`). */
  options?: Readonly<Record<string, string>>;
  /** True when `root` looks like this layout (used by auto-detection). */
  detect?(root: string): boolean | Promise<boolean>;
  /** Opens the dataset at `root`. */
  open(root: string, options?: Record<string, unknown>): Promise<Dataset>;
}

/** Produces proposals from a dataset (video-level labels only). */
export interface GeneratorPlugin {
  /** Plugin kind tag. */
  kind: "generator";
  /** Name config and CLI use to pick it (unique per kind). */
  name: string;
  /** One-line description shown by the plugin listing. */
  description?: string;
  /** Options the plugin reads: name -> one-line description (listed by `plugins`). */
  options?: Readonly<Record<string, string>>;
  /** Trains on the dataset's training videos and returns proposals and test detections. */
  generate(dataset: Dataset, context: StageContext): Promise<GeneratorResult>;
}

/** Keeps some of one video's proposals. */
export interface FilterPlugin {
  /** Plugin kind tag. */
  kind: "filter";
  /** Name config and CLI use to pick it (unique per kind). */
  name: string;
  /** One-line description shown by the plugin listing. */
  description?: string;
  /** Options the plugin reads: name -> one-line description (listed by `plugins`). */
  options?: Readonly<Record<string, string>>;
  /** Returns the proposals of `context.videoId` to keep (pseudo labels). */
  apply(proposals: Detection[], context: FilterContext): Detection[] | Promise<Detection[]>;
}

/** Learns a localizer from pseudo labels of the training videos. */
export interface StudentPlugin {
  /** Plugin kind tag. */
  kind: "student";
  /** Name config and CLI use to pick it (unique per kind). */
  name: string;
  /** One-line description shown by the plugin listing. */
  description?: string;
  /** Options the plugin reads: name -> one-line description (listed by `plugins`). */
  options?: Readonly<Record<string, string>>;
  /** Trains on the pseudo labels of the training videos and returns test detections. */
  train(dataset: Dataset, pseudoLabels: Detection[], context: StageContext): Promise<StudentResult>;
  /**
   * Optional: detects on `videos` with a checkpoint `train` wrote (the `predict` command). The
   * command finds the student by the name the checkpoint gives (see {@linkcode PredictContext}).
   */
  predict?(
    checkpoint: string,
    videos: AsyncIterable<{ meta: VideoMeta; features: VideoFeatures }>,
    context: PredictContext,
  ): Promise<Detection[]>;
}

/**
 * What a student's `predict` receives besides its checkpoint and the videos. The `predict`
 * command runs the student a checkpoint names: the built-in checkpoint format is `tridet-ema`'s;
 * any other checkpoint is a JSON file whose `student` field is the student's name (the rest of
 * the file is the plugin's own), or `--student NAME` names it.
 */
export interface PredictContext {
  /** Backend in use (tfjs is already initialised on it). */
  backend?: BackendInfo;
  /** Writes one log line (to stderr). */
  log(line: string): void;
  /** Opens a progress indicator with `total` units. */
  progress(label: string, total: number): ProgressSink;
}

/** Any plugin. */
export type Plugin = DatasetPlugin | GeneratorPlugin | FilterPlugin | StudentPlugin;

/** The kinds of plugin. */
export const PLUGIN_KINDS = ["dataset", "generator", "filter", "student"] as const;

/**
 * Option docs of a plugin configured by presets: `preset` plus one entry per config field,
 * described by its value in each preset (e.g. `default 400, paper 6000`). `extra` adds or
 * overrides entries.
 */
export function presetOptionDocs(
  presets: Readonly<Record<string, object>>,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const names = Object.keys(presets);
  const show = (v: unknown) => {
    const s = JSON.stringify(v) ?? "undefined";
    return s.length > 30 ? `${s.slice(0, 27)}...` : s;
  };
  const out: Record<string, string> = { preset: `one of ${names.join(", ")}` };
  for (const k of Object.keys(presets[names[0]])) {
    out[k] = names.map((n) => `${n} ${show((presets[n] as Record<string, unknown>)[k])}`).join(
      ", ",
    );
  }
  return { ...out, ...extra };
}
