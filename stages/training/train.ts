/**
 * The training loop of the student (FuSTAL `Student-Training/train.py`, `libs/utils/train_utils.py`
 * `train_one_epoch`): shuffled epochs of crops of the training videos, pseudo labels from the
 * selection stage until the switch epoch and from
 * the EMA teacher afterwards, AdamW with linear warm-up and global-norm clipping, an EMA copy
 * updated after every step, checkpoints every N epochs and at the end, exact resume.
 *
 * Determinism: every random draw (init, shuffles, crops, input noise, drop-path, MIL dropout)
 * comes from one seeded {@linkcode Rng} whose state is checkpointed with the weights, the EMA
 * copy, the AdamW moments, the step count and the loss normaliser, so a run resumed from a
 * checkpoint continues bit-for-bit like the uninterrupted run on the same backend.
 *
 * The student sees only the pseudo labels of the training videos; the datasets' annotations of
 * training videos are never read here (the weak video-level labels `meta.labels` feed the MIL
 * term, as in the reference, and, with `teacherWeakLabels`, restrict the EMA teacher's classes).
 *
 * @module
 */
import * as path from "node:path";
import { type Tensor, tf } from "../../deps.ts";
import { DivergenceError, InputError, LossWatch } from "../../lib/errors.ts";
import { isHeapExhausted } from "../../lib/wasm_heap.ts";
import { atomicWriteJson, exists, readJson } from "../../lib/io.ts";
import { Rng } from "../../lib/rng.ts";
import type { CurvePoint, ProgressSink, StudentResult } from "../../lib/plugin_types.ts";
import type { Detection, GroundTruth } from "../../lib/types.ts";
import type { Dataset, VideoMeta } from "../../datasets/types.ts";
import { FeatureCache } from "../../datasets/feature_cache.ts";
import { gridExtent, gridToSeconds, secondsToGrid } from "../../datasets/time.ts";
import { groundTruthFromVideos } from "../evaluation.ts";
import { cropWindow } from "./augment.ts";
import { assignTargets, type GridSegment } from "./assign.ts";
import { loadCheckpoint, saveCheckpoint, type TensorGroups } from "./checkpoint.ts";
import { postprocess, predictVideo, runNetwork } from "./infer.ts";
import { milKs, milTopkMask, studentLosses } from "./losses.ts";
import { forward, initValues, makeLayout, type ParamSpec, paramSpecs } from "./model.ts";
import type { StudentConfig } from "./presets.ts";

/** File name of the checkpoint inside the output folder. */
export const CHECKPOINT_FILE = "student.ckpt";
/**
 * Side file with the test detections taken at the EMA switch (written before the next checkpoint).
 */
export const BEFORE_SWITCH_FILE = "before_switch.json";

/** File name of the EMA snapshot kept after epoch `epoch` (see `StudentConfig.snapshots`). */
export function snapshotFile(epoch: number): string {
  return `epoch_${epoch}.ckpt`;
}

/**
 * Epochs (counted as epochs completed) after which the weights are kept and evaluated:
 * `cfg.snapshots` points evenly spaced over the teacher stage, the last at `cfg.epochs`
 * (paper: 71, 81, 91, 101; default: 23, 25, 28, 30). Without EMA or with fewer than two
 * snapshots, only the end.
 */
export function snapshotEpochs(
  cfg: Pick<StudentConfig, "epochs" | "switchEpoch" | "ema" | "snapshots">,
): number[] {
  const n = cfg.snapshots ?? 1;
  const stage = cfg.epochs - cfg.switchEpoch;
  if (!cfg.ema || n < 2 || stage < 1) return [cfg.epochs];
  const out = new Set<number>();
  for (let k = 1; k <= n; k++) out.add(cfg.switchEpoch + Math.round((k * stage) / n));
  return [...out].filter((e) => e > cfg.switchEpoch).sort((a, b) => a - b);
}

/** Options of {@linkcode trainStudent}. */
export interface TrainOptions {
  /** Full configuration (see `presets.ts`). */
  config: StudentConfig;
  /** Seed of every random draw. */
  seed: number;
  /** Folder for checkpoints and side files (none written when absent). */
  outDir?: string;
  /** Continue from `outDir/student.ckpt` when it exists (its config wins). */
  resume?: boolean;
  /** Log sink (stderr in the CLI). */
  log?: (line: string) => void;
  /** Progress indicators. */
  progress?: (label: string, total: number) => ProgressSink;
  /** Detect on the test videos at the switch epoch (EMA weights; default: when EMA is on). */
  evalBeforeSwitch?: boolean;
  /** Also detect with the raw (non-EMA) weights at the switch and at the end. */
  evalRaw?: boolean;
  /** Run the final detection on the test videos (default true). */
  evalTest?: boolean;
  /** Stop after this many epochs of this call (tests; the checkpoint is still written). */
  stopAfterEpochs?: number;
}

