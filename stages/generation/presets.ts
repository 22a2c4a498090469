/**
 * Generator configuration and its two presets.
 *
 * - `paper`: the published values (FuSTAL `CrossVideo-Generator/core/config.py`): 750 snippets,
 *   batch 16, 6000 iterations,
 *   Adam lr 1e-4 with L2 5e-4, evaluation every 100 iterations, seed 3407; the embedding is as
 *   wide as the input (2048 for I3D RGB+flow).
 * - `default`: the same method sized for one CPU core on tfjs-wasm, for the synthetic
 *   THUMOS'14-shaped set (128-d features, ~300 snippets per video): 256 sampled snippets,
 *   batch 16, 400 iterations at lr 2e-3, evaluation every 50. See bench/BENCH-generation.md
 *   for the measured time and why these values.
 * - `reference`: the published method at a reduced size: 256 snippets, batch 16, 600
 *   iterations, hidden width 2048, lr 1e-4 (the published rate), evaluation every 100.
 *
 * @module
 */
import { DEFAULT_PROPOSAL_CONFIG, type ProposalConfig } from "./proposals.ts";
import { InputError } from "../../lib/errors.ts";
import { type PresetName, presetName } from "../../lib/presets.ts";

/** Every knob of the generator stage. */
export interface GeneratorConfig {
  /** Snippets per video N (training: always N; inference: min(L, N)). */
  snippets: number;
  /** Videos per mini-batch. */
  batch: number;
  /** Training iterations. */
  iterations: number;
  /** Adam learning rate (constant). */
  lr: number;
  /** Coupled L2 weight decay. */
  weightDecay: number;
  /** Adam β1 (0.9). */
  beta1: number;
  /** Adam β2 (0.999). */
  beta2: number;
  /** Adam ε (1e-8). */
  eps: number;
  /** Evaluate on the test split every this many iterations (and after the last one). */
  evalEvery: number;
  /**
   * Write the resumable training state (`generator_state.ckpt`) every this many iterations
   * and after the last one; null = at each evaluation (`evalEvery`). Does not change results.
   */
  checkpointEvery: number | null;
  /** Seed of every random draw (init, sampling, shuffles, dropouts). */
  seed: number;
  /** Embedding width H; null = the input feature dim (the published model). */
  hidden: number | null;
  /** r_easy: k_e = ⌊T/r_easy⌋ easy snippets (5). */
  rEasy: number;
  /** r_hard: k_h = ⌊T/r_hard⌋ hard snippets (20). */
  rHard: number;
  /** Small morphology structure length m (3). */
  m: number;
  /** Large morphology structure length M (6). */
  M: number;
  /** Dropout on the embeddings (0.7). */
  dropEmbed: number;
  /** Dropout on the easy-mining mask (0.6). */
  dropEasy: number;
  /** NCE temperature. */
  tau: number;
  /** Weight of the whole contrastive term (0.01). */
  contrastWeight: number;
  /** Weight of the cross-video term inside it (0.2, split over the P pairs). */
  crossWeight: number;
  /** false = the CoLA baseline (no cross-video contrast). */
  crossVideo: boolean;
  /** Proposal extraction constants. */
  proposal: ProposalConfig;
  /** tIoU thresholds; null = by dataset (THUMOS 0.1:0.7, ActivityNet 0.5:0.95). */
  tiou: number[] | null;
  /** Cache features in memory up to this many bytes (beyond: reload per use). */
  cacheBytes: number;
}

/** Names of the presets (the one list is `lib/presets.ts`). */
export type GeneratorPreset = PresetName;

const COMMON = {
  weightDecay: 5e-4,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  hidden: null,
  rEasy: 5,
  rHard: 20,
  m: 3,
  M: 6,
  dropEmbed: 0.7,
  dropEasy: 0.6,
  tau: 0.07,
  contrastWeight: 0.01,
  crossWeight: 0.2,
  crossVideo: true,
  tiou: null,
  checkpointEvery: null,
  cacheBytes: 2 * 1024 ** 3,
} as const;

/** The published configuration. */
export const PAPER_PRESET: Readonly<GeneratorConfig> = {
  ...COMMON,
  snippets: 750,
  batch: 16,
  iterations: 6000,
  lr: 1e-4,
  evalEvery: 100,
  seed: 3407,
  proposal: DEFAULT_PROPOSAL_CONFIG,
};

/** The CPU-sized configuration used by the default run. */
export const DEFAULT_PRESET: Readonly<GeneratorConfig> = {
  ...COMMON,
  snippets: 256,
  batch: 16,
  iterations: 400,
  lr: 2e-3,
  evalEvery: 50,
  seed: 3407,
  proposal: DEFAULT_PROPOSAL_CONFIG,
};

/**
 * The reduced reference configuration: 256 snippets, 600 iterations of batch 16, a
 * 2048-wide embedding at the published learning rate; everything else as published.
 */
export const REFERENCE_PRESET: Readonly<GeneratorConfig> = {
  ...COMMON,
  snippets: 256,
  batch: 16,
  iterations: 600,
  lr: 1e-4,
  hidden: 2048,
  evalEvery: 100,
  seed: 3407,
  proposal: DEFAULT_PROPOSAL_CONFIG,
};

const PRESETS: Record<PresetName, Readonly<GeneratorConfig>> = {
  default: DEFAULT_PRESET,
  reference: REFERENCE_PRESET,
  paper: PAPER_PRESET,
};

/** A preset by name, merged with `overrides` (undefined values ignored). */
export function generatorConfig(
  preset: GeneratorPreset = "default",
  overrides: Partial<GeneratorConfig> = {},
): GeneratorConfig {
  const base = PRESETS[presetName(preset)];
  const cfg: GeneratorConfig = { ...base, proposal: { ...base.proposal } };
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) (cfg as unknown as Record<string, unknown>)[k] = v;
  }
  validateConfig(cfg);
  return cfg;
}

/** Throws an InputError naming the first invalid setting. */
export function validateConfig(c: GeneratorConfig): void {
  const int = (n: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) {
      throw new InputError(`generator config: ${n} must be an integer ≥ ${min}, got ${v}`);
    }
  };
  int("snippets", c.snippets, 2);
  int("batch", c.batch, 1);
  int("iterations", c.iterations, 0);
  int("evalEvery", c.evalEvery, 1);
  int("seed", c.seed, 0);
  if (c.hidden !== null) int("hidden", c.hidden, 1);
  if (c.checkpointEvery !== null) int("checkpointEvery", c.checkpointEvery, 1);
  if (!(c.lr > 0)) throw new InputError(`generator config: lr must be > 0, got ${c.lr}`);
  if (!(c.m < c.M)) throw new InputError(`generator config: m must be < M`);
}
