import assert from "node:assert/strict";
import { Rng } from "../lib/rng.ts";
import { COLA_GRID } from "../datasets/time.ts";
import {
  binarizeAboveMedian,
  borderRegions,
  dilate,
  erode,
  median,
  mineSnippets,
  topKIndices,
  topKTimeMask,
} from "../stages/generation/mining.ts";
import { randomPerturbIndices, uniformIndices } from "../stages/generation/sampling.ts";
import {
  DEFAULT_PROPOSAL_CONFIG,
  extractProposals,
  groupRuns,
  minMaxNormalize,
  nmsPlusOne,
  oicScore,
  sweepProposals,
  unitToSeconds,
  upsampleLinear,
} from "../stages/generation/proposals.ts";
import { identicalLabelPairs } from "../stages/generation/losses.ts";

const close = (a: number, b: number, eps = 1e-9) =>
  assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);
const ones = (a: ArrayLike<number>) => Array.from(a).flatMap((v, i) => (v ? [i] : []));
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

Deno.test("generation: morphology matches worked example 8", () => {
  const b = new Uint8Array(20);
  for (const t of [...range(5, 12), 16]) b[t] = 1;
  assert.deepEqual(ones(erode(b, 3)), range(6, 11));
  assert.deepEqual(ones(erode(b, 6)), range(8, 10));
  assert.deepEqual(ones(dilate(b, 3)), [...range(4, 13), ...range(15, 17)]);
  assert.deepEqual(ones(dilate(b, 6)), range(2, 18));
  const { inner, outer } = borderRegions(b, 3, 6);
  assert.deepEqual(ones(inner), [6, 7, 11]);
  assert.deepEqual(ones(outer), [2, 3, 14, 18]);
});

Deno.test("generation: median binarisation (even length averages the middle pair)", () => {
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5, 1, 3]), 3);
  assert.deepEqual(Array.from(binarizeAboveMedian([4, 1, 3, 2])), [1, 0, 1, 0]);
  // values equal to the median are not above it
  assert.deepEqual(Array.from(binarizeAboveMedian([1, 2, 2, 2, 3])), [0, 0, 0, 0, 1]);
});

Deno.test("generation: top-k is stable (lower index wins ties) and masks have exactly k ones", () => {
  assert.deepEqual(topKIndices([1, 3, 3, 0, 3], 2), [1, 2]);
  assert.deepEqual(topKIndices([0, 0, 0, 0], 3), [0, 1, 2]);
  // against a stable descending sort, on random data with many ties, strided reads and every k
  const rng = new Rng(17);
  for (let trial = 0; trial < 200; trial++) {
    const T = 1 + Math.floor(rng.next() * 40), stride = 1 + Math.floor(rng.next() * 3);
    const levels = 1 + Math.floor(rng.next() * 6);
    const data = Array.from({ length: T * stride + 2 }, () => Math.floor(rng.next() * levels));
    const k = Math.floor(rng.next() * (T + 2));
    const vals = Array.from({ length: T }, (_, t) => data[1 + stride * t]);
    const want = vals.map((v, t) => ({ v, t })).sort((a, b) => b.v - a.v || a.t - b.t)
      .slice(0, Math.max(0, k)).map((e) => e.t).sort((a, b) => a - b);
    assert.deepEqual(topKIndices(data, k, T, 1, stride), want, `trial ${trial}`);
  }
  // B=1, T=3, C=2 CAS rows (1,5) (2,4) (3,6): class 0 keeps t1, t2; class 1 keeps t0, t2
  const m = topKTimeMask([1, 5, 2, 4, 3, 6], 1, 3, 2, 2);
  assert.deepEqual(Array.from(m), [0, 1, 1, 0, 1, 1]);
});

