/**
 * Stage options of a pipeline small enough for a test (16 videos, 16-d, a few steps per
 * stage), shared by the pipeline and scale-out tests.
 *
 * @module
 */

/** Generator options of the tiny pipeline. */
export const TINY_GENERATOR = { iterations: 4, evalEvery: 2, batch: 4, snippets: 32 };

/** Student options of the tiny pipeline. */
export const TINY_STUDENT = {
  epochs: 3,
  switchEpoch: 2,
  batch: 4,
  dim: 16,
  mlpDim: 24,
  levels: 3,
  regressionRanges: [[0, 4], [4, 8], [8, 10000]],
  gnGroups: 4,
  numBins: 4,
  maxSeqLen: 128,
  // The tiny videos (~100 rows) at their own rate, in one pass per step.
  downsample: 1,
  microBatch: 0,
  emaDecay: 0.8,
};
