/**
 * Generator losses (FuSTAL `CrossVideo-Generator/core/loss.py`): the MIL classification loss, the
 * NCE of the snippet contrast, the pairing rule of the cross-video contrast, and the combined
 * contrastive term.
 *
 * The contrast is computed for every (query video, key video) combination of the batch at
 * once: one [B·T, H] × [H, 2B] matMul scores every normalised snippet embedding against every
 * video's two queries (mean hard action, mean hard background). The in-video term keeps the
 * diagonal, the cross-video term the pairs of the pairing rule; a weight matrix selects them.
 * Negatives are chosen by masking logits (adding −1e4 to non-selected snippets) instead of
 * gathering, because tfjs-wasm has no gather gradient.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import { matMulExplicit } from "./model.ts";

/** L2-normalise along the last axis: x / √(‖x‖² + ε²), ε = 1e-12 (≈ x / max(‖x‖, ε), but
 * with a finite gradient at an all-zero row, which ReLU embeddings can produce). */
export function l2normalize(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.rsqrt(tf.add(tf.sum(tf.square(x), -1, true), 1e-24)));
}

/**
 * Multi-label MIL loss (`ActionLoss`; `CoLA.get_video_cls_scores` in `core/model.py`). Video score
 * logits = mean of the k largest CAS values per class (selected by `topMask`, exactly k ones per
 * (video, class)); p = softmax; target
 * ŷ = y / Σy; loss = mean over B×C of BCE(p, ŷ) with logs clamped at −100.
 *
 * @param cas [B, T, C]
 * @param topMask [B, T, C] constant 0/1 mask
 * @param target [B, C] normalised label vectors
 * @returns the loss (scalar) and the probabilities p [B, C]
 */
export function milLoss(
  cas: tf.Tensor3D,
  topMask: tf.Tensor3D,
  k: number,
  target: tf.Tensor2D,
): { loss: tf.Scalar; probs: tf.Tensor2D } {
  const logits = tf.div(tf.sum(tf.mul(cas, topMask), 1), k) as tf.Tensor2D;
  const probs = tf.softmax(logits) as tf.Tensor2D;
  const logP = tf.maximum(tf.log(probs), -100);
  const log1mP = tf.maximum(tf.log(tf.sub(1, probs)), -100);
  const bce = tf.neg(tf.add(tf.mul(target, logP), tf.mul(tf.sub(1, target), log1mP)));
  return { loss: tf.mean(bce) as tf.Scalar, probs };
}

/**
 * log Σ exp over the last axis with its gradient written as softmax · dy. tfjs's own
 * `logSumExp` differentiates through `max`, whose gradient is a broadcast `equal` that
 * tfjs-wasm runs slowly (measured: the costliest kernel of a default-size generator step).
 */
