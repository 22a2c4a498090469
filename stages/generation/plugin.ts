/**
 * The built-in generator plugin `cola-xv`: CoLA with FuSTAL's cross-video contrast (paper Sec. 3.1;
 * FuSTAL `CrossVideo-Generator/`), plus the helpers that turn stage options into a
 * {@linkcode GeneratorConfig} and detections
 * into the ActivityNet result JSON the reference writes (`result2json` in `core/utils.py`).
 *
 * Options (`context.options`): `preset` (`default` | `paper`), `crossVideo` (false = the CoLA
 * baseline) and any {@linkcode GeneratorConfig} field (`iterations`, `batch`, `lr`,
 * `snippets`, `evalEvery`, `hidden`, `tiou`, ...). The seed is `context.seed` unless the
 * options give one. The best checkpoint goes to `context.outDir/generator_best.ckpt` and the
 * resumable training state to `context.outDir/generator_state.ckpt` (every `checkpointEvery`
 * iterations, default at each evaluation); with `context.resume` training continues from it.
 *
 * @module
 */
import {
  type GeneratorPlugin,
  type GeneratorResult,
  presetOptionDocs,
  type StageContext,
} from "../../lib/plugin_types.ts";
import type { Dataset } from "../../datasets/types.ts";
import { InputError } from "../../lib/errors.ts";
import { presetName } from "../../lib/presets.ts";
import {
  DEFAULT_PRESET,
  type GeneratorConfig,
  generatorConfig,
  PAPER_PRESET,
  REFERENCE_PRESET,
} from "./presets.ts";
import { trainGenerator } from "./train.ts";

/** Builds the generator config from stage options (unknown keys are an InputError). */
export function configFromOptions(
  options: Record<string, unknown>,
  seed?: number,
): GeneratorConfig {
  const { preset: presetOption, ...rest } = options;
  const preset = presetOption === undefined
    ? "default"
    : presetName(presetOption, "generator option preset");
  const known = new Set(Object.keys(generatorConfig("default")));
  for (const k of Object.keys(rest)) {
    if (!known.has(k)) throw new InputError(`generator option "${k}" is unknown`);
  }
  const overrides = { ...(seed !== undefined ? { seed } : {}), ...rest } as Partial<
    GeneratorConfig
  >;
  return generatorConfig(preset, overrides);
}

/** Runs the generator stage on a dataset with a {@linkcode StageContext}. */
export async function generate(dataset: Dataset, context: StageContext): Promise<GeneratorResult> {
  const cfg = configFromOptions(context.options, context.seed);
  const run = await trainGenerator(dataset, cfg, {
    log: (l) => context.log(l),
    progress: (label, total) => context.progress(label, total),
    outDir: context.outDir,
    resume: context.resume,
  });
  return {
    train: run.train,
    test: run.test,
    curves: run.curves,
    info: {
      bestIteration: run.bestStep,
      iterations: cfg.iterations,
      crossVideo: cfg.crossVideo,
      seconds: run.seconds,
      trainSeconds: run.trainSeconds,
      checkpoint: run.checkpoint,
      resumedFrom: run.resumedFrom,
      pseudoLabelMAP: run.trainEval.mAP,
      pseudoLabelAverage: run.trainEval.average,
      testMAP: run.testEval.mAP,
      testAverage: run.testEval.average,
      tiou: run.testEval.tiou,
      counts: run.counts,
    },
  };
}

/** The built-in generator: CoLA + cross-video contrast (`crossVideo: false` = CoLA). */
export const generatorPlugin: GeneratorPlugin = {
  kind: "generator",
  name: "cola-xv",
  description: "CoLA generator with FuSTAL's cross-video contrast (arXiv 2407.08971)",
  options: presetOptionDocs({
    default: DEFAULT_PRESET,
    reference: REFERENCE_PRESET,
    paper: PAPER_PRESET,
  }, {
    crossVideo: "false = the CoLA baseline (default true)",
    seed: "seed of the generator (default: the run's seed)",
  }),
  generate,
};
