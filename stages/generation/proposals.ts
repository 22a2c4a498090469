/**
 * Proposal extraction from the generator's outputs (FuSTAL `CrossVideo-Generator/core/utils.py`):
 * class selection, min-max normalisation, ×24 linear upsampling with tail extrapolation, the CAS
 * and actionness
 * threshold sweeps, grouping into runs, the outer-inner-contrast (OIC) score, time
 * conversion through `datasets/time.ts`, and class-wise greedy NMS with the "+1" convention.
 *
 * Everything here is plain float64 JavaScript on one video's T x C CAS (small): no tensors.
 *
 * @module
 */
import type { Detection } from "../../lib/types.ts";
import type { FeatureGrid } from "../../datasets/types.ts";
import { gridToSeconds } from "../../datasets/time.ts";

/** Constants of the proposal pipeline (defaults: `core/config.py`). */
export interface ProposalConfig {
  /** Class threshold on the video score (0.2). */
  classThresh: number;
  /** Upsampling factor (24). */
  upScale: number;
  /** CAS sweep thresholds (0:0.025:0.225). */
  casThresholds: number[];
  /** Actionness sweep thresholds (0.1:0.025:0.9). */
  actThresholds: number[];
  /** OIC outer-extent ratio λ (0.25). */
  oicLambda: number;
  /** OIC weight γ of the video score (0.2). */
  oicGamma: number;
  /** Minimum run length in upsampled units (2). */
  minRun: number;
  /** NMS IoU threshold (0.5). */
  nmsThresh: number;
}

/** `start + i·step` for i = 0..count−1 (numpy `arange` arithmetic). */
export function arange(start: number, step: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i * step);
}

/** The published proposal constants (`core/config.py`). */
export const DEFAULT_PROPOSAL_CONFIG: Readonly<ProposalConfig> = {
  classThresh: 0.2,
  upScale: 24,
  casThresholds: arange(0, 0.025, 10),
  actThresholds: arange(0.1, 0.025, 33),
  oicLambda: 0.25,
  oicGamma: 0.2,
  minRun: 2,
  nmsThresh: 0.5,
};

/**
 * Min-max normalisation of one sequence: hi = max(0, max v), lo = max(0, min v),
 * d = hi − lo (1 when ≤ 0); out = clip((v − lo)/d, 0, 1).
 */
export function minMaxNormalize(v: ArrayLike<number>): Float64Array {
  let mx = -Infinity, mn = Infinity;
  for (let i = 0; i < v.length; i++) {
    mx = Math.max(mx, v[i]);
    mn = Math.min(mn, v[i]);
  }
  const hi = Math.max(0, mx), lo = Math.max(0, mn);
  let d = hi - lo;
  if (d <= 0) d = 1;
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.min(1, Math.max(0, (v[i] - lo) / d));
  return out;
}

/**
 * Linear upsampling by `scale`: out_u = v interpolated at x = u/scale on the grid 0..T−1, for
 * u < scale·T; beyond T−1 the last segment's slope is extrapolated (no clipping). A length-1
 * sequence (undefined in the reference) is held constant.
 */
export function upsampleLinear(v: ArrayLike<number>, scale: number): Float64Array {
  const T = v.length;
  const out = new Float64Array(T * scale);
  if (T === 1) return out.fill(v[0]);
  for (let u = 0; u < out.length; u++) {
    const x = u / scale;
    const i = Math.min(Math.floor(x), T - 2);
    const f = x - i;
    out[u] = v[i] + f * (v[i + 1] - v[i]);
  }
  return out;
}

/** Maximal runs of consecutive integers of a sorted index list: `[start, end]` pairs. */
export function groupRuns(indices: ArrayLike<number>): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < indices.length; i++) {
    const last = runs[runs.length - 1];
    if (last && indices[i] === last[1] + 1) last[1] = indices[i];
    else runs.push([indices[i], indices[i]]);
  }
  return runs;
}

/**
 * Outer-inner-contrast score of run s..e of `signal` (length U):
 * mean(signal[s..e]) − mean(signal[outer]) + γ·p, where outer = [max(0, trunc(s − λn)), s−1]
 * ∪ [e+1, min(U−1, trunc(e + λn))] (n = e − s + 1) and an empty outer contributes 0.
 */
