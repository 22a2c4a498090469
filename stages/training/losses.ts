/**
 * Student losses (FuSTAL `Student-Training/libs/modeling/losses.py`, `TriDet.losses`): sigmoid
 * focal loss with an IoU^0.2 weight on positive pairs, DIoU regression on the trident distances,
 * FuSTAL's MIL loss on level-0 logits, all divided
 * by the persistent loss normaliser.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import { selectRank } from "../../lib/select.ts";
import { tridentAtRows } from "./decode.ts";
import { gatherRows } from "./ops.ts";
import type { ForwardOutput, Layout } from "./model.ts";
import type { StudentConfig } from "./presets.ts";

/** IoU and DIoU loss of offset pairs (all in strides); shapes broadcast. */
export function iouAndDiou(
  dl: tf.Tensor,
  dr: tf.Tensor,
  tl: tf.Tensor,
  tr: tf.Tensor,
): { iou: tf.Tensor; diou: tf.Tensor } {
  const inter = tf.add(tf.minimum(dl, tl), tf.minimum(dr, tr));
  const union = tf.maximum(tf.sub(tf.add(tf.add(dl, dr), tf.add(tl, tr)), inter), 1e-8);
  const iou = tf.div(inter, union);
  const rho = tf.mul(tf.sub(tf.sub(dr, dl), tf.sub(tr, tl)), 0.5);
  const c = tf.maximum(tf.add(tf.maximum(dl, tl), tf.maximum(dr, tr)), 1e-8);
  const diou = tf.add(tf.sub(1, iou), tf.square(tf.div(rho, c)));
  return { iou, diou };
}

/** Element-wise sigmoid focal loss (alpha for positives, 1-alpha for negatives). */
export function focalLoss(logits: tf.Tensor, targets: tf.Tensor, alpha: number, gamma: number) {
  const p = tf.sigmoid(logits);
  const ce = tf.add(
    tf.sub(tf.relu(logits), tf.mul(logits, targets)),
    tf.softplus(tf.neg(tf.abs(logits))),
  );
  const pt = tf.add(tf.mul(p, targets), tf.mul(tf.sub(1, p), tf.sub(1, targets)));
  const mod = gamma === 2 ? tf.square(tf.sub(1, pt)) : tf.pow(tf.sub(1, pt), gamma);
  const at = tf.add(tf.mul(targets, alpha), tf.mul(tf.sub(1, targets), 1 - alpha));
  return tf.mul(tf.mul(ce, mod), at);
}

/** Host-side loss inputs of a batch. */
export interface LossTargets {
  /** [B * L * K] multi-hot class targets. */
  cls: Float32Array;
  /** [B * L * 2] regression targets (strides). */
  reg: Float32Array;
  /** Loss normaliser for this iteration (already updated with this batch's N_pos). */
  norm: number;
  /** MIL: weak labels per item ([B * K] multi-hot; all-zero rows are left out). */
  weak: Float32Array;
  /** MIL dropout keep factors [B * T0 * K] (0 or 1/(1-p)). */
  milKeep: Float32Array;
  /** Valid level-0 rows per item. */
  lens: number[];
  /**
   * MIL top-k selection weights [B * T0 * K] (1/k on the selected rows), computed by
   * {@linkcode milTopkMask} from an earlier pass. Needed where tensors cannot be read
   * synchronously (WebGPU); elsewhere they are computed inside the loss.
   */
  milMask?: Float32Array;
  /**
   * MIL k per item when this is a micro-batch of a larger batch (the k of the whole batch,
   * {@linkcode milKs}); computed from `lens` otherwise.
   */
  milKs?: number[];
  /**
   * MIL normaliser: items with weak labels in the whole batch, when this is a micro-batch;
   * counted here otherwise. With both overrides the micro-batch losses add up to the loss of
   * the whole batch (gradient accumulation).
   */
  milRows?: number;
}

