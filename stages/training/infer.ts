/**
 * Inference and post-processing (TriDet `meta_archs.py`, `TriDet.inference`), shared by `predict`,
 * the test evaluation and the EMA teacher: whole video padded to `maxSeqLen` (or the next multiple
 * of the largest stride),
 * per-level pre-NMS threshold and top-k, trident decoding of the kept (point, class) pairs,
 * minimum length, per-class Soft-NMS (or plain NMS), a cap per video, and seconds through
 * `datasets/time.ts` clamped to [0, duration].
 *
 * Ties: candidates of a level are ordered by descending probability, equal values by their
 * position-major/class-minor index; the final merge is a stable sort by descending score.
 *
 * The split-level helpers of the evaluation live here too: the detections of every video of a
 * split ({@linkcode detectSplit}) and the ground truth they are scored against
 * ({@linkcode groundTruthOf}).
 *
 * @module
 */
import { type Tensor, tf } from "../../deps.ts";
import type { ProgressSink } from "../../lib/plugin_types.ts";
import type { Detection, GroundTruth } from "../../lib/types.ts";
import type { Dataset, FeatureGrid, VideoFeatures } from "../../datasets/types.ts";
import { gridToSeconds } from "../../datasets/time.ts";
import { averageRows, downsampleGrid } from "../../datasets/downsample.ts";
import { groundTruthFromVideos } from "../evaluation.ts";
import { decodePoint } from "./decode.ts";
import { forward, type Layout, makeLayout } from "./model.ts";
import { hardNms, type Scored, softNms } from "./nms.ts";
import type { StudentConfig } from "./presets.ts";
import { holdPool, POOL_MIN_VIDEOS, pooledDetect, poolFor } from "./pool.ts";

/** A detection on the level-0 grid of the input window. */
export interface GridDetection {
  /** Class id. */
  c: number;
  score: number;
  /** Start / end in level-0 grid rows. */
  a: number;
  b: number;
}

/** Raw head outputs of one item (host arrays, concatenated layout). */
export interface RawOutput {
  cls: Float32Array;
  start: Float32Array;
  end: Float32Array;
  off: Float32Array;
  layout: Layout;
  len: number;
}

// Scratch of postprocess's per-level candidate scan (grown to the largest level seen).
let scratchIdx = new Int32Array(0);
let scratchVal = new Float32Array(0);

/** Padded length used at inference for a sequence of `len` rows. */
export function inferenceLength(len: number, cfg: StudentConfig): number {
  const div = 2 ** (cfg.levels - 1);
  if (len <= cfg.maxSeqLen) return cfg.maxSeqLen;
  return Math.ceil(len / div) * div;
}

/**
 * Runs the network in eval mode on items padded to a common `t0` (each item's rows copied,
 * the rest zero) and returns host arrays per item.
 */
export async function runNetwork(
  params: Record<string, tf.Tensor>,
  cfg: StudentConfig,
  items: { data: Float32Array; length: number }[],
  dim: number,
  t0: number,
): Promise<RawOutput[]> {
  const x = new Float32Array(items.length * t0 * dim);
  items.forEach((it, i) => x.set(it.data.subarray(0, it.length * dim), i * t0 * dim));
  const lens = items.map((it) => it.length);
  const layout = makeLayout(t0, cfg);
  const [cls, start, end, off] = tf.tidy(() => {
    const o = forward(params, cfg, { x, lens, t0, dim }, false);
    return [o.cls, o.start, o.end, o.off];
  });
  // Asynchronous reads: WebGPU in Deno cannot read tensors synchronously.
  const host = await Promise.all(
    [cls, start, end, off].map(async (t) => (await t.data()) as Float32Array),
  );
  tf.dispose([cls, start, end, off]);
  const K = cls.shape[2];
  const L = layout.total;
  const no = off.shape[2];
  return items.map((it, i) => ({
    cls: host[0].subarray(i * L * K, (i + 1) * L * K),
    start: host[1].subarray(i * L * K, (i + 1) * L * K),
    end: host[2].subarray(i * L * K, (i + 1) * L * K),
    off: host[3].subarray(i * L * no, (i + 1) * L * no),
    layout,
    len: it.length,
  }));
}

