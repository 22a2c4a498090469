/**
 * The generator's training loop (FuSTAL `CrossVideo-Generator/train_generator.py` `main`):
 * mini-batches of B shuffled training videos (a fresh shuffle and fresh random-perturb sampling
 * every pass), Adam with coupled L2, a test-split evaluation every `evalEvery` iterations with
 * the best average mAP kept (checkpoint written atomically), then the selected weights produce
 * the pseudo proposals on the training videos and the detections on the test videos.
 *
 * Long runs resume: every `checkpointEvery` iterations (default: at each evaluation) and after
 * the last one, the whole training state goes atomically to `generator_state.ckpt`
 * (checkpoint.ts); with `resume` the loop continues from it and ends with exactly the results
 * of an uninterrupted run (same seed, same backend).
 *
 * Only the weak labels (`VideoMeta.labels`) of training videos are used for training; their
 * annotations are read only to report pseudo-label quality.
 *
 * The parts live next door: the step and its batch in step.ts, inference and evaluation in
 * infer.ts, the resumable state in checkpoint.ts.
 *
 * @module
 */
import * as path from "node:path";
import { Rng } from "../../lib/rng.ts";
import { InputError, LossWatch } from "../../lib/errors.ts";
import { isHeapExhausted } from "../../lib/wasm_heap.ts";
import { exists } from "../../lib/io.ts";
import type { Detection } from "../../lib/types.ts";
import type { CurvePoint, ProgressSink } from "../../lib/plugin_types.ts";
import { FeatureCache } from "../../datasets/feature_cache.ts";
import type { Dataset, VideoMeta } from "../../datasets/types.ts";
import type { EvalResult } from "../evaluation.ts";
import type { GeneratorConfig } from "./presets.ts";
import {
  Adam,
  createParams,
  disposeParams,
  restoreParams,
  saveCheckpoint,
  snapshotParams,
} from "./model.ts";
import { makeBatch, type StepLosses, trainStep } from "./step.ts";
import { evaluateOn } from "./infer.ts";
import {
  type GeneratorLoopState,
  type LoopStateContext,
  restoreLoopState,
  saveLoopState,
  STATE_FILE,
} from "./checkpoint.ts";

/** Hooks of a training run (logging, progress, where to write the checkpoint). */
export interface TrainHooks {
  /** One log line (stderr). */
  log?(line: string): void;
  /** A progress indicator. */
  progress?(label: string, total: number): ProgressSink;
  /**
   * Folder for `generator_best.ckpt` and the resumable `generator_state.ckpt`; nothing is
   * written when absent.
   */
  outDir?: string;
  /**
   * Continue from `outDir/generator_state.ckpt` when it exists (its config must match, else
   * an InputError naming the file and the differing keys); train from scratch otherwise.
   */
  resume?: boolean;
}

/** Everything a generator run produces. */
export interface GeneratorRun {
  /** Pseudo proposals on the training videos (selected weights). */
  train: Detection[];
  /** Detections on the test videos (selected weights). */
  test: Detection[];
  /** Pseudo-label quality: train proposals against the training videos' annotations. */
  trainEval: EvalResult;
  /** The generator's own test mAP at the selected iteration. */
  testEval: EvalResult;
  /** Iteration of the selected weights (0 = untrained). */
  bestStep: number;
  /** `loss`, `lossCls`, `lossInVideo`, `lossCross`, `testAverageMAP`, `testAccuracy`. */
  curves: Record<string, CurvePoint[]>;
  /** Wall seconds of training and its periodic evaluations (all invocations of a resumed run). */
  trainSeconds: number;
  /** Wall seconds of the whole run (training + final proposal extraction). */
  seconds: number;
  /** Path of the best checkpoint, when written. */
  checkpoint?: string;
  /** Iteration the run resumed from (absent: trained from scratch). */
  resumedFrom?: number;
  /** Videos used (training videos without any label are skipped). */
  counts: { train: number; test: number; skippedUnlabeled: number };
}

/** A generator run in progress: the resumable loop state and what the loop works with. */
interface Run extends GeneratorLoopState {
  ds: Dataset;
  cfg: GeneratorConfig;
  /** Dims, classes, config and training videos (written with the state, checked on resume). */
  ctx: LoopStateContext;
  /** Test videos (evaluated for the selection). */
  test: VideoMeta[];
  /** Training videos skipped for having no weak label. */
  skipped: number;
  cache: FeatureCache;
  log: (line: string) => void;
  /** `generator_best.ckpt` in the output folder, when there is one. */
  ckptFile?: string;
  /** The resumable state file in the output folder, when there is one. */
  stateFile?: string;
}

