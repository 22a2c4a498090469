/**
 * `train`: train the TriDet student on pseudo labels of the training videos (SPEC §6), detect
 * on the test videos, write checkpoints and an ActivityNet result file.
 *
 * @module
 */
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { atomicWriteJson, exists, readJson } from "../lib/io.ts";
import { isInteractive, logErr, numberFlag, parseFlags, Progress } from "../lib/cli_util.ts";
import {
  applyBlasFlags,
  type BackendName,
  BLAS_FLAGS,
  describeBackend,
  initBackend,
} from "../lib/backend.ts";
import type { Detection } from "../lib/types.ts";
import type { Dataset } from "../datasets/types.ts";
import {
  evaluateDetections,
  parseResults,
  type ResultsFile,
  THUMOS_TIOUS,
  toResultsFile,
} from "../stages/evaluation.ts";
import { configFromOptions } from "../stages/training/plugin.ts";
import { groundTruthOf, trainStudent } from "../stages/training/train.ts";

/** Usage text of `train`. */
export const usage =
  `train --pseudo-labels P.json --root DIR [--layout NAME] --out DIR [--preset default|paper]
      [--epochs N] [--batch N] [--lr X] [--ema-decay X] [--switch-epoch N] [--no-ema]
      [--checkpoint-every N] [--seed S] [--backend auto|webgpu|wasm|cpu] [--eval-raw]
      [--blas PATH|off] [--threads N]
      [--option KEY=VALUE ...] [--json]
train --resume DIR [--json]
  Trains the student on the pseudo labels (ActivityNet result JSON, seconds) of the training
  videos only, then detects on the test videos. Writes DIR/student.ckpt (every N epochs and at
  the end, atomically), DIR/detections.json (final, EMA weights unless --no-ema),
  DIR/detections_before_switch.json (EMA weights at the teacher switch) and DIR/metrics.json
  (test mAP when the test videos have annotations). --option sets any field of the student
  config (stages/training/presets.ts; VALUE parsed as JSON). --resume DIR continues a killed run with
  the flags and config it was started with. --json: last stdout line one object.`;

/** Detections as an official-style ActivityNet result file. */
export function resultsJson(method: string, dets: readonly Detection[]): ResultsFile {
  return toResultsFile(dets, method, { official: true });
}

/** Opens a dataset through the shared adapters (`datasets.ts`). */
export async function openStudentDataset(root: string, layout?: string): Promise<Dataset> {
  const { openDataset } = await import("../datasets.ts");
  return await openDataset(root, layout ? { layout } : {});
}

const ARGS_FILE = "train_args.json";

