import assert from "node:assert/strict";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { assignTargets } from "../stages/training/assign.ts";
import { cropWindow, roundHalfEven } from "../stages/training/augment.ts";
import { decodeCheckpoint, encodeCheckpoint } from "../stages/training/checkpoint.ts";
import { decodePoint, tridentDistances } from "../stages/training/decode.ts";
import { iouAndDiou, milTopkMask } from "../stages/training/losses.ts";
import { countParams, makeLayout, paramSpecs, PRIOR_BIAS } from "../stages/training/model.ts";
import { hardNms, softNms } from "../stages/training/nms.ts";
import { conv1d, maxPool3s2 } from "../stages/training/ops.ts";
import { DEFAULT, PAPER } from "../stages/training/presets.ts";
import { postprocess, type RawOutput, toSeconds } from "../stages/training/infer.ts";
import { actionFormerGrid, gridToSeconds, secondsToGrid } from "../datasets/time.ts";

await initBackend("cpu");

Deno.test("training: paper-size parameter count matches the reference TriDet (15,989,604)", () => {
  assert.equal(countParams(paramSpecs(PAPER, 2048, 20)), 15_989_604);
  // Short-circuiting the SGP branches only drops their (always zero) parameters.
  const short = countParams(paramSpecs({ ...PAPER, sgpBranches: false }, 2048, 20));
  assert.equal(15_989_604 - short, 7 * (5 * 2 * 512 + 10 * 512));
  assert.ok(Math.abs(PRIOR_BIAS - -4.59512) < 1e-5);
});

Deno.test("training: label assignment (centre sampling, ranges, ties, strides)", () => {
  const cfg = { levels: 2, numBins: 2 };
  const layout = makeLayout(16, cfg);
  assert.deepEqual(layout.offsets, [2, 20]);
  const segs = [{ a: 4, b: 10, c: 1 }, { a: 4, b: 10, c: 2 }, { a: 0, b: 15, c: 0 }];
  const t = assignTargets(segs, layout, 16, 3, [[0, 4], [4, 10000]], 1.5);
  const posRows = [...t.pos].flatMap((v, i) => (v ? [i] : []));
  // level 0: p = 6, 7, 8 (the long segment is out of range there); level 1 (stride 2):
  // p = 6, 8 (short segments, shortest wins) and p = 10 (only the long one: centre 7.5 +- 3)
  assert.deepEqual(posRows, [2 + 6, 2 + 7, 2 + 8, 20 + 3, 20 + 4, 20 + 5]);
  assert.equal(t.numPos, 6);
  assert.deepEqual([...t.cls.subarray(25 * 3, 26 * 3)], [1, 0, 0]);
  assert.deepEqual([t.reg[50], t.reg[51]], [5, 2.5]);
  for (const r of posRows.slice(0, 5)) {
    assert.deepEqual([...t.cls.subarray(r * 3, r * 3 + 3)], [0, 1, 1]);
  }
  const reg = (r: number) => [t.reg[2 * r], t.reg[2 * r + 1]];
  assert.deepEqual(reg(8), [2, 4]);
  assert.deepEqual(reg(9), [3, 3]);
  assert.deepEqual(reg(10), [4, 2]);
  assert.deepEqual(reg(23), [1, 2]); // p = 6 at stride 2: (2, 4) / 2
  assert.deepEqual(reg(24), [2, 1]);
  // padding is never positive; no segments -> all negative
  const short = assignTargets(segs, layout, 7, 3, [[0, 4], [4, 10000]], 1.5);
  assert.deepEqual([...short.pos].flatMap((v, i) => (v ? [i] : [])), [8, 23]);
  assert.equal(assignTargets([], layout, 16, 3, [[0, 4], [4, 10000]], 1.5).numPos, 0);
});