/** Result: {@linkcode StudentResult} plus the raw-weight detections when asked. */
export interface TrainOutcome extends StudentResult {
  /** Raw student weights on the test videos at the end (when `evalRaw`). */
  testRaw?: Detection[];
  /** Raw student weights on the test videos at the switch (when `evalRaw`). */
  testBeforeSwitchRaw?: Detection[];
  /** Configuration actually used (from the checkpoint when resumed). */
  config: StudentConfig;
}

/** What a checkpoint's `meta` holds. */
export interface CheckpointMeta {
  /** Format tag of a student checkpoint. */
  format: "fustal-student";
  /** Checkpoint format version. */
  version: 1;
  /** The student configuration the weights belong to. */
  config: StudentConfig;
  /** Class names, in class-id order. */
  classes: string[];
  /** Input feature dimension D. */
  inDim: number;
  /** Epochs completed. */
  epoch: number;
  /** Optimiser steps taken. */
  step: number;
  /** Running loss normaliser (see `StudentConfig.lossNormMomentum`). */
  lossNorm: number;
  /** State of the training random stream ({@linkcode Rng.state}). */
  rng: number[];
  /** Seed of the run. */
  seed: number;
  /** Named training curves so far. */
  curves: Record<string, CurvePoint[]>;
  /** Training time so far, seconds (summed over resumed calls). */
  trainSeconds: number;
}

/** Ground truth of the videos of a split (for evaluation only; never used in training). */
export function groundTruthOf(dataset: Dataset, split: "train" | "test"): GroundTruth {
  return groundTruthFromVideos(dataset.list(split));
}

/**
 * Pseudo labels (seconds) of the training videos as grid segments, per video id. Each segment
 * is clipped to the video's feature grid ({@linkcode gridExtent}); those left empty (e.g.
 * annotations starting after the video ends, zero-length ones) are dropped, with one log line.
 */
export function pseudoLabelsToGrid(
  dataset: Dataset,
  labels: Detection[],
  log: (s: string) => void = () => {},
): Map<string, GridSegment[]> {
  const train = new Map(dataset.list("train").map((m) => [m.id, m]));
  const out = new Map<string, GridSegment[]>([...train.keys()].map((k) => [k, []]));
  const cls = new Map(dataset.classes.map((c, i) => [c, i]));
  let skipped = 0;
  let clipped = 0;
  let dropped = 0;
  for (const d of labels) {
    const meta = train.get(d.videoId);
    if (!meta) {
      skipped++;
      continue;
    }
    const c = cls.get(d.label);
    if (c === undefined) {
      throw new InputError(`pseudo labels: video ${d.videoId}: unknown class "${d.label}"`);
    }
    const [lo, hi] = meta.length >= 0 ? gridExtent(meta.grid, meta.length) : [0, Infinity];
    const a0 = secondsToGrid(meta.grid, d.segment[0]);
    const b0 = secondsToGrid(meta.grid, d.segment[1]);
    const a = Math.max(lo, a0);
    const b = Math.min(hi, b0);
    if (!(b > a)) {
      dropped++;
      continue;
    }
    if (a !== a0 || b !== b0) clipped++;
    out.get(d.videoId)!.push({ a, b, c });
  }
  if (skipped) {
    log(`pseudo labels: ignored ${skipped} label(s) on videos outside the training split`);
  }
  if (clipped || dropped) {
    log(
      `pseudo labels: clipped ${clipped} label(s) to their video's features, dropped ${dropped} ` +
        `left empty`,
    );
  }
  return out;
}

/** The trainable state. */
interface State {
  specs: ParamSpec[];
  vars: Record<string, tf.Variable>;
  ema: Record<string, tf.Tensor> | null;
  m: Record<string, tf.Tensor>;
  v: Record<string, tf.Tensor>;
  epoch: number;
  step: number;
  lossNorm: number;
  curves: Record<string, CurvePoint[]>;
  trainSeconds: number;
}

let varCounter = 0;

function makeState(
  specs: ParamSpec[],
  values: Map<string, Float32Array>,
  useEma: boolean,
  groups?: TensorGroups,
): State {
  const uid = `student${varCounter++}`;
  const vars: Record<string, tf.Variable> = {};
  const m: Record<string, tf.Tensor> = {};
  const v: Record<string, tf.Tensor> = {};
  const ema: Record<string, tf.Tensor> | null = useEma ? {} : null;
  for (const p of specs) {
    const src = groups?.model?.[p.name]?.data ?? values.get(p.name);
    if (!src) throw new InputError(`checkpoint: missing parameter ${p.name}`);
    const init = tf.tensor(src, p.shape);
    vars[p.name] = tf.variable(init, true, `${uid}/${p.name}`);
    init.dispose();
    m[p.name] = tf.keep(
      tf.tensor(groups?.["adam.m"]?.[p.name]?.data ?? new Float32Array(src.length), p.shape),
    );
    v[p.name] = tf.keep(
      tf.tensor(groups?.["adam.v"]?.[p.name]?.data ?? new Float32Array(src.length), p.shape),
    );
    if (ema) ema[p.name] = tf.keep(tf.tensor(groups?.ema?.[p.name]?.data ?? src, p.shape));
  }
  return { specs, vars, ema, m, v, epoch: 0, step: 0, lossNorm: 0, curves: {}, trainSeconds: 0 };
}

