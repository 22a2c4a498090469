/**
 * The training loop of the student (FuSTAL `Student-Training/train.py`, `libs/utils/train_utils.py`
 * `train_one_epoch`): shuffled epochs of crops of the training videos, pseudo labels from the
 * selection stage until the switch epoch and from
 * the EMA teacher afterwards, AdamW with linear warm-up and global-norm clipping, an EMA copy
 * updated after every step, checkpoints every N epochs and at the end, exact resume.
 *
 * The parts live in their own modules: the batches in `batch.ts`, one optimiser step in
 * `step.ts`, AdamW and the EMA update in `optim.ts`, the state and its files in `state.ts`, and
 * detection in `infer.ts`. This module runs the epochs and re-exports the names callers use.
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
import { InputError } from "../../lib/errors.ts";
import { atomicWriteJson, exists } from "../../lib/io.ts";
import { Rng } from "../../lib/rng.ts";
import type { ProgressSink, StudentResult } from "../../lib/plugin_types.ts";
import type { Detection } from "../../lib/types.ts";
import type { Dataset, VideoMeta } from "../../datasets/types.ts";
import { downsampleDataset } from "../../datasets/downsample.ts";
import { FeatureCache } from "../../datasets/feature_cache.ts";
import type { GridSegment } from "./assign.ts";
import {
  cropBatch,
  hostBatch,
  type LabelCount,
  localTeacherPass,
  pseudoLabelsToGrid,
  type TeacherPass,
  teacherRelabel,
  teacherSegments,
} from "./batch.ts";
import { detectSplit } from "./infer.ts";
import { makeLayout } from "./model.ts";
import type { StudentConfig } from "./presets.ts";
import {
  BEFORE_SWITCH_FILE,
  CHECKPOINT_FILE,
  disposeState,
  dropEma,
  freshState,
  readBeforeSwitch,
  restoreState,
  type RunIdentity,
  savedSnapshots,
  snapshotEpochs,
  snapshotFile,
  snapshotJson,
  SWITCH_FILE,
  type TrainState,
  writeCheckpoint,
} from "./state.ts";
import {
  accumulatedGrads,
  DivergenceGuard,
  type GradientsFn,
  optimiserStep,
  type StepContext,
} from "./step.ts";
import { holdPool, pooledGrads, pooledTeacher, poolFor } from "./pool.ts";
import { unionLabelIndices } from "./unions.ts";

export {
  BEFORE_SWITCH_FILE,
  CHECKPOINT_FILE,
  type CheckpointMeta,
  loadStudent,
  snapshotEpochs,
  snapshotFile,
  SWITCH_FILE,
} from "./state.ts";
export { pseudoLabelsToGrid } from "./batch.ts";
export { learningRate } from "./optim.ts";
export { accumulatedGrads, heapExhaustedError, type StepBatch, type StepGrads } from "./step.ts";
export { detectSplit, groundTruthOf } from "./infer.ts";

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
  /**
   * Start from this full checkpoint of another run instead of fresh weights: its weights,
   * optimiser, random stream and epoch, with this call's configuration. The checkpoint must
   * come from the same seed, data and configuration but for `ema` (and the evaluation-only
   * `snapshots`), so the run continues exactly as one trained from scratch would. The ablation
   * starts its row without EMA from the row with EMA's switch checkpoint ({@linkcode
   * SWITCH_FILE}): the two rows are the same run until the switch. A resumable checkpoint in
   * `outDir` (with `resume`) wins over this.
   */
  startFrom?: string;
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
  const D = dataset.featureDim;
  const rng = new Rng(opts.seed);
  let state: TrainState;
  if (opts.resume && ckptFile && (await exists(ckptFile))) {
    const restored = await restoreState(ckptFile, dataset.classes, D, rng);
    state = restored.state;
    cfg = restored.config;
    log(`resumed from ${ckptFile} at epoch ${restored.meta.epoch} (step ${restored.meta.step})`);
  } else if (opts.startFrom) {
    state = await startState(opts.startFrom, cfg, dataset.classes, D, rng, opts.seed);
    log(`started from ${opts.startFrom} at epoch ${state.epoch} (step ${state.step})`);
  } else {
    state = freshState(cfg, D, dataset.classes.length, opts.seed);
  }
  // Workers (pool.ts) live for the whole run; they start on first use.
  const releasePool = holdPool();
  try {
    const div = 2 ** (cfg.levels - 1);
    if (cfg.maxSeqLen % div !== 0) {
      throw new InputError(`config: maxSeqLen ${cfg.maxSeqLen} must be a multiple of ${div}`);
    }
    const run = await prepareRun(dataset, pseudoLabels, opts, cfg, state, rng, ckptFile, log);
    run.gradients = pooledGradients(cfg);
    run.teacherPass = pooledTeacherPass(cfg);
    return await runTraining(run);
  } finally {
    releasePool();
    disposeState(state);
  }
}