Deno.test("generation: mining picks easy/hard snippets as CoLA's mining (eval mode, hand case)", () => {
  // T = 20 actionness: high on 5..12 (rising), low elsewhere; k_e = 4, k_h = 1.
  const a = new Float32Array(20).fill(0.1);
  for (let t = 5; t <= 12; t++) a[t] = 1 + t / 100;
  a[16] = 0.5;
  const r = mineSnippets(a, 1, 20, { rEasy: 5, rHard: 20, m: 3, M: 6, drop: null });
  assert.equal(r.kEasy, 4);
  assert.equal(r.kHard, 1);
  assert.deepEqual(ones(r.easyAct), [9, 10, 11, 12]);
  // easy background: largest (max a − a): every 0.1 snippet ties; lowest indices first
  assert.deepEqual(ones(r.easyBkg), [0, 1, 2, 3]);
  // b = a > median: the median of 20 values is 0.1 (12 values of 0.1) → ones 5..12 and 16
  // inner = {6, 7, 11}: largest a·inner is t = 11; outer = {2, 3, 14, 18}: all a = 0.1 → t = 2
  assert.deepEqual(ones(r.hardAct), [11]);
  assert.deepEqual(ones(r.hardBkg), [2]);
  // the dropout mask changes the easy choice: zeroing 12 and 11 moves EA down
  const drop = new Float32Array(20).fill(2.5);
  drop[11] = drop[12] = 0;
  const d = mineSnippets(a, 1, 20, { rEasy: 5, rHard: 20, m: 3, M: 6, drop });
  assert.deepEqual(ones(d.easyAct), [7, 8, 9, 10]);
});

Deno.test("generation: pairing rule pairs identical label vectors only", () => {
  const pairs = identicalLabelPairs([[1], [2], [1], [1, 2], [2, 1], [0], [1, 1]]);
  assert.deepEqual(pairs, [[0, 2], [0, 6], [2, 6], [3, 4]]);
  assert.deepEqual(identicalLabelPairs([[0], [1], [2]]), []);
});

Deno.test("generation: random perturb matches worked example 7", () => {
  const rng = new Rng(5);
  const seen = [new Set<number>(), new Set<number>(), new Set<number>(), new Set<number>()];
  for (let r = 0; r < 400; r++) {
    const idx = randomPerturbIndices(10, 4, rng);
    idx.forEach((v, i) => seen[i].add(v));
  }
  const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
  assert.deepEqual(seen.map(sorted), [[0, 1, 2], [2, 3, 4, 5], [5, 6, 7], [7, 8, 9]]);
  const seen2 = Array.from({ length: 5 }, () => new Set<number>());
  for (let r = 0; r < 200; r++) randomPerturbIndices(3, 5, rng).forEach((v, i) => seen2[i].add(v));
  assert.deepEqual(seen2.map(sorted), [[0], [0, 1], [1], [1, 2], [2]]);
  assert.deepEqual(Array.from(randomPerturbIndices(4, 4, rng)), [0, 1, 2, 3]);
});

Deno.test("generation: uniform sampling keeps all snippets up to N, else floor(i·L/N)", () => {
  assert.deepEqual(Array.from(uniformIndices(3, 5)), [0, 1, 2]);
  assert.deepEqual(Array.from(uniformIndices(10, 4)), [0, 2, 5, 7]);
});

Deno.test("generation: x24 upsampling interpolates and extrapolates the tail", () => {
  assert.deepEqual(Array.from(upsampleLinear([0, 1, 3], 2)), [0, 0.5, 1, 2, 3, 4]);
  const up = upsampleLinear([1, 0.5], 24);
  assert.equal(up.length, 48);
  close(up[24], 0.5);
  close(up[47], 0.5 - 0.5 * 23 / 24); // slope −0.5 beyond the last snippet, no clipping
  close(up[12], 0.75);
  assert.deepEqual(Array.from(upsampleLinear([0.3], 3)), [0.3, 0.3, 0.3]);
});

Deno.test("generation: min-max normalisation clamps lo at 0 and guards a flat sequence", () => {
  assert.deepEqual(Array.from(minMaxNormalize([1, 3, 2])), [0, 1, 0.5]);
  assert.deepEqual(Array.from(minMaxNormalize([0, 0, 0])), [0, 0, 0]);
  assert.deepEqual(Array.from(minMaxNormalize([2, 2])), [0, 0]);
});

Deno.test("generation: grouping and OIC score (hand-computed)", () => {
  assert.deepEqual(groupRuns([0, 1, 2, 5, 7, 8]), [[0, 2], [5, 5], [7, 8]]);
  // signal of 12 units, run 4..7 (n = 4, λn = 1): outer = units 3 and 8.
  const sig = [0, 0, 0, 0.2, 1, 0.8, 0.6, 1, 0.4, 0, 0, 0];
  close(oicScore(sig, 4, 7, 0.5, 0.25, 0.2), 0.85 - 0.3 + 0.1);
  // run 0..1 (n = 2, λn = 0.5): left outer empty (trunc(−0.5) = 0 → [0, −1]); right = trunc(1.5) = 1 → empty
  close(oicScore([1, 1, 0], 0, 1, 0, 0.25, 0.2), 1);
  // run at the end: outer capped at U − 1
  close(oicScore([0.5, 0, 1, 1, 1, 1], 2, 5, 0, 0.25, 0), 1 - 0);
});