/**
 * Post-processes one item's raw outputs into detections on its level-0 grid.
 *
 * `minProb` (EMA teacher) skips candidates whose probability is <= it: Soft-NMS only lowers
 * scores, and a candidate can be emitted before one that ends above `minProb` only if its own
 * score is higher, so the detections that end above `minProb` are exactly those of the full
 * run. When none survives, the single most probable candidate (which Soft-NMS emits first,
 * undecayed) is returned, as the teacher's keep-at-least-one rule needs.
 *
 * `classes` (EMA teacher with `teacherWeakLabels`) keeps only those class ids. NMS runs per
 * class, so this equals dropping the other classes' detections afterwards, except that the
 * per-level top-k and the per-video cap are spent on the kept classes only.
 */
export function postprocess(
  raw: RawOutput,
  numClasses: number,
  cfg: StudentConfig,
  minProb = 0,
  classes?: ReadonlySet<number>,
): GridDetection[] {
  const { layout, len } = raw;
  const K = numClasses;
  const nb = cfg.numBins;
  const cands: GridDetection[] = [];
  const floor = Math.max(cfg.preNmsThresh, minProb);
  const logit = (p: number) => Math.log(p / (1 - p));
  const lFloor = logit(floor);
  const lPre = logit(cfg.preNmsThresh);
  let bestZ = -Infinity;
  let bestAt: { l: number; i: number } | null = null;
  for (let l = 0; l < layout.lengths.length; l++) {
    const s = layout.strides[l];
    const o = layout.offsets[l];
    // Work on logits (monotone in the probability): collect those above the floor into
    // typed scratch arrays, then cut to the top-k with a native typed-array sort instead of
    // sorting every candidate. (Objects per candidate made this loop cost as much as the
    // network's forward pass in a detection pass.)
    const cap = layout.lengths[l] * K;
    if (scratchIdx.length < cap) {
      scratchIdx = new Int32Array(cap);
      scratchVal = new Float32Array(cap);
    }
    const idx = scratchIdx, val = scratchVal;
    let m = 0;
    for (let t = 0; t < layout.lengths[l] && t * s < len; t++) {
      for (let c = 0; c < K; c++) {
        if (classes && !classes.has(c)) continue;
        const z = raw.cls[(o + t) * K + c];
        if (z > lFloor) {
          idx[m] = t * K + c;
          val[m++] = z;
        } else if (minProb > 0 && z > lPre && z > bestZ) {
          bestZ = z;
          bestAt = { l, i: t * K + c };
        }
      }
    }
    let cut = -Infinity;
    if (m > cfg.preNmsTopk) cut = val.slice(0, m).sort()[m - cfg.preNmsTopk];
    const keptI: number[] = [];
    const keptP: number[] = [];
    for (let q = 0; q < m; q++) {
      if (val[q] >= cut) {
        keptI.push(idx[q]);
        keptP.push(1 / (1 + Math.exp(-val[q])));
      }
    }
    // By descending probability, equal ones by index (the candidates were collected in index
    // order).
    const order = Array.from(keptI.keys()).sort((x, y) => keptP[y] - keptP[x] || x - y);
    const n = Math.min(order.length, cfg.preNmsTopk);
    for (let r = 0; r < n; r++) {
      const i = keptI[order[r]];
      const t = Math.floor(i / K);
      const c = i % K;
      const [dl, dr] = decodePoint(raw.start, raw.end, raw.off, layout.total, K, nb, o + t, c);
      const a = (t - dl) * s;
      const b = (t + dr) * s;
      if (b - a > cfg.durationThresh) cands.push({ c, score: keptP[order[r]], a, b });
    }
  }
  const byClass = new Map<number, Scored[]>();
  for (const d of cands) {
    const lst = byClass.get(d.c);
    if (lst) lst.push(d);
    else byClass.set(d.c, [d]);
  }
  const out: GridDetection[] = [];
  for (const [c, lst] of [...byClass.entries()].sort((x, y) => x[0] - y[0])) {
    const kept = cfg.nmsMethod === "soft"
      ? softNms(lst, cfg.nmsSigma, cfg.minScore, cfg.maxSegPerClass)
      : hardNms(lst, cfg.nmsIouThresh, cfg.maxSegPerClass);
    for (const k of kept) out.push({ c, score: k.score, a: k.a, b: k.b });
  }
  out.sort((x, y) => y.score - x.score);
  if (out.length === 0 && bestAt) {
    // Teacher fallback: the most probable candidate below the floor, decoded alone.
    const s = layout.strides[bestAt.l];
    const t = Math.floor(bestAt.i / K);
    const c = bestAt.i % K;
    const row = layout.offsets[bestAt.l] + t;
    const [dl, dr] = decodePoint(raw.start, raw.end, raw.off, layout.total, K, nb, row, c);
    if ((dl + dr) * s > cfg.durationThresh) {
      return [{ c, score: 1 / (1 + Math.exp(-bestZ)), a: (t - dl) * s, b: (t + dr) * s }];
    }
  }
  return out.slice(0, cfg.maxSegNum);
}