/** Fields a {@linkcode TrainOptions.startFrom} checkpoint may differ in from the caller's. */
const START_FREE: ReadonlySet<string> = new Set(["ema", "snapshots"]);

/**
 * The state of checkpoint `file` for a run with configuration `cfg` (see `startFrom`): refused,
 * one line, unless it was taken with the same seed and configuration (but `ema`, `snapshots`)
 * and no later than the switch. Its EMA weights are dropped when `cfg` has EMA off.
 */
async function startState(
  file: string,
  cfg: StudentConfig,
  classes: string[],
  D: number,
  rng: Rng,
  seed: number,
): Promise<TrainState> {
  if (!(await exists(file))) throw new InputError(`${file}: no such student checkpoint`);
  const { state, config, meta } = await restoreState(file, classes, D, rng);
  const differs = (Object.keys(cfg) as (keyof StudentConfig)[]).filter((k) =>
    !START_FREE.has(k) && JSON.stringify(cfg[k]) !== JSON.stringify(config[k])
  );
  const problem = meta.seed !== seed
    ? `it was trained with seed ${meta.seed}, this run uses ${seed}`
    : differs.length
    ? `its configuration differs in ${differs.join(", ")}`
    : meta.epoch > cfg.switchEpoch
    ? `it is after the switch (epoch ${meta.epoch} > ${cfg.switchEpoch})`
    : null;
  if (problem) {
    disposeState(state);
    throw new InputError(`${file}: cannot start from this checkpoint: ${problem}`);
  }
  if (!cfg.ema) dropEma(state);
  return state;
}

/** What the epochs of one call share (fixed for the call but for the progress count). */
interface Run extends StepContext {
  dataset: Dataset;
  opts: TrainOptions;
  s: TrainState;
  rng: Rng;
  log: (line: string) => void;
  /** The resume checkpoint (none without an output folder). */
  ckptFile: string | null;
  /** What checkpoints record beside the state. */
  id: RunIdentity;
  trainMetas: VideoMeta[];
  metaById: Map<string, VideoMeta>;
  gridLabels: Map<string, GridSegment[]>;
  cache: FeatureCache;
  /** Batch size and optimiser steps per epoch. */
  bsz: number;
  itersPerEpoch: number;
  /** Epochs (completed) after which an EMA snapshot is kept. */
  snapEpochs: number[];
  prog?: ProgressSink;
  /** How the EMA teacher's labels are computed (through the pool when it has work for it). */
  teacherPass?: TeacherPass;
  /** Steps done in this call (progress). */
  done: number;
}

/** Detections kept along the run (restored from the output folder when resumed). */
interface Kept {
  testBeforeSwitch?: Detection[];
  testBeforeSwitchRaw?: Detection[];
  /** Snapshots before the end, with their test detections. */
  snapshots: NonNullable<StudentResult["snapshots"]>;
}

/** Sums over one epoch. */
interface EpochStats {
  loss: number;
  cls: number;
  reg: number;
  mil: number;
  /** Milliseconds on host batches, teacher labels and device steps. */
  ms: { host: number; teacher: number; step: number };
  labels: LabelCount;
  seconds: number;
}

