/**
 * The built-in student plugin `tridet-ema`: TriDet trained on the selected pseudo labels, with
 * EMA-teacher distillation (paper Sec. 3.3). Options (all optional): `preset` (`default` |
 * `reference` | `paper`),
 * `ema` (false turns the teacher switch off and evaluates the raw weights), `epochs`,
 * `switchEpoch` (scaled with `epochs` when only `epochs` is given), `emaDecay`, `batch`, `lr`,
 * `evalRaw`, `evalBeforeSwitch` (false skips the test pass at the switch, which only reports),
 * `startFrom` (a full checkpoint of the same run to continue from, see `TrainOptions`), and any
 * other {@linkcode StudentConfig} field by name.
 *
 * @module
 */
import { InputError } from "../../lib/errors.ts";
import { presetName } from "../../lib/presets.ts";
import { presetOptionDocs, type StudentPlugin } from "../../lib/plugin_types.ts";
import { PRESETS, type StudentConfig } from "./presets.ts";
import { trainStudent } from "./train.ts";

/** Options of the plugin that are not {@linkcode StudentConfig} fields. */
const RUN_OPTIONS: ReadonlySet<string> = new Set([
  "preset",
  "evalRaw",
  "evalBeforeSwitch",
  "startFrom",
]);

/** Builds a configuration from a preset name and overrides. */
export function configFromOptions(options: Record<string, unknown>): StudentConfig {
  const preset = PRESETS[presetName(options.preset ?? "default", "student: preset")];
  const cfg: StudentConfig = { ...preset };
  const keys = new Set(Object.keys(preset));
  for (const [k, v] of Object.entries(options)) {
    if (RUN_OPTIONS.has(k) || v === undefined) continue;
    if (!keys.has(k)) throw new InputError(`student: unknown option "${k}"`);
    setOption(cfg, k, v, "student");
  }
  if (options.epochs !== undefined && options.switchEpoch === undefined) {
    // Keep the teacher phase at the preset's share of the schedule.
    cfg.switchEpoch = Math.round(preset.switchEpoch / preset.epochs * cfg.epochs);
  }
  for (
    const k of [
      "epochs",
      "batch",
      "checkpointEvery",
      "maxSeqLen",
      "dim",
      "levels",
      "downsample",
    ] as const
  ) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) {
      throw new InputError(`student: option "${k}" must be a positive integer, got ${cfg[k]}`);
    }
  }
  if (!Number.isInteger(cfg.microBatch) || cfg.microBatch < 0) {
    throw new InputError(
      `student: option "microBatch" must be an integer >= 0 (0 = whole batch), got ${cfg.microBatch}`,
    );
  }
  if (!(cfg.emaDecay >= 0 && cfg.emaDecay < 1)) {
    throw new InputError(`student: emaDecay must be in [0, 1), got ${cfg.emaDecay}`);
  }
  if (!(cfg.lr > 0)) throw new InputError(`student: lr must be > 0, got ${cfg.lr}`);
  if (cfg.regressionRanges.length !== cfg.levels) {
    throw new InputError(`student: regressionRanges needs ${cfg.levels} entries (one per level)`);
  }
  if (cfg.dim % cfg.gnGroups !== 0) {
    throw new InputError(`student: dim ${cfg.dim} is not divisible by gnGroups ${cfg.gnGroups}`);
  }
  return cfg;
}

/** Sets field `k` of `cfg` to `v`, or an InputError (prefixed `where`) when the types differ. */
function setOption(cfg: StudentConfig, k: string, v: unknown, where: string): void {
  const want: string = typeof (cfg as unknown as Record<string, unknown>)[k];
  const got: string = Array.isArray(v) ? "object" : typeof v;
  if (got !== want) {
    throw new InputError(`${where}: option "${k}" must be a ${want}, got ${JSON.stringify(v)}`);
  }
  (cfg as unknown as Record<string, unknown>)[k] = v;
}

/**
 * The fields of {@linkcode StudentConfig} that act only after the network (candidate selection,
 * NMS, caps): the ones a trained checkpoint may be run with at other values
 * (`predict --option`).
 */
export const INFERENCE_OPTIONS: readonly (keyof StudentConfig)[] = [
  "preNmsThresh",
  "preNmsTopk",
  "durationThresh",
  "nmsMethod",
  "nmsSigma",
  "nmsIouThresh",
  "minScore",
  "maxSegPerClass",
  "maxSegNum",
];

/**
 * `cfg` (a checkpoint's configuration) with the inference fields of `options` replaced; any
 * other key, a wrong type or an out-of-range value is an InputError naming `where`.
 */
export function withInferenceOptions(
  cfg: StudentConfig,
  options: Record<string, unknown>,
  where = "predict",
): StudentConfig {
  const out: StudentConfig = { ...cfg };
  for (const [k, v] of Object.entries(options)) {
    if (!(INFERENCE_OPTIONS as readonly string[]).includes(k)) {
      throw new InputError(
        `${where}: option "${k}" is not an inference option (use ${INFERENCE_OPTIONS.join(", ")})`,
      );
    }
    setOption(out, k, v, where);
  }
  for (const k of ["preNmsTopk", "maxSegPerClass", "maxSegNum"] as const) {
    if (!Number.isInteger(out[k]) || out[k] < 1) {
      throw new InputError(`${where}: option "${k}" must be a positive integer, got ${out[k]}`);
    }
  }
  for (
    const k of ["preNmsThresh", "durationThresh", "nmsSigma", "nmsIouThresh", "minScore"] as const
  ) {
    if (!(out[k] >= 0)) throw new InputError(`${where}: option "${k}" must be >= 0, got ${out[k]}`);
  }
  if (out.nmsMethod !== "soft" && out.nmsMethod !== "hard") {
    throw new InputError(
      `${where}: option "nmsMethod" must be "soft" or "hard", got ${out.nmsMethod}`,
    );
  }
  return out;
}

/** The built-in TriDet + EMA student. */
export const studentPlugin: StudentPlugin = {
  kind: "student",
  name: "tridet-ema",
  description: "TriDet student on the selected pseudo labels with EMA-teacher distillation",
  options: presetOptionDocs(PRESETS, {
    evalRaw: "also evaluate the raw (non-EMA) weights (default false)",
    evalBeforeSwitch: "detect the test videos at the EMA switch (default true with EMA)",
    startFrom: "a full checkpoint of the same run to continue from (default none)",
  }),
  train(dataset, pseudoLabels, context) {
    const cfg = configFromOptions(context.options);
    const { evalBeforeSwitch, startFrom } = context.options;
    if (evalBeforeSwitch !== undefined && typeof evalBeforeSwitch !== "boolean") {
      throw new InputError(`student: option "evalBeforeSwitch" must be a boolean`);
    }
    if (startFrom !== undefined && typeof startFrom !== "string") {
      throw new InputError(`student: option "startFrom" must be a checkpoint path`);
    }
    return trainStudent(dataset, pseudoLabels, {
      config: cfg,
      seed: context.seed,
      outDir: context.outDir,
      resume: context.resume,
      log: (l) => context.log(l),
      progress: (label, total) => context.progress(label, total),
      evalRaw: context.options.evalRaw === true,
      evalBeforeSwitch,
      startFrom,
    });
  },
};