/** Converts grid detections of a video to {@linkcode Detection}s in seconds in [0, duration]. */
export function toSeconds(
  dets: GridDetection[],
  videoId: string,
  grid: FeatureGrid,
  duration: number,
  classes: string[],
): Detection[] {
  const clamp = (v: number) => Math.min(Math.max(v, 0), duration);
  return dets.map((d) => ({
    videoId,
    label: classes[d.c],
    score: d.score,
    segment: [clamp(gridToSeconds(grid, d.a)), clamp(gridToSeconds(grid, d.b))],
  }));
}

/**
 * Detections of one whole video (features of any length, on the dataset's own grid), in
 * seconds. Rows are averaged by `cfg.downsample` here, so callers pass raw features.
 */
export async function predictVideo(
  params: Record<string, Tensor>,
  cfg: StudentConfig,
  feats: VideoFeatures,
  video: { id: string; grid: FeatureGrid; duration: number },
  classes: string[],
): Promise<Detection[]> {
  // The network's grid: rows averaged by `cfg.downsample` (the one place inference applies it).
  const f = averageRows(feats, cfg.downsample ?? 1);
  const t0 = inferenceLength(f.length, cfg);
  const [raw] = await runNetwork(params, cfg, [f], f.dim, t0);
  return toSeconds(
    postprocess(raw, classes.length, cfg),
    video.id,
    downsampleGrid(video.grid, cfg.downsample ?? 1),
    video.duration,
    classes,
  );
}

/**
 * Runs the student on every video of `split` (default: test); returns detections in seconds,
 * video by video in the dataset's order. With workers (`pool.ts`, a split of at least
 * {@linkcode POOL_MIN_VIDEOS} videos) the videos are spread over the threads; the detections
 * are the same.
 */
export async function detectSplit(
  dataset: Dataset,
  params: Record<string, Tensor>,
  cfg: StudentConfig,
  split: "train" | "test" = "test",
  progress?: ProgressSink,
): Promise<Detection[]> {
  const release = holdPool();
  try {
    const pool = dataset.list(split).length >= POOL_MIN_VIDEOS ? await poolFor(cfg) : null;
    if (pool) {
      const per = await pooledDetect(
        pool,
        dataset.videos(split),
        params,
        cfg,
        dataset.classes,
        (v) => predictVideo(params, cfg, v.features, v.meta, dataset.classes),
        progress,
      );
      progress?.done();
      return per.flat();
    }
    const out: Detection[] = [];
    let n = 0;
    for await (const { meta, features } of dataset.videos(split)) {
      for (const d of await predictVideo(params, cfg, features, meta, dataset.classes)) {
        out.push(d);
      }
      progress?.update(++n);
    }
    progress?.done();
    return out;
  } finally {
    release();
  }
}

/** Ground truth of the videos of a split (for evaluation only; never used in training). */
export function groundTruthOf(dataset: Dataset, split: "train" | "test"): GroundTruth {
  return groundTruthFromVideos(dataset.list(split));
}
