/**
 * `run` (the default command): the whole FuSTAL pipeline, or its ablation with `--ablate`.
 *
 * @module
 */
import * as path from "node:path";
import process from "node:process";
import { lockRunFolder } from "../lib/io.ts";
import { setPluginCallTimeout } from "../registry.ts";
import { applyBlasFlags, type BackendName, BLAS_FLAGS, BLAS_USAGE } from "../lib/backend.ts";
import { WORKER_FLAGS, WORKERS_USAGE } from "../lib/workers.ts";
import {
  isInteractive,
  keyValueOptions,
  logErr,
  numberFlag,
  parseFlags,
  Progress,
} from "../lib/cli_util.ts";
import { InputError } from "../lib/errors.ts";
import { presetName } from "../lib/presets.ts";
import { classFusionName, PRESET_CLASS_FUSION } from "../stages/fusion.ts";
import { formatResultsTable, type FuSTALConfig, runFuSTAL } from "../stages/pipeline.ts";
import {
  ABLATION_ROWS,
  type AblationRow,
  cellOfIndex,
  DEFAULT_ABLATION_SEEDS,
  defaultParallel,
  formatAblationTable,
  runAblation,
  summarizeAblation,
} from "../stages/ablation.ts";

/** Each preset's class fusion, for the usage text (the modes' owner is `stages/fusion.ts`). */
const fusionDefaults = Object.entries(PRESET_CLASS_FUSION).map(([p, m]) => `${p} ${m}`).join(", ");

/** Usage text of `run`. */
export const usage = `run [FLAGS]            (also: deno run -A mod.ts [FLAGS])
  The whole method: dataset -> generator -> proposals -> prior filter -> student (EMA) -> mAP.
  Without --root it writes and uses the embedded synthetic THUMOS'14-shaped dataset.
  --root DIR            dataset root (synth output with cola/ + actionformer/, or one layout)
  --layout NAME         actionformer | cola | activitynet | a dataset plugin (auto-detected)
  --generator-root DIR  --student-root DIR   separate roots per stage
  --strict              segments past their video's end and annotated videos without
                        features are errors (default: one warning line each)
  --out DIR             run folder (default runs/default)
  --resume              skip finished stages, continue from checkpoints
  --preset NAME         default (fits a CPU) | reference (the published method, reduced size) |
                        paper (published hyper-parameters)
  --backend NAME        auto | webgpu | wasm | cpu (default auto)
${BLAS_USAGE}
${WORKERS_USAGE}
  --seed N              seed (default 0)
  --generator NAME --filter NAME --student NAME   plugins by name
  --plugin PATH_OR_URL  load a plugin module (repeatable)
  --plugin-timeout S    fail a user plugin's call that has not settled after S seconds
                        (default: no limit; a call that can never settle is named anyway)
  --no-cross-video      generator without cross-video contrast (CoLA baseline)
  --no-ema              student without the EMA-teacher phase
  --class-fusion MODE   generator (keep the student's detections of the classes the generator
                        found in each test video) | none (default: the preset's;
                        ${fusionDefaults})
  --gamma G --eta E     prior filter thresholds (default 0.2, 0.4)
  --generator-option K=V --filter-option K=V --student-option K=V   any stage option
                        (repeatable; V read as JSON when valid, e.g. iterations=200)
  --dim D --videos N    synthetic dataset size (default 128-d, all 412 videos)
  --ablate              run the four ablation rows over --seeds and print their table (mean
                        and sd over seeds); each (row, seed) cell is a run folder
                        OUT/ablation/seed-S/<row> with a cell.json (see \`ablation merge\`)
  --row K --seed S      with --ablate: only row K (1-4) / only seed S (one cell: both)
  --seeds LIST          with --ablate: seeds, e.g. 0,1,2 (the default)
  --parallel N          with --ablate: run the cells in N processes side by side, each with
                        1/N of the BLAS threads and workers (default: the cores, at most 4;
                        1: one after another in this process, as array tasks run them)
  --cell I              with --ablate: the cell of array index I (row = I mod 4 + 1,
                        seed = seeds[floor(I / 4)]); without --row/--seed/--cell the index
                        comes from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when set
  --json                last stdout line: all figures as one JSON object`;