function disposeState(s: State): void {
  tf.dispose(Object.values(s.vars));
  tf.dispose(Object.values(s.m));
  tf.dispose(Object.values(s.v));
  if (s.ema) tf.dispose(Object.values(s.ema));
}

async function hostGroup(
  ts: Record<string, tf.Tensor>,
): Promise<Record<string, { shape: number[]; data: Float32Array }>> {
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, t] of Object.entries(ts)) {
    out[k] = { shape: t.shape, data: (await t.data()) as Float32Array };
  }
  return out;
}

async function writeCheckpoint(
  file: string,
  s: State,
  cfg: StudentConfig,
  classes: string[],
  inDim: number,
  rng: Rng,
  seed: number,
  weightsOnly = false,
): Promise<void> {
  const meta: CheckpointMeta = {
    format: "fustal-student",
    version: 1,
    config: cfg,
    classes,
    inDim,
    epoch: s.epoch,
    step: s.step,
    lossNorm: s.lossNorm,
    rng: rng.state(),
    seed,
    curves: s.curves,
    trainSeconds: s.trainSeconds,
  };
  // A snapshot (weightsOnly) keeps the weights and their EMA for inference, not the optimiser.
  const groups: TensorGroups = weightsOnly ? { model: await hostGroup(s.vars) } : {
    model: await hostGroup(s.vars),
    "adam.m": await hostGroup(s.m),
    "adam.v": await hostGroup(s.v),
  };
  if (s.ema) groups.ema = await hostGroup(s.ema);
  await saveCheckpoint(file, meta, groups);
}

/** Learning rate of optimiser step `i` (linear warm-up from 0 over `w` steps, then constant). */
export function learningRate(i: number, base: number, w: number): number {
  if (w <= 1 || i >= w) return base;
  return base * i / (w - 1);
}

/** Runs the student on every test video; returns detections in seconds. */
export async function detectSplit(
  dataset: Dataset,
  params: Record<string, Tensor>,
  cfg: StudentConfig,
  split: "train" | "test" = "test",
  progress?: ProgressSink,
): Promise<Detection[]> {
  const out: Detection[] = [];
  let n = 0;
  for await (const { meta, features } of dataset.videos(split)) {
    for (const d of await predictVideo(params, cfg, features, meta, dataset.classes)) out.push(d);
    progress?.update(++n);
  }
  progress?.done();
  return out;
}

/**
 * Trains the student on `pseudoLabels` (seconds, training videos only) and detects on the
 * test videos.
 */
export async function trainStudent(
  dataset: Dataset,
  pseudoLabels: Detection[],
  opts: TrainOptions,
): Promise<TrainOutcome> {
  const log = opts.log ?? (() => {});
  const ckptFile = opts.outDir ? path.join(opts.outDir, CHECKPOINT_FILE) : null;
  let cfg = { ...opts.config };
  const classes = dataset.classes;
  const K = classes.length;
  const D = dataset.featureDim;
  const rng = new Rng(opts.seed);
  let state: State;
  if (opts.resume && ckptFile && (await exists(ckptFile))) {
    const ck = await loadCheckpoint(ckptFile);
    const meta = ck.meta as CheckpointMeta;
    if (meta.format !== "fustal-student") {
      throw new InputError(`${ckptFile}: not a student checkpoint`);
    }
    if (meta.inDim !== D || meta.classes.join("\n") !== classes.join("\n")) {
      throw new InputError(`${ckptFile}: checkpoint was trained on other features or classes`);
    }
    cfg = { ...meta.config };
    state = makeState(paramSpecs(cfg, D, K), new Map(), cfg.ema, ck.groups);
    state.epoch = meta.epoch;
    state.step = meta.step;
    state.lossNorm = meta.lossNorm;
    state.curves = meta.curves;
    state.trainSeconds = meta.trainSeconds;
    rng.setState(meta.rng);
    log(`resumed from ${ckptFile} at epoch ${meta.epoch} (step ${meta.step})`);
  } else {
    const specs = paramSpecs(cfg, D, K);
    state = makeState(specs, initValues(specs, new Rng(opts.seed ^ 0x5eed5eed)), cfg.ema);
    state.lossNorm = cfg.lossNormInit;
  }
  const div = 2 ** (cfg.levels - 1);
  if (cfg.maxSeqLen % div !== 0) {
    throw new InputError(`config: maxSeqLen ${cfg.maxSeqLen} must be a multiple of ${div}`);
  }
  try {
    return await runTraining(dataset, pseudoLabels, opts, cfg, state, rng, ckptFile, log);
  } finally {
    disposeState(state);
  }
}