export function oicScore(
  signal: ArrayLike<number>,
  s: number,
  e: number,
  videoScore: number,
  lambda: number,
  gamma: number,
): number {
  const n = e - s + 1;
  let inner = 0;
  for (let u = s; u <= e; u++) inner += signal[u];
  inner /= n;
  const os = Math.max(0, Math.trunc(s - lambda * n));
  const oe = Math.min(signal.length - 1, Math.trunc(e + lambda * n));
  let sum = 0, cnt = 0;
  for (let u = os; u < s; u++) (sum += signal[u], cnt++);
  for (let u = e + 1; u <= oe; u++) (sum += signal[u], cnt++);
  const outer = cnt ? sum / cnt : 0;
  return inner - outer + gamma * videoScore;
}

/** A proposal in upsampled units (before time conversion). */
export interface RawProposal {
  /** Class id. */
  classId: number;
  /** OIC score. */
  score: number;
  /** First upsampled unit. */
  start: number;
  /** Last upsampled unit (inclusive). */
  end: number;
}

/** A proposal in seconds. */
export interface TimedProposal {
  /** Class id. */
  classId: number;
  /** OIC score. */
  score: number;
  /** Start, seconds. */
  start: number;
  /** End, seconds. */
  end: number;
}

/**
 * Greedy NMS with the "+1" length convention of the reference (`nms` in `core/utils.py`): len = e −
 * s + 1, inter = max(0, min(e) − max(s) + 1), IoU = inter/(len_i + len_j − inter); proposals with
 * IoU ≥ `thresh` to a kept one are removed. Order: descending score, equal scores with the
 * later input first (stable ascending sort, reversed, as numpy's argsort()[::-1] on small
 * inputs).
 */
export function nmsPlusOne<P extends { score: number; start: number; end: number }>(
  props: readonly P[],
  thresh: number,
): P[] {
  const order = props.map((_, i) => i).sort((a, b) => props[a].score - props[b].score || a - b)
    .reverse();
  const removed = new Uint8Array(props.length);
  const keep: P[] = [];
  for (let oi = 0; oi < order.length; oi++) {
    const i = order[oi];
    if (removed[i]) continue;
    const p = props[i];
    keep.push(p);
    const li = p.end - p.start + 1;
    for (let oj = oi + 1; oj < order.length; oj++) {
      const j = order[oj];
      if (removed[j]) continue;
      const q = props[j];
      const inter = Math.max(0, Math.min(p.end, q.end) - Math.max(p.start, q.start) + 1);
      const iou = inter / (li + (q.end - q.start + 1) - inter);
      if (iou >= thresh) removed[j] = 1;
    }
  }
  return keep;
}

/** One video's generator outputs for proposal extraction. */
export interface VideoOutputs {
  /** Row-major T x C class activation sequence (post-ReLU). */
  cas: ArrayLike<number>;
  /** T (sampled length). */
  T: number;
  /** C. */
  C: number;
  /** Video score p (softmax over classes), length C. */
  videoScore: ArrayLike<number>;
  /** L, the number of feature rows of the whole video (for time conversion). */
  L: number;
}

/** Prefix sums: out[i] = Σ_{u<i} v[u] (float64), length U + 1. */
function prefixSums(v: ArrayLike<number>, out: Float64Array): Float64Array {
  out[0] = 0;
  for (let u = 0; u < v.length; u++) out[u + 1] = out[u] + v[u];
  return out;
}

/**
 * Runs of the candidate set {u : sel[u] ≥ θ and sel[u] > 0} and their OIC scores (same value
 * as {@linkcode oicScore}, computed from prefix sums `ps` of the signal). Skips the whole set
 * when it is empty or only {0} (the reference's "any non-zero index" test).
 */
function runsAndScores(
  U: number,
  sel: Float64Array,
  theta: number,
  ps: Float64Array,
  classId: number,
  p: number,
  cfg: ProposalConfig,
  out: RawProposal[],
): void {
  const runs: number[] = [];
  let count = 0, first = -1;
  for (let u = 0; u < U; u++) {
    const x = sel[u];
    if (!(x >= theta && x > 0)) continue;
    if (count === 0) first = u;
    count++;
    if (runs.length && runs[runs.length - 1] === u - 1) runs[runs.length - 1] = u;
    else runs.push(u, u);
  }
  if (count === 0 || (count === 1 && first === 0)) return;
  for (let r = 0; r < runs.length; r += 2) {
    const s = runs[r], e = runs[r + 1], n = e - s + 1;
    if (n < cfg.minRun) continue;
    const inner = (ps[e + 1] - ps[s]) / n;
    const os = Math.max(0, Math.trunc(s - cfg.oicLambda * n));
    const oe = Math.min(U - 1, Math.trunc(e + cfg.oicLambda * n));
    const cnt = Math.max(0, s - os) + Math.max(0, oe - e);
    const outerSum = (s > os ? ps[s] - ps[os] : 0) + (oe > e ? ps[oe + 1] - ps[e + 1] : 0);
    const outer = cnt ? outerSum / cnt : 0;
    out.push({ classId, score: inner - outer + cfg.oicGamma * p, start: s, end: e });
  }
}

