/**
 * Selection stage (paper Sec. 3.2; FuSTAL `Student-Training/libs/datasets/thumos14.py`,
 * `get_data`): turns a generator's proposals on the training videos into the pseudo labels the
 * student learns from.
 *
 * Built-in filters, each a {@linkcode FilterPlugin} called once per video:
 * - `prior` (default, FuSTAL's prior-based filter): for one video, the IoU matrix over ALL of
 *   its proposals regardless of class, diagonal set to 0; the IoU score of a proposal is its
 *   row sum. Keep a proposal iff `IoU score >= gamma` and `score > eta` (gamma 0.2, eta 0.4;
 *   note `>=` vs `>`, as in the reference code). The prior: true actions draw many
 *   overlapping proposals, false positives tend to be isolated.
 * - `score`: keep iff `score > eta` (the prior filter without its IoU test).
 * - `topk`: keep the `k` highest-scoring proposals of each class in each video (default 5).
 * - `none`: keep everything.
 *
 * Quality of a pseudo-label set ({@linkcode pseudoLabelQuality}) is measured against the
 * training videos' ground truth: detection mAP per tIoU (the exact evaluator of
 * `stages/evaluation.ts`) and precision / recall at tIoU 0.5, defined in that function's doc.
 *
 * Empty videos: a video whose proposals are all filtered out keeps an empty list (it is trained
 * with no positives rather than dropped, see docs/METHOD.md "Selection"), so its key stays in
 * the output file.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";
import type { Detection, GroundTruth, Segment } from "../lib/types.ts";
import type { FilterContext, FilterPlugin } from "../lib/plugin_types.ts";
import type { VideoMeta } from "../datasets/types.ts";
import { evaluateDetections, segmentIoU } from "./evaluation.ts";
import { checkDetections, describePlugin, guardPluginCall } from "../lib/plugin_guard.ts";

export type { Detection, GroundTruth, GroundTruthInstance, Segment } from "../lib/types.ts";
export type { FilterContext, FilterPlugin } from "../lib/plugin_types.ts";
export type { Annotation, FeatureGrid, Split, VideoMeta } from "../lib/dataset_types.ts";

/** Default minimum IoU score (row sum) of the prior filter (paper γ, `get_data`). */
export const DEFAULT_GAMMA = 0.2;
/** Default score threshold, strict (paper η, `get_data`). */
export const DEFAULT_ETA = 0.4;
/** Default k of the `topk` filter. */
export const DEFAULT_TOPK = 5;

/** Options of the built-in filters (each filter reads the ones it needs). */
export interface SelectionOptions {
  /** Prior filter: minimum IoU score, inclusive (default 0.2). */
  gamma?: number;
  /** Prior and score filters: score threshold, strict (default 0.4). */
  eta?: number;
  /** Top-k filter: proposals kept per class per video (default 5). */
  k?: number;
}

function numberOption(options: Record<string, unknown>, name: string, dflt: number): number {
  const v = options[name];
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new InputError(`selection option "${name}" must be a finite number, got ${String(v)}`);
  }
  return v;
}

function kOption(options: Record<string, unknown>): number {
  const k = numberOption(options, "k", DEFAULT_TOPK);
  if (!Number.isInteger(k) || k < 0) {
    throw new InputError(`selection option "k" must be a non-negative integer, got ${k}`);
  }
  return k;
}

/**
 * Overlap of two segments as the reference `calculate_iou_matrix` computes it: intersection over
 * the hull length plus 1e-9 (seconds, no "+1"). For overlapping pairs the hull equals the union, so
 * this is the IoU; the
 * 1e-9 keeps two zero-length proposals at the same time from dividing by zero.
 */
export function hullIoU(a: Segment, b: Segment): number {
  const inter = Math.max(0, Math.min(a[1], b[1]) - Math.max(a[0], b[0]));
  return inter / (Math.max(a[1], b[1]) - Math.min(a[0], b[0]) + 1e-9);
}

