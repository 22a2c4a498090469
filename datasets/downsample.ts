/**
 * A coarser view of a dataset's feature grid: every `factor` consecutive rows averaged into one.
 *
 * ActionFormer and TriDet read features at a coarser rate with their dataset option
 * `downsample_rate` (happyharrycn/actionformer_release `libs/datasets/thumos14.py`,
 * `__getitem__`: `feats[::downsample_rate]` and `feat_stride * downsample_rate`). This view keeps
 * the same grid arithmetic but averages each group of rows instead of keeping the first, so no
 * row's evidence is dropped. The student sees fewer rows per second (a whole THUMOS'14 video in
 * a quarter of the rows at factor 4), and its detections map back to seconds through the
 * coarser grid, so nothing downstream needs to know.
 *
 * @module
 */
import type { Dataset, FeatureGrid, VideoFeatures, VideoMeta } from "./types.ts";

/**
 * The grid of rows averaged in groups of `factor`. On a snippet grid (offset 0, positions are
 * snippet boundaries) a coarse row covers `factor` snippets; on a centred grid a coarse row is
 * centred at the mean of its members' centres.
 */
export function downsampleGrid(grid: FeatureGrid, factor: number): FeatureGrid {
  if (factor === 1) return grid;
  const centred = grid.offset !== 0;
  return {
    fps: grid.fps,
    stride: grid.stride * factor,
    window: grid.window + grid.stride * (factor - 1),
    offset: centred ? grid.offset + (grid.stride * (factor - 1)) / 2 : 0,
  };
}

/** Rows after averaging `length` rows in groups of `factor` (a short last group counts). */
export function downsampledLength(length: number, factor: number): number {
  return length < 0 ? length : Math.ceil(length / factor);
}

/** `f` with every `factor` consecutive rows averaged (the last group over the rows it has). */
export function averageRows(f: VideoFeatures, factor: number): VideoFeatures {
  if (factor === 1) return f;
  const { dim } = f;
  const length = downsampledLength(f.length, factor);
  const data = new Float32Array(length * dim);
  for (let r = 0; r < length; r++) {
    const lo = r * factor;
    const hi = Math.min(f.length, lo + factor);
    const out = data.subarray(r * dim, (r + 1) * dim);
    for (let i = lo; i < hi; i++) {
      const row = f.data.subarray(i * dim, (i + 1) * dim);
      for (let d = 0; d < dim; d++) out[d] += row[d];
    }
    const inv = 1 / (hi - lo);
    for (let d = 0; d < dim; d++) out[d] *= inv;
  }
  return { data, length, dim };
}

/** `meta` on the grid averaged by `factor` (length and grid; times stay in seconds). */
export function downsampleMeta(meta: VideoMeta, factor: number): VideoMeta {
  if (factor === 1) return meta;
  return {
    ...meta,
    grid: downsampleGrid(meta.grid, factor),
    length: downsampledLength(meta.length, factor),
  };
}

/** Checks a downsampling factor: a positive integer. */
export function isDownsampleFactor(factor: unknown): factor is number {
  return typeof factor === "number" && Number.isInteger(factor) && factor >= 1;
}

/** A view of `ds` whose videos have every `factor` rows averaged into one. */
export function downsampleDataset(ds: Dataset, factor: number): Dataset {
  if (factor === 1) return ds;
  const metas = (split?: Parameters<Dataset["list"]>[0]) =>
    ds.list(split).map((m) => downsampleMeta(m, factor));
  return {
    layout: ds.layout,
    root: ds.root,
    classes: ds.classes,
    featureDim: ds.featureDim,
    annotationFile: ds.annotationFile,
    skipped: ds.skipped,
    warnings: ds.warnings,
    list: metas,
    load: async (id) => averageRows(await ds.load(id), factor),
    async *videos(split) {
      for await (const { meta, features } of ds.videos(split)) {
        yield { meta: downsampleMeta(meta, factor), features: averageRows(features, factor) };
      }
    },
  };
}
