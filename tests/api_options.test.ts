// The library's option names and checks: `tiou` everywhere, unknown option keys are errors,
// one rule for the default tIoU thresholds, and registerPlugin typed by plugin kind.
import assert from "node:assert/strict";
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import type { Detection, GroundTruth } from "../lib/types.ts";
import type { FilterPlugin } from "../lib/plugin_types.ts";
import {
  ACTIVITYNET_TIOUS,
  evaluateDetections,
  evaluateFiles,
  THUMOS_TIOUS,
  tiouFor,
} from "../stages/evaluation.ts";
import { runFuSTAL } from "../stages/pipeline.ts";
import { registerPlugin } from "../registry.ts";

function gtOf(classes: number): GroundTruth {
  const gt: GroundTruth = { videos: ["v"], instances: [] };
  for (let c = 0; c < classes; c++) {
    gt.instances.push({ videoId: "v", label: `c${c}`, segment: [c * 10, c * 10 + 5] });
  }
  return gt;
}
const det = (label: string, s: number): Detection => ({
  videoId: "v",
  label,
  score: 0.9,
  segment: [s, s + 5],
});

Deno.test("api: tIoU thresholds follow one rule (layout, then class count)", () => {
  assert.deepEqual(tiouFor(undefined, 20), [...THUMOS_TIOUS]);
  assert.deepEqual(tiouFor("actionformer", 99), [...THUMOS_TIOUS]);
  assert.deepEqual(tiouFor("cola", 100), [...ACTIVITYNET_TIOUS]);
  assert.deepEqual(tiouFor("activitynet", 2), [...ACTIVITYNET_TIOUS]);
  // The evaluator's default is that rule on the ground truth's classes.
  assert.deepEqual(evaluateDetections(gtOf(20), [det("c0", 0)]).tiou, [...THUMOS_TIOUS]);
  assert.deepEqual(evaluateDetections(gtOf(200), [det("c0", 0)]).tiou, [...ACTIVITYNET_TIOUS]);
  assert.deepEqual(evaluateDetections(gtOf(2), [], { tiou: [0.5] }).tiou, [0.5]);
});

Deno.test("api: an unknown option key is an error naming it", async () => {
  const bad = { tious: [0.5] } as unknown as { tiou: number[] };
  assert.throws(
    () => evaluateDetections(gtOf(2), [], bad),
    (e: unknown) => e instanceof InputError && /unknown option "tious"/.test(e.message),
  );
  const dir = await Deno.makeTempDir({ prefix: "fustal_api_" });
  try {
    const gtFile = path.join(dir, "gt.json"), predFile = path.join(dir, "pred.json");
    await Deno.writeTextFile(
      gtFile,
      JSON.stringify({
        database: { v: { subset: "test", annotations: [{ label: "a", segment: [0, 5] }] } },
      }),
    );
    await Deno.writeTextFile(
      predFile,
      JSON.stringify({ results: { v: [{ label: "a", score: 1, segment: [0, 5] }] } }),
    );
    assert.equal((await evaluateFiles(gtFile, predFile, { tiou: [0.5] })).mAP[0], 1);
    await assert.rejects(
      evaluateFiles(gtFile, predFile, { subset: "test", ...bad }),
      /evaluateFiles options: unknown option "tious" \(known: tiou, onWarning, subset\)/,
    );
    // runFuSTAL checks its config before doing anything: nothing is written.
    const out = path.join(dir, "run");
    await assert.rejects(
      runFuSTAL({ out, seeds: 3 } as unknown as Parameters<typeof runFuSTAL>[0]),
      (e: unknown) =>
        e instanceof InputError && /runFuSTAL config: unknown option "seeds"/.test(e.message),
    );
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("api: registerPlugin is typed by the plugin kind", () => {
  const keep: FilterPlugin = { kind: "filter", name: "api-keep-all", apply: (p) => p };
  const back: FilterPlugin = registerPlugin(keep);
  assert.equal(back, keep);
  assert.throws(
    // @ts-expect-error a filter needs `apply` (the type check fails without this line's error)
    () => registerPlugin<FilterPlugin>({ kind: "filter", name: "api-no-apply" }),
    /missing method "apply"/,
  );
});
