/**
 * `run` (the default command): the whole FuSTAL pipeline, or its ablation with `--ablate`.
 *
 * @module
 */
import process from "node:process";
import { applyBlasFlags, type BackendName, BLAS_FLAGS, BLAS_USAGE } from "../lib/backend.ts";
import {
  isInteractive,
  keyValueOptions,
  logErr,
  numberFlag,
  parseFlags,
  Progress,
} from "../lib/cli_util.ts";
import { InputError } from "../lib/errors.ts";
import { formatResultsTable, type FuSTALConfig, runFuSTAL } from "../stages/pipeline.ts";
import { formatAblationTable, runAblation } from "../stages/ablation.ts";

/** Usage text of `run`. */
export const usage = `run [FLAGS]            (also: deno run -A mod.ts [FLAGS])
  The whole method: dataset -> generator -> proposals -> prior filter -> student (EMA) -> mAP.
  Without --root it writes and uses the embedded synthetic THUMOS'14-shaped dataset.
  --root DIR            dataset root (synth output with cola/ + actionformer/, or one layout)
  --layout NAME         actionformer | cola | activitynet | a dataset plugin (auto-detected)
  --generator-root DIR  --student-root DIR   separate roots per stage
  --out DIR             run folder (default runs/default)
  --resume              skip finished stages, continue from checkpoints
  --preset NAME         default (fits a CPU) | paper (published hyper-parameters)
  --backend NAME        auto | webgpu | wasm | cpu (default auto)
${BLAS_USAGE}
  --seed N              seed (default 0)
  --generator NAME --filter NAME --student NAME   plugins by name
  --plugin PATH_OR_URL  load a plugin module (repeatable)
  --no-cross-video      generator without cross-video contrast (CoLA baseline)
  --no-ema              student without the EMA-teacher phase
  --gamma G --eta E     prior filter thresholds (default 0.2, 0.4)
  --generator-option K=V --filter-option K=V --student-option K=V   any stage option
                        (repeatable; V read as JSON when valid, e.g. iterations=200)
  --dim D --videos N    synthetic dataset size (default 128-d, all 412 videos)
  --ablate              run the four ablation rows and print their table
  --json                last stdout line: all figures as one JSON object`;

/** Runs `run`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("run", args, {
    root: { type: "string" },
    layout: { type: "string" },
    "generator-root": { type: "string" },
    "student-root": { type: "string" },
    out: { type: "string" },
    resume: { type: "boolean", default: false },
    preset: { type: "string" },
    backend: { type: "string" },
    ...BLAS_FLAGS,
    seed: { type: "string" },
    generator: { type: "string" },
    filter: { type: "string" },
    student: { type: "string" },
    plugin: { type: "string", multiple: true },
    "no-cross-video": { type: "boolean", default: false },
    "no-ema": { type: "boolean", default: false },
    gamma: { type: "string" },
    "generator-option": { type: "string", multiple: true },
    "filter-option": { type: "string", multiple: true },
    "student-option": { type: "string", multiple: true },
    eta: { type: "string" },
    dim: { type: "string" },
    videos: { type: "string" },
    ablate: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  });
  applyBlasFlags("run", values);
  const json = Boolean(values.json);
  const preset = (values.preset as string | undefined) ?? "default";
  if (preset !== "default" && preset !== "paper") {
    throw new InputError(`run: --preset must be default or paper, got "${preset}"`);
  }
  const filterOptions = keyValueOptions(
    "run",
    "filter-option",
    values["filter-option"] as string[] | undefined,
  );
  const gamma = numberFlag("run", values, "gamma");
  const eta = numberFlag("run", values, "eta");
  if (gamma !== undefined) filterOptions.gamma = gamma;
  if (eta !== undefined) filterOptions.eta = eta;
  const interactive = isInteractive(json);
  const config: FuSTALConfig = {
    root: values.root as string | undefined,
    layout: values.layout as string | undefined,
    generatorRoot: values["generator-root"] as string | undefined,
    studentRoot: values["student-root"] as string | undefined,
    out: values.out as string | undefined,
    resume: Boolean(values.resume),
    preset,
    backend: (values.backend as BackendName | undefined) ?? "auto",
    seed: numberFlag("run", values, "seed") ?? 0,
    generator: values.generator as string | undefined,
    filter: values.filter as string | undefined,
    filterOptions,
    generatorOptions: keyValueOptions(
      "run",
      "generator-option",
      values["generator-option"] as string[] | undefined,
    ),
    studentOptions: keyValueOptions(
      "run",
      "student-option",
      values["student-option"] as string[] | undefined,
    ),
    student: values.student as string | undefined,
    plugins: (values.plugin as string[] | undefined) ?? [],
    crossVideo: !values["no-cross-video"],
    ema: !values["no-ema"],
    synth: {
      dim: numberFlag("run", values, "dim"),
      videos: numberFlag("run", values, "videos"),
    },
    // On a terminal, clear the progress bar's line before a log line; the bar redraws itself.
    onLog: interactive ? (l) => process.stderr.write(`\r\x1b[K${l}\n`) : logErr,
    progress: (label, total) => new Progress(label, total, interactive),
  };
  if (values.ablate) {
    const rows = await runAblation({ ...config, out: config.out ?? "runs/ablation" });
    if (json) {
      console.log(JSON.stringify({
        rows: rows.map((r) => ({
          name: r.name,
          crossVideo: r.crossVideo,
          filter: r.filter,
          ema: r.ema,
          tiou: r.result.tiou,
          generator: r.result.generator.test,
          pseudoLabels: r.result.pseudoLabels,
          student: r.result.student,
          seconds: r.result.seconds,
        })),
      }));
    } else console.log(formatAblationTable(rows));
    return 0;
  }
  const r = await runFuSTAL(config);
  if (json) {
    console.log(JSON.stringify({
      tiou: r.tiou,
      backend: r.backend,
      dataset: r.dataset,
      generator: r.generator.test,
      pseudoLabels: r.pseudoLabels,
      student: { beforeSwitch: r.student.beforeSwitch, final: r.student.final },
      seconds: r.seconds,
      files: r.files,
    }));
  } else {
    console.log(formatResultsTable(r));
    console.log(`report: ${r.files.report}`);
  }
  return 0;
}
