/**
 * Public API of the generation stage (re-exported by the root `mod.ts`): the `cola-xv`
 * generator plugin, the training entry point, the presets, the proposal pipeline (FuSTAL
 * `CrossVideo-Generator/core/utils.py`) and the checkpoint reader and the resumable training-state
 * file.
 *
 * @module
 */
export { configFromOptions, generatorPlugin } from "./plugin.ts";
export {
  DEFAULT_PRESET,
  type GeneratorConfig,
  generatorConfig,
  type GeneratorPreset,
  PAPER_PRESET,
} from "./presets.ts";
export { type GeneratorRun, trainGenerator, type TrainHooks } from "./train.ts";
export {
  DEFAULT_PROPOSAL_CONFIG,
  extractProposals,
  type ProposalConfig,
  type VideoOutputs,
} from "./proposals.ts";
export { type CheckpointHeader, loadCheckpoint, saveCheckpoint } from "./model.ts";
export {
  loadTrainState,
  STATE_FILE as GENERATOR_STATE_FILE,
  type TrainStateMeta as GeneratorTrainState,
} from "./checkpoint.ts";
