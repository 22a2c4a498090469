/**
 * `train`: train the TriDet student on pseudo labels of the training videos (paper Sec. 3.3),
 * detect on the test videos, write checkpoints and an ActivityNet result file.
 *
 * @module
 */
import * as path from "node:path";
import * as fs from "node:fs/promises";
import { DivergenceError, InputError } from "../lib/errors.ts";
import { atomicWriteJson, checkOutputs, exists, lockRunFolder, readJson } from "../lib/io.ts";
import {
  isInteractive,
  keyValueOptions,
  logErr,
  numberFlag,
  parseFlags,
  Progress,
  requireFlag,
} from "../lib/cli_util.ts";
import {
  applyBlasFlags,
  type BackendName,
  BLAS_FLAGS,
  describeBackend,
  initBackend,
} from "../lib/backend.ts";
import type { Detection } from "../lib/types.ts";
import { WORKER_FLAGS, WORKERS_USAGE } from "../lib/workers.ts";
import {
  evaluateDetections,
  readResultsFile,
  tiouFor,
  writeResultsFile,
} from "../stages/evaluation.ts";
import { configFromOptions } from "../stages/training/plugin.ts";
import {
  BEFORE_SWITCH_FILE,
  CHECKPOINT_FILE,
  groundTruthOf,
  type TrainOutcome,
  trainStudent,
} from "../stages/training/train.ts";
import type { StudentResult } from "../lib/plugin_types.ts";
import {
  callPlugin,
  DEFAULT_PLUGINS,
  getPlugin,
  loadPluginModule,
  videoSpans,
} from "../registry.ts";

/** Usage text of `train`. */
export const usage =
  `train --pseudo-labels P.json --root DIR [--layout NAME] [--strict] --out DIR [--preset default|reference|paper]
      [--epochs N] [--batch N] [--lr X] [--ema-decay X] [--switch-epoch N] [--no-ema]
      [--checkpoint-every N] [--seed S] [--backend auto|webgpu|wasm|cpu] [--eval-raw]
      [--blas PATH|off] [--threads N] [--workers N]
      [--option KEY=VALUE ...] [--json]
train --resume DIR [--json]
  Trains the student on the pseudo labels (ActivityNet result JSON, seconds) of the training
  videos only, then detects on the test videos. Writes DIR/student.ckpt (every N epochs and at
  the end, atomically), DIR/detections.json (final, EMA weights unless --no-ema),
  DIR/detections_before_switch.json (EMA weights at the teacher switch), DIR/epoch_N.ckpt and
  DIR/epoch_N.json (EMA snapshots over the teacher stage, see the snapshots option) and
  DIR/metrics.json (test mAP of each when the test videos have annotations). --option sets any field of the student
  config (stages/training/presets.ts; VALUE parsed as JSON). --resume DIR continues a killed run with
  the flags and config it was started with. --json: last stdout line one object.
  --student NAME runs another student plugin (default tridet-ema; load it with --plugin): it gets
  --seed, DIR as its folder and --option KEY=VALUE as its options; the tridet-ema flags do not
  apply to it.
  --plugin PATH_OR_URL  load a plugin module first (repeatable; see the plugins command)
${WORKERS_USAGE}`;

const ARGS_FILE = "train_args.json";

