/**
 * The generator's training loop (SPEC §3.9) and its inference (§4): mini-batches of B
 * shuffled training videos (a fresh shuffle and fresh random-perturb sampling every pass),
 * Adam with coupled L2, a test-split evaluation every `evalEvery` iterations with the best
 * average mAP kept (checkpoint written atomically), then the selected weights produce the
 * pseudo proposals on the training videos and the detections on the test videos.
 *
 * Long runs resume: every `checkpointEvery` iterations (default: at each evaluation) and after
 * the last one, the whole training state goes atomically to `generator_state.ckpt`
 * (checkpoint.ts); with `resume` the loop continues from it and ends with exactly the results
 * of an uninterrupted run (same seed, same backend).
 *
 * Only the weak labels (`VideoMeta.labels`) of training videos are used for training; their
 * annotations are read only to report pseudo-label quality.
 *
 * @module
 */
import * as path from "node:path";
import { tf } from "../../deps.ts";
import { Rng } from "../../lib/rng.ts";
import { blasActive } from "../../lib/blas.ts";
import { isHeapExhausted } from "../../lib/wasm_heap.ts";
import { InputError } from "../../lib/errors.ts";
import { exists } from "../../lib/io.ts";
import type { Detection } from "../../lib/types.ts";
import type { CurvePoint, ProgressSink } from "../../lib/plugin_types.ts";
import type { Dataset, VideoFeatures, VideoMeta } from "../../datasets/types.ts";
import {
  ACTIVITYNET_TIOUS,
  type EvalResult,
  evaluateDetections,
  groundTruthFromVideos,
  THUMOS_TIOUS,
} from "../evaluation.ts";
import type { GeneratorConfig } from "./presets.ts";
import {
  Adam,
  createParams,
  disposeParams,
  forwardCols,
  type GeneratorParams,
  hostIm2col,
  im2col3,
  inferCas,
  restoreParams,
  saveCheckpoint,
  snapshotParams,
} from "./model.ts";
import { mineCounts, mineSnippets, topKIndices, topKTimeMask } from "./mining.ts";
import { contrastLoss, identicalLabelPairs, milLoss } from "./losses.ts";
import { gatherRows, randomPerturbIndices, uniformIndices } from "./sampling.ts";
import { extractProposals } from "./proposals.ts";
import {
  configDiff,
  type HostTensors,
  loadTrainState,
  saveTrainState,
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

/** tIoU thresholds for a dataset: the config's, else ActivityNet's for ≥ 100 classes. */
export function tiousFor(ds: Dataset, cfg: GeneratorConfig): number[] {
  if (cfg.tious) return cfg.tious;
  return ds.layout === "activitynet" || ds.classes.length >= 100
    ? [...ACTIVITYNET_TIOUS]
    : [...THUMOS_TIOUS];
}

/** Loads features of videos, keeping them in memory while the total fits `budget` bytes. */
export class FeatureCache {
  #ds: Dataset;
  #mem = new Map<string, VideoFeatures>();
  #used = 0;
  #budget: number;
  /** A cache over `ds` keeping up to `budget` bytes of features in memory. */
  constructor(ds: Dataset, budget: number) {
    this.#ds = ds;
    this.#budget = budget;
  }
  /** Features of a video (checked against the dataset's dim); errors name the video. */
  async get(meta: VideoMeta): Promise<VideoFeatures> {
    const hit = this.#mem.get(meta.id);
    if (hit) return hit;
    const f = await this.#ds.load(meta.id);
    if (f.dim !== this.#ds.featureDim) {
      throw new InputError(
        `${this.#ds.root}: video ${meta.id} has feature dim ${f.dim}, expected ${this.#ds.featureDim}`,
      );
    }
    if (f.length < 1) throw new InputError(`${this.#ds.root}: video ${meta.id} has no features`);
    if (this.#used + f.data.byteLength <= this.#budget) {
      this.#mem.set(meta.id, f);
      this.#used += f.data.byteLength;
    }
    return f;
  }
}

/** Per-video outputs of inference. */
interface VideoInference {
  meta: VideoMeta;
  cas: Float32Array;
  T: number;
  L: number;
  probs: Float64Array;
}

/** Video score p: softmax over classes of the mean of the k_e largest CAS values (float64). */
export function videoScores(
  cas: ArrayLike<number>,
  T: number,
  C: number,
  rEasy: number,
): Float64Array {
  const k = mineCounts(T, rEasy, 1).kEasy;
  const logits = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (const t of topKIndices(cas, k, T, c, C)) s += cas[t * C + c];
    logits[c] = s / k;
  }
  let mx = -Infinity;
  for (const v of logits) mx = Math.max(mx, v);
  let z = 0;
  for (let c = 0; c < C; c++) z += logits[c] = Math.exp(logits[c] - mx);
  for (let c = 0; c < C; c++) logits[c] /= z;
  return logits;
}