Deno.test("training: trident decoding, worked example 5 (host and tensor)", () => {
  const nb = 2;
  const start = Float32Array.from([2, 0, 0, 0, 0]);
  const end = Float32Array.from([0, 0, 0, 0, 2]);
  const off = new Float32Array(5 * 2 * (nb + 1));
  const [dl, dr] = decodePoint(start, end, off, 5, 1, nb, 2, 0);
  assert.ok(Math.abs(dl - 1.6805) < 1e-4, `d_left ${dl}`);
  assert.ok(Math.abs(dr - 1.6805) < 1e-4, `d_right ${dr}`);
  const t = tridentDistances(
    tf.tensor3d(start, [1, 5, 1]),
    tf.tensor3d(end, [1, 5, 1]),
    tf.tensor3d(off, [1, 5, 2 * (nb + 1)]),
    nb,
  );
  const tdl = t.dl.dataSync();
  const tdr = t.dr.dataSync();
  assert.ok(Math.abs(tdl[2] - dl) < 1e-5 && Math.abs(tdr[2] - dr) < 1e-5);
  // every row agrees between the two forms
  for (let p = 0; p < 5; p++) {
    const [a, b] = decodePoint(start, end, off, 5, 1, nb, p, 0);
    assert.ok(Math.abs(tdl[p] - a) < 1e-5 && Math.abs(tdr[p] - b) < 1e-5, `row ${p}`);
  }
});

Deno.test("training: Gaussian Soft-NMS, worked example 3; plain NMS", () => {
  const out = softNms(
    [{ a: 0, b: 10, score: 0.9 }, { a: 1, b: 11, score: 0.8 }, { a: 30, b: 40, score: 0.5 }],
    0.5,
    0.001,
    2000,
  );
  assert.deepEqual(out.map((o) => [o.a, o.b]), [[0, 10], [30, 40], [1, 11]]);
  assert.equal(out[0].score, 0.9);
  assert.equal(out[1].score, 0.5);
  const want = 0.8 * Math.exp(-((9 / 11) ** 2) / 0.5);
  assert.ok(Math.abs(out[2].score - want) < 1e-5 && Math.abs(out[2].score - 0.2097) < 1e-4);
  // min score drops; cap applies
  assert.equal(
    softNms([{ a: 0, b: 10, score: 0.9 }, { a: 0, b: 10, score: 0.0015 }], 0.5, 0.001, 9).length,
    1,
  );
  const hard = hardNms(
    [{ a: 0, b: 10, score: 0.9 }, { a: 1, b: 11, score: 0.8 }, { a: 30, b: 40, score: 0.5 }],
    0.5,
    10,
  );
  assert.deepEqual(hard.map((o) => o.a), [0, 30]);
});

/** Soft-NMS as the reference's C++ kernel reads, on objects, decaying every later candidate. */
function plainSoftNms(
  cands: { a: number; b: number; score: number }[],
  sigma: number,
  minScore: number,
  maxOut: number,
) {
  const a = cands.map((c) => ({ ...c }));
  let n = a.length;
  const out: { a: number; b: number; score: number }[] = [];
  for (let i = 0; i < n && out.length < maxOut; i++) {
    let best = i;
    for (let q = i + 1; q < n; q++) if (a[q].score > a[best].score) best = q;
    [a[i], a[best]] = [a[best], a[i]];
    out.push({ ...a[i] });
    const la = a[i].b - a[i].a + 1e-6;
    let q = i + 1;
    while (q < n) {
      const lb = a[q].b - a[q].a + 1e-6;
      const inter = Math.max(0, Math.min(a[i].b, a[q].b) - Math.max(a[i].a, a[q].a));
      const o = inter / (la + lb - inter);
      a[q].score *= Math.exp(-(o * o) / sigma);
      if (a[q].score < minScore) a[q] = a[--n];
      else q++;
    }
  }
  return out;
}

Deno.test("training: Soft-NMS equals the plain loop bit for bit (ties, disjoint and nested segments)", () => {
  let x = 12345;
  const r = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let trial = 0; trial < 60; trial++) {
    const n = Math.floor(r() * 400);
    const c = Array.from({ length: n }, () => {
      const a = Math.floor(r() * 200) / 2;
      const len = r() < 0.1 ? 0 : r() * 30;
      // Repeated scores (ties: the first one wins) and repeated segments.
      return { a, b: a + len, score: r() < 0.2 ? 0.5 : Math.max(0.0005, r()) };
    });
    for (const [sigma, cap] of [[0.5, 2000], [0.3, 17]] as const) {
      assert.deepEqual(softNms(c, sigma, 0.001, cap), plainSoftNms(c, sigma, 0.001, cap));
    }
  }
});

