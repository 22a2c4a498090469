import assert from "node:assert/strict";
import type { Detection, GroundTruth } from "../lib/types.ts";
import type { FilterPlugin } from "../lib/plugin_types.ts";
import { InputError } from "../lib/errors.ts";
import { evaluateDetections } from "../stages/evaluation.ts";
import {
  groupByVideo,
  hullIoU,
  iouScores,
  matchProposals,
  noneFilterPlugin,
  priorFilter,
  priorFilterPlugin,
  pseudoLabelQuality,
  scoreFilter,
  selectByVideo,
  selectProposals,
  topkFilter,
} from "../stages/selection.ts";

const det = (videoId: string, label: string, score: number, s: number, e: number): Detection => ({
  videoId,
  label,
  score,
  segment: [s, e],
});

// Worked example 4 of docs/METHOD.md.
const EX4: Detection[] = [
  det("v", "A", 0.5, 10, 20),
  det("v", "A", 0.45, 11, 19),
  det("v", "A", 0.3, 12, 22),
  det("v", "A", 0.9, 50, 52),
  det("v", "A", 0.41, 51, 60),
];

Deno.test("selection: Appendix A example 4 IoU scores and kept set", () => {
  const r = iouScores(EX4);
  const want = [1.4667, 1.4364, 1.3030, 0.1, 0.1];
  want.forEach((w, i) => assert.ok(Math.abs(r[i] - w) < 5e-5, `r[${i}] = ${r[i]}, want ${w}`));
  const kept = priorFilter(EX4);
  assert.deepEqual(kept, [EX4[0], EX4[1]]);
});

Deno.test("selection: prior filter ignores classes when computing IoU scores", () => {
  // Same segments as example 4 but every proposal a different class: same IoU scores.
  const mixed = EX4.map((d, i) => ({ ...d, label: `c${i}` }));
  assert.deepEqual(Array.from(iouScores(mixed)), Array.from(iouScores(EX4)));
  assert.deepEqual(priorFilter(mixed).map((d) => d.label), ["c0", "c1"]);
});

Deno.test("selection: prior comparisons are exact (>= gamma, > eta)", () => {
  const props = [det("v", "A", 0.7, 0, 10), det("v", "A", 0.6, 5, 10)];
  const r = iouScores(props);
  assert.equal(r[0], r[1]);
  assert.equal(r[0], hullIoU([0, 10], [5, 10]));
  // IoU score exactly gamma: kept (>=).
  assert.equal(priorFilter(props, { gamma: r[0], eta: 0 }).length, 2);
  assert.equal(priorFilter(props, { gamma: r[0] + 1e-12, eta: 0 }).length, 0);
  // Score exactly eta: dropped (>).
  assert.deepEqual(priorFilter(props, { gamma: 0, eta: 0.6 }), [props[0]]);
  // Defaults: 0.5 >= 0.2, and both scores > 0.4.
  assert.equal(priorFilter(props).length, 2);
  // One proposal alone has IoU score 0: dropped by the default gamma, kept with gamma 0.
  assert.equal(priorFilter([props[0]]).length, 0);
  assert.equal(priorFilter([props[0]], { gamma: 0 }).length, 1);
  assert.deepEqual(priorFilter([]), []);
});

Deno.test("selection: score, topk and none filters", () => {
  assert.deepEqual(scoreFilter(EX4), [EX4[0], EX4[1], EX4[3], EX4[4]]);
  assert.deepEqual(scoreFilter(EX4, { eta: 0.45 }), [EX4[0], EX4[3]]);
  const props = [
    det("v", "A", 0.5, 0, 1),
    det("v", "B", 0.9, 0, 1),
    det("v", "A", 0.7, 2, 3),
    det("v", "A", 0.5, 4, 5),
    det("v", "B", 0.1, 6, 7),
  ];
  // Top-1 per class, input order kept among the kept ones.
  assert.deepEqual(topkFilter(props, { k: 1 }), [props[1], props[2]]);
  // Tie at the k-th place: the earlier proposal wins.
  assert.deepEqual(topkFilter(props, { k: 2 }), [props[0], props[1], props[2], props[4]]);
  assert.deepEqual(topkFilter(props, { k: 0 }), []);
  assert.equal(topkFilter(props).length, 5); // default k 5
  assert.throws(() => topkFilter(props, { k: 1.5 }), InputError);
  assert.throws(() => priorFilter(props, { gamma: NaN }), InputError);
});

