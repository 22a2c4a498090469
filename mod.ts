/**
 * FuSTAL-TS: weakly-supervised temporal action localization (FuSTAL, arXiv 2407.08971) on
 * the runtime's own WebGPU, with tfjs-wasm / tfjs-cpu fallbacks.
 *
 * ```ts
 * import { runFuSTAL, evaluateFiles } from "./mod.ts";
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

export type { Detection, GroundTruth, GroundTruthInstance, Segment } from "./lib/types.ts";
export { InputError } from "./lib/errors.ts";
export { type BackendInfo, type BackendName, describeBackend, initBackend } from "./lib/backend.ts";
export { setBlasOptions } from "./lib/backend.ts";
export type { BlasInfo, BlasOptions } from "./lib/blas.ts";
export {
  ACTIVITYNET_TIOUS,
  datasetTious,
  type EvalFileOptions,
  type EvalOptions,
  type EvalResult,
  evaluateDetections,
  evaluateFiles,
  formatEvalTable,
  parseGroundTruth,
  parseResults,
  parseTious,
  type ResultsFile,
  segmentIoU,
  THUMOS_TIOUS,
  toResultsFile,
} from "./stages/evaluation.ts";
export {
  formatResultsTable,
  type FuSTALConfig,
  type FuSTALResult,
  type MapFigures,
  type QualityFigures,
  runFuSTAL,
  writeDefaultDataset,
} from "./stages/pipeline.ts";
export { type AblationRow, formatAblationTable, runAblation } from "./stages/ablation.ts";
export {
  type MapSeries,
  renderReport,
  type ReportData,
  type TimelineTrack,
  type VideoTimeline,
} from "./lib/report.ts";
export { Rng } from "./lib/rng.ts";
// --- stage exports (one line per module; keep this block sorted) ---
export {
  DATASET_PLUGINS,
  detectLayout,
  type FeatureReadOptions,
  type GeometryVideo,
  openDataset,
  type OpenOptions,
  synthesize,
  type SynthFormat,
  type SynthOptions,
  type SynthResult,
  thumos14Geometry,
} from "./datasets.ts";
export { main } from "./cli.ts";
export type {
  Annotation,
  Dataset,
  DatasetInfo,
  FeatureGrid,
  Split,
  VideoFeatures,
  VideoMeta,
} from "./datasets/types.ts";
export type {
  CurvePoint,
  DatasetPlugin,
  FilterContext,
  FilterPlugin,
  GeneratorPlugin,
  GeneratorResult,
  Plugin,
  ProgressSink,
  StageContext,
  StudentPlugin,
  StudentResult,
} from "./lib/plugin_types.ts";
export { PLUGIN_KINDS } from "./lib/plugin_types.ts";
export {
  getPlugin,
  listPlugins,
  loadPluginModule,
  type PluginConfig,
  type PluginInfo,
  type PluginKind,
  type PluginOfKind,
  registerPlugin,
  type ResolvedPlugins,
  resolvePlugins,
} from "./registry.ts";
export {
  type CheckpointHeader as GeneratorCheckpointHeader,
  configFromOptions as generatorConfigFromOptions,
  DEFAULT_PRESET as GENERATOR_DEFAULT_PRESET,
  DEFAULT_PROPOSAL_CONFIG,
  extractProposals,
  type GeneratorConfig,
  generatorConfig,
  generatorPlugin,
  type GeneratorPreset,
  type GeneratorRun,
  loadCheckpoint as loadGeneratorCheckpoint,
  PAPER_PRESET as GENERATOR_PAPER_PRESET,
  type ProposalConfig,
  type ResultEntry as GeneratorResultEntry,
  toResultsJson as toGeneratorResultsJson,
  trainGenerator,
  type TrainHooks as GeneratorTrainHooks,
  type VideoOutputs as GeneratorVideoOutputs,
} from "./stages/generation/mod.ts";
export {
  DEFAULT_ETA,
  DEFAULT_GAMMA,
  DEFAULT_TOPK,
  iouScores,
  matchProposals,
  type MatchStats,
  priorFilter,
  type PseudoLabelQuality,
  pseudoLabelQuality,
  scoreFilter,
  selectByVideo,
  type SelectionOptions,
  selectProposals,
  type SelectRunOptions,
  topkFilter,
} from "./stages/selection.ts";
export * from "./stages/training/mod.ts";
// --- end stage exports ---

if (import.meta.main) {
  const { main } = await import("./cli.ts");
  process.exitCode = await main(process.argv.slice(2));
}