/** Eval-mode inference (uniform sampling) on a list of videos, a chunk at a time. */
async function inferVideos(
  params: GeneratorParams,
  metas: readonly VideoMeta[],
  cache: FeatureCache,
  cfg: GeneratorConfig,
  D: number,
): Promise<VideoInference[]> {
  const C = params.w2.shape[1] as number;
  const out: VideoInference[] = [];
  const chunkRows = 16384;
  let i = 0;
  while (i < metas.length) {
    const seqs: { data: Float32Array; T: number }[] = [];
    const Ls: number[] = [];
    let rows = 0;
    let j = i;
    while (j < metas.length && (j === i || rows < chunkRows)) {
      const f = await cache.get(metas[j]);
      const idx = uniformIndices(f.length, cfg.snippets);
      const data = new Float32Array(idx.length * D);
      gatherRows(f.data, D, idx, data);
      seqs.push({ data, T: idx.length });
      Ls.push(f.length);
      rows += idx.length + 1;
      j++;
    }
    const cas = await inferCas(params, seqs, D, chunkRows + cfg.snippets + 2);
    for (let v = 0; v < seqs.length; v++) {
      const T = seqs[v].T;
      out.push({
        meta: metas[i + v],
        cas: cas[v],
        T,
        L: Ls[v],
        probs: videoScores(cas[v], T, C, cfg.rEasy),
      });
    }
    i = j;
  }
  return out;
}

/** Proposals (SPEC §4) of inferred videos, in input order. */
function proposalsOf(
  inf: readonly VideoInference[],
  classes: readonly string[],
  cfg: GeneratorConfig,
): Detection[] {
  const C = classes.length;
  return inf.flatMap((v) =>
    extractProposals(
      v.meta.id,
      { cas: v.cas, T: v.T, C, videoScore: v.probs, L: v.L },
      v.meta.grid,
      classes,
      cfg.proposal,
    )
  );
}

/** Exact-match classification accuracy: every entry of [p ≥ 0.2] equals the label. */
function exactMatchAccuracy(inf: readonly VideoInference[], C: number): number {
  if (!inf.length) return 0;
  let ok = 0;
  for (const v of inf) {
    const lab = new Set(v.meta.labels);
    let all = true;
    for (let c = 0; c < C && all; c++) all = (v.probs[c] >= 0.2) === lab.has(c);
    if (all) ok++;
  }
  return ok / inf.length;
}

/** Detections and mAP of the current weights on some videos. */
export async function evaluateOn(
  params: GeneratorParams,
  metas: readonly VideoMeta[],
  cache: FeatureCache,
  ds: Dataset,
  cfg: GeneratorConfig,
): Promise<{ detections: Detection[]; eval: EvalResult; accuracy: number }> {
  const inf = await inferVideos(params, metas, cache, cfg, ds.featureDim);
  const detections = proposalsOf(inf, ds.classes, cfg);
  const ev = evaluateDetections(groundTruthFromVideos(metas), detections, {
    tious: tiousFor(ds, cfg),
  });
  return { detections, eval: ev, accuracy: exactMatchAccuracy(inf, ds.classes.length) };
}

/** A prepared training batch (host arrays). */
interface HostBatch {
  x: Float32Array;
  B: number;
  labels: number[][];
}