async function prepareRun(
  dataset: Dataset,
  pseudoLabels: Detection[],
  opts: TrainOptions,
  cfg: StudentConfig,
  s: TrainState,
  rng: Rng,
  ckptFile: string | null,
  log: (line: string) => void,
): Promise<Run> {
  // Training reads the network's grid (rows averaged by cfg.downsample); detection keeps the
  // dataset itself, since predictVideo averages the rows it is given.
  const coarse = downsampleDataset(dataset, cfg.downsample ?? 1);
  const trainMetas = coarse.list("train");
  if (trainMetas.length === 0) throw new InputError(`${dataset.root}: no training videos`);
  const metaById = new Map<string, VideoMeta>(trainMetas.map((m) => [m.id, m]));
  const gridLabels = pseudoLabelsToGrid(coarse, trainedLabels(pseudoLabels, cfg, log), log);
  const cache = new FeatureCache(coarse, cfg.cacheMiB * 1024 * 1024);
  const bsz = Math.min(cfg.batch, trainMetas.length);
  const itersPerEpoch = Math.floor(trainMetas.length / bsz);
  const classes = dataset.classes;
  return {
    dataset,
    opts,
    s,
    rng,
    log,
    ckptFile,
    id: { config: cfg, classes, inDim: dataset.featureDim, rng, seed: opts.seed },
    trainMetas,
    metaById,
    gridLabels,
    cache,
    bsz,
    itersPerEpoch,
    snapEpochs: snapshotEpochs(cfg),
    done: 0,
    cfg,
    layout: makeLayout(cfg.maxSeqLen, cfg),
    D: dataset.featureDim,
    K: classes.length,
    decay: new Map(s.specs.map((p) => [p.name, p.decay])),
    warm: Math.round(cfg.warmupEpochs * itersPerEpoch),
    guard: await DivergenceGuard.start(s),
  };
}

/** The pseudo labels the student trains on: all, or without the union labels. */
function trainedLabels(
  labels: Detection[],
  cfg: StudentConfig,
  log: (line: string) => void,
): Detection[] {
  if (!cfg.dropUnionLabels) return labels;
  const unions = unionLabelIndices(labels);
  log(
    `pseudo labels: ${unions.size} of ${labels.length} are unions of two or more labels of ` +
      `their class; trained without them (dropUnionLabels)`,
  );
  return labels.filter((_, i) => !unions.has(i));
}

/**
 * The step's gradients through the worker pool when a step has several micro-batches (same
 * result as {@linkcode accumulatedGrads}); undefined (the main thread alone) otherwise.
 */
function pooledGradients(cfg: StudentConfig): GradientsFn | undefined {
  if (!(cfg.microBatch > 0 && cfg.microBatch < cfg.batch)) return undefined;
  return async (vars, c, layout, D, K, b) => {
    const pool = await poolFor(c);
    return pool
      ? await pooledGrads(pool, vars, c, layout, D, K, b)
      : accumulatedGrads(vars, c, layout, D, K, b);
  };
}

/**
 * The EMA teacher's passes through the worker pool when a batch has several chunks (the step's
 * micro-batches; same labels as {@linkcode localTeacherPass}); undefined (the main thread alone)
 * otherwise.
 */
function pooledTeacherPass(cfg: StudentConfig): TeacherPass | undefined {
  if (!(cfg.ema && cfg.microBatch > 0 && cfg.microBatch < cfg.batch)) return undefined;
  return async (ema, c, chunks, D, K) => {
    const pool = await poolFor(c);
    return pool
      ? await pooledTeacher(
        pool,
        ema,
        c,
        chunks,
        D,
        K,
        (items) => teacherSegments(ema, c, items, D, K),
      )
      : await localTeacherPass(ema, c, chunks, D, K);
  };
}

