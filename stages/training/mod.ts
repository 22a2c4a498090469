/**
 * Public API of the training stage (TriDet student with EMA distillation, paper Sec. 3.3).
 *
 * @module
 */
export { configFromOptions as studentConfigFromOptions, studentPlugin } from "./plugin.ts";
export {
  DEFAULT as STUDENT_DEFAULT_PRESET,
  PAPER as STUDENT_PAPER_PRESET,
  PRESETS as STUDENT_PRESETS,
  type StudentConfig,
} from "./presets.ts";
export {
  type CheckpointMeta as StudentCheckpointMeta,
  detectSplit,
  groundTruthOf,
  loadStudent,
  type TrainOptions as StudentTrainOptions,
  type TrainOutcome as StudentTrainOutcome,
  trainStudent,
} from "./train.ts";
export { predictVideo } from "./infer.ts";
export {
  type Backbone,
  type BackboneInput,
  BACKBONES,
  DEFAULT_PARTS as STUDENT_DEFAULT_PARTS,
  type Head,
  type HeadInput,
  HEADS,
  type ModelChoice as StudentModelChoice,
  type Neck,
  type NeckInput,
  NECKS,
  registerBackbone,
  registerHead,
  registerNeck,
} from "./model/registry.ts";
export type { ForwardBatch, ForwardOutput, Layout, ParamSpec } from "./model.ts";
export type { ParamGetter } from "./model/params.ts";
export type { Tensor } from "../../deps.ts";
export { hardNms, type Scored, softNms } from "./nms.ts";