/**
 * A fresh run: the training videos with a weak label (an InputError when there is none; one
 * log line for those skipped), initial weights, the optimiser, the cache and the RNG streams
 * (forked in a fixed order: init, sampling, dropout, shuffling).
 */
async function startRun(ds: Dataset, cfg: GeneratorConfig, hooks: TrainHooks): Promise<Run> {
  const log = hooks.log ?? (() => {});
  const C = ds.classes.length, D = ds.featureDim;
  const H = cfg.hidden ?? D;
  const all = ds.list("train");
  const train = all.filter((m) => m.labels.length > 0);
  const test = ds.list("test");
  if (train.length === 0) {
    throw new InputError(
      `${ds.root}: no training video with a label; the generator needs weak labels`,
    );
  }
  if (all.length > train.length) {
    log(`generator: skipping ${all.length - train.length} training video(s) without any label`);
  }
  const rng = new Rng(cfg.seed);
  const params = createParams(D, H, C, rng.fork());
  const sample = rng.fork(), drop = rng.fork(), shuffle = rng.fork();
  return {
    params,
    opt: new Adam(cfg),
    streams: { main: rng, sample, drop, shuffle },
    order: [],
    pos: 0,
    best: { step: 0, score: -Infinity, values: await snapshotParams(params) },
    curves: {
      loss: [],
      lossCls: [],
      lossInVideo: [],
      lossCross: [],
      testAverageMAP: [],
      testAccuracy: [],
    },
    trainedBefore: 0,
    ds,
    cfg,
    ctx: {
      inputDim: D,
      hidden: H,
      classes: ds.classes,
      config: cfg,
      train,
      testCount: test.length,
    },
    test,
    skipped: all.length - train.length,
    cache: new FeatureCache(ds, cfg.cacheBytes),
    log,
    ckptFile: hooks.outDir ? path.join(hooks.outDir, "generator_best.ckpt") : undefined,
    stateFile: hooks.outDir ? path.join(hooks.outDir, STATE_FILE) : undefined,
  };
}

/** One iteration: the pass's next batch (a new shuffle when the pass is over) and one step. */
async function trainIteration(run: Run): Promise<StepLosses> {
  const { cfg, ctx, streams } = run;
  // A pass is ⌈n/B⌉ batches (the last one may be smaller); then reshuffle and resample.
  if (run.pos >= run.order.length) {
    run.order = streams.shuffle.shuffle([...ctx.train]);
    run.pos = 0;
  }
  const metas = run.order.slice(run.pos, run.pos + cfg.batch);
  run.pos += cfg.batch;
  const D = ctx.inputDim;
  const hb = await makeBatch(metas, run.cache, cfg.snippets, D, streams.sample);
  const batch = { ...hb, T: cfg.snippets, D };
  try {
    return await trainStep(run.params, run.opt, batch, cfg, ctx.classes.length, streams.drop);
  } catch (e) {
    if (!isHeapExhausted(e)) throw e;
    throw new InputError(
      `generator: the wasm heap (4 GB) is exhausted by a batch of ${cfg.batch} x ` +
        `${cfg.snippets} snippets x ${D}-d: lower --generator-option ` +
        `batch=N or snippets=N`,
    );
  }
}

/** Appends one iteration's losses to the curves. */
function recordLosses(curves: Record<string, CurvePoint[]>, step: number, l: StepLosses): void {
  curves.loss.push({ step, value: l.total });
  curves.lossCls.push({ step, value: l.cls });
  curves.lossInVideo.push({ step, value: l.inVideo });
  curves.lossCross.push({ step, value: l.cross });
}

/** Writes the best weights to `generator_best.ckpt` (when the run has an output folder). */
async function writeBest(run: Run, score: number): Promise<void> {
  if (!run.ckptFile) return;
  const { params, best, ctx } = run;
  await saveCheckpoint(
    run.ckptFile,
    best.values,
    { w1: params.w1.shape, b1: params.b1.shape, w2: params.w2.shape },
    {
      inputDim: ctx.inputDim,
      hidden: ctx.hidden,
      classes: run.ds.classes,
      step: best.step,
      score,
      config: { ...run.cfg },
    },
  );
}

/**
 * Test-split evaluation at `step` (none without test videos): its curve points, one log line,
 * and the weights kept as the best (and checkpointed) when the average mAP improved.
 */