async function runTraining(
  dataset: Dataset,
  pseudoLabels: Detection[],
  opts: TrainOptions,
  cfg: StudentConfig,
  s: State,
  rng: Rng,
  ckptFile: string | null,
  log: (s: string) => void,
): Promise<TrainOutcome> {
  const classes = dataset.classes;
  const K = classes.length;
  const D = dataset.featureDim;
  const trainMetas = dataset.list("train");
  if (trainMetas.length === 0) throw new InputError(`${dataset.root}: no training videos`);
  const metaById = new Map<string, VideoMeta>(trainMetas.map((m) => [m.id, m]));
  const gridLabels = pseudoLabelsToGrid(dataset, pseudoLabels, log);
  const cache = new FeatureCache(dataset, cfg.cacheMiB * 1024 * 1024);
  const bsz = Math.min(cfg.batch, trainMetas.length);
  const itersPerEpoch = Math.floor(trainMetas.length / bsz);
  const warm = Math.round(cfg.warmupEpochs * itersPerEpoch);
  const t0 = cfg.maxSeqLen;
  const layout = makeLayout(t0, cfg);
  const decay = new Map(s.specs.map((p) => [p.name, p.decay]));
  const evalBefore = opts.evalBeforeSwitch ?? cfg.ema;
  const beforeFile = opts.outDir ? path.join(opts.outDir, BEFORE_SWITCH_FILE) : null;
  let testBeforeSwitch: Detection[] | undefined;
  let testBeforeSwitchRaw: Detection[] | undefined;
  if (beforeFile && (await exists(beforeFile)) && s.epoch >= cfg.switchEpoch) {
    const saved = (await readJson(beforeFile)) as { ema?: Detection[]; raw?: Detection[] };
    testBeforeSwitch = saved.ema;
    testBeforeSwitchRaw = saved.raw;
  }
  // EMA snapshots (cfg.snapshots): the ones before the end are detected when taken and their
  // detections kept beside their checkpoint, so a resumed run reports them too.
  const snapEpochs = snapshotEpochs(cfg);
  const detectSnapshots = opts.evalTest ?? true;
  const snapshots: NonNullable<StudentResult["snapshots"]> = [];
  const snapJson = (e: number) =>
    opts.outDir ? path.join(opts.outDir, snapshotFile(e).replace(/\.ckpt$/, ".json")) : null;
  for (const e of snapEpochs) {
    const f = snapJson(e);
    if (e < cfg.epochs && e <= s.epoch && f && (await exists(f))) {
      const saved = (await readJson(f)) as { epoch: number; test: Detection[] };
      snapshots.push({
        epoch: e,
        test: saved.test,
        checkpoint: path.join(opts.outDir!, snapshotFile(e)),
      });
    }
  }
  const lastEpoch = opts.stopAfterEpochs !== undefined
    ? Math.min(cfg.epochs, s.epoch + opts.stopAfterEpochs)
    : cfg.epochs;
  const prog = opts.progress?.("train student", (cfg.epochs - s.epoch) * itersPerEpoch);
  let done = 0;
  const watch = new LossWatch("student");
  /**
   * The L1 size of the weights (and EMA); non-finite, or 1e6 times its size at the start of
   * this run, is divergence. Checked before anything is computed from them or saved.
   */
  const weightSize = async () => {
    const all = [...s.specs.map((p) => s.vars[p.name]), ...(s.ema ? Object.values(s.ema) : [])];
    const t = tf.tidy(() => tf.addN(all.map((v) => tf.sum(tf.abs(v)))));
    const total = (await t.data())[0];
    t.dispose();
    return total;
  };
  const startSize = await weightSize();
  const checkWeights = async () => {
    const total = await weightSize();
    if (!Number.isFinite(total) || total > 1e6 * Math.max(1, startSize)) {
      throw new DivergenceError(
        "student",
        s.step,
        watch.last,
        `the weights grew from ${startSize.toPrecision(3)} to ${total.toPrecision(3)} (L1)`,
      );
    }
  };
  for (let epoch = s.epoch; epoch < lastEpoch; epoch++) {
    await checkWeights();
    const teacher = cfg.ema && epoch >= cfg.switchEpoch && s.ema !== null;
    if (cfg.ema && epoch === cfg.switchEpoch && evalBefore && !testBeforeSwitch) {
      const tb = performance.now();
      testBeforeSwitch = await detectSplit(dataset, s.ema!, cfg);
      if (opts.evalRaw) testBeforeSwitchRaw = await detectSplit(dataset, s.vars, cfg);
      log(
        `epoch ${epoch}: detected the test videos before the switch (${
          ((performance.now() - tb) / 1000).toFixed(1)
        } s)`,
      );
      if (beforeFile) {
        await atomicWriteJson(beforeFile, { ema: testBeforeSwitch, raw: testBeforeSwitchRaw });
      }
    }
    const te = performance.now();
    const order = rng.shuffle(trainMetas.map((m) => m.id));
    let sumLoss = 0;
    const sums = { cls: 0, reg: 0, mil: 0 };
    const ms = { host: 0, teacher: 0, step: 0 };
    // Labels per crop (generator labels kept by the crop; teacher labels when relabelled).
    const labelCount = { gen: 0, teacher: 0, crops: 0 };
    for (let it = 0; it < itersPerEpoch; it++) {
      const ids = order.slice(it * bsz, (it + 1) * bsz);
      let tm = performance.now();
      // --- host side: crops, (teacher) labels, noise, random masks ---
      const wins: { data: Float32Array; length: number }[] = [];
      const segsList: GridSegment[][] = [];
      const metas: VideoMeta[] = [];
      for (const id of ids) {
        const meta = metaById.get(id)!;
        const f = await cache.get(id);
        const crop = cropWindow(
          f.length,
          gridLabels.get(id) ?? [],
          t0,
          cfg.cropRatio,
          cfg.truncThresh,
          rng,
        );
        wins.push({
          data: f.data.subarray(crop.start * D, (crop.start + crop.length) * D),
          length: crop.length,
        });
        segsList.push(crop.segs);
        labelCount.gen += crop.segs.length;
        labelCount.crops++;
        metas.push(meta);
      }
      if (teacher) {
        ms.host += performance.now() - tm;
        tm = performance.now();
        const raws = await runNetwork(s.ema!, cfg, wins, D, t0);
        raws.forEach((raw, i) => {
          const weakIds = metas[i].labels;
          const allowed = cfg.teacherWeakLabels && weakIds.length ? new Set(weakIds) : undefined;
          const dets = postprocess(raw, K, cfg, cfg.teacherThresh, allowed);
          if (dets.length === 0) return; // clean per-video fallback to the generator labels
          let keep = dets.filter((d) => d.score > cfg.teacherThresh);
          if (keep.length === 0) keep = [dets[0]];
          const g = metas[i].grid;
          const dur = metas[i].duration;
          const round = (x: number) =>
            Math.max(0, secondsToGrid(g, Math.min(Math.max(gridToSeconds(g, x), 0), dur)));
          segsList[i] = keep.map((d) => ({ a: round(d.a), b: round(d.b), c: d.c }));
          labelCount.teacher += keep.length;
        });
        ms.teacher += performance.now() - tm;
        tm = performance.now();
      }
      const x = new Float32Array(bsz * t0 * D);
      wins.forEach((w, i) => x.set(w.data, i * t0 * D));
      if (cfg.inputNoise > 0) {
        for (let i = 0; i < x.length; i++) x[i] += cfg.inputNoise * rng.normal();
      }
      const lens = wins.map((w) => w.length);
      const dropPath: [Float32Array, Float32Array][] = [];
      for (let l = 1; l < cfg.levels; l++) {
        const pair: [Float32Array, Float32Array] = [new Float32Array(bsz), new Float32Array(bsz)];
        for (const a of pair) {
          for (let i = 0; i < bsz; i++) {
            a[i] = cfg.dropPath > 0 ? (rng.next() < cfg.dropPath ? 0 : 1 / (1 - cfg.dropPath)) : 1;
          }
        }
        dropPath.push(pair);
      }
      const milKeep = new Float32Array(bsz * t0 * K);
      for (let i = 0; i < milKeep.length; i++) {
        milKeep[i] = rng.next() < cfg.milDropout ? 0 : 1 / (1 - cfg.milDropout);
      }
      const clsT = new Float32Array(bsz * layout.total * K);
      const regT = new Float32Array(bsz * layout.total * 2);
      let numPos = 0;
      segsList.forEach((segs, i) => {
        const tg = assignTargets(segs, layout, lens[i], K, cfg.regressionRanges, cfg.centerRadius);
        clsT.set(tg.cls, i * layout.total * K);
        regT.set(tg.reg, i * layout.total * 2);
        numPos += tg.numPos;
      });
      const weak = new Float32Array(bsz * K);
      ids.forEach((id, i) => {
        const labs = metaById.get(id)!.labels;
        const src = labs.length ? labs : [...new Set((gridLabels.get(id) ?? []).map((g) => g.c))];
        for (const c of src) weak[i * K + c] = 1;
      });
      s.lossNorm = cfg.lossNormMomentum * s.lossNorm +
        (1 - cfg.lossNormMomentum) * Math.max(numPos, 1);
      // --- device side: forward, backward, clip, AdamW, EMA ---
      ms.host += performance.now() - tm;
      tm = performance.now();
      let milMask: Float32Array | undefined;
      const ks = milKs(lens, t0, cfg);
      if (tf.getBackend() === "webgpu" && cfg.milWeight > 0 && ks.some((k) => k < t0)) {
        // WebGPU cannot read tensors synchronously inside the loss: one extra forward pass with
        // the same inputs and dropouts gives the level-0 logits for the top-k mask.
        const zd = tf.tidy(() => {
          const out = forward(s.vars, cfg, { x, lens, t0, dim: D, dropPath }, true);
          const z = tf.slice(out.cls, [0, layout.offsets[0], 0], [bsz, t0, K]);
          return tf.mul(z, tf.tensor3d(milKeep, [bsz, t0, K]));
        });
        milMask = milTopkMask((await zd.data()) as Float32Array, bsz, t0, K, ks);
        zd.dispose();
      }
      let step: StepGrads;
      try {
        step = accumulatedGrads(s.vars, cfg, layout, D, K, {
          x,
          lens,
          dropPath,
          milKeep,
          cls: clsT,
          reg: regT,
          weak,
          norm: s.lossNorm,
          milMask,
        });
      } catch (e) {
        throw heapExhaustedError(e, cfg, D) ?? e;
      }
      const grads = step.grads;
      const lossVal = (await step.total.data())[0];
      const partVals = await Promise.all(
        [step.cls, step.reg, step.mil].map(async (p) => (await p.data())[0]),
      );
      tf.dispose([step.total, step.cls, step.reg, step.mil]);
      // Before any checkpoint of this step is written: the last one on disk stays good.
      watch.check(s.step, lossVal);
      const lr = learningRate(s.step, cfg.lr, warm);
      await applyAdamW(s, grads, decay, cfg, lr);
      tf.dispose(Object.values(grads));
      if (s.ema) {
        const d = cfg.emaDecay;
        for (const p of s.specs) {
          const old = s.ema[p.name];
          s.ema[p.name] = tf.keep(
            tf.tidy(() => tf.add(tf.mul(old, d), tf.mul(s.vars[p.name], 1 - d))),
          );
          old.dispose();
        }
      }
      s.step++;
      ms.step += performance.now() - tm;
      sumLoss += lossVal;
      sums.cls += partVals[0];
      sums.reg += partVals[1];
      sums.mil += partVals[2];
      prog?.update(++done, `loss ${lossVal.toFixed(3)}`);
    }
    const sec = (performance.now() - te) / 1000;
    s.trainSeconds += sec;
    s.epoch = epoch + 1;
    const n = Math.max(1, itersPerEpoch);
    for (
      const [k, val] of Object.entries({
        loss: sumLoss,
        cls: sums.cls,
        reg: sums.reg,
        mil: sums.mil,
      })
    ) {
      (s.curves[k] ??= []).push({ step: epoch, value: val / n });
    }
    log(
      `epoch ${epoch}${teacher ? " (EMA teacher)" : ""}: loss ${(sumLoss / n).toFixed(4)} ` +
        `(cls ${(sums.cls / n).toFixed(4)}, reg ${(sums.reg / n).toFixed(4)}, ` +
        `mil ${(sums.mil / n).toFixed(4)}) ${sec.toFixed(1)} s (host ${
          (ms.host / 1000).toFixed(1)
        }, ` +
        `teacher ${(ms.teacher / 1000).toFixed(1)}, step ${(ms.step / 1000).toFixed(1)}); ` +
        `labels per crop: pseudo ${(labelCount.gen / Math.max(1, labelCount.crops)).toFixed(2)}` +
        (teacher
          ? `, teacher ${(labelCount.teacher / Math.max(1, labelCount.crops)).toFixed(2)}`
          : ""),
    );
    if (snapEpochs.includes(s.epoch)) {
      const file = opts.outDir ? path.join(opts.outDir, snapshotFile(s.epoch)) : undefined;
      if (file) await writeCheckpoint(file, s, cfg, classes, D, rng, opts.seed, true);
      if (s.epoch < cfg.epochs && detectSnapshots) {
        const tb = performance.now();
        const test = await detectSplit(dataset, s.ema ?? s.vars, cfg);
        const jf = snapJson(s.epoch);
        if (jf) await atomicWriteJson(jf, { epoch: s.epoch, test });
        snapshots.push({ epoch: s.epoch, test, checkpoint: file });
        log(
          `epoch ${epoch}: kept snapshot ${snapshotFile(s.epoch)} and detected the test videos ` +
            `(${((performance.now() - tb) / 1000).toFixed(1)} s)`,
        );
      }
    }
    if (ckptFile && (s.epoch % cfg.checkpointEvery === 0 || s.epoch === lastEpoch)) {
      await checkWeights();
      await writeCheckpoint(ckptFile, s, cfg, classes, D, rng, opts.seed);
    }
  }
  prog?.done();
  const result: TrainOutcome = {
    test: [],
    testBeforeSwitch,
    testBeforeSwitchRaw,
    curves: s.curves,
    checkpoint: ckptFile ?? undefined,
    config: cfg,
    info: {
      epochs: s.epoch,
      steps: s.step,
      trainSeconds: s.trainSeconds,
      finalWeights: s.ema ? "ema" : "raw",
    },
  };
  if ((opts.evalTest ?? true) && s.epoch >= cfg.epochs) {
    const ti = performance.now();
    result.test = await detectSplit(
      dataset,
      s.ema ?? s.vars,
      cfg,
      "test",
      opts.progress?.("detect test", dataset.list("test").length),
    );
    result.info!.inferSeconds = (performance.now() - ti) / 1000;
    const last = opts.outDir && snapEpochs.includes(s.epoch)
      ? path.join(opts.outDir, snapshotFile(s.epoch))
      : undefined;
    result.snapshots = [...snapshots, { epoch: s.epoch, test: result.test, checkpoint: last }];
    if (opts.evalRaw && s.ema) result.testRaw = await detectSplit(dataset, s.vars, cfg);
  }
  return result;
}