/** The loss terms as scalars (tracked by the caller's scope). */
export interface LossTerms {
  cls: tf.Scalar;
  reg: tf.Scalar;
  mil: tf.Scalar;
  total: tf.Scalar;
}

/** All student losses for one forward output. */
export function studentLosses(
  out: ForwardOutput,
  layout: Layout,
  t: LossTargets,
  cfg: StudentConfig,
): LossTerms {
  const [b, L, K] = out.cls.shape;
  const clsT = tf.tensor3d(t.cls, [b, L, K]);
  // Positive points (host): their trident distances, IoU weight and DIoU are computed on
  // those rows only (see tridentAtRows).
  const rows: number[] = [];
  for (let r = 0; r < b * L; r++) {
    for (let c = 0; c < K; c++) {
      if (t.cls[r * K + c] > 0) {
        rows.push(r);
        break;
      }
    }
  }
  const fl = focalLoss(out.cls, clsT, cfg.focalAlpha, cfg.focalGamma);
  // Negative pairs (and every pair of a negative point) carry weight 1.
  let clsSum: tf.Tensor = tf.sum(tf.mul(tf.mul(fl, tf.sub(1, clsT)), out.valid));
  let regSum: tf.Tensor = tf.scalar(0);
  if (rows.length > 0) {
    const idx = Int32Array.from(rows);
    const n = idx.length;
    const tg = new Float32Array(n * K);
    const tl = new Float32Array(n);
    const tr = new Float32Array(n);
    rows.forEach((r, i) => {
      tg.set(t.cls.subarray(r * K, (r + 1) * K), i * K);
      tl[i] = t.reg[2 * r];
      tr[i] = t.reg[2 * r + 1];
    });
    const T = tf.tensor2d(tg, [n, K]);
    const { dl, dr } = tridentAtRows(out.start, out.end, out.off, idx, cfg.numBins);
    const { iou, diou } = iouAndDiou(dl, dr, tf.tensor2d(tl, [n, 1]), tf.tensor2d(tr, [n, 1]));
    const logits = gatherRows(tf.reshape(out.cls, [b * L, K]), idx);
    const flPos = focalLoss(logits, T, cfg.focalAlpha, cfg.focalGamma);
    // IoU^power weight on positive pairs, gradient flowing through it (`ctr_diou_loss_1d`).
    const w = tf.pow(tf.maximum(iou, 1e-6), cfg.iouWeightPower);
    clsSum = tf.add(clsSum, tf.sum(tf.mul(tf.mul(flPos, T), w)));
    regSum = tf.sum(tf.mul(diou, T));
  }
  const lossCls = tf.div(clsSum, t.norm) as tf.Scalar;
  const lossReg = tf.div(regSum, t.norm) as tf.Scalar;
  const lossMil = cfg.milWeight > 0 ? milLoss(out, layout, t, cfg) : tf.scalar(0);
  const total = tf.add(tf.add(lossCls, lossReg), tf.mul(lossMil, cfg.milWeight)) as tf.Scalar;
  return { cls: lossCls, reg: lossReg, mil: lossMil, total };
}

/**
 * MIL loss on level-0 class logits: dropout, mean of the k largest values over time per
 * (item, class), softmax over classes, BCE against the normalised weak labels. k is
 * floor(total valid rows of the batch / ratio) (the reference `meta_archs.py`) or per item.
 */
/**
 * The k per item of the MIL top-k pooling (`TriDet.get_video_cls_scores`; batch-level k unless
 * `milPerVideo`).
 */
export function milKs(lens: number[], t0: number, cfg: StudentConfig): number[] {
  const batchK = Math.floor(lens.reduce((s, v) => s + v, 0) / cfg.milRatio);
  return lens.map((len) =>
    Math.max(1, Math.min(t0, cfg.milPerVideo ? Math.floor(len / cfg.milRatio) : batchK))
  );
}

