/**
 * FuSTAL-TS: weakly-supervised temporal action localization (FuSTAL, arXiv 2407.08971) on
 * the runtime's own WebGPU, with tfjs-wasm / tfjs-cpu fallbacks.
 *
 * This entry is the user's API: {@linkcode runFuSTAL} (the whole method), the plugin
 * registry, the records the stages exchange and {@linkcode evaluateFiles}. The other entries
 * are subpaths: `./eval` (evaluation only, no tfjs), `./datasets`, `./plugins`, `./cli`,
 * `./generation`, `./selection`, `./training`, `./ablation`, `./report`, `./backend`.
 *
 * ```ts
 * import { evaluateFiles, runFuSTAL } from "jsr:@fustal/fustal-ts";
 * const run = await runFuSTAL({ out: "runs/demo" }); // synthetic THUMOS'14-shaped default
 * console.log(run.student.final.average);
 * const r = await evaluateFiles("gt.json", "results.json", { subset: "test" });
 * console.log(r.average);
 * ```
 *
 * Run as a program: `deno run -A mod.ts [COMMAND] [FLAGS]` (see `--help`).
 *
 * @module
 */
import process from "node:process";

export {
  formatResultsTable,
  type FuSTALConfig,
  type FuSTALResult,
  type MapFigures,
  type QualityFigures,
  runFuSTAL,
  type ScoringSource,
  type SnapshotFigures,
  writeDefaultDataset,
} from "./stages/pipeline.ts";
export {
  type EvalFileOptions,
  type EvalOptions,
  type EvalResult,
  evaluateFiles,
} from "./stages/evaluation.ts";
export * from "./plugins.ts";
export type { PresetName } from "./lib/presets.ts";
export type { ClassFusion } from "./stages/fusion.ts";

if (import.meta.main) {
  // Not a top-level await: when a plugin's promise can never settle, the CLI names it
  // (runProgram) instead of the runtime's "top-level await never resolved" trace.
  const { runProgram } = await import("./cli.ts");
  runProgram(process.argv.slice(2));
}