/** Values of one step's losses. */
export interface StepLosses {
  /** L_G. */
  total: number;
  /** L_cls (MIL). */
  cls: number;
  /** L_IV. */
  inVideo: number;
  /** Σ_pairs (w_cv/P)·L_CV. */
  cross: number;
  /** Cross-video pairs P in the batch. */
  pairs: number;
  /** Global L2 norm of the gradient (before weight decay); NaN/Infinity flags a broken step. */
  gradNorm: number;
}

/**
 * One optimisation step on a batch: forward (training mode), CAS read back for the mining
 * masks and the top-k video score mask, losses, gradients, Adam. Returns the loss values.
 */
export async function trainStep(
  params: GeneratorParams,
  opt: Adam,
  batch: { x: Float32Array; B: number; T: number; D: number; labels: number[][] },
  cfg: GeneratorConfig,
  C: number,
  rng: Rng,
): Promise<StepLosses> {
  const { B, T, D } = batch;
  const H = params.w1.shape[1] as number;
  // Embedding dropout (inverted) and the easy-mining mask, drawn on the host from the seeded
  // stream so that a seed reproduces on every backend.
  const keepE = 1 - cfg.dropEmbed, keepM = 1 - cfg.dropEasy;
  const embDrop = new Float32Array(B * T * H);
  for (let i = 0; i < embDrop.length; i++) embDrop[i] = rng.next() < keepE ? 1 / keepE : 0;
  const easyDrop = new Float32Array(B * T);
  for (let i = 0; i < easyDrop.length; i++) easyDrop[i] = rng.next() < keepM ? 1 / keepM : 0;
  const target = new Float32Array(B * C);
  batch.labels.forEach((l, b) => {
    const u = [...new Set(l)];
    for (const c of u) target[b * C + c] = 1 / u.length;
  });
  const pairs = identicalLabelPairs(batch.labels);
  const { kEasy } = mineCounts(T, cfg.rEasy, cfg.rHard);
  const parts: tf.Scalar[] = [];
  const vars = { w1: params.w1, b1: params.b1, w2: params.w2 };
  // im2col on the host for wasm/cpu (cheaper than tfjs pad/concat/transpose there); on
  // WebGPU the features go up once and im2col runs on the device.
  const onDevice = tf.getBackend() === "webgpu";
  // Under a native BLAS the weight gradient uses sgemm's transpose flag: no host transpose.
  const host = onDevice ? null : hostIm2col(batch.x, B, T, D, !blasActive());
  const x = onDevice ? tf.tensor3d(batch.x, [B, T, D]) : null;
  const colsIn = host ? tf.tensor2d(host.cols, [B * T, 3 * D]) : null;
  const colsTIn = host?.colsT ? tf.tensor2d(host.colsT, [3 * D, B * T]) : null;
  const drop = tf.tensor2d(embDrop, [B * T, H]);
  const tgt = tf.tensor2d(target, [B, C]);
  // The mining masks need the CAS on the host in the middle of the forward pass. wasm/cpu read
  // it synchronously; WebGPU in Deno cannot (no sync readback), so there a first forward pass
  // (same weights and dropout, hence the same CAS) is read asynchronously.
  let preCas: Float32Array | null = null;
  if (onDevice) {
    const c = tf.tidy(() => forwardCols(params, im2col3(x!), drop).cas);
    preCas = (await c.data()) as Float32Array;
    c.dispose();
  }
  const { value, grads } = tf.variableGrads(() => {
    const cols = colsIn ?? im2col3(x!);
    const { emb, cas } = forwardCols(params, cols, drop, colsTIn);
    const casHost = preCas ?? cas.dataSync();
    // Actionness a_t = Σ_c CAS (of the dropped-out embeddings, as in training mode).
    const act = new Float32Array(B * T);
    for (let r = 0; r < B * T; r++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += casHost[r * C + c];
      act[r] = s;
    }
    const mined = mineSnippets(act, B, T, { ...cfg, drop: easyDrop });
    const stacked = new Float32Array(B * 4 * T);
    [mined.easyAct, mined.easyBkg, mined.hardAct, mined.hardBkg].forEach((m, j) => {
      for (let b = 0; b < B; b++) stacked.set(m.subarray(b * T, (b + 1) * T), (b * 4 + j) * T);
    });
    const top = tf.tensor3d(topKTimeMask(casHost, B, T, C, kEasy), [B, T, C]);
    const cas3 = tf.reshape(cas, [B, T, C]) as tf.Tensor3D;
    const cls = milLoss(cas3, top, kEasy, tgt).loss;
    const con = contrastLoss(
      tf.reshape(emb, [B, T, H]) as tf.Tensor3D,
      { stacked: tf.tensor3d(stacked, [B, 4, T]), kEasy: mined.kEasy, kHard: mined.kHard },
      pairs,
      cfg,
    );
    const total = tf.add(cls, tf.mul(con.total, cfg.contrastWeight)) as tf.Scalar;
    parts.push(tf.keep(cls), tf.keep(con.inVideo), tf.keep(con.cross));
    return total;
  }, Object.values(vars));
  // variableGrads keys its result by the variables' (auto-generated) names.
  const byKey: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(vars)) byKey[k] = grads[v.name];
  opt.apply(vars, byKey);
  const gnT = tf.tidy(() =>
    tf.sqrt(tf.addN(Object.values(byKey).map((g) => tf.sum(tf.square(g)))))
  );
  const gn = (await gnT.data())[0];
  gnT.dispose();
  const [cls, iv, cv] = await Promise.all(parts.map(async (p) => (await p.data())[0]));
  const total = (await value.data())[0];
  tf.dispose([value, drop, tgt, ...parts, ...Object.values(grads)]);
  for (const t of [x, colsIn, colsTIn]) t?.dispose();
  return { total, cls, inVideo: iv, cross: cv, pairs: pairs.length, gradNorm: gn };
}