Deno.test("training: DIoU loss value and gradient", () => {
  const dl = tf.scalar(1);
  const dr = tf.scalar(3);
  const { iou, diou } = iouAndDiou(dl, dr, tf.scalar(2), tf.scalar(2));
  assert.ok(Math.abs(iou.dataSync()[0] - 0.6) < 1e-6);
  assert.ok(Math.abs(diou.dataSync()[0] - 0.44) < 1e-6);
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    iouAndDiou(a, b, tf.scalar(2), tf.scalar(2)).diou
  )([dl, dr]);
  for (const x of g) assert.ok(Number.isFinite(x.dataSync()[0]));
  // perfect match: loss 0
  assert.ok(
    Math.abs(
      iouAndDiou(tf.scalar(2), tf.scalar(5), tf.scalar(2), tf.scalar(5)).diou.dataSync()[0],
    ) < 1e-6,
  );
});

Deno.test("training: crop augmentation (Python rounding, windows, clipping)", () => {
  assert.equal(roundHalfEven(2.5), 2);
  assert.equal(roundHalfEven(3.5), 4);
  assert.equal(roundHalfEven(22.5), 22);
  const rng = new Rng(3);
  for (let i = 0; i < 20; i++) {
    const c = cropWindow(25, [{ a: 5, b: 15, c: 0 }], 64, [0.9, 1], 0.5, rng);
    assert.ok(c.length >= 22 && c.length <= 25);
    assert.ok(c.start >= 0 && c.start + c.length <= 25);
  }
  for (let i = 0; i < 20; i++) {
    const c = cropWindow(
      1000,
      [{ a: 500, b: 540, c: 2 }, { a: 10, b: 12, c: 1 }],
      128,
      [0.9, 1],
      0.5,
      rng,
    );
    assert.equal(c.length, 128);
    assert.ok(c.segs.length >= 1);
    for (const s of c.segs) assert.ok(s.a >= 0 && s.b <= 128 && s.b > s.a);
  }
});

Deno.test("training: im2col conv1d equals tf.conv1d; max-pool k3 s2 and its gradient", () => {
  const rng = new Rng(1);
  const x = tf.tensor3d(Array.from({ length: 2 * 7 * 3 }, () => rng.normal()), [2, 7, 3]);
  const w = tf.tensor3d(Array.from({ length: 3 * 3 * 4 }, () => rng.normal()), [3, 3, 4]);
  const ref = tf.conv1d(x, w, 1, "same").dataSync();
  const ours = conv1d(x, tf.reshape(w, [9, 4])).dataSync();
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(ref[i] - ours[i]) < 1e-5);
  const xp = tf.tensor3d([1, 10, 5, 2, 3, 7, 4, 6, 9, 8, 0, 11], [1, 6, 2]);
  // channel 0: [1,5,3,4,9,0] -> max(x[-1..1])=5, max(x[1..3])=5, max(x[3..5])=9
  // channel 1: [10,2,7,6,8,11] -> 10, 7, 11
  assert.deepEqual([...maxPool3s2(xp).dataSync()], [5, 10, 5, 7, 9, 11]);
  const g = tf.grad((v: tf.Tensor) => tf.sum(maxPool3s2(v)))(xp).dataSync();
  // each output's gradient goes to its arg-max: 5 (index 1 of ch 0) twice, 10, 7, 9, 11
  assert.deepEqual([...g], [0, 1, 2, 0, 0, 1, 0, 0, 1, 0, 0, 1]);
});

Deno.test("training: checkpoint bytes round trip", () => {
  const rng = new Rng(5);
  rng.normal(); // leaves a cached spare value
  const meta = { epoch: 3, rng: rng.state(), config: DEFAULT };
  const groups = {
    model: { a: { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) } },
    ema: { a: { shape: [2, 3], data: Float32Array.from([0.5, 1e-30, -3, 4, 5, 6]) } },
  };
  const bytes = encodeCheckpoint(meta, groups);
  const back = decodeCheckpoint(bytes, "x.ckpt");
  assert.deepEqual(back.groups.model.a.shape, [2, 3]);
  assert.deepEqual([...back.groups.ema.a.data], [...groups.ema.a.data]);
  const r2 = new Rng(0);
  r2.setState((back.meta as { rng: number[] }).rng);
  assert.equal(r2.normal(), rng.normal());
  assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 4), "x.ckpt"), /truncated/);
  assert.throws(() => decodeCheckpoint(new Uint8Array(20), "y.ckpt"), /y.ckpt: not a student/);
});