/**
 * IoU score of each proposal of ONE video: the row sums of the pairwise IoU matrix over all
 * proposals (every class together), diagonal 0. O(n²) time, O(n) memory (the matrix is never
 * stored: it is symmetric, so each pair is computed once and added to both rows).
 */
export function iouScores(proposals: readonly Detection[]): Float64Array {
  const n = proposals.length;
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = proposals[i].segment;
    for (let j = i + 1; j < n; j++) {
      const o = hullIoU(a, proposals[j].segment);
      s[i] += o;
      s[j] += o;
    }
  }
  return s;
}

/**
 * The prior-based filter on ONE video's proposals: keep i iff `iouScore_i >= gamma` and
 * `score_i > eta`. Order is preserved.
 */
export function priorFilter(
  proposals: readonly Detection[],
  options: SelectionOptions = {},
): Detection[] {
  const gamma = numberOption(options as Record<string, unknown>, "gamma", DEFAULT_GAMMA);
  const eta = numberOption(options as Record<string, unknown>, "eta", DEFAULT_ETA);
  const r = iouScores(proposals);
  return proposals.filter((p, i) => r[i] >= gamma && p.score > eta);
}

/** Score-only filter on one video: keep iff `score > eta`. Order is preserved. */
export function scoreFilter(
  proposals: readonly Detection[],
  options: SelectionOptions = {},
): Detection[] {
  const eta = numberOption(options as Record<string, unknown>, "eta", DEFAULT_ETA);
  return proposals.filter((p) => p.score > eta);
}

/**
 * Top-k per class on one video: the `k` highest-scoring proposals of each label (equal scores:
 * the earlier proposal first). Input order is preserved among the kept ones.
 */
export function topkFilter(
  proposals: readonly Detection[],
  options: SelectionOptions = {},
): Detection[] {
  const k = kOption(options as Record<string, unknown>);
  const byLabel = new Map<string, number[]>();
  proposals.forEach((p, i) => {
    const l = byLabel.get(p.label);
    if (l) l.push(i);
    else byLabel.set(p.label, [i]);
  });
  const keep = new Uint8Array(proposals.length);
  for (const idx of byLabel.values()) {
    idx.sort((a, b) => (proposals[b].score - proposals[a].score) || (a - b));
    for (const i of idx.slice(0, k)) keep[i] = 1;
  }
  return proposals.filter((_, i) => keep[i] === 1);
}

/** The built-in `prior` filter as a plugin (options `gamma`, `eta`). */
export const priorFilterPlugin: FilterPlugin = {
  kind: "filter",
  name: "prior",
  description: "FuSTAL prior: keep iff IoU score (row sum, all classes) >= gamma and score > eta",
  options: {
    gamma: `minimum IoU score (default ${DEFAULT_GAMMA})`,
    eta: `score threshold, strict (default ${DEFAULT_ETA})`,
  },
  apply: (proposals, ctx) => priorFilter(proposals, ctx.options as SelectionOptions),
};

/** The built-in `score` filter as a plugin (option `eta`). */
export const scoreFilterPlugin: FilterPlugin = {
  kind: "filter",
  name: "score",
  description: "keep iff score > eta",
  options: { eta: `score threshold, strict (default ${DEFAULT_ETA})` },
  apply: (proposals, ctx) => scoreFilter(proposals, ctx.options as SelectionOptions),
};

/** The built-in `topk` filter as a plugin (option `k`). */
export const topkFilterPlugin: FilterPlugin = {
  kind: "filter",
  name: "topk",
  description: "keep the k best proposals of each class in each video",
  options: { k: `proposals kept per class and video (default ${DEFAULT_TOPK})` },
  apply: (proposals, ctx) => topkFilter(proposals, ctx.options as SelectionOptions),
};