async function evaluateNow(run: Run, step: number): Promise<void> {
  if (run.test.length === 0) return;
  const r = await evaluateOn(run.params, run.test, run.cache, run.ds, run.cfg);
  run.curves.testAverageMAP.push({ step, value: r.eval.average });
  run.curves.testAccuracy.push({ step, value: r.accuracy });
  const improved = r.eval.average > run.best.score;
  run.log(
    `generator: iter ${step} test mAP ${(100 * r.eval.average).toFixed(2)} ` +
      `(acc ${(100 * r.accuracy).toFixed(1)}%)${improved ? " *best" : ""}`,
  );
  if (improved) {
    run.best = {
      step,
      score: r.eval.average,
      values: await snapshotParams(run.params),
      test: r.detections,
      eval: r.eval,
    };
    await writeBest(run, run.best.score);
  }
}

/** Without test videos there is nothing to select on: the last weights are kept. */
async function keepLastWeights(run: Run): Promise<void> {
  run.log("generator: no test videos; keeping the weights of the last iteration");
  const values = await snapshotParams(run.params);
  run.best = { step: run.cfg.iterations, score: -Infinity, values };
  await writeBest(run, NaN);
}

/**
 * Loads the selected weights and returns their test detections (those of their evaluation, or
 * computed now) and their proposals on the training videos, with one log line.
 */
async function selectedOutputs(run: Run): Promise<{
  train: Detection[];
  test: Detection[];
  trainEval: EvalResult;
  testEval: EvalResult;
}> {
  restoreParams(run.params, run.best.values);
  let test = run.best.test, testEval = run.best.eval;
  if (!test || !testEval) {
    const r = await evaluateOn(run.params, run.test, run.cache, run.ds, run.cfg);
    test = r.detections;
    testEval = r.eval;
  }
  const tr = await evaluateOn(run.params, run.ctx.train, run.cache, run.ds, run.cfg);
  run.log(
    `generator: best iter ${run.best.step}; test mAP ${(100 * testEval.average).toFixed(2)}, ` +
      `pseudo-label mAP ${(100 * tr.eval.average).toFixed(2)} (${tr.detections.length} proposals)`,
  );
  return { train: tr.detections, test, trainEval: tr.eval, testEval };
}

/**
 * Trains the generator on `ds` and returns its proposals and scores (paper Sec. 3.1;
 * `train_generator.py` `main`). tfjs must already be initialised on the wanted backend.
 */
export async function trainGenerator(
  ds: Dataset,
  cfg: GeneratorConfig,
  hooks: TrainHooks = {},
): Promise<GeneratorRun> {
  const t0 = performance.now();
  const run = await startRun(ds, cfg, hooks);
  const elapsed = () => run.trainedBefore + (performance.now() - t0) / 1000;
  let start = 1;
  let resumedFrom: number | undefined;
  if (hooks.resume && run.stateFile && await exists(run.stateFile)) {
    resumedFrom = await restoreLoopState(run.stateFile, run, run.ctx);
    start = resumedFrom + 1;
    run.log(`generator: resumed from ${run.stateFile} at iteration ${resumedFrom}`);
  }
  const every = cfg.checkpointEvery ?? cfg.evalEvery;
  const bar = hooks.progress?.("generator", cfg.iterations);
  const watch = new LossWatch("generator");
  if (start > 1) bar?.update(start - 1, "resumed");
  for (let it = start; it <= cfg.iterations; it++) {
    const l = await trainIteration(run);
    // Before any checkpoint of this iteration is written: the last one on disk stays good.
    watch.check(it, l.total, l.gradNorm);
    recordLosses(run.curves, it, l);
    bar?.update(it, `loss ${l.total.toFixed(4)}`);
    const last = it === cfg.iterations;
    if (it % cfg.evalEvery === 0 || last) await evaluateNow(run, it);
    if (run.stateFile && (it % every === 0 || last)) {
      await saveLoopState(run.stateFile, it, run, run.ctx, elapsed());
    }
  }
  bar?.done();
  if (cfg.iterations === 0) await evaluateNow(run, 0);
  if (run.test.length === 0) await keepLastWeights(run);
  const trainSeconds = elapsed();
  const out = await selectedOutputs(run);
  disposeParams(run.params);
  run.opt.dispose();
  return {
    train: out.train,
    test: out.test,
    trainEval: out.trainEval,
    testEval: out.testEval,
    bestStep: run.best.step,
    curves: run.curves,
    trainSeconds,
    seconds: (performance.now() - t0) / 1000,
    checkpoint: run.ckptFile,
    resumedFrom,
    counts: { train: run.ctx.train.length, test: run.test.length, skippedUnlabeled: run.skipped },
  };
}