/** Runs `run`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("run", args, {
    root: { type: "string" },
    layout: { type: "string" },
    "generator-root": { type: "string" },
    "student-root": { type: "string" },
    strict: { type: "boolean", default: false },
    out: { type: "string" },
    resume: { type: "boolean", default: false },
    preset: { type: "string" },
    backend: { type: "string" },
    ...BLAS_FLAGS,
    ...WORKER_FLAGS,
    seed: { type: "string" },
    generator: { type: "string" },
    filter: { type: "string" },
    student: { type: "string" },
    plugin: { type: "string", multiple: true },
    "plugin-timeout": { type: "string" },
    "no-cross-video": { type: "boolean", default: false },
    "no-ema": { type: "boolean", default: false },
    "class-fusion": { type: "string" },
    gamma: { type: "string" },
    "generator-option": { type: "string", multiple: true },
    "filter-option": { type: "string", multiple: true },
    "student-option": { type: "string", multiple: true },
    eta: { type: "string" },
    dim: { type: "string" },
    videos: { type: "string" },
    ablate: { type: "boolean", default: false },
    row: { type: "string" },
    seeds: { type: "string" },
    cell: { type: "string" },
    parallel: { type: "string" },
    json: { type: "boolean", default: false },
  });
  applyBlasFlags("run", values);
  const json = Boolean(values.json);
  const preset = presetName(values.preset ?? "default", "run: --preset");
  const filterOptions = keyValueOptions(
    "run",
    "filter-option",
    values["filter-option"] as string[] | undefined,
  );
  const gamma = numberFlag("run", values, "gamma");
  const eta = numberFlag("run", values, "eta");
  if (gamma !== undefined) filterOptions.gamma = gamma;
  if (eta !== undefined) filterOptions.eta = eta;
  setPluginCallTimeout(numberFlag("run", values, "plugin-timeout"));
  const interactive = isInteractive(json);
  const config: FuSTALConfig = {
    command: ["deno run -A mod.ts run", ...args].join(" "),
    root: values.root as string | undefined,
    layout: values.layout as string | undefined,
    generatorRoot: values["generator-root"] as string | undefined,
    studentRoot: values["student-root"] as string | undefined,
    strict: Boolean(values.strict),
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
    classFusion: values["class-fusion"] === undefined
      ? undefined
      : classFusionName(values["class-fusion"], "run: --class-fusion"),
    synth: {
      dim: numberFlag("run", values, "dim"),
      videos: numberFlag("run", values, "videos"),
    },
    // On a terminal, clear the progress bar's line before a log line; the bar redraws itself.
    onLog: interactive ? (l) => process.stderr.write(`\r\x1b[K${l}\n`) : logErr,
    progress: (label, total) => new Progress(label, total, interactive),
  };
  // One writer per run folder: the lock is held until this command returns.
  await using _lock = await lockRunFolder(
    path.resolve(config.out ?? (values.ablate ? "runs/ablation" : "runs/default")),
    "run",
    logErr,
  );
  if (values.ablate) {
    const sel = {
      ...ablationSelection(values),
      parallel: values.parallel === undefined
        ? defaultParallel()
        : Math.max(1, wholeNumber("--parallel", values.parallel as string)),
    };
    const cells = await runAblation({ ...config, out: config.out ?? "runs/ablation" }, sel);
    if (json) console.log(JSON.stringify(ablationJson(cells)));
    else console.log(formatAblationTable(cells));
    return 0;
  }
  for (const f of ["row", "seeds", "cell", "parallel"]) {
    if (values[f] !== undefined) throw new InputError(`run: --${f} needs --ablate`);
  }
  const r = await runFuSTAL(config);
  if (json) {
    console.log(JSON.stringify({
      tiou: r.tiou,
      backend: r.backend,
      dataset: r.dataset,
      generator: r.generator.test,
      pseudoLabels: r.pseudoLabels,
      student: {
        classFusion: r.student.classFusion,
        unfused: r.student.unfused,
        beforeSwitch: r.student.beforeSwitch,
        final: r.student.final,
        snapshots: r.student.snapshots,
        headlineEpoch: r.student.headlineEpoch,
        bestEpoch: r.student.bestEpoch,
      },
      scoring: r.scoring,
      seconds: r.seconds,
      files: r.files,
    }));
  } else {
    console.log(formatResultsTable(r));
    console.log(`report: ${r.files.report}`);
  }
  return 0;
}

function wholeNumber(flag: string, v: string): number {
  if (!/^\d{1,9}$/.test(v.trim())) {
    throw new InputError(`run: ${flag} must be a whole number >= 0, got "${v}"`);
  }
  return Number(v);
}

/** The ablation cells a `run --ablate` invocation selects (flags, then the runner's index). */
export function ablationSelection(
  values: Record<string, unknown>,
  env: Record<string, string | undefined> = process.env,
): { rows: number[]; seeds: number[] } {
  if (values.seed !== undefined && values.seeds !== undefined) {
    throw new InputError("run: give --seed or --seeds, not both");
  }
  const seeds = typeof values.seeds === "string"
    ? values.seeds.split(",").map((x) => wholeNumber("--seeds", x))
    : typeof values.seed === "string"
    ? [wholeNumber("--seed", values.seed)]
    : [...DEFAULT_ABLATION_SEEDS];
  let index: number | undefined;
  let from = "--cell";
  if (typeof values.cell === "string") index = wholeNumber("--cell", values.cell);
  else if (values.row === undefined && values.seed === undefined) {
    const sid = env.SLURM_ARRAY_TASK_ID, jci = env.JOB_COMPLETION_INDEX;
    if (jci) {
      index = wholeNumber("JOB_COMPLETION_INDEX", jci);
      from = "JOB_COMPLETION_INDEX";
    } else if (sid) {
      index = wholeNumber("SLURM_ARRAY_TASK_ID", sid) -
        wholeNumber("SLURM_ARRAY_TASK_MIN", env.SLURM_ARRAY_TASK_MIN || "0");
      from = "SLURM_ARRAY_TASK_ID";
    }
  }
  if (index !== undefined) {
    if (values.row !== undefined) throw new InputError("run: give --cell or --row, not both");
    const c = cellOfIndex(index, seeds);
    logErr(`ablation: ${from} ${index} -> row ${c.row}, seed ${c.seed}`);
    return { rows: [c.row], seeds: [c.seed] };
  }
  let rows = ABLATION_ROWS.map((r) => r.row);
  if (typeof values.row === "string") {
    const k = Number(values.row);
    if (!/^[1-4]$/.test(values.row.trim())) {
      throw new InputError(`run: --row must be 1, 2, 3 or 4, got "${values.row}"`);
    }
    rows = [k];
  }
  return { rows, seeds };
}

/** The `--ablate --json` object: every cell and the per-row summary over seeds. */
export function ablationJson(cells: readonly AblationRow[]): Record<string, unknown> {
  return {
    cells: cells.map((r) => ({
      row: r.row,
      seed: r.seed,
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
    rows: summarizeAblation(cells),
  };
}
