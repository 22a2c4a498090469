import assert from "node:assert/strict";
import {
  evaluateDetections,
  evaluateFiles,
  interpolatedAP,
  parseTious,
  segmentIoU,
} from "../stages/evaluation.ts";
import type { Detection, GroundTruth } from "../lib/types.ts";
import { InputError } from "../lib/errors.ts";
import { SHARED_DATA, skipWithoutSharedData } from "./shared_data.ts";

const DATA = SHARED_DATA;

const close = (a: number, b: number, eps = 1e-9) =>
  assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

Deno.test("evaluation: worked example 1 (AP at 0.5, 0.7, 0.9)", () => {
  const gt: GroundTruth = {
    videos: ["A", "B"],
    instances: [
      { videoId: "A", label: "x", segment: [0, 10] },
      { videoId: "A", label: "x", segment: [20, 30] },
      { videoId: "B", label: "x", segment: [5, 15] },
    ],
  };
  const d = (videoId: string, s: number, e: number, score: number): Detection => ({
    videoId,
    label: "x",
    score,
    segment: [s, e],
  });
  const preds = [
    d("A", 1, 9, 0.9),
    d("A", 0, 10, 0.8),
    d("B", 30, 40, 0.7),
    d("A", 21, 29, 0.6),
    d("C", 0, 5, 0.5),
  ];
  const r = evaluateDetections(gt, preds, { tiou: [0.5, 0.7, 0.9] });
  close(r.mAP[0], 0.5);
  close(r.mAP[1], 0.5);
  close(r.mAP[2], 1 / 6);
  close(r.average, (0.5 + 0.5 + 1 / 6) / 3);
});

Deno.test("evaluation: interpolated AP and IoU basics", () => {
  // envelope 1, 2/3, 2/3 over recall steps 1/3, 0, 1/3: 1/3 + 2/9
  close(interpolatedAP([1, 0.5, 2 / 3], [1 / 3, 1 / 3, 2 / 3]), 5 / 9);
  close(interpolatedAP([], []), 0);
  close(segmentIoU([0, 10], [5, 15]), 5 / 15);
  close(segmentIoU([0, 1], [2, 3]), 0);
});

Deno.test("evaluation: class without predictions counts 0; unknown labels ignored with warning", () => {
  const gt: GroundTruth = {
    videos: ["A"],
    instances: [
      { videoId: "A", label: "x", segment: [0, 10] },
      { videoId: "A", label: "y", segment: [20, 30] },
    ],
  };
  const warnings: string[] = [];
  const r = evaluateDetections(gt, [
    { videoId: "A", label: "x", score: 1, segment: [0, 10] },
    { videoId: "A", label: "zzz", score: 1, segment: [0, 10] },
  ], { tiou: [0.5], onWarning: (m) => warnings.push(m) });
  close(r.perClass.x[0], 1);
  close(r.perClass.y[0], 0);
  close(r.mAP[0], 0.5);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /zzz/);
  assert.equal(r.counts.ignored, 1);
});

Deno.test("evaluation: tie rule - equal scores visit the later detection first", () => {
  // Two detections with the same score on one GT: the later one is visited first and takes
  // the GT; if it is the poorer match at 0.5 it still wins (documented rule).
  const gt: GroundTruth = {
    videos: ["A"],
    instances: [{ videoId: "A", label: "x", segment: [0, 10] }],
  };
  const preds: Detection[] = [
    { videoId: "A", label: "x", score: 0.5, segment: [0, 10] },
    { videoId: "A", label: "x", score: 0.5, segment: [50, 60] },
  ];
  // Later (a FP) first, then the TP: precision at recall 1 is 0.5.
  close(evaluateDetections(gt, preds, { tiou: [0.5] }).mAP[0], 0.5);
  close(evaluateDetections(gt, [preds[1], preds[0]], { tiou: [0.5] }).mAP[0], 1);
});

Deno.test("evaluation: --tiou parsing", () => {
  assert.deepEqual(parseTious("0.3,0.5,0.7"), [0.3, 0.5, 0.7]);
  assert.deepEqual(parseTious("0.1:0.7:0.1"), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  assert.deepEqual(parseTious("0.5:0.95:0.05").length, 10);
  assert.throws(() => parseTious("abc"), InputError);
  assert.throws(() => parseTious("0.5:0.1:0.1"), InputError);
});

Deno.test("evaluation: reproduces published AutoLoc THUMOS'14 mAP @0.1:0.9", {
  ignore: skipWithoutSharedData("AutoLoc THUMOS'14"),
}, async () => {
  const r = await evaluateFiles(
    `${DATA}/thumos14_autoloc/autoloc_th14_test_gt.json`,
    `${DATA}/thumos14_autoloc/autoloc_th14_test_results.json`,
    { subset: "test", tiou: parseTious("0.1:0.9:0.1") },
  );
  const published = [0.467, 0.417, 0.358, 0.290, 0.212, 0.134, 0.058, 0.016, 0.002];
  assert.deepEqual(r.mAP.map((v) => v.toFixed(3)), published.map((v) => v.toFixed(3)));
  assert.equal(r.average.toFixed(3), "0.217");
});

Deno.test("evaluation: reproduces published AutoLoc ActivityNet v1.2 average mAP", {
  ignore: skipWithoutSharedData("AutoLoc ActivityNet v1.2"),
}, async () => {
  const r = await evaluateFiles(
    `${DATA}/anet12_autoloc/autoloc_an12_val_gt.json`,
    `${DATA}/anet12_autoloc/autoloc_an12_val_results.json`,
    { tiou: parseTious("0.5:0.95:0.05") },
  );
  const published = [0.273, 0.249, 0.225, 0.199, 0.175, 0.151, 0.130, 0.100, 0.068, 0.033];
  assert.deepEqual(r.mAP.map((v) => v.toFixed(3)), published.map((v) => v.toFixed(3)));
  assert.equal(r.average.toFixed(3), "0.160");
});

Deno.test("evaluation: P-MIL train proposals against CoLA gt (README figures)", {
  ignore: skipWithoutSharedData("P-MIL proposals"),
}, async () => {
  const r = await evaluateFiles(
    `${DATA}/thumos14_cola/gt.json`,
    `${DATA}/thumos14_pmil_proposals/detection_result_base_test.json`,
    { subset: "test" },
  );
  // data/README: 0.697/0.637/0.546/0.449/0.341/0.234/0.125, avg 0.430 when predictions on
  // videos 270 and 1496 (absent from this GT) count as false positives, as here.
  assert.equal(r.average.toFixed(3), "0.430");
});