/** Runs `train`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("train", args, {
    "pseudo-labels": { type: "string" },
    root: { type: "string" },
    layout: { type: "string" },
    out: { type: "string" },
    preset: { type: "string" },
    epochs: { type: "string" },
    batch: { type: "string" },
    lr: { type: "string" },
    "ema-decay": { type: "string" },
    "switch-epoch": { type: "string" },
    "checkpoint-every": { type: "string" },
    "no-ema": { type: "boolean" },
    seed: { type: "string" },
    backend: { type: "string" },
    ...BLAS_FLAGS,
    resume: { type: "string" },
    "eval-raw": { type: "boolean" },
    option: { type: "string", multiple: true },
    json: { type: "boolean", default: false },
  });
  const json = values.json === true;
  let v: Record<string, unknown> = { ...values };
  const resumeDir = typeof values.resume === "string" ? values.resume : undefined;
  if (resumeDir) {
    const f = path.join(resumeDir, ARGS_FILE);
    if (!(await exists(f))) throw new InputError(`${f}: not found (not a train output folder)`);
    const saved = (await readJson(f)) as Record<string, unknown>;
    v = {
      ...saved,
      ...Object.fromEntries(Object.entries(values).filter(([, x]) => x !== undefined)),
    };
    v.out = resumeDir;
  }
  const need = (k: string) => {
    if (typeof v[k] !== "string" || v[k] === "") {
      throw new InputError(`train: missing required flag --${k}`);
    }
    return v[k] as string;
  };
  const labelsFile = need("pseudo-labels");
  const root = need("root");
  const out = need("out");
  const num = (k: string) => numberFlag("train", v, k);
  const seed = num("seed") ?? 0;
  const options: Record<string, unknown> = {
    preset: v.preset ?? "default",
    epochs: num("epochs"),
    batch: num("batch"),
    lr: num("lr"),
    emaDecay: num("ema-decay"),
    switchEpoch: num("switch-epoch"),
    checkpointEvery: num("checkpoint-every"),
    ema: v["no-ema"] === true ? false : undefined,
  };
  for (const kv of (v.option as string[] | undefined) ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new InputError(`train: --option must be KEY=VALUE, got "${kv}"`);
    let parsed: unknown = kv.slice(eq + 1);
    try {
      parsed = JSON.parse(parsed as string);
    } catch { /* a plain string */ }
    options[kv.slice(0, eq)] = parsed;
  }
  const cfg = configFromOptions(options);
  applyBlasFlags("train", v);
  const backend = await initBackend((v.backend as BackendName | undefined) ?? "auto");
  logErr(describeBackend(backend));
  const dataset = await openStudentDataset(root, v.layout as string | undefined);
  const labels = parseResults(await readJson(labelsFile), labelsFile);
  if (!resumeDir) {
    const keep = Object.fromEntries(
      Object.entries(values).filter(([k, x]) => x !== undefined && k !== "json" && k !== "resume"),
    );
    keep["pseudo-labels"] = path.resolve(labelsFile);
    keep.root = path.resolve(root);
    await atomicWriteJson(path.join(out, ARGS_FILE), keep, true);
  }
  const t0 = performance.now();
  const r = await trainStudent(dataset, labels, {
    config: cfg,
    seed,
    outDir: out,
    resume: resumeDir !== undefined,
    log: logErr,
    progress: (label, total) => new Progress(label, total, isInteractive(json)),
    evalRaw: v["eval-raw"] === true,
  });
  await atomicWriteJson(
    path.join(out, "detections.json"),
    resultsJson("[Student] tridet-ema", r.test),
  );
  if (r.testBeforeSwitch) {
    await atomicWriteJson(
      path.join(out, "detections_before_switch.json"),
      resultsJson("[Student before EMA switch] tridet-ema", r.testBeforeSwitch),
    );
  }
  const gtTest = groundTruthOf(dataset, "test");
  const score = (d?: Detection[]) =>
    d && gtTest.instances.length
      ? (({ mAP, average }) => ({ mAP, average }))(
        evaluateDetections(gtTest, d, { tious: THUMOS_TIOUS }),
      )
      : undefined;
  // Training-video ground truth is read only here, to report pseudo-label quality.
  const gtTrain = groundTruthOf(dataset, "train");
  const trainIds = new Set(gtTrain.videos);
  const pseudo = gtTrain.instances.length
    ? evaluateDetections(gtTrain, labels.filter((d) => trainIds.has(d.videoId))).average
    : undefined;
  const metrics = {
    backend: backend.backend,
    tiou: THUMOS_TIOUS,
    pseudoLabelAverageMAP: pseudo,
    test: score(r.test),
    testBeforeSwitch: score(r.testBeforeSwitch),
    testRaw: score(r.testRaw),
    testBeforeSwitchRaw: score(r.testBeforeSwitchRaw),
    detections: r.test.length,
    checkpoint: r.checkpoint,
    seconds: (performance.now() - t0) / 1000,
    info: r.info,
    config: r.config,
  };
  await atomicWriteJson(path.join(out, "metrics.json"), metrics, true);
  const pct = (x?: { average: number }) => (x ? (100 * x.average).toFixed(2) : "n/a");
  logErr(
    `student: ${r.test.length} test detections; test avg mAP ${pct(metrics.test)} ` +
      `(before switch ${pct(metrics.testBeforeSwitch)})`,
  );
  if (json) console.log(JSON.stringify({ ...metrics, config: undefined }));
  else console.log(`wrote ${path.join(out, "detections.json")}`);
  return 0;
}