/** The epochs of this call, then the final detections. */
async function runTraining(run: Run): Promise<TrainOutcome> {
  const { s, cfg, opts } = run;
  const kept = await earlierResults(run);
  const lastEpoch = opts.stopAfterEpochs !== undefined
    ? Math.min(cfg.epochs, s.epoch + opts.stopAfterEpochs)
    : cfg.epochs;
  const evalBefore = opts.evalBeforeSwitch ?? cfg.ema;
  run.prog = opts.progress?.("train student", (cfg.epochs - s.epoch) * run.itersPerEpoch);
  for (let epoch = s.epoch; epoch < lastEpoch; epoch++) {
    await run.guard.checkWeights(s);
    const teacher = cfg.ema && epoch >= cfg.switchEpoch && s.ema !== null;
    if (cfg.ema && epoch === cfg.switchEpoch && evalBefore && !kept.testBeforeSwitch) {
      await detectBeforeSwitch(run, epoch, kept);
    }
    endEpoch(run, epoch, teacher, await runEpoch(run, teacher));
    if (run.snapEpochs.includes(s.epoch)) await keepSnapshot(run, epoch, kept);
    if (opts.outDir && cfg.ema && s.epoch === cfg.switchEpoch) {
      await writeCheckpoint(path.join(opts.outDir, SWITCH_FILE), s, run.id);
    }
    if (run.ckptFile && (s.epoch % cfg.checkpointEvery === 0 || s.epoch === lastEpoch)) {
      await run.guard.checkWeights(s);
      await writeCheckpoint(run.ckptFile, s, run.id);
    }
  }
  run.prog?.done();
  return await finalResult(run, kept);
}

/** Detections an earlier call of a resumed run saved: at the switch, and of its snapshots. */
async function earlierResults(run: Run): Promise<Kept> {
  const { s, cfg, opts } = run;
  const kept: Kept = { snapshots: [] };
  if (opts.outDir && s.epoch >= cfg.switchEpoch) {
    const saved = await readBeforeSwitch(path.join(opts.outDir, BEFORE_SWITCH_FILE));
    kept.testBeforeSwitch = saved?.ema;
    kept.testBeforeSwitchRaw = saved?.raw;
  }
  // EMA snapshots (cfg.snapshots): the ones before the end are detected when taken and their
  // detections kept beside their checkpoint, so a resumed run reports them too.
  kept.snapshots = await savedSnapshots(opts.outDir, cfg, s.epoch);
  return kept;
}

/** Detects the test videos with the EMA (and raw) weights at the switch; saves them. */
async function detectBeforeSwitch(run: Run, epoch: number, kept: Kept): Promise<void> {
  const { s, cfg, opts, dataset } = run;
  const tb = performance.now();
  kept.testBeforeSwitch = await detectSplit(dataset, s.ema!, cfg);
  if (opts.evalRaw) kept.testBeforeSwitchRaw = await detectSplit(dataset, s.vars, cfg);
  run.log(
    `epoch ${epoch}: detected the test videos before the switch (${
      ((performance.now() - tb) / 1000).toFixed(1)
    } s)`,
  );
  if (opts.outDir) {
    await atomicWriteJson(path.join(opts.outDir, BEFORE_SWITCH_FILE), {
      ema: kept.testBeforeSwitch,
      raw: kept.testBeforeSwitchRaw,
    });
  }
}

/** One shuffled pass over the training videos, labels from the EMA teacher when `teacher`. */
async function runEpoch(run: Run, teacher: boolean): Promise<EpochStats> {
  const te = performance.now();
  const order = run.rng.shuffle(run.trainMetas.map((m) => m.id));
  const st: EpochStats = {
    loss: 0,
    cls: 0,
    reg: 0,
    mil: 0,
    ms: { host: 0, teacher: 0, step: 0 },
    labels: { gen: 0, teacher: 0, crops: 0 },
    seconds: 0,
  };
  for (let it = 0; it < run.itersPerEpoch; it++) {
    await trainIteration(run, order.slice(it * run.bsz, (it + 1) * run.bsz), teacher, st);
  }
  st.seconds = (performance.now() - te) / 1000;
  return st;
}