/** Runs `train`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("train", args, {
    "pseudo-labels": { type: "string" },
    root: { type: "string" },
    layout: { type: "string" },
    strict: { type: "boolean" },
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
    ...WORKER_FLAGS,
    resume: { type: "string" },
    "eval-raw": { type: "boolean" },
    option: { type: "string", multiple: true },
    student: { type: "string" },
    json: { type: "boolean", default: false },
    plugin: { type: "string", multiple: true },
  });
  for (const m of (values.plugin as string[] | undefined) ?? []) await loadPluginModule(m);
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
  const need = (k: string) => requireFlag("train", v, k);
  const labelsFile = need("pseudo-labels");
  const root = need("root");
  const out = need("out");
  await checkOutputs("--out", {
    files: [
      ARGS_FILE,
      "detections.json",
      "detections_before_switch.json",
      "metrics.json",
      CHECKPOINT_FILE,
      BEFORE_SWITCH_FILE,
    ].map((f) => path.join(out, f)),
    dirs: [out],
  });
  await using _lock = await lockRunFolder(out, "train", logErr);
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
  const extra = keyValueOptions("train", "option", v.option as string[] | undefined);
  Object.assign(options, extra);
  const stuName = typeof v.student === "string" ? v.student : DEFAULT_PLUGINS.student;
  const builtin = stuName === DEFAULT_PLUGINS.student;
  const cfg = builtin ? configFromOptions(options) : undefined;
  applyBlasFlags("train", v);
  const backend = await initBackend((v.backend as BackendName | undefined) ?? "auto");
  logErr(describeBackend(backend));
  const { openDataset, packageRoots } = await import("../datasets.ts");
  const layout = v.layout as string | undefined;
  // A folder with both packages: the student reads actionformer/.
  const pkg = layout ? null : await packageRoots(root);
  const dataset = await openDataset(pkg?.student ?? root, { layout, strict: v.strict === true });
  const labels = await readResultsFile(labelsFile);
  if (!resumeDir) {
    const keep = Object.fromEntries(
      Object.entries(values).filter(([k, x]) => x !== undefined && k !== "json" && k !== "resume"),
    );
    keep["pseudo-labels"] = path.resolve(labelsFile);
    keep.root = path.resolve(root);
    await atomicWriteJson(path.join(out, ARGS_FILE), keep, true);
  }
  const t0 = performance.now();
  const progress = (label: string, total: number) =>
    new Progress(label, total, isInteractive(json));
  const r: Partial<TrainOutcome> & StudentResult = await (cfg
    ? trainStudent(dataset, labels, {
      config: cfg,
      seed,
      outDir: out,
      resume: resumeDir !== undefined,
      log: logErr,
      progress,
      evalRaw: v["eval-raw"] === true,
    })
    : (async () => {
      // Another student plugin from the registry: it gets --option KEY=VALUE as its options.
      const plugin = await getPlugin("student", stuName);
      const ctx = {
        options: extra,
        seed,
        backend,
        outDir: out,
        resume: resumeDir !== undefined,
        log: logErr,
        progress,
      };
      return await callPlugin(plugin, "train", () => plugin.train(dataset, labels, ctx), {
        videos: videoSpans(dataset),
      });
    })()).catch(async (e) => {
      // A run that diverged before its first checkpoint leaves nothing to resume: drop the
      // argument file it wrote, so the folder holds no trace of a run that never was.
      if (e instanceof DivergenceError && !resumeDir) {
        if (!(await exists(path.join(out, CHECKPOINT_FILE)))) {
          await fs.rm(path.join(out, ARGS_FILE), { force: true });
        }
      }
      throw e;
    });
  await writeResultsFile(path.join(out, "detections.json"), r.test, `[Student] ${stuName}`);
  if (r.testBeforeSwitch) {
    await writeResultsFile(
      path.join(out, "detections_before_switch.json"),
      r.testBeforeSwitch,
      `[Student before EMA switch] ${stuName}`,
    );
  }
  const gtTest = groundTruthOf(dataset, "test");
  const tiou = tiouFor(dataset.layout, dataset.classes.length);
  const score = (d?: Detection[]) =>
    d && gtTest.instances.length
      ? (({ mAP, average }) => ({ mAP, average }))(
        evaluateDetections(gtTest, d, { tiou }),
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
    tiou,
    pseudoLabelAverageMAP: pseudo,
    test: score(r.test),
    testBeforeSwitch: score(r.testBeforeSwitch),
    testRaw: score(r.testRaw),
    testBeforeSwitchRaw: score(r.testBeforeSwitchRaw),
    // Every kept EMA snapshot (DIR/epoch_N.ckpt); the last is `test`, the headline.
    snapshots: r.snapshots?.map((k) => ({
      epoch: k.epoch,
      checkpoint: k.checkpoint,
      ...score(k.test),
    })),
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