/** The built-in `none` filter: keeps every proposal. */
export const noneFilterPlugin: FilterPlugin = {
  kind: "filter",
  name: "none",
  description: "keep every proposal",
  apply: (proposals) => [...proposals],
};

/** Groups detections by video, videos in order of first appearance, order kept inside. */
export function groupByVideo(dets: readonly Detection[]): Map<string, Detection[]> {
  const m = new Map<string, Detection[]>();
  for (const d of dets) {
    const l = m.get(d.videoId);
    if (l) l.push(d);
    else m.set(d.videoId, [d]);
  }
  return m;
}

/** Extra inputs of {@linkcode selectByVideo}. */
export interface SelectRunOptions {
  /** Filter options handed to every call as `context.options`. */
  options?: Record<string, unknown>;
  /** Video metadata by id, handed as `context.video` when present. */
  videos?: ReadonlyMap<string, VideoMeta>;
}

/**
 * Filters proposals video by video through `filter`: one `apply` call per video (in map
 * order, awaited one at a time), each with that video's proposals. A plugin that throws or
 * returns something other than a list of proposals becomes an {@linkcode InputError} naming
 * the plugin, its module (when loaded from one) and the video. Videos whose proposals are all
 * removed stay in the result with an empty list.
 */
export async function selectByVideo(
  byVideo: ReadonlyMap<string, readonly Detection[]>,
  filter: FilterPlugin,
  run: SelectRunOptions = {},
): Promise<Map<string, Detection[]>> {
  const out = new Map<string, Detection[]>();
  const options = run.options ?? {};
  for (const [videoId, props] of byVideo) {
    const context: FilterContext = { videoId, options, video: run.videos?.get(videoId) };
    const kept = await guardPluginCall(
      filter,
      "apply",
      () =>
        filter.apply(props.map((p) => ({ ...p, segment: [p.segment[0], p.segment[1]] })), context),
      `video ${videoId}`,
    );
    // Checked at the registry boundary: a list of this video's proposals, none reversed,
    // non-finite or outside the video (when its duration is known).
    out.set(
      videoId,
      checkDetections(
        kept,
        `${describePlugin(filter)}: apply on video ${videoId}`,
        context.video ? new Map([[videoId, context.video]]) : undefined,
        videoId,
      ),
    );
  }
  return out;
}

/**
 * Filters a flat proposal list through `filter`, video by video (see
 * {@linkcode selectByVideo}); the result is flat again, videos in order of first appearance.
 */
export async function selectProposals(
  proposals: readonly Detection[],
  filter: FilterPlugin,
  run: SelectRunOptions = {},
): Promise<Detection[]> {
  const byVideo = await selectByVideo(groupByVideo(proposals), filter, run);
  return [...byVideo.values()].flat();
}

/** Precision / recall of a proposal set at one tIoU (see {@linkcode matchProposals}). */
export interface MatchStats {
  /** The tIoU threshold. */
  tiou: number;
  /** Number of proposals. */
  proposals: number;
  /** Number of ground-truth instances. */
  instances: number;
  /** Proposals matched one-to-one to a ground-truth instance. */
  matched: number;
  /** matched / proposals (0 when there are no proposals). */
  precision: number;
  /** matched / instances (0 when there are no instances). */
  recall: number;
}

/**
 * Precision and recall of a proposal set against ground truth at tIoU `tiou` (default 0.5).
 *
 * Definition (greedy one-to-one matching by score): proposals are visited by descending
 * score (equal scores: the later proposal first, the evaluator's order); each is matched to
 * the not-yet-matched ground-truth instance of the SAME video and SAME class with the highest
 * IoU, when that IoU is >= `tiou`. Each instance is matched at most once. Then
 * precision = matched / all proposals and recall = matched instances / all instances.
 * Proposals on videos or of classes without ground truth count as unmatched. Apart from
 * pooling all classes, this is the last point of the evaluator's precision-recall curve.
 */
