/**
 * One optimisation step of the generator (FuSTAL `CrossVideo-Generator/train_generator.py`
 * `train_one_step`) and the making of its mini-batch: random-perturb sampling of the batch's
 * videos, embedding dropout and the easy-mining mask drawn from the seeded stream, snippet
 * mining on the CAS, the MIL and contrastive losses (paper Sec. 3.1), gradients and Adam.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import type { Rng } from "../../lib/rng.ts";
import type { FeatureCache } from "../../datasets/feature_cache.ts";
import type { VideoMeta } from "../../datasets/types.ts";
import type { GeneratorConfig } from "./presets.ts";
import {
  type Adam,
  forwardCols,
  forwardPadded,
  type GeneratorParams,
  hostIm2col,
  im2col3,
  padRows,
} from "./model.ts";
import { convRowsAvailable } from "../../lib/blas_conv.ts";
import { leanVariableGrads } from "../../lib/grads.ts";
import { mineCounts, mineSnippets, topKTimeMask } from "./mining.ts";
import { contrastLoss, identicalLabelPairs, milLoss } from "./losses.ts";
import { gatherRows, randomPerturbIndices } from "./sampling.ts";

/** A prepared training batch (host arrays). */
export interface HostBatch {
  /** B x N x D features, row-major. */
  x: Float32Array;
  /** Videos in the batch. */
  B: number;
  /** Weak labels (class ids) of each video. */
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
  // The conv's input, by path: with the native BLAS, the rows zero-padded per video (the conv
  // runs as shifted sgemms, `forwardPadded`); on plain wasm/cpu, im2col on the host (cheaper than
  // tfjs pad/concat/transpose there); on WebGPU the features go up once and im2col runs on the
  // device.
  const onDevice = tf.getBackend() === "webgpu";
  const padded = !onDevice && convRowsAvailable()
    ? tf.tensor3d(padRows(batch.x, B, T, D), [B, T + 2, D])
    : null;
  const host = onDevice || padded ? null : hostIm2col(batch.x, B, T, D);
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
  const { value, grads } = leanVariableGrads(() => {
    const { emb, cas } = padded
      ? forwardPadded(params, padded, drop)
      : forwardCols(params, colsIn ?? im2col3(x!), drop, colsTIn);
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
  // The gradients are keyed by the variables' (auto-generated) names.
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
  for (const t of [x, padded, colsIn, colsTIn]) t?.dispose();
  return { total, cls, inVideo: iv, cross: cv, pairs: pairs.length, gradNorm: gn };
}

/** Builds a training batch: random-perturb sampling of N snippets per video. */
export async function makeBatch(
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