Deno.test("selection: selectProposals filters video by video through any plugin", async () => {
  const props = [
    ...EX4,
    det("w", "B", 0.95, 0, 10),
    det("w", "B", 0.95, 1, 10),
    det("x", "C", 0.1, 0, 1),
  ];
  const kept = await selectProposals(props, priorFilterPlugin, {});
  assert.deepEqual(kept, [EX4[0], EX4[1], props[5], props[6]]);
  const all = await selectProposals(props, noneFilterPlugin);
  assert.deepEqual(all, props);
  // A plugin sees one video at a time, with its id and the options.
  const calls: string[] = [];
  const spy: FilterPlugin = {
    kind: "filter",
    name: "spy-first",
    apply: (p, ctx) => {
      assert.ok(p.every((d) => d.videoId === ctx.videoId));
      calls.push(`${ctx.videoId}:${p.length}:${ctx.options.n}`);
      // videoId may be left out: the stage fills it in.
      return p.slice(0, 1).map(({ label, score, segment }) => ({
        label,
        score,
        segment,
      })) as Detection[];
    },
  };
  const byVideo = await selectByVideo(groupByVideo(props), spy, { options: { n: 3 } });
  assert.deepEqual(calls, ["v:5:3", "w:2:3", "x:1:3"]);
  assert.deepEqual([...byVideo.values()].flat(), [EX4[0], props[5], props[7]]);
});

Deno.test("selection: a filter returning garbage or throwing is an InputError naming it", async () => {
  const bad: FilterPlugin = {
    kind: "filter",
    name: "returns-number",
    apply: () => 3 as unknown as Detection[],
  };
  await assert.rejects(
    () => selectProposals(EX4, bad),
    (e: Error) =>
      e instanceof InputError && /"returns-number".*video v.*not an array/.test(e.message),
  );
  const throws: FilterPlugin = {
    kind: "filter",
    name: "throws",
    apply: () => {
      throw new Error("boom");
    },
  };
  await assert.rejects(
    () => selectProposals(EX4, throws),
    (e: Error) =>
      e instanceof InputError && /"throws".*apply on video v threw: Error: boom/.test(e.message),
  );
  const wrongVideo: FilterPlugin = {
    kind: "filter",
    name: "wrong-video",
    apply: (p) => p.map((d) => ({ ...d, videoId: "other" })),
  };
  await assert.rejects(() => selectProposals(EX4, wrongVideo), /belongs to video "other"/);
});

// Hand-checked matching example (worked example 1 of docs/METHOD.md's data plus a wrong class).
const GT: GroundTruth = {
  videos: ["A", "B"],
  instances: [
    { videoId: "A", label: "x", segment: [0, 10] },
    { videoId: "A", label: "x", segment: [20, 30] },
    { videoId: "B", label: "x", segment: [5, 15] },
  ],
};
const PREDS: Detection[] = [
  det("A", "x", 0.9, 1, 9), // matches A[0,10] (IoU 0.8)
  det("A", "x", 0.8, 0, 10), // A[0,10] taken; A[20,30] IoU 0 -> unmatched
  det("B", "x", 0.7, 30, 40), // IoU 0 -> unmatched
  det("A", "x", 0.6, 21, 29), // matches A[20,30]
  det("C", "x", 0.5, 0, 5), // no GT in C
  det("A", "y", 0.95, 0, 10), // wrong class
];

Deno.test("selection: precision/recall by greedy one-to-one matching", () => {
  const m = matchProposals(GT, PREDS, 0.5);
  assert.equal(m.matched, 2);
  assert.equal(m.precision, 2 / 6);
  assert.equal(m.recall, 2 / 3);
  // Greedy by score: at 0.5 the 0.9 proposal (IoU 0.8) takes A[0,10] before the exact 0.8
  // one; at 0.9 it fails the threshold, so the instance stays free for the exact one.
  assert.equal(matchProposals(GT, PREDS, 0.9).matched, 1);
  assert.equal(matchProposals(GT, [], 0.5).precision, 0);
  const q = pseudoLabelQuality(GT, PREDS, { tiou: [0.5, 0.7] });
  const e = evaluateDetections(GT, PREDS, { tiou: [0.5, 0.7] });
  assert.deepEqual(q.mAP, e.mAP);
  assert.equal(q.average, e.average);
  assert.equal(q.mAP[0], 0.5); // Appendix A example 1: AP@0.5 = 0.5
  assert.equal(q.precision, m.precision);
  assert.equal(q.recall, m.recall);
});