export function matchProposals(
  gt: GroundTruth,
  proposals: readonly Detection[],
  tiou = 0.5,
): MatchStats {
  const flags = matchFlags(gt, proposals, tiou);
  let matched = 0;
  for (const f of flags) matched += f;
  const instances = gt.instances.length;
  return {
    tiou,
    proposals: proposals.length,
    instances,
    matched,
    precision: proposals.length ? matched / proposals.length : 0,
    recall: instances ? matched / instances : 0,
  };
}

/**
 * Which proposals the matching of {@linkcode matchProposals} accepts: 1 for a proposal
 * matched to a ground-truth instance at `tiou`, else 0 (same order as `proposals`).
 */
export function matchFlags(
  gt: GroundTruth,
  proposals: readonly Detection[],
  tiou = 0.5,
): Uint8Array {
  const gtByKey = new Map<string, Segment[]>();
  for (const g of gt.instances) {
    const key = `${g.videoId}\u0000${g.label}`;
    const l = gtByKey.get(key);
    if (l) l.push(g.segment);
    else gtByKey.set(key, [g.segment]);
  }
  const used = new Map<string, Uint8Array>();
  for (const [k, l] of gtByKey) used.set(k, new Uint8Array(l.length));
  const order = proposals.map((_, i) => i);
  order.sort((a, b) => (proposals[b].score - proposals[a].score) || (b - a));
  const flags = new Uint8Array(proposals.length);
  for (const i of order) {
    const p = proposals[i];
    const key = `${p.videoId}\u0000${p.label}`;
    const cands = gtByKey.get(key);
    if (!cands) continue;
    const u = used.get(key)!;
    let best = -1;
    let bestIoU = -Infinity;
    for (let j = 0; j < cands.length; j++) {
      if (u[j]) continue;
      const o = segmentIoU(p.segment, cands[j]);
      if (o > bestIoU) {
        bestIoU = o;
        best = j;
      }
    }
    if (best >= 0 && bestIoU >= tiou) {
      u[best] = 1;
      flags[i] = 1;
    }
  }
  return flags;
}

/** Pseudo-label quality: detection mAP plus precision / recall at one tIoU. */
export interface PseudoLabelQuality {
  /** Thresholds of `mAP`. */
  tiou: number[];
  /** mAP per threshold (evaluator of `stages/evaluation.ts`). */
  mAP: number[];
  /** Mean of `mAP`. */
  average: number;
  /** Precision at tIoU `matchTiou` ({@linkcode matchProposals}). */
  precision: number;
  /** Recall at tIoU `matchTiou`. */
  recall: number;
  /** Number of proposals scored. */
  proposals: number;
  /** Proposals matched at `matchTiou`. */
  matched: number;
  /** Ground-truth instances. */
  instances: number;
  /** Threshold of precision / recall (0.5). */
  matchTiou: number;
}

/**
 * Quality of a pseudo-label set on the training videos: mAP per tIoU and its average (as if
 * the proposals were detections; mAP rewards good ranking, so a filter that only removes
 * proposals can lower it by lowering recall) plus precision and recall at `matchTiou`
 * (default 0.5) by {@linkcode matchProposals}.
 */
export function pseudoLabelQuality(
  gt: GroundTruth,
  proposals: readonly Detection[],
  options: { tiou?: readonly number[]; matchTiou?: number; onWarning?: (m: string) => void } = {},
): PseudoLabelQuality {
  const e = evaluateDetections(gt, proposals, {
    tiou: options.tiou,
    onWarning: options.onWarning,
  });
  const m = matchProposals(gt, proposals, options.matchTiou ?? 0.5);
  return {
    tiou: e.tiou,
    mAP: e.mAP,
    average: e.average,
    precision: m.precision,
    recall: m.recall,
    proposals: m.proposals,
    matched: m.matched,
    instances: m.instances,
    matchTiou: m.tiou,
  };
}