/** One training batch on the host (level-0 rows `t0` per item), as the loss needs it. */
export interface StepBatch {
  /** [B * t0 * D] features. */
  x: Float32Array;
  /** Valid rows per item. */
  lens: number[];
  /** Drop-path keep factors per branch level: two [B] arrays. */
  dropPath: [Float32Array, Float32Array][];
  /** MIL dropout keep factors [B * t0 * K]. */
  milKeep: Float32Array;
  /** Class targets [B * L * K]. */
  cls: Float32Array;
  /** Regression targets [B * L * 2]. */
  reg: Float32Array;
  /** Weak labels [B * K]. */
  weak: Float32Array;
  /** Loss normaliser of this step. */
  norm: number;
  /** Precomputed MIL top-k mask [B * t0 * K] (WebGPU). */
  milMask?: Float32Array;
}

/** Loss terms of a whole batch and the gradients keyed by variable name. */
export interface StepGrads {
  /** Total loss. */
  total: tf.Scalar;
  /** Classification term. */
  cls: tf.Scalar;
  /** Regression term. */
  reg: tf.Scalar;
  /** MIL term (unweighted). */
  mil: tf.Scalar;
  /** d total / d variable, keyed by the variables' names (as `tf.variableGrads`). */
  grads: tf.NamedTensorMap;
}