export const logSumExpLast: (x: tf.Tensor) => tf.Tensor = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((x: tf.Tensor, save: any) => {
    const lse = tf.logSumExp(x, -1);
    save([x, lse]);
    return {
      value: lse,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sx, sl] = saved;
          return [tf.mul(tf.exp(tf.sub(sx, tf.expandDims(sl, -1))), tf.expandDims(dy, -1))];
        }),
    };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * Reference NCE over rows (`CrossVideoLoss.NCE`; CoLA's `SniCoLoss`): L2-normalise query q [R, D],
 * positive k [R, D] and negatives n [R, K, D]; logits = [q·k, q·n_1 … q·n_K]/τ; mean over rows of
 * −log softmax[0].
 * Used by the tests and for clarity; training uses {@linkcode contrastLoss}.
 */
export function nceLoss(q: tf.Tensor2D, k: tf.Tensor2D, n: tf.Tensor3D, tau: number): tf.Scalar {
  return tf.tidy(() => {
    const qn = l2normalize(q), kn = l2normalize(k), nn = l2normalize(n);
    const pos = tf.sum(tf.mul(qn, kn), -1, true); // [R, 1]
    const neg = tf.sum(tf.mul(tf.expandDims(qn, 1), nn), -1); // [R, K]
    const logits = tf.div(tf.concat([pos, neg], 1), tau);
    const rowLoss = tf.sub(
      tf.logSumExp(logits, 1),
      tf.squeeze(tf.slice(logits, [0, 0], [-1, 1]), [1]),
    );
    return tf.mean(rowLoss) as tf.Scalar;
  });
}

/**
 * The pairing rule (`select_pairs` in `core/utils.py`): all unordered pairs {i, j}, i < j, of batch
 * items whose label vectors are identical in every entry. Labels are given as class-id lists (order
 * and
 * duplicates ignored).
 */
export function identicalLabelPairs(labels: readonly (readonly number[])[]): [number, number][] {
  const keys = labels.map((l) => [...new Set(l)].sort((a, b) => a - b).join(","));
  const pairs: [number, number][] = [];
  for (let i = 0; i < keys.length; i++) {
    for (let j = i + 1; j < keys.length; j++) if (keys[i] === keys[j]) pairs.push([i, j]);
  }
  return pairs;
}

/**
 * Weights of the row losses ℓ(query video q, key video k) in the contrastive term:
 * in-video = 1/B on the diagonal (L_IV averages over videos); cross-video = (w_cv/P)·½ on both
 * orientations of each pair (each L_CV averages its two rows; Σ_pairs (w_cv/P)·L_CV).
 */
export function contrastWeights(
  B: number,
  pairs: readonly [number, number][],
  crossWeight: number,
): { inVideo: Float32Array; cross: Float32Array } {
  const inVideo = new Float32Array(B * B), cross = new Float32Array(B * B);
  for (let i = 0; i < B; i++) inVideo[i * B + i] = 1 / B;
  const w = pairs.length ? crossWeight / pairs.length / 2 : 0;
  for (const [a, b] of pairs) {
    cross[b * B + a] += w;
    cross[a * B + b] += w;
  }
  return { inVideo, cross };
}

/** Masks of the mined snippets, each [B, T] with exactly k ones per video. */
export interface MinedMaskTensors {
  /** [B, 4, T] in the order easy action, easy background, hard action, hard background. */
  stacked: tf.Tensor3D;
  /** k_e: ones per video in the easy masks. */
  kEasy: number;
  /** k_h: ones per video in the hard masks. */
  kHard: number;
}

/**
 * All NCE row losses of a batch: ℓ[q, type, k] for query video q, type 0 = action
 * (query mean HA of q, positive mean EA of k, negatives EB of k) and type 1 = background
 * (query mean HB of q, positive mean EB of k, negatives EA of k). Returns [B, 2, B].
 *
 * @param emb [B, T, H] embeddings (post-ReLU, pre-dropout)
 */
export function contrastRowLosses(
  emb: tf.Tensor3D,
  masks: MinedMaskTensors,
  tau: number,
): tf.Tensor3D {
  const [B, T, H] = emb.shape;
  const { stacked, kEasy, kHard } = masks;
  const sums = matMulExplicit(stacked, emb); // [B, 4, H]
  const scale = tf.tensor3d([1 / kEasy, 1 / kEasy, 1 / kHard, 1 / kHard], [1, 4, 1]);
  const means = l2normalize(tf.mul(sums, scale)) as tf.Tensor3D;
  const keys = tf.reshape(tf.slice(means, [0, 0, 0], [B, 2, H]), [2 * B, H]); // EA, EB
  const queries = tf.reshape(tf.slice(means, [0, 2, 0], [B, 2, H]), [2 * B, H]); // HA, HB
  // Positive logits for every (q, type) × (k, keyType); keep keyType == type.
  const pp = tf.reshape(matMulExplicit(queries as tf.Tensor2D, tf.transpose(keys)), [B, 2, B, 2]);
  const same = tf.tensor4d([1, 0, 0, 1], [1, 2, 1, 2]);
  const pos = tf.div(tf.sum(tf.mul(pp, same), 3, true), tau); // [B, 2, B, 1]
  // Snippet logits: rows (k, t), columns (q, type) → [q, type, k, t].
  const en = tf.reshape(l2normalize(emb), [B * T, H]) as tf.Tensor2D;
  const g = tf.reshape(matMulExplicit(en, tf.transpose(queries)), [B, T, B, 2]);
  const snip = tf.div(tf.transpose(g, [2, 3, 0, 1]), tau); // [B, 2, B, T]
  // Negatives: type 0 uses EB of the key video, type 1 uses EA; others pushed to −1e4.
  const eb = tf.slice(stacked, [0, 1, 0], [B, 1, T]), ea = tf.slice(stacked, [0, 0, 0], [B, 1, T]);
  const negMask = tf.reshape(tf.transpose(tf.concat([eb, ea], 1), [1, 0, 2]), [1, 2, B, T]);
  const neg = tf.add(snip, tf.mul(tf.sub(negMask, 1), 1e4));
  const lse = logSumExpLast(tf.concat([pos, neg], 3)); // [B, 2, B]
  return tf.sub(lse, tf.squeeze(pos, [3])) as tf.Tensor3D;
}

/**
 * The contrastive part of the generator loss: L_IV + Σ_pairs (w_cv/P)·L_CV (`TotalLoss`),
 * returned with its two parts.
 */
export function contrastLoss(
  emb: tf.Tensor3D,
  masks: MinedMaskTensors,
  pairs: readonly [number, number][],
  opts: { tau: number; crossWeight: number; crossVideo: boolean },
): { total: tf.Scalar; inVideo: tf.Scalar; cross: tf.Scalar } {
  const B = emb.shape[0];
  const rows = contrastRowLosses(emb, masks, opts.tau);
  const w = contrastWeights(B, opts.crossVideo ? pairs : [], opts.crossWeight);
  const weigh = (m: Float32Array) => tf.sum(tf.mul(rows, tf.tensor3d(m, [B, 1, B]))) as tf.Scalar;
  const inVideo = weigh(w.inVideo);
  const cross = weigh(w.cross);
  return { total: tf.add(inVideo, cross) as tf.Scalar, inVideo, cross };
}