/**
 * Proposals of one video in upsampled units, pooled per class in order of first appearance
 * (CAS sweep first, then actionness sweep), before NMS.
 */
export function sweepProposals(
  v: VideoOutputs,
  cfg: ProposalConfig = DEFAULT_PROPOSAL_CONFIG,
): Map<number, RawProposal[]> {
  const { T, C, cas, videoScore } = v;
  let classes: number[] = [];
  for (let c = 0; c < C; c++) if (videoScore[c] >= cfg.classThresh) classes.push(c);
  if (classes.length === 0) {
    let best = 0;
    for (let c = 1; c < C; c++) if (videoScore[c] > videoScore[best]) best = c;
    classes = [best];
  }
  const col = new Float64Array(T);
  const casUp = classes.map((c) => {
    for (let t = 0; t < T; t++) col[t] = cas[t * C + c];
    return upsampleLinear(minMaxNormalize(col), cfg.upScale);
  });
  const act = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += cas[t * C + c];
    act[t] = s;
  }
  const actUp = upsampleLinear(minMaxNormalize(act), cfg.upScale);
  const U = actUp.length;
  const pooled = new Map<number, RawProposal[]>();
  const add = (list: RawProposal[]) => {
    for (const p of list) {
      const l = pooled.get(p.classId);
      if (l) l.push(p);
      else pooled.set(p.classId, [p]);
    }
  };
  const ps = new Float64Array(U + 1);
  for (const theta of cfg.casThresholds) {
    const found: RawProposal[] = [];
    classes.forEach((c, ci) => {
      // Candidates: thresholded CAS > 0; the scoring signal is the thresholded CAS itself.
      const up = casUp[ci];
      ps[0] = 0;
      for (let u = 0; u < U; u++) ps[u + 1] = ps[u] + (up[u] < theta ? 0 : up[u]);
      runsAndScores(U, up, theta, ps, c, videoScore[c], cfg, found);
    });
    add(found);
  }
  const casPs = casUp.map((up) => prefixSums(up, new Float64Array(U + 1)));
  for (const theta of cfg.actThresholds) {
    const found: RawProposal[] = [];
    classes.forEach((c, ci) =>
      runsAndScores(U, actUp, theta, casPs[ci], c, videoScore[c], cfg, found)
    );
    add(found);
  }
  return pooled;
}

/**
 * Seconds of upsampled unit u: snippet position u·L/(scale·T) converted by the video's grid
 * (for the CoLA grid this is u·16L/(24·T·25), `get_proposal_oic`).
 */
export function unitToSeconds(
  grid: FeatureGrid,
  u: number,
  L: number,
  T: number,
  scale: number,
): number {
  return gridToSeconds(grid, (u * L) / (scale * T));
}

/**
 * The whole proposal pipeline (`get_proposal_dict`) for one video: proposals in seconds after
 * class-wise NMS, classes in order of first appearance, within a class by descending score.
 */
export function extractProposals(
  videoId: string,
  v: VideoOutputs,
  grid: FeatureGrid,
  classNames: readonly string[],
  cfg: ProposalConfig = DEFAULT_PROPOSAL_CONFIG,
): Detection[] {
  const out: Detection[] = [];
  for (const [c, raw] of sweepProposals(v, cfg)) {
    const timed: TimedProposal[] = raw.map((p) => ({
      classId: c,
      score: p.score,
      start: unitToSeconds(grid, p.start, v.L, v.T, cfg.upScale),
      end: unitToSeconds(grid, p.end + 1, v.L, v.T, cfg.upScale),
    }));
    for (const p of nmsPlusOne(timed, cfg.nmsThresh)) {
      out.push({ videoId, label: classNames[c], score: p.score, segment: [p.start, p.end] });
    }
  }
  return out;
}