Deno.test("training: a perfect target decodes back to its segment and seconds; teacher class filter", () => {
  // Assignment -> heads that express exactly the assigned targets -> post-processing must give
  // the pseudo segment back (levels, strides, bins and the grid/seconds conversion agree).
  const cfg = { ...DEFAULT };
  const K = 3;
  const grid = actionFormerGrid(30);
  const gtSec: [number, number] = [2.1, 6.3];
  const seg = { a: secondsToGrid(grid, gtSec[0]), b: secondsToGrid(grid, gtSec[1]), c: 1 };
  const t0 = 128;
  const layout = makeLayout(t0, cfg);
  const tg = assignTargets([seg], layout, 100, K, cfg.regressionRanges, cfg.centerRadius);
  assert.ok(tg.numPos >= 2);
  const L = layout.total;
  const nb = cfg.numBins;
  const no = 2 * (nb + 1);
  const cls = new Float32Array(L * K).fill(-12);
  const off = new Float32Array(L * no).fill(-1e4);
  // A distance d in strides as the expectation of two adjacent bins (weights 1-f and f).
  const put = (row: number, base: number, binOf: (j: number) => number, d: number) => {
    const lo = Math.floor(d);
    const f = d - lo;
    off[row * no + base + binOf(lo)] = Math.log(Math.max(1 - f, 1e-30));
    if (f > 0) off[row * no + base + binOf(lo + 1)] = Math.log(f);
  };
  for (let r = 0; r < L; r++) {
    if (!tg.pos[r]) continue;
    for (let c = 0; c < K; c++) if (tg.cls[r * K + c]) cls[r * K + c] = 4;
    cls[r * K + 2] = 3; // a second class on the same rows (not a weak label below)
    put(r, 0, (d) => nb - d, tg.reg[2 * r]); // left: bin j holds distance nb - j
    put(r, nb + 1, (d) => d, tg.reg[2 * r + 1]); // right: bin j holds distance j
  }
  const zeros = new Float32Array(L * K);
  const raw: RawOutput = { cls, start: zeros, end: zeros, off, layout, len: 100 };
  const dets = postprocess(raw, K, cfg);
  assert.equal(dets[0].c, 1);
  for (const d of dets) {
    assert.ok(Math.abs(d.a - seg.a) < 1e-3 && Math.abs(d.b - seg.b) < 1e-3, JSON.stringify(d));
  }
  const [sec] = toSeconds(dets, "v", grid, 20, ["A", "B", "C"]);
  assert.ok(
    Math.abs(sec.segment[0] - gtSec[0]) < 1e-4 && Math.abs(sec.segment[1] - gtSec[1]) < 1e-4,
  );
  assert.ok(Math.abs(gridToSeconds(grid, 73) - 10) < 1e-9); // worked example 6: 10 s at 30 fps is g = 73
  // Teacher: only the video's weak classes; the keep-one fallback respects them as well.
  assert.ok(dets.some((d) => d.c === 2));
  const only1 = postprocess(raw, K, cfg, 0.4, new Set([1]));
  assert.ok(only1.length > 0 && only1.every((d) => d.c === 1));
  const fallback = postprocess(raw, K, cfg, 0.999, new Set([2]));
  assert.equal(fallback.length, 1);
  assert.equal(fallback[0].c, 2);
});

Deno.test("training: MIL top-k mask = the k largest rows per (item, class), ties to the lower row", () => {
  const rng = new Rng(4);
  // The reference: a comparator sort of the rows, as the mask was first written.
  const reference = (v: Float32Array, b: number, t0: number, K: number, ks: number[]) => {
    const mask = new Float32Array(b * t0 * K);
    for (let i = 0; i < b; i++) {
      for (let c = 0; c < K; c++) {
        const base = i * t0 * K + c;
        const rows = Array.from({ length: t0 }, (_, q) => q)
          .sort((x, y) => v[base + y * K] - v[base + x * K] || x - y);
        for (let q = 0; q < ks[i]; q++) mask[base + rows[q] * K] = 1 / ks[i];
      }
    }
    return mask;
  };
  for (const t0 of [1, 2, 3, 7, 64, 577]) {
    const b = 3, K = 4;
    // few distinct values (many ties), both zeros, and extremes
    const pool = [0, -0, 1.5, -1.5, 2, 3e38, -3e38, 1e-30, -1e-30];
    const v = Float32Array.from(
      { length: b * t0 * K },
      () => rng.next() < 0.5 ? pool[Math.floor(rng.next() * pool.length)] : rng.normal(),
    );
    const ks = [1, Math.max(1, Math.floor(t0 / 2)), t0];
    assert.deepEqual(milTopkMask(v, b, t0, K, ks), reference(v, b, t0, K, ks), `t0 ${t0}`);
  }
});
