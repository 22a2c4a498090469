import assert from "node:assert/strict";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { contrastLoss, contrastRowLosses, milLoss, nceLoss } from "../stages/generation/losses.ts";

await initBackend("wasm");

const close = (a: number, b: number, eps = 1e-5) =>
  assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);
const val = (t: tf.Tensor) => t.dataSync()[0];

Deno.test("generation: NCE equals the hand-computed value", () => {
  // τ = 1: normalised q = k = [1, 0]; negatives [0, 1] and [−1, 0] → logits [1, 0, −1]
  const q = tf.tensor2d([[1, 0]]), k = tf.tensor2d([[2, 0]]);
  const n = tf.tensor3d([[[0, 3], [-1, 0]]]);
  close(val(nceLoss(q, k, n, 1)), Math.log(1 + Math.exp(-1) + Math.exp(-2)));
  // τ = 0.07, two rows; row 2: cos(q, k) = 0.96, cos with negatives −0.8 and 0.6
  const q2 = tf.tensor2d([[1, 0], [3, 4]]), k2 = tf.tensor2d([[2, 0], [4, 3]]);
  const n2 = tf.tensor3d([[[0, 3], [-1, 0]], [[0, -2], [1, 0]]]);
  const t = 0.07;
  const r1 = Math.log(1 + Math.exp(-1 / t) + Math.exp(-2 / t));
  const r2 = Math.log(1 + Math.exp((-0.8 - 0.96) / t) + Math.exp((0.6 - 0.96) / t));
  close(val(nceLoss(q2, k2, n2, t)), (r1 + r2) / 2);
});

/** Stacked [B, 4, T] masks from per-video index lists (EA, EB, HA, HB). */
function masks(B: number, T: number, sets: number[][][]): tf.Tensor3D {
  const m = new Float32Array(B * 4 * T);
  sets.forEach((v, b) => v.forEach((idx, j) => idx.forEach((t) => (m[(b * 4 + j) * T + t] = 1))));
  return tf.tensor3d(m, [B, 4, T]);
}

Deno.test("generation: in-video contrast equals the hand-computed value", () => {
  // T = 4, H = 2: EA = {t0 = [1,0]}, EB = {t1 = [0,1]}, HA = {t2 = [1,1]}, HB = {t3 = [2,0]}
  const emb = tf.tensor3d([[[1, 0], [0, 1], [1, 1], [2, 0]]]);
  const stacked = masks(1, 4, [[[0], [1], [2], [3]]]);
  const r = contrastLoss(emb, { stacked, kEasy: 1, kHard: 1 }, [], {
    tau: 0.07,
    crossWeight: 0.2,
    crossVideo: true,
  });
  // action row: cos(HA, EA) = cos(HA, EB) = 1/√2 → log 2; background row: cos(HB, EB) = 0,
  // cos(HB, EA) = 1 → log(1 + e^{1/τ})
  close(val(r.inVideo), Math.log(2) + Math.log(1 + Math.exp(1 / 0.07)), 1e-4);
  close(val(r.cross), 0);
});

Deno.test("generation: batched row losses equal per-row NCE with explicit gathers", () => {
  const rng = new Rng(3);
  const B = 3, T = 8, H = 5;
  const e = Float32Array.from({ length: B * T * H }, () => Math.max(0, rng.normal()) + 0.01);
  const emb = tf.tensor3d(e, [B, T, H]);
  const sets = [
    [[0, 1], [6, 7], [2], [5]],
    [[3, 4], [0, 1], [5], [2]],
    [[7, 2], [4, 5], [1], [6]],
  ];
  const stacked = masks(B, T, sets);
  const rows = contrastRowLosses(emb, { stacked, kEasy: 2, kHard: 1 }, 0.07).arraySync();
  const row = (b: number, t: number) =>
    Array.from(e.subarray((b * T + t) * H, (b * T + t + 1) * H));
  const mean = (b: number, idx: number[]) => {
    const s = new Array(H).fill(0);
    for (const t of idx) row(b, t).forEach((v, h) => (s[h] += v / idx.length));
    return s;
  };
  for (let q = 0; q < B; q++) {
    for (let k = 0; k < B; k++) {
      for (const type of [0, 1]) {
        const query = mean(q, sets[q][2 + type]);
        const pos = mean(k, sets[k][type]);
        const negs = sets[k][1 - type].map((t) => row(k, t));
        const ref = val(
          nceLoss(tf.tensor2d([query]), tf.tensor2d([pos]), tf.tensor3d([negs]), 0.07),
        );
        close(rows[q][type][k], ref, 1e-4);
      }
    }
  }
  // total = L_IV + Σ_pairs (0.2/P)·L_CV with L_CV = mean of 2 action rows + mean of 2 bg rows
  const pairs: [number, number][] = [[0, 2]];
  const opts = { tau: 0.07, crossWeight: 0.2, crossVideo: true };
  const r = contrastLoss(emb, { stacked, kEasy: 2, kHard: 1 }, pairs, opts);
  let iv = 0;
  for (let i = 0; i < B; i++) iv += (rows[i][0][i] + rows[i][1][i]) / B;
  const cv = 0.2 * ((rows[2][0][0] + rows[0][0][2]) / 2 + (rows[2][1][0] + rows[0][1][2]) / 2);
  close(val(r.inVideo), iv, 1e-4);
  close(val(r.cross), cv, 1e-4);
  close(val(r.total), iv + cv, 1e-4);
  const base = contrastLoss(emb, { stacked, kEasy: 2, kHard: 1 }, pairs, {
    ...opts,
    crossVideo: false,
  });
  close(val(base.total), iv, 1e-4);
});

Deno.test("generation: MIL loss equals the hand-computed value and has finite gradients", () => {
  // CAS rows (t0: 1, 0), (t1: 3, 2), k = 1 → logits [3, 2] → p = [σ(1), σ(−1)]
  const cas = tf.tensor3d([[[1, 0], [3, 2]]]);
  const top = tf.tensor3d([[[0, 0], [1, 1]]]);
  const p0 = 1 / (1 + Math.exp(-1));
  close(val(milLoss(cas, top, 1, tf.tensor2d([[1, 0]])).loss), -Math.log(p0));
  const both = -(0.5 * Math.log(p0) + 0.5 * Math.log(1 - p0));
  close(val(milLoss(cas, top, 1, tf.tensor2d([[0.5, 0.5]])).loss), both);
  const g = tf.grad((c: tf.Tensor) =>
    milLoss(c as tf.Tensor3D, top, 1, tf.tensor2d([[1, 0]])).loss
  )(cas);
  const gd = Array.from(g.dataSync());
  assert.ok(gd.every(Number.isFinite));
  // only the selected (top-1) entries receive gradient
  assert.equal(Math.abs(gd[0]), 0);
  assert.equal(Math.abs(gd[1]), 0);
  assert.ok(gd[2] < 0 && gd[3] > 0);
});

Deno.test("generation: contrast gradient is finite with an all-zero embedding row", () => {
  const e = tf.tensor3d([[[0, 0], [0, 1], [1, 1], [2, 0]]]);
  const stacked = masks(1, 4, [[[0], [1], [2], [3]]]);
  const g = tf.grad((x: tf.Tensor) =>
    contrastLoss(x as tf.Tensor3D, { stacked, kEasy: 1, kHard: 1 }, [], {
      tau: 0.07,
      crossWeight: 0.2,
      crossVideo: true,
    }).total
  )(e);
  assert.ok(Array.from(g.dataSync()).every(Number.isFinite));
});