/**
 * Top-k selection weights for the MIL pooling from host values `v` [B * T0 * K] (dropout
 * applied): 1/k on the k largest rows per (item, class), ties to the lower row (−0 ties +0).
 */
export function milTopkMask(
  v: Float32Array,
  b: number,
  t0: number,
  K: number,
  ks: number[],
): Float32Array {
  const mask = new Float32Array(b * t0 * K);
  // Per (item, class), keys that order by value, descending, then by row: the value's float32
  // bits made order-preserving (as an unsigned integer), flipped, times a power of two above
  // every row, plus the row. The keys are distinct, so the k smallest are the selection, found
  // in place by quickselect. Per default batch (8 x 576 x 20, k = 300): 2.2 ms, where a
  // comparator sort of the row indices took 16 ms and a numeric sort of these keys 6.6 ms.
  const span = 2 ** Math.ceil(Math.log2(Math.max(2, t0)));
  const keys = new Float64Array(t0);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < b; i++) {
    const k = ks[i];
    for (let c = 0; c < K; c++) {
      const base = i * t0 * K + c;
      for (let q = 0; q < t0; q++) {
        f[0] = v[base + q * K] + 0; // −0 -> +0: equal values tie
        const bits = u[0];
        const ordered = bits >= 0x80000000 ? 0xffffffff - bits : bits + 0x80000000;
        keys[q] = (0xffffffff - ordered) * span + q;
      }
      if (k < t0) selectRank(keys, t0, k - 1);
      for (let q = 0; q < Math.min(k, t0); q++) mask[base + (keys[q] % span) * K] = 1 / k;
    }
  }
  return mask;
}

export function milLoss(
  out: ForwardOutput,
  layout: Layout,
  t: LossTargets,
  cfg: StudentConfig,
): tf.Scalar {
  const [b, , K] = out.cls.shape;
  const t0 = layout.lengths[0];
  const z = tf.slice(out.cls, [0, layout.offsets[0], 0], [b, t0, K]);
  const zd = tf.mul(z, tf.tensor3d(t.milKeep, [b, t0, K]));
  const ks = t.milKs ?? milKs(t.lens, t0, cfg);
  let pooled: tf.Tensor;
  if (ks.every((k) => k >= t0)) {
    pooled = tf.mean(zd, 1);
  } else {
    // Exact top-k selection mask from host values (TopK has no gradient; the mask needs none).
    let mask = t.milMask;
    if (!mask) {
      if (tf.getBackend() === "webgpu") {
        throw new Error("milLoss: on webgpu the top-k mask must be precomputed (milMask)");
      }
      mask = milTopkMask(zd.dataSync() as Float32Array, b, t0, K, ks);
    }
    pooled = tf.sum(tf.mul(zd, tf.tensor3d(mask, [b, t0, K])), 1);
  }
  const q = tf.softmax(pooled);
  const weak = t.weak;
  const yn = new Float32Array(b * K);
  const rowW = new Float32Array(b * K);
  let rows = 0;
  for (let i = 0; i < b; i++) {
    let s = 0;
    for (let c = 0; c < K; c++) s += weak[i * K + c];
    if (s === 0) continue;
    rows++;
    for (let c = 0; c < K; c++) {
      yn[i * K + c] = weak[i * K + c] / s;
      rowW[i * K + c] = 1;
    }
  }
  if (rows === 0) return tf.scalar(0);
  const y = tf.tensor2d(yn, [b, K]);
  const lq = tf.maximum(tf.log(q), -100);
  const l1q = tf.maximum(tf.log(tf.sub(1, q)), -100);
  const bce = tf.neg(tf.add(tf.mul(y, lq), tf.mul(tf.sub(1, y), l1q)));
  return tf.div(
    tf.sum(tf.mul(bce, tf.tensor2d(rowW, [b, K]))),
    (t.milRows ?? rows) * K,
  ) as tf.Scalar;
}
