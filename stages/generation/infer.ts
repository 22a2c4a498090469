/**
 * The generator's inference and evaluation (FuSTAL `CrossVideo-Generator/train_generator.py`
 * `test_all`): eval-mode CAS of whole videos (uniform sampling), video scores, proposals
 * (`get_proposal_dict`, `core/utils.py`), exact-match classification accuracy and the mAP of
 * the proposals against a split's annotations.
 *
 * @module
 */
import type { Detection } from "../../lib/types.ts";
import type { FeatureCache } from "../../datasets/feature_cache.ts";
import type { Dataset, VideoMeta } from "../../datasets/types.ts";
import {
  type EvalResult,
  evaluateDetections,
  groundTruthFromVideos,
  tiouFor,
} from "../evaluation.ts";
import type { GeneratorConfig } from "./presets.ts";
import { type GeneratorParams, inferCas } from "./model.ts";
import { mineCounts, topKIndices } from "./mining.ts";
import { gatherRows, uniformIndices } from "./sampling.ts";
import { extractProposals } from "./proposals.ts";

/** tIoU thresholds for a dataset: the config's, else the dataset's ({@linkcode tiouFor}). */
export function tiousFor(ds: Dataset, cfg: GeneratorConfig): number[] {
  return cfg.tiou ?? tiouFor(ds.layout, ds.classes.length);
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

/** Proposals (`get_proposal_dict`, FuSTAL `core/utils.py`) of inferred videos, in input order. */
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
    tiou: tiousFor(ds, cfg),
  });
  return { detections, eval: ev, accuracy: exactMatchAccuracy(inf, ds.classes.length) };
}