Deno.test("generation: '+1' NMS matches worked example 2", () => {
  const p = (score: number, start: number, end: number) => ({ score, start, end });
  const kept = nmsPlusOne(
    [p(0.9, 10, 12), p(0.8, 12.5, 14), p(0.7, 20, 30), p(0.6, 11, 12.5)],
    0.5,
  );
  assert.deepEqual(kept.map((k) => k.score), [0.9, 0.8, 0.7]);
  // removal happens at IoU ≥ threshold: [0,1] vs [0,1] → IoU 1
  assert.equal(nmsPlusOne([p(0.5, 0, 1), p(0.5, 0, 1)], 1).length, 1);
});

Deno.test("generation: time conversion matches worked example 6", () => {
  const T = 100, L = 130;
  close(unitToSeconds(COLA_GRID, 240, L, T, 24), 8.32, 1e-9);
  close(unitToSeconds(COLA_GRID, 288, L, T, 24), 9.984, 1e-9);
  close(unitToSeconds(COLA_GRID, 1, L, T, 24), (16 * 130) / (24 * 100 * 25), 1e-12);
});

Deno.test("generation: proposal sweep on a hand-made CAS", () => {
  // T = 4, one class, CAS [0, 1, 1, 0]: after ×24 upsampling and thresholding one run remains
  // per threshold; the class (p = 1) is selected.
  const v = { cas: [0, 1, 1, 0], T: 4, C: 1, videoScore: [1], L: 4 };
  const pooled = sweepProposals(v, DEFAULT_PROPOSAL_CONFIG);
  const list = pooled.get(0)!;
  assert.ok(list.length > 0);
  for (const q of list) {
    assert.ok(q.end - q.start + 1 >= 2);
    assert.ok(q.start > 0 && q.end < 72, `${q.start}..${q.end}`);
  }
  // CAS θ = 0: units u with value > 0 are 1..71 (the tail extrapolates below 0 after u = 72)
  assert.deepEqual([list[0].start, list[0].end], [1, 71]);
  const det = extractProposals("v", v, COLA_GRID, ["a"], DEFAULT_PROPOSAL_CONFIG);
  assert.ok(det.length >= 1);
  assert.equal(det[0].label, "a");
  // descending score after NMS; segments in seconds inside the video (4 snippets = 2.56 s)
  for (let i = 1; i < det.length; i++) assert.ok(det[i - 1].score >= det[i].score);
  for (const d of det) assert.ok(d.segment[0] >= 0 && d.segment[1] <= 2.56 + 1e-9);
});

Deno.test("generation: class selection falls back to argmax; {0}-only candidate sets are skipped", () => {
  const v = { cas: [1, 0, 0.5, 1, 0, 0.2], T: 3, C: 2, videoScore: [0.1, 0.15], L: 3 };
  assert.deepEqual([...sweepProposals(v).keys()], [1]);
  // a class whose only candidate unit is 0 produces nothing (reference quirk)
  const w = { cas: [1, 0, 0], T: 3, C: 1, videoScore: [1], L: 3 };
  const cfg = { ...DEFAULT_PROPOSAL_CONFIG, upScale: 1, casThresholds: [0.5], actThresholds: [] };
  assert.equal(sweepProposals(w, cfg).size, 0);
});

Deno.test("generation: swept OIC scores equal the direct OIC formula", () => {
  const rng = new Rng(9);
  const T = 30, C = 2;
  const cas = Array.from({ length: T * C }, () => Math.max(0, rng.normal()));
  const v = { cas, T, C, videoScore: [0.7, 0.3], L: 45 };
  const cfg = { ...DEFAULT_PROPOSAL_CONFIG, casThresholds: [] };
  const pooled = sweepProposals(v, cfg);
  let n = 0;
  for (const [c, list] of pooled) {
    const col = Array.from({ length: T }, (_, t) => cas[t * C + c]);
    const sig = upsampleLinear(minMaxNormalize(col), 24);
    for (const q of list) {
      close(q.score, oicScore(sig, q.start, q.end, v.videoScore[c], 0.25, 0.2), 1e-9);
      n++;
    }
  }
  assert.ok(n > 10);
});
