/**
 * `generate` command: trains the generator on a dataset's weak labels, writes the pseudo
 * proposals of the training videos and the generator's own test detections (ActivityNet
 * result JSON), the best checkpoint, and reports pseudo-label quality and test mAP.
 *
 * @module
 */
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { atomicWriteJson, exists } from "../lib/io.ts";
import { isInteractive, logErr, numberFlag, parseFlags, Progress } from "../lib/cli_util.ts";
import {
  applyBlasFlags,
  type BackendName,
  BLAS_FLAGS,
  describeBackend,
  initBackend,
} from "../lib/backend.ts";
import { parseTious } from "../stages/evaluation.ts";
import { generatorConfig, type GeneratorPreset } from "../stages/generation/presets.ts";
import { trainGenerator } from "../stages/generation/train.ts";
import { toResultsJson } from "../stages/generation/plugin.ts";

/** Usage text of `generate`. */
export const usage = `usage: deno run -A mod.ts generate --root DIR [FLAGS]

Trains the generator (CoLA + FuSTAL cross-video contrast) from video-level labels and writes
  OUT/proposals.json         pseudo proposals of the training videos
  OUT/generator_test.json    the generator's detections on the test videos
  OUT/generator_best.ckpt    the weights with the best average test mAP
  OUT/generator_state.ckpt   the resumable training state (see --resume)
  OUT/generator_summary.json the figures below, training curves and the config

flags:
  --root DIR          dataset folder (a folder with cola/ uses cola/ unless --layout is given)
  --layout NAME       cola | actionformer | activitynet (default: auto-detect)
  --out DIR           output folder (default runs/generate)
  --preset NAME       default (CPU-sized, see bench/BENCH-generation.md) | paper (published)
  --iterations N      training iterations
  --batch N           videos per mini-batch
  --lr X              Adam learning rate
  --snippets N        snippets sampled per video
  --hidden N          embedding width (default: the feature dim)
  --eval-every N      test evaluation (model selection) every N iterations
  --checkpoint-every N  write OUT/generator_state.ckpt every N iterations (default: at each
                      evaluation) and after the last one
  --resume            continue a killed run from OUT/generator_state.ckpt (give the same
                      flags; a different config is an error); trains from scratch if absent
  --seed N            seed (default 3407)
  --no-cross-video    the CoLA baseline (no cross-video contrast)
  --tiou LIST         tIoU thresholds, e.g. 0.1:0.7:0.1 (default by dataset)
  --backend NAME      auto | webgpu | wasm | cpu (default auto)
  --blas PATH|off     native BLAS for wasm matMuls (default FUSTAL_BLAS or libopenblas.so.0)
  --threads N         BLAS threads (default: every core)
  --json              last stdout line: {"train": {"proposals", "mAP", "average"},
                      "test": {"mAP", "average"}, "seconds", "backend"}`;

/** Runs `generate`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("generate", args, {
    root: { type: "string" },
    layout: { type: "string" },
    out: { type: "string" },
    preset: { type: "string" },
    iterations: { type: "string" },
    batch: { type: "string" },
    lr: { type: "string" },
    snippets: { type: "string" },
    hidden: { type: "string" },
    "eval-every": { type: "string" },
    "checkpoint-every": { type: "string" },
    resume: { type: "boolean" },
    seed: { type: "string" },
    "no-cross-video": { type: "boolean" },
    tiou: { type: "string" },
    backend: { type: "string" },
    ...BLAS_FLAGS,
    json: { type: "boolean" },
  });
  const json = Boolean(values.json);
  const t0 = performance.now();
  if (typeof values.root !== "string" || values.root === "") {
    throw new InputError("generate: missing required flag --root (a dataset folder)");
  }
  const cfg = generatorConfig((values.preset as GeneratorPreset | undefined) ?? "default", {
    iterations: numberFlag("generate", values, "iterations"),
    batch: numberFlag("generate", values, "batch"),
    lr: numberFlag("generate", values, "lr"),
    snippets: numberFlag("generate", values, "snippets"),
    hidden: numberFlag("generate", values, "hidden"),
    evalEvery: numberFlag("generate", values, "eval-every"),
    checkpointEvery: numberFlag("generate", values, "checkpoint-every"),
    seed: numberFlag("generate", values, "seed"),
    crossVideo: values["no-cross-video"] ? false : undefined,
    tious: typeof values.tiou === "string" ? parseTious(values.tiou) : undefined,
  });
  const out = path.resolve(typeof values.out === "string" ? values.out : "runs/generate");
  let root = path.resolve(values.root);
  let layout = typeof values.layout === "string" ? values.layout : undefined;
  if (!layout && await exists(path.join(root, "cola"))) {
    root = path.join(root, "cola");
    layout = "cola";
    logErr(`generate: using the CoLA layout under ${root}`);
  }
  const { openDataset } = await import("../datasets.ts");
  const ds = await openDataset(root, layout ? { layout } : {});
  applyBlasFlags("generate", values);
  const info = await initBackend((values.backend as BackendName | undefined) ?? "auto");
  logErr(describeBackend(info));
  logErr(
    `generate: ${ds.layout} ${ds.list("train").length} train / ${ds.list("test").length} test ` +
      `videos, ${ds.featureDim}-d, ${ds.classes.length} classes; ${cfg.iterations} iterations, ` +
      `batch ${cfg.batch}, ${cfg.snippets} snippets, lr ${cfg.lr}, cross-video ${cfg.crossVideo}`,
  );
  const interactive = isInteractive(json);
  const r = await trainGenerator(ds, cfg, {
    log: logErr,
    progress: (label, total) => new Progress(label, total, interactive),
    outDir: out,
    resume: Boolean(values.resume),
  });
  const trainIds = ds.list("train").map((m) => m.id), testIds = ds.list("test").map((m) => m.id);
  await atomicWriteJson(
    path.join(out, "proposals.json"),
    toResultsJson(r.train, "[Generator]", trainIds),
  );
  await atomicWriteJson(
    path.join(out, "generator_test.json"),
    toResultsJson(r.test, "[Generator]", testIds),
  );
  const seconds = (performance.now() - t0) / 1000;
  const summary = {
    train: { proposals: r.train.length, mAP: r.trainEval.mAP, average: r.trainEval.average },
    test: { mAP: r.testEval.mAP, average: r.testEval.average },
    seconds,
    backend: info.backend,
    tiou: r.testEval.tiou,
    bestIteration: r.bestStep,
    out,
  };
  await atomicWriteJson(
    path.join(out, "generator_summary.json"),
    { ...summary, config: cfg, curves: r.curves, counts: r.counts, resumedFrom: r.resumedFrom },
  );
  const pct = (v: number) => (100 * v).toFixed(1);
  logErr(
    `tIoU          ${r.testEval.tiou.map((t) => t.toFixed(2).padStart(5)).join(" ")}   avg\n` +
      `pseudo (train) ${r.trainEval.mAP.map((v) => pct(v).padStart(5)).join(" ")}  ${
        pct(r.trainEval.average)
      }\n` +
      `test           ${r.testEval.mAP.map((v) => pct(v).padStart(5)).join(" ")}  ${
        pct(r.testEval.average)
      }\n` +
      `wrote ${out}/proposals.json (${r.train.length} proposals), generator_test.json, ` +
      `generator_best.ckpt; ${seconds.toFixed(1)} s`,
  );
  if (json) console.log(JSON.stringify(summary));
  return 0;
}