/**
 * Loss and gradients of a batch, accumulated over micro-batches of `cfg.microBatch` items
 * (0: one pass). Every term of the loss is a sum over items divided by a batch-level
 * normaliser (the running positive count, the MIL item count) and the MIL k is a batch
 * quantity, so each micro-batch uses the whole batch's normalisers and k and the sums of the
 * micro-batch gradients equal the whole-batch gradient up to float32 rounding. Only one
 * micro-batch's activations are alive at a time.
 */
export function accumulatedGrads(
  vars: Record<string, tf.Variable>,
  cfg: StudentConfig,
  layout: ReturnType<typeof makeLayout>,
  D: number,
  K: number,
  b: StepBatch,
): StepGrads {
  const B = b.lens.length;
  const t0 = layout.lengths[0];
  const mb = cfg.microBatch > 0 ? Math.min(cfg.microBatch, B) : B;
  const ks = milKs(b.lens, t0, cfg);
  let milRows = 0;
  for (let i = 0; i < B; i++) {
    for (let c = 0; c < K; c++) {
      if (b.weak[i * K + c] !== 0) {
        milRows++;
        break;
      }
    }
  }
  const varList = Object.values(vars);
  let acc: tf.NamedTensorMap | null = null;
  let sums: tf.Scalar[] = [];
  for (let s0 = 0; s0 < B; s0 += mb) {
    const s1 = Math.min(B, s0 + mb);
    const sub = (a: Float32Array, per: number) =>
      s0 === 0 && s1 === B ? a : a.subarray(s0 * per, s1 * per);
    const lens = b.lens.slice(s0, s1);
    let parts: tf.Scalar[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const out = forward(vars, cfg, {
        x: sub(b.x, t0 * D),
        lens,
        t0,
        dim: D,
        dropPath: b.dropPath.map(([p, q]) => [p.subarray(s0, s1), q.subarray(s0, s1)]),
      }, true);
      const terms = studentLosses(out, layout, {
        cls: sub(b.cls, layout.total * K),
        reg: sub(b.reg, layout.total * 2),
        norm: b.norm,
        weak: sub(b.weak, K),
        milKeep: sub(b.milKeep, t0 * K),
        lens,
        milMask: b.milMask ? sub(b.milMask, t0 * K) : undefined,
        milKs: ks.slice(s0, s1),
        milRows,
      }, cfg);
      parts = [tf.keep(terms.cls), tf.keep(terms.reg), tf.keep(terms.mil)];
      return terms.total;
    }, varList);
    const now = [value, ...parts];
    if (!acc) {
      acc = grads;
      sums = now;
    } else {
      // a variable a micro-batch does not reach (e.g. a dropped path) has no gradient there
      for (const k of new Set([...Object.keys(acc), ...Object.keys(grads)])) {
        const a = acc[k], g = grads[k];
        if (!a || !g) {
          if (g) acc[k] = g;
          continue;
        }
        acc[k] = tf.add(a, g);
        tf.dispose([a, g]);
      }
      sums = sums.map((t, i) => {
        const r = tf.add(t, now[i]) as tf.Scalar;
        tf.dispose([t, now[i]]);
        return r;
      });
    }
  }
  return { total: sums[0], cls: sums[1], reg: sums[2], mil: sums[3], grads: acc! };
}

