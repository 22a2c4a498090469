/**
 * The plugin contract and the registry, for plugin authors: the plugin kinds' types, the
 * records they exchange, and the functions that register and look up plugins. Loads no
 * tfjs (built-in plugins are imported on first use).
 *
 * ```ts
 * import type { FilterPlugin } from "jsr:@fustal/fustal-ts/plugins";
 * const keepAll: FilterPlugin = { kind: "filter", name: "keep-all", apply: (d) => d };
 * export default keepAll;
 * ```
 *
 * @module
 */
export type { Detection, GroundTruth, GroundTruthInstance, Segment } from "./lib/types.ts";
export type {
  Annotation,
  Dataset,
  DatasetInfo,
  FeatureGrid,
  Split,
  VideoFeatures,
  VideoMeta,
} from "./lib/dataset_types.ts";
export {
  type CurvePoint,
  type DatasetPlugin,
  type FilterContext,
  type FilterPlugin,
  type GeneratorPlugin,
  type GeneratorResult,
  type Plugin,
  PLUGIN_KINDS,
  type PredictContext,
  type ProgressSink,
  type StageContext,
  type StudentPlugin,
  type StudentResult,
} from "./lib/plugin_types.ts";
export type { BackendInfo, BackendName, BlasInfo } from "./lib/backend.ts";
export {
  BUILTIN_SOURCE,
  DEFAULT_PLUGINS,
  describePlugin,
  getPlugin,
  guardPluginCall,
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
export { InputError } from "./lib/errors.ts";
