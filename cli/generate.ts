/**
 * `generate` command: trains the generator on a dataset's weak labels, writes the pseudo
 * proposals of the training videos and the generator's own test detections (ActivityNet
 * result JSON), the best checkpoint, and reports pseudo-label quality and test mAP.
 *
 * @module
 */
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { atomicWriteJson, checkOutputs, lockRunFolder } from "../lib/io.ts";
import {
  isInteractive,
  keyValueOptions,
  logErr,
  numberFlag,
  parseFlags,
  Progress,
} from "../lib/cli_util.ts";
import {
  applyBlasFlags,
  type BackendName,
  BLAS_FLAGS,
  describeBackend,
  initBackend,
} from "../lib/backend.ts";
import {
  evaluateDetections,
  groundTruthFromVideos,
  parseTious,
  tiouFor,
} from "../stages/evaluation.ts";
import { generatorConfig, type GeneratorPreset } from "../stages/generation/presets.ts";
import { trainGenerator } from "../stages/generation/train.ts";
import { writeResultsFile } from "../stages/evaluation.ts";
import {
  callPlugin,
  DEFAULT_PLUGINS,
  getPlugin,
  loadPluginModule,
  videoSpans,
} from "../registry.ts";
import type { Detection } from "../lib/types.ts";
import type { Dataset } from "../datasets/types.ts";
import type { StageContext } from "../lib/plugin_types.ts";
import type { GeneratorRun } from "../stages/generation/train.ts";

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
  --strict            segments past their video's end and annotated videos without
                      features are errors (default: one warning line each)
  --out DIR           output folder (default runs/generate)
  --preset NAME       default (CPU-sized, see bench/BENCH-generation.md) | reference (the
                      published method at a reduced size) | paper (published)
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
  --seed N            seed (default 0, as for run; the reference code used 3407)
  --no-cross-video    the CoLA baseline (no cross-video contrast)
  --tiou LIST         tIoU thresholds, e.g. 0.1:0.7:0.1 (default by dataset)
  --backend NAME      auto | webgpu | wasm | cpu (default auto)
  --blas PATH|off     native BLAS for wasm matMuls (default FUSTAL_BLAS or libopenblas.so.0)
  --threads N         BLAS threads (default: every core)
  --json              last stdout line: {"train": {"proposals", "mAP", "average"},
                      "test": {"mAP", "average"}, "seconds", "backend"}
  --plugin PATH_OR_URL  load a plugin module first (repeatable; see the plugins command)
  --generator NAME    another generator plugin (default cola-xv); it gets --seed, --resume,
                      OUT as its folder and --option KEY=VALUE (repeatable) as its options;
                      the cola-xv flags above do not apply to it`;

/** Runs `generate`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("generate", args, {
    root: { type: "string" },
    layout: { type: "string" },
    strict: { type: "boolean" },
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
    plugin: { type: "string", multiple: true },
    generator: { type: "string" },
    option: { type: "string", multiple: true },
  });
  for (const m of (values.plugin as string[] | undefined) ?? []) await loadPluginModule(m);
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
    seed: numberFlag("generate", values, "seed") ?? 0,
    crossVideo: values["no-cross-video"] ? false : undefined,
    tiou: typeof values.tiou === "string" ? parseTious(values.tiou) : undefined,
  });
  const out = path.resolve(typeof values.out === "string" ? values.out : "runs/generate");
  await checkOutputs("--out", {
    files: [
      "proposals.json",
      "generator_test.json",
      "generator_summary.json",
      "generator_best.ckpt",
      "generator_state.ckpt",
    ].map((f) => path.join(out, f)),
    dirs: [out],
  });
  await using _lock = await lockRunFolder(out, "generate", logErr);
  let root = path.resolve(values.root);
  let layout = typeof values.layout === "string" ? values.layout : undefined;
  const { openDataset, packageRoots } = await import("../datasets.ts");
  const pkg = layout ? null : await packageRoots(root);
  if (pkg) {
    root = pkg.generator;
    layout = "cola";
    logErr(`generate: using the CoLA layout under ${root}`);
  }
  const ds = await openDataset(root, { layout, strict: values.strict === true });
  applyBlasFlags("generate", values);
  const info = await initBackend((values.backend as BackendName | undefined) ?? "auto");
  logErr(describeBackend(info));
  logErr(
    `generate: ${ds.layout} ${ds.list("train").length} train / ${ds.list("test").length} test ` +
      `videos, ${ds.featureDim}-d, ${ds.classes.length} classes; ${cfg.iterations} iterations, ` +
      `batch ${cfg.batch}, ${cfg.snippets} snippets, lr ${cfg.lr}, cross-video ${cfg.crossVideo}`,
  );
  const interactive = isInteractive(json);
  const progress = (label: string, total: number) => new Progress(label, total, interactive);
  const genName = typeof values.generator === "string" ? values.generator : undefined;
  const r = genName && genName !== DEFAULT_PLUGINS.generator
    ? await throughPlugin(genName, ds, {
      options: keyValueOptions("generate", "option", values.option as string[] | undefined),
      seed: cfg.seed,
      backend: info,
      outDir: out,
      resume: Boolean(values.resume),
      log: logErr,
      progress,
    }, cfg.tiou)
    : await trainGenerator(ds, cfg, {
      log: logErr,
      progress,
      outDir: out,
      resume: Boolean(values.resume),
    });
  const trainIds = ds.list("train").map((m) => m.id), testIds = ds.list("test").map((m) => m.id);
  // The reference generator's format (`result2json`): no official-format keys.
  const plain = (videoIds: string[]) => ({ videoIds, official: false });
  await writeResultsFile(path.join(out, "proposals.json"), r.train, "[Generator]", plain(trainIds));
  await writeResultsFile(
    path.join(out, "generator_test.json"),
    r.test,
    "[Generator]",
    plain(testIds),
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
      `${r.bestStep >= 0 ? "generator_best.ckpt" : "(plugin)"}; ${seconds.toFixed(1)} s`,
  );
  if (json) console.log(JSON.stringify(summary));
  return 0;
}

/** Runs a generator plugin from the registry and scores it like the built-in run. */
async function throughPlugin(
  name: string,
  ds: Dataset,
  ctx: StageContext,
  tiou: number[] | null,
): Promise<
  Pick<GeneratorRun, "train" | "test" | "trainEval" | "testEval" | "bestStep" | "curves"> & {
    counts?: undefined;
    resumedFrom?: undefined;
  }
> {
  const plugin = await getPlugin("generator", name);
  const g = await callPlugin(plugin, "generate", () => plugin.generate(ds, ctx), {
    videos: videoSpans(ds),
  });
  const t = tiou ?? tiouFor(ds.layout, ds.classes.length);
  const score = (split: "train" | "test", dets: Detection[]) =>
    evaluateDetections(groundTruthFromVideos(ds.list(split)), dets, { tiou: t });
  return {
    train: g.train,
    test: g.test,
    trainEval: score("train", g.train),
    testEval: score("test", g.test),
    bestStep: -1,
    curves: (g.curves ?? {}) as GeneratorRun["curves"],
  };
}
