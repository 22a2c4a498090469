// Class fusion: the student's detections kept for the classes the generator found per video.
import assert from "node:assert/strict";
import {
  classFusionName,
  keepVideoClasses,
  PRESET_CLASS_FUSION,
  videoClasses,
} from "../stages/fusion.ts";
import { PRESET_NAMES } from "../lib/presets.ts";
import { InputError } from "../lib/errors.ts";
import type { Detection } from "../lib/types.ts";

const det = (videoId: string, label: string, score: number): Detection => ({
  videoId,
  label,
  score,
  segment: [1, 2],
});

Deno.test("fusion: keeps the classes the generator found in each video, in order", () => {
  const gen = [det("v1", "A", 0.9), det("v1", "B", 0.2), det("v2", "C", 0.5)];
  const classes = videoClasses(gen);
  assert.deepEqual([...classes.get("v1")!].sort(), ["A", "B"]);
  const student = [
    det("v1", "C", 0.8),
    det("v1", "A", 0.7),
    det("v2", "A", 0.6),
    det("v2", "C", 0.4),
    det("v1", "B", 0.3),
    det("v3", "A", 0.2), // the generator found nothing in v3: no evidence, kept
  ];
  assert.deepEqual(keepVideoClasses(student, classes), [
    student[1],
    student[3],
    student[4],
    student[5],
  ]);
});

Deno.test("fusion: every preset has a mode; unknown modes are one-line input errors", () => {
  for (const p of PRESET_NAMES) assert.ok(["none", "generator"].includes(PRESET_CLASS_FUSION[p]));
  assert.equal(PRESET_CLASS_FUSION.paper, "none");
  assert.equal(classFusionName("generator"), "generator");
  assert.throws(
    () => classFusionName("top2", "run: --class-fusion"),
    (e: unknown) =>
      e instanceof InputError && /run: --class-fusion: unknown class fusion "top2"/.test(e.message),
  );
});
