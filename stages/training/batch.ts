/**
 * Host-side batches of the student (FuSTAL `Student-Training/libs/datasets/thumos14.py`
 * `__getitem__`, `libs/modeling/meta_archs.py` `preprocessing` / `label_points`; the EMA teacher's
 * relabelling, paper Sec. 3.3): pseudo labels on the feature grid, random crops of the training
 * videos, the EMA teacher's labels for the crops, input noise, drop-path and MIL-dropout draws,
 * the per-point targets and the weak video labels.
 *
 * Every random draw comes from the run's stream, in a fixed order (crops, then noise, drop-path,
 * MIL dropout), so a resumed run draws the same batches.
 *
 * @module
 */
import type { tf } from "../../deps.ts";
import { InputError } from "../../lib/errors.ts";
import type { Rng } from "../../lib/rng.ts";
import type { Detection } from "../../lib/types.ts";
import type { Dataset, VideoMeta } from "../../datasets/types.ts";
import type { FeatureCache } from "../../datasets/feature_cache.ts";
import { gridExtent, gridToSeconds, secondsToGrid } from "../../datasets/time.ts";
import { cropWindow } from "./augment.ts";
import { assignTargets, type GridSegment } from "./assign.ts";
import { postprocess, runNetwork } from "./infer.ts";
import type { Layout } from "./model.ts";
import type { StudentConfig } from "./presets.ts";
import type { HostBatch } from "./step.ts";
import type { TeacherCrop, TeacherLabels } from "./pool.ts";

export type { TeacherCrop, TeacherLabels } from "./pool.ts";

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

/** Labels per crop, counted over an epoch (for the log). */
export interface LabelCount {
  /** Generator (pseudo) labels kept by the crops. */
  gen: number;
  /** Teacher labels of the relabelled crops. */
  teacher: number;
  /** Crops taken. */
  crops: number;
}

/** The crops of one batch: feature windows, their labels (grid rows of the window), videos. */
export interface Crops {
  /** Feature rows of each crop (`length` rows of D). */
  wins: { data: Float32Array; length: number }[];
  /** Segments of each crop, in the crop's rows. */
  segs: GridSegment[][];
  /** The cropped videos. */
  metas: VideoMeta[];
}

/**
 * A random crop of at most `cfg.maxSeqLen` rows of each video `ids` with its pseudo labels
 * (`gridLabels`), features through `cache`.
 */
export async function cropBatch(
  ids: string[],
  metaById: Map<string, VideoMeta>,
  cache: FeatureCache,
  gridLabels: Map<string, GridSegment[]>,
  cfg: StudentConfig,
  D: number,
  rng: Rng,
  count: LabelCount,
): Promise<Crops> {
  const out: Crops = { wins: [], segs: [], metas: [] };
  for (const id of ids) {
    const meta = metaById.get(id)!;
    const f = await cache.get(id);
    const crop = cropWindow(
      f.length,
      gridLabels.get(id) ?? [],
      cfg.maxSeqLen,
      cfg.cropRatio,
      cfg.truncThresh,
      rng,
    );
    out.wins.push({
      data: f.data.subarray(crop.start * D, (crop.start + crop.length) * D),
      length: crop.length,
    });
    out.segs.push(crop.segs);
    count.gen += crop.segs.length;
    count.crops++;
    out.metas.push(meta);
  }
  return out;
}

/**
 * How the teacher's passes are run: the labels of every chunk of crops, chunk by chunk (the
 * main thread alone, {@linkcode localTeacherPass}, or spread over the worker pool).
 */
export type TeacherPass = (
  ema: Record<string, tf.Tensor>,
  cfg: StudentConfig,
  chunks: TeacherCrop[][],
  D: number,
  K: number,
) => Promise<TeacherLabels[][]>;

/**
 * The crop ranges `[lo, hi)` of a batch of `n` crops that the teacher runs through the network
 * together: micro-batches of `cfg.microBatch` crops as the step's gradients use
 * (`step.ts` `microBatches`), else the whole batch. They depend on the configuration only, never
 * on the number of threads, so the labels do not either.
 */
export function teacherChunks(cfg: StudentConfig, n: number): [number, number][] {
  const m = cfg.microBatch > 0 && cfg.microBatch < n ? cfg.microBatch : n;
  const out: [number, number][] = [];
  for (let lo = 0; lo < n; lo += m) out.push([lo, Math.min(n, lo + m)]);
  return out;
}