/** Builds a training batch: random-perturb sampling of N snippets per video. */
async function makeBatch(
  metas: readonly VideoMeta[],
  cache: FeatureCache,
  N: number,
  D: number,
  rng: Rng,
): Promise<HostBatch> {
  const x = new Float32Array(metas.length * N * D);
  for (let b = 0; b < metas.length; b++) {
    const f = await cache.get(metas[b]);
    gatherRows(f.data, D, randomPerturbIndices(f.length, N, rng), x, b * N);
  }
  return { x, B: metas.length, labels: metas.map((m) => m.labels) };
}

/**
 * Trains the generator on `ds` and returns its proposals and scores (SPEC §3.9 + §4).
 * tfjs must already be initialised on the wanted backend.
 */
export async function trainGenerator(
  ds: Dataset,
  cfg: GeneratorConfig,
  hooks: TrainHooks = {},
): Promise<GeneratorRun> {
  const t0 = performance.now();
  const log = hooks.log ?? (() => {});
  const C = ds.classes.length, D = ds.featureDim;
  const H = cfg.hidden ?? D;
  const all = ds.list("train");
  const trainMetas = all.filter((m) => m.labels.length > 0);
  const testMetas = ds.list("test");
  if (trainMetas.length === 0) {
    throw new InputError(
      `${ds.root}: no training video with a label; the generator needs weak labels`,
    );
  }
  if (all.length > trainMetas.length) {
    log(
      `generator: skipping ${all.length - trainMetas.length} training video(s) without any label`,
    );
  }
  const rng = new Rng(cfg.seed);
  const params = createParams(D, H, C, rng.fork());
  const opt = new Adam(cfg);
  const cache = new FeatureCache(ds, cfg.cacheBytes);
  const sampleRng = rng.fork(), dropRng = rng.fork(), shuffleRng = rng.fork();
  const streams: Record<string, Rng> = {
    main: rng,
    sample: sampleRng,
    drop: dropRng,
    shuffle: shuffleRng,
  };
  let curves: Record<string, CurvePoint[]> = {
    loss: [],
    lossCls: [],
    lossInVideo: [],
    lossCross: [],
    testAverageMAP: [],
    testAccuracy: [],
  };
  const ckptFile = hooks.outDir ? path.join(hooks.outDir, "generator_best.ckpt") : undefined;
  const stateFile = hooks.outDir ? path.join(hooks.outDir, STATE_FILE) : undefined;
  let best: {
    step: number;
    score: number;
    values: Record<string, Float32Array>;
    test?: Detection[];
    eval?: EvalResult;
  } = {
    step: 0,
    score: -Infinity,
    values: await snapshotParams(params),
  };
  const writeCkpt = (step: number, score: number, values: Record<string, Float32Array>) =>
    saveCheckpoint(
      ckptFile!,
      values,
      { w1: params.w1.shape, b1: params.b1.shape, w2: params.w2.shape },
      { inputDim: D, hidden: H, classes: ds.classes, step, score, config: { ...cfg } },
    );
  const evaluateNow = async (step: number) => {
    if (testMetas.length === 0) return;
    const r = await evaluateOn(params, testMetas, cache, ds, cfg);
    curves.testAverageMAP.push({ step, value: r.eval.average });
    curves.testAccuracy.push({ step, value: r.accuracy });
    const improved = r.eval.average > best.score;
    log(
      `generator: iter ${step} test mAP ${(100 * r.eval.average).toFixed(2)} ` +
        `(acc ${(100 * r.accuracy).toFixed(1)}%)${improved ? " *best" : ""}`,
    );
    if (improved) {
      best = {
        step,
        score: r.eval.average,
        values: await snapshotParams(params),
        test: r.detections,
        eval: r.eval,
      };
      if (ckptFile) await writeCkpt(step, best.score, best.values);
    }
  };
  let order: VideoMeta[] = [];
  let pos = 0;
  let start = 1;
  let trainedBefore = 0;
  let resumedFrom: number | undefined;
  const shapes = () => ({
    w1: [...params.w1.shape],
    b1: [...params.b1.shape],
    w2: [...params.w2.shape],
  });
  const hostGroup = (values: Record<string, Float32Array>): HostTensors => {
    const sh = shapes();
    return Object.fromEntries(
      Object.entries(values).map(([k, data]) => [k, { shape: sh[k as keyof typeof sh], data }]),
    );
  };
  const saveState = async (it: number) => {
    const { m, v } = await opt.moments();
    await saveTrainState(stateFile!, {
      format: "fustal-generator-state",
      version: 1,
      iteration: it,
      inputDim: D,
      hidden: H,
      classes: [...ds.classes],
      config: cfg,
      adamStep: opt.t,
      rng: Object.fromEntries(Object.entries(streams).map(([k, r]) => [k, r.state()])),
      order: order.map((mt) => mt.id),
      pos,
      videos: { train: trainMetas.length, test: testMetas.length },
      best: { step: best.step, score: best.score, test: best.test, eval: best.eval },
      curves,
      trainSeconds: trainedBefore + (performance.now() - t0) / 1000,
    }, {
      params: hostGroup(await snapshotParams(params)),
      "adam.m": m,
      "adam.v": v,
      best: hostGroup(best.values),
    });
  };
  if (hooks.resume && stateFile && await exists(stateFile)) {
    const { meta, groups } = await loadTrainState(stateFile);
    const diff = configDiff(meta.config, cfg);
    if (diff.length) {
      throw new InputError(
        `${stateFile}: saved with a different generator config (${diff.join(", ")}); ` +
          `use the same settings or run without --resume`,
      );
    }
    const byId = new Map(trainMetas.map((mt) => [mt.id, mt]));
    const sameData = meta.inputDim === D && meta.hidden === H &&
      JSON.stringify(meta.classes) === JSON.stringify(ds.classes) &&
      meta.videos.train === trainMetas.length && meta.videos.test === testMetas.length &&
      meta.order.every((id) => byId.has(id));
    if (!sameData) {
      throw new InputError(
        `${stateFile}: saved for a different dataset (feature dim, classes or videos differ)`,
      );
    }
    const values = (g: HostTensors) =>
      Object.fromEntries(Object.entries(g).map(([k, t]) => [k, t.data]));
    restoreParams(params, values(groups.params));
    opt.setMoments(meta.adamStep, groups["adam.m"] ?? {}, groups["adam.v"] ?? {});
    for (const [k, r] of Object.entries(streams)) r.setState(meta.rng[k]);
    order = meta.order.map((id) => byId.get(id)!);
    pos = meta.pos;
    best = {
      step: meta.best.step,
      score: meta.best.score,
      values: values(groups.best),
      test: meta.best.test,
      eval: meta.best.eval,
    };
    curves = meta.curves;
    trainedBefore = meta.trainSeconds;
    start = meta.iteration + 1;
    resumedFrom = meta.iteration;
    log(`generator: resumed from ${stateFile} at iteration ${meta.iteration}`);
  }
  const every = cfg.checkpointEvery ?? cfg.evalEvery;
  const bar = hooks.progress?.("generator", cfg.iterations);
  if (start > 1) bar?.update(start - 1, "resumed");
  for (let it = start; it <= cfg.iterations; it++) {
    // A pass is ⌈n/B⌉ batches (the last one may be smaller); then reshuffle and resample.
    if (pos >= order.length) {
      order = shuffleRng.shuffle([...trainMetas]);
      pos = 0;
    }
    const metas = order.slice(pos, pos + cfg.batch);
    pos += cfg.batch;
    const hb = await makeBatch(metas, cache, cfg.snippets, D, sampleRng);
    let l: StepLosses;
    try {
      l = await trainStep(params, opt, { ...hb, T: cfg.snippets, D }, cfg, C, dropRng);
    } catch (e) {
      if (!isHeapExhausted(e)) throw e;
      throw new InputError(
        `generator: the wasm heap (4 GB) is exhausted by a batch of ${cfg.batch} x ` +
          `${cfg.snippets} snippets x ${D}-d: lower --generator-option batch=N or snippets=N`,
      );
    }
    if (!Number.isFinite(l.total) || !Number.isFinite(l.gradNorm)) {
      throw new Error(
        `generator: loss ${l.total} / gradient norm ${l.gradNorm} at iteration ${it}`,
      );
    }
    curves.loss.push({ step: it, value: l.total });
    curves.lossCls.push({ step: it, value: l.cls });
    curves.lossInVideo.push({ step: it, value: l.inVideo });
    curves.lossCross.push({ step: it, value: l.cross });
    bar?.update(it, `loss ${l.total.toFixed(4)}`);
    if (it % cfg.evalEvery === 0 || it === cfg.iterations) await evaluateNow(it);
    if (stateFile && (it % every === 0 || it === cfg.iterations)) await saveState(it);
  }
  bar?.done();
  if (cfg.iterations === 0) await evaluateNow(0);
  if (testMetas.length === 0) {
    // Nothing to select on: keep the last weights.
    log("generator: no test videos; keeping the weights of the last iteration");
    best = { step: cfg.iterations, score: -Infinity, values: await snapshotParams(params) };
    if (ckptFile) await writeCkpt(best.step, NaN, best.values);
  }
  const trainSeconds = trainedBefore + (performance.now() - t0) / 1000;
  restoreParams(params, best.values);
  let testDet = best.test, testEval = best.eval;
  if (!testDet || !testEval) {
    const r = await evaluateOn(params, testMetas, cache, ds, cfg);
    testDet = r.detections;
    testEval = r.eval;
  }
  const tr = await evaluateOn(params, trainMetas, cache, ds, cfg);
  log(
    `generator: best iter ${best.step}; test mAP ${(100 * testEval.average).toFixed(2)}, ` +
      `pseudo-label mAP ${(100 * tr.eval.average).toFixed(2)} (${tr.detections.length} proposals)`,
  );
  disposeParams(params);
  opt.dispose();
  return {
    train: tr.detections,
    test: testDet,
    trainEval: tr.eval,
    testEval,
    bestStep: best.step,
    curves,
    trainSeconds,
    seconds: (performance.now() - t0) / 1000,
    checkpoint: ckptFile,
    resumedFrom,
    counts: {
      train: trainMetas.length,
      test: testMetas.length,
      skippedUnlabeled: all.length - trainMetas.length,
    },
  };
}
