/**
 * The evaluation-only entry: ActivityNet detection mAP of result files or records, with the
 * official evaluator's semantics. Loads no tfjs (a test checks its import graph), so a cold
 * import is quick.
 *
 * ```ts
 * import { evaluateFiles, formatEvalTable } from "jsr:@fustal/fustal-ts/eval";
 * const r = await evaluateFiles("gt.json", "results.json", { subset: "test" });
 * console.log(formatEvalTable(r));
 * ```
 *
 * @module
 */
export * from "./stages/evaluation.ts";
export type { Detection, GroundTruth, GroundTruthInstance, Segment } from "./lib/types.ts";
export { InputError } from "./lib/errors.ts";
export { parseSegment } from "./lib/segment.ts";