/**
 * The EMA teacher's labels of `items`, run through the network together: per crop, its
 * detections above `cfg.teacherThresh` (at least its best one) as segments of the crop's rows,
 * restricted to the video's weak labels with `cfg.teacherWeakLabels`; null where the teacher
 * detects nothing (TriDet `meta_archs.py` `inference` on the crop, FuSTAL paper Sec. 3.3).
 */
export async function teacherSegments(
  ema: Record<string, tf.Tensor>,
  cfg: StudentConfig,
  items: TeacherCrop[],
  D: number,
  K: number,
): Promise<TeacherLabels[]> {
  const raws = await runNetwork(ema, cfg, items, D, cfg.maxSeqLen);
  return raws.map((raw, i) => {
    const weakIds = items[i].labels;
    const allowed = cfg.teacherWeakLabels && weakIds.length ? new Set(weakIds) : undefined;
    const dets = postprocess(raw, K, cfg, cfg.teacherThresh, allowed);
    if (dets.length === 0) return null; // clean per-video fallback to the generator labels
    let keep = dets.filter((d) => d.score > cfg.teacherThresh);
    if (keep.length === 0) keep = [dets[0]];
    const { grid: g, duration: dur } = items[i];
    const round = (x: number) =>
      Math.max(0, secondsToGrid(g, Math.min(Math.max(gridToSeconds(g, x), 0), dur)));
    return keep.map((d) => ({ a: round(d.a), b: round(d.b), c: d.c }));
  });
}

/** {@linkcode TeacherPass} on the main thread: the chunks one after the other. */
export const localTeacherPass: TeacherPass = async (ema, cfg, chunks, D, K) => {
  const out: TeacherLabels[][] = [];
  for (const c of chunks) out.push(await teacherSegments(ema, cfg, c, D, K));
  return out;
};

/**
 * Replaces the labels of `crops` by the EMA teacher's ({@linkcode teacherSegments}), computed
 * in the chunks of {@linkcode teacherChunks} by `pass` (default: the main thread). A crop on
 * which the teacher detects nothing keeps its generator labels.
 */
export async function teacherRelabel(
  ema: Record<string, tf.Tensor>,
  cfg: StudentConfig,
  crops: Crops,
  D: number,
  K: number,
  count: LabelCount,
  pass: TeacherPass = localTeacherPass,
): Promise<void> {
  const items: TeacherCrop[] = crops.wins.map((w, i) => ({
    data: w.data,
    length: w.length,
    labels: crops.metas[i].labels,
    grid: crops.metas[i].grid,
    duration: crops.metas[i].duration,
  }));
  const chunks = teacherChunks(cfg, items.length).map(([lo, hi]) => items.slice(lo, hi));
  const labels = (await pass(ema, cfg, chunks, D, K)).flat();
  labels.forEach((segs, i) => {
    if (!segs) return;
    crops.segs[i] = segs;
    count.teacher += segs.length;
  });
}

/**
 * The batch of `crops` as the step needs it: the windows padded to `cfg.maxSeqLen` rows plus
 * input noise, the drop-path and MIL-dropout draws, the per-point targets on `layout` and the
 * weak labels (the video's, else the classes of its pseudo labels in `gridLabels`).
 */
export function hostBatch(
  crops: Crops,
  gridLabels: Map<string, GridSegment[]>,
  cfg: StudentConfig,
  layout: Layout,
  D: number,
  K: number,
  rng: Rng,
): HostBatch {
  const bsz = crops.wins.length;
  const t0 = cfg.maxSeqLen;
  const x = new Float32Array(bsz * t0 * D);
  crops.wins.forEach((w, i) => x.set(w.data, i * t0 * D));
  if (cfg.inputNoise > 0) {
    for (let i = 0; i < x.length; i++) x[i] += cfg.inputNoise * rng.normal();
  }
  const lens = crops.wins.map((w) => w.length);
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
  const cls = new Float32Array(bsz * layout.total * K);
  const reg = new Float32Array(bsz * layout.total * 2);
  let numPos = 0;
  crops.segs.forEach((segs, i) => {
    const tg = assignTargets(segs, layout, lens[i], K, cfg.regressionRanges, cfg.centerRadius);
    cls.set(tg.cls, i * layout.total * K);
    reg.set(tg.reg, i * layout.total * 2);
    numPos += tg.numPos;
  });
  const weak = new Float32Array(bsz * K);
  crops.metas.forEach((meta, i) => {
    const labs = meta.labels;
    const src = labs.length ? labs : [...new Set((gridLabels.get(meta.id) ?? []).map((g) => g.c))];
    for (const c of src) weak[i * K + c] = 1;
  });
  return { x, lens, dropPath, milKeep, cls, reg, weak, numPos };
}