/**
 * The one-line error for an exhausted wasm heap (tfjs-wasm has 32-bit memory: at most 4 GB),
 * naming the settings to lower; null when `e` is something else.
 */
export function heapExhaustedError(e: unknown, cfg: StudentConfig, D: number): InputError | null {
  if (!isHeapExhausted(e)) return null;
  const mb = cfg.microBatch > 0 ? Math.min(cfg.microBatch, cfg.batch) : cfg.batch;
  return new InputError(
    `student: the wasm heap (4 GB) is exhausted by ${mb} item(s) x ${cfg.maxSeqLen} rows x ` +
      `width ${cfg.dim} (${D}-d input) per pass: lower the micro-batch ` +
      `(--student-option microBatch=${Math.max(1, Math.floor(mb / 2))}), or maxSeqLen / dim`,
  );
}

async function applyAdamW(
  s: State,
  grads: tf.NamedTensorMap,
  decay: Map<string, boolean>,
  cfg: StudentConfig,
  lr: number,
): Promise<void> {
  const byName = new Map<string, tf.Tensor>();
  const prefixLen = (name: string) => name.indexOf("/") + 1;
  for (const [k, g] of Object.entries(grads)) byName.set(k.slice(prefixLen(k)), g);
  // Global L2 norm of all gradients, clipped to cfg.clipNorm (PyTorch clip_grad_norm_).
  const sq = tf.tidy(() => tf.addN([...byName.values()].map((g) => tf.sum(tf.square(g)))));
  const norm = Math.sqrt((await sq.data())[0]);
  sq.dispose();
  const coef = cfg.clipNorm / (norm + 1e-6);
  const scale = coef < 1 ? coef : 1;
  const t = s.step + 1;
  const bc1 = 1 - cfg.beta1 ** t;
  const bc2 = 1 - cfg.beta2 ** t;
  for (const p of s.specs) {
    const g0 = byName.get(p.name);
    if (!g0) continue;
    const [m, v, np] = tf.tidy(() => {
      const g = scale === 1 ? g0 : tf.mul(g0, scale);
      const m = tf.add(tf.mul(s.m[p.name], cfg.beta1), tf.mul(g, 1 - cfg.beta1));
      const v = tf.add(tf.mul(s.v[p.name], cfg.beta2), tf.mul(tf.square(g), 1 - cfg.beta2));
      let w: tf.Tensor = s.vars[p.name];
      if (decay.get(p.name) && cfg.weightDecay > 0) w = tf.mul(w, 1 - lr * cfg.weightDecay);
      const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), cfg.adamEps);
      const np = tf.sub(w, tf.mul(tf.div(m, denom), lr / bc1));
      return [m, v, np];
    });
    s.m[p.name].dispose();
    s.v[p.name].dispose();
    s.m[p.name] = m;
    s.v[p.name] = v;
    s.vars[p.name].assign(np);
    np.dispose();
  }
}

/** Loads a checkpoint's weights for inference (`ema` weights when present unless `raw`). */
export async function loadStudent(
  file: string,
  which: "ema" | "raw" = "ema",
): Promise<{ params: Record<string, Tensor>; meta: CheckpointMeta }> {
  const ck = await loadCheckpoint(file);
  const meta = ck.meta as CheckpointMeta;
  if (!meta || meta.format !== "fustal-student") {
    throw new InputError(`${file}: not a student checkpoint`);
  }
  const group = which === "ema" && ck.groups.ema ? ck.groups.ema : ck.groups.model;
  const specs = paramSpecs(meta.config, meta.inDim, meta.classes.length);
  const params: Record<string, tf.Tensor> = {};
  for (const p of specs) {
    const h = group[p.name];
    if (!h) throw new InputError(`${file}: missing parameter ${p.name}`);
    params[p.name] = tf.tensor(h.data, p.shape);
  }
  return { params, meta };
}