/** One batch of videos `ids`: host side (crops, teacher labels, draws), then the step. */
async function trainIteration(
  run: Run,
  ids: string[],
  teacher: boolean,
  st: EpochStats,
): Promise<void> {
  const { cfg, D, K, rng } = run;
  let tm = performance.now();
  const crops = await cropBatch(
    ids,
    run.metaById,
    run.cache,
    run.gridLabels,
    cfg,
    D,
    rng,
    st.labels,
  );
  if (teacher) {
    st.ms.host += performance.now() - tm;
    tm = performance.now();
    await teacherRelabel(run.s.ema!, cfg, crops, D, K, st.labels, run.teacherPass);
    st.ms.teacher += performance.now() - tm;
    tm = performance.now();
  }
  const batch = hostBatch(crops, run.gridLabels, cfg, run.layout, D, K, rng);
  st.ms.host += performance.now() - tm;
  tm = performance.now();
  const loss = await optimiserStep(run.s, run, batch);
  st.ms.step += performance.now() - tm;
  st.loss += loss.total;
  st.cls += loss.cls;
  st.reg += loss.reg;
  st.mil += loss.mil;
  run.prog?.update(++run.done, `loss ${loss.total.toFixed(3)}`);
}

/** Counts the epoch, appends its mean losses to the curves and logs it. */
function endEpoch(run: Run, epoch: number, teacher: boolean, st: EpochStats): void {
  const { s } = run;
  s.trainSeconds += st.seconds;
  s.epoch = epoch + 1;
  const n = Math.max(1, run.itersPerEpoch);
  for (const [k, val] of Object.entries({ loss: st.loss, cls: st.cls, reg: st.reg, mil: st.mil })) {
    (s.curves[k] ??= []).push({ step: epoch, value: val / n });
  }
  const perCrop = (x: number) => (x / Math.max(1, st.labels.crops)).toFixed(2);
  const sec = (x: number) => (x / 1000).toFixed(1);
  run.log(
    `epoch ${epoch}${teacher ? " (EMA teacher)" : ""}: loss ${(st.loss / n).toFixed(4)} ` +
      `(cls ${(st.cls / n).toFixed(4)}, reg ${(st.reg / n).toFixed(4)}, ` +
      `mil ${(st.mil / n).toFixed(4)}) ${st.seconds.toFixed(1)} s (host ${sec(st.ms.host)}, ` +
      `teacher ${sec(st.ms.teacher)}, step ${sec(st.ms.step)}); ` +
      `labels per crop: pseudo ${perCrop(st.labels.gen)}` +
      (teacher ? `, teacher ${perCrop(st.labels.teacher)}` : ""),
  );
}

/**
 * Keeps the weights after this epoch as a snapshot; one before the end is also detected on the
 * test videos now, its detections saved beside it.
 */
async function keepSnapshot(run: Run, epoch: number, kept: Kept): Promise<void> {
  const { s, cfg, opts } = run;
  const file = opts.outDir ? path.join(opts.outDir, snapshotFile(s.epoch)) : undefined;
  if (file) await writeCheckpoint(file, s, run.id, true);
  if (s.epoch < cfg.epochs && (opts.evalTest ?? true)) {
    const tb = performance.now();
    const test = await detectSplit(run.dataset, s.ema ?? s.vars, cfg);
    const jf = snapshotJson(opts.outDir, s.epoch);
    if (jf) await atomicWriteJson(jf, { epoch: s.epoch, test });
    kept.snapshots.push({ epoch: s.epoch, test, checkpoint: file });
    run.log(
      `epoch ${epoch}: kept snapshot ${snapshotFile(s.epoch)} and detected the test videos ` +
        `(${((performance.now() - tb) / 1000).toFixed(1)} s)`,
    );
  }
}

/** The outcome; when training is complete, with the final detections on the test videos. */
async function finalResult(run: Run, kept: Kept): Promise<TrainOutcome> {
  const { s, cfg, opts, dataset } = run;
  const result: TrainOutcome = {
    test: [],
    testBeforeSwitch: kept.testBeforeSwitch,
    testBeforeSwitchRaw: kept.testBeforeSwitchRaw,
    curves: s.curves,
    checkpoint: run.ckptFile ?? undefined,
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
    const last = opts.outDir && run.snapEpochs.includes(s.epoch)
      ? path.join(opts.outDir, snapshotFile(s.epoch))
      : undefined;
    result.snapshots = [...kept.snapshots, { epoch: s.epoch, test: result.test, checkpoint: last }];
    if (opts.evalRaw && s.ema) result.testRaw = await detectSplit(dataset, s.vars, cfg);
  }
  return result;
}
