/**
 * The configuration of a run ({@linkcode FuSTALConfig}) and the settings resolved from it once:
 * the run folder, seed, preset, log and progress sinks, and the plugin of each stage.
 *
 * @module
 */
import type { ClassFusion } from "../fusion.ts";
import * as path from "node:path";
import type { BackendName } from "../../lib/backend.ts";
import { rejectUnknownKeys } from "../../lib/errors.ts";
import type { ProgressSink } from "../../lib/plugin_types.ts";
import type { PresetName } from "../../lib/presets.ts";
import { DEFAULT_PLUGINS } from "../../registry.ts";

/** Configuration of `runFuSTAL`; every field is optional. */
export interface FuSTALConfig {
  /**
   * Dataset root. A folder holding `cola/` and `actionformer/` (what `synth` writes) feeds
   * the generator from `cola/` and the student from `actionformer/`; any other folder is
   * opened with `layout` (auto-detected when omitted) for both stages. Omitted: the embedded
   * synthetic THUMOS'14-shaped set is written into `<out>/data` first.
   */
  root?: string;
  /** Layout of `root` (`actionformer`, `cola`, `activitynet`, or a dataset plugin's name). */
  layout?: string;
  /** Separate root for the generator (overrides the split of `root`). */
  generatorRoot?: string;
  /** Separate root for the student. */
  studentRoot?: string;
  /**
   * Make the dataset warnings errors: segments past their video's end (or of zero length) and
   * annotated videos without a feature file (default: one warning line each per file).
   */
  strict?: boolean;
  /** Run folder (default `runs/default`). */
  out?: string;
  /** Skip finished stages and continue from checkpoints. */
  resume?: boolean;
  /** Compute backend (default `auto`). */
  backend?: BackendName;
  /**
   * Hyper-parameter preset: `default` (fits a CPU), `reference` (the published method at a
   * reduced size) or `paper` (published values).
   */
  preset?: PresetName;
  /** Seed of every random stream (default 0). */
  seed?: number;
  /** Synthetic dataset options (when `root` is omitted). */
  synth?: { dim?: number; videos?: number; format?: string };
  /** Generator plugin name (default `cola-xv`). */
  generator?: string;
  /** Generator plugin options. */
  generatorOptions?: Record<string, unknown>;
  /** Cross-video contrast in the generator (default true). */
  crossVideo?: boolean;
  /** Filter plugin name (default `prior`). */
  filter?: string;
  /** Filter plugin options (e.g. `gamma`, `eta`). */
  filterOptions?: Record<string, unknown>;
  /** Student plugin name (default `tridet-ema`). */
  student?: string;
  /** Student plugin options. */
  studentOptions?: Record<string, unknown>;
  /** EMA-teacher distillation in the student (default true). */
  ema?: boolean;
  /**
   * Class fusion of the student's test detections (`stages/fusion.ts`): `generator` keeps
   * those of the classes the generator found in each video, `none` the student's own. Default:
   * the preset's (`default`, `reference`: generator; `paper`: none).
   */
  classFusion?: ClassFusion;
  /**
   * A finished run folder whose generation outputs (`proposals.json`, `generator_test.json`)
   * are reused instead of training a generator (the ablation shares generators this way).
   */
  reuseGenerationFrom?: string;
  /** Plugin modules (paths or URLs) to load first. */
  plugins?: string[];
  /** The command line that started the run, for the report header (default: the call). */
  command?: string;
  /** Log sink (default: stderr). */
  onLog?: (line: string) => void;
  /** Progress indicator factory (default: none). */
  progress?: (label: string, total: number) => ProgressSink;
}

// Every key of FuSTALConfig (the compiler checks the list is complete): others are an error.
const CONFIG_KEYS: Record<keyof FuSTALConfig, true> = {
  root: true,
  strict: true,
  layout: true,
  generatorRoot: true,
  studentRoot: true,
  out: true,
  resume: true,
  backend: true,
  preset: true,
  seed: true,
  synth: true,
  generator: true,
  generatorOptions: true,
  crossVideo: true,
  filter: true,
  filterOptions: true,
  student: true,
  studentOptions: true,
  ema: true,
  classFusion: true,
  reuseGenerationFrom: true,
  plugins: true,
  command: true,
  onLog: true,
  progress: true,
};

/** The plugin that runs each stage (the registry's defaults where the config names none). */
export interface PluginNames {
  /** Generator plugin. */
  generator: string;
  /** Filter plugin. */
  filter: string;
  /** Student plugin. */
  student: string;
}

/** What a run uses of its config, with the defaults filled in. */
export interface RunSettings {
  /** Absolute run folder. */
  out: string;
  /** Seed of every random stream. */
  seed: number;
  /** Hyper-parameter preset. */
  preset: PresetName;
  /** Plugin names of the stages. */
  names: PluginNames;
  /** Log sink. */
  log: (line: string) => void;
  /** Progress indicator factory. */
  progress: (label: string, total: number) => ProgressSink;
}

function nopProgress(): ProgressSink {
  return { update() {}, done() {} };
}

/** Checks `config` for unknown keys and resolves its defaults. */
export function runSettings(config: FuSTALConfig): RunSettings {
  rejectUnknownKeys(config, Object.keys(CONFIG_KEYS), "runFuSTAL config");
  return {
    out: path.resolve(config.out ?? "runs/default"),
    seed: config.seed ?? 0,
    preset: config.preset ?? "default",
    names: {
      generator: config.generator ?? DEFAULT_PLUGINS.generator,
      filter: config.filter ?? DEFAULT_PLUGINS.filter,
      student: config.student ?? DEFAULT_PLUGINS.student,
    },
    log: config.onLog ?? ((l: string) => console.error(l)),
    progress: config.progress ?? nopProgress,
  };
}
