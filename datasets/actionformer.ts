/**
 * THUMOS'14 in the ActionFormer layout (actionformer_release `libs/datasets/thumos14.py`):
 *
 * ```
 * ROOT/annotations/thumos14.json      {"database": {vid: {subset, duration, fps, annotations}}}
 * ROOT/i3d_features/<vid>.npy         T x 2048 (or .npy.gz / .npz, or i3d_features.zip)
 * ```
 *
 * Subset `Validation` -> train, `Test` -> test. Rows are 16-frame windows every 4 frames at
 * the video's own fps (`actionFormerGrid(fps)`). Classes map by name through the fixed
 * THUMOS'14 table (the file's `label_id` is ignored, as FuSTAL does).
 *
 * @module
 */
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { readJson } from "../lib/io.ts";
import {
  finishOpen,
  type OpenOptions,
  parseAnnotations,
  type StreamingDataset,
  THUMOS14_CLASSES,
  thumosSplitOf,
  weakLabels,
} from "./common.ts";
import { type FeatureStore, openFeatureStore } from "./features.ts";
import { actionFormerGrid } from "./time.ts";
import type { VideoMeta } from "./types.ts";

/** Default annotation file, relative to the root. */
export const ACTIONFORMER_ANNOTATIONS = "annotations/thumos14.json";
/** Default features folder (or `.zip` with this name), relative to the root. */
export const ACTIONFORMER_FEATURES = "i3d_features";

/** Opens a THUMOS'14 ActionFormer-layout dataset at `root`. */
export async function openActionFormer(
  root: string,
  opts: OpenOptions = {},
): Promise<StreamingDataset> {
  const annFile = opts.annotations ?? path.join(root, ACTIONFORMER_ANNOTATIONS);
  const json = await readJson(annFile) as { database?: Record<string, Record<string, unknown>> };
  if (!json || typeof json.database !== "object" || json.database === null) {
    throw new InputError(`${annFile}: no "database" object (not an ActionFormer annotation file)`);
  }
  const classes = opts.classes ?? THUMOS14_CLASSES.slice();
  const index = new Map(classes.map((c, i) => [c, i]));
  const featBase = opts.features ?? path.join(root, ACTIONFORMER_FEATURES);
  const store = await openFeatureStore(featBase, opts);
  if (!store) {
    throw new InputError(`${featBase}: features folder (or ${featBase}.zip) not found`);
  }
  const metas: VideoMeta[] = [];
  const rels = new Map<string, { store: FeatureStore; rel: string }[]>();
  for (const [id, v] of Object.entries(json.database)) {
    const subset = String(v?.subset ?? "");
    const split = thumosSplitOf(subset);
    if (!split) {
      throw new InputError(`${annFile}: video ${id}: unknown subset "${subset}"`);
    }
    const duration = Number(v.duration);
    const fps = Number(v.fps);
    if (!(duration > 0)) throw new InputError(`${annFile}: video ${id}: bad duration`);
    if (!(fps > 0)) throw new InputError(`${annFile}: video ${id}: bad fps`);
    const anns = parseAnnotations(v.annotations, classes, index, annFile, id);
    metas.push({
      id,
      split,
      subset,
      duration,
      fps,
      grid: actionFormerGrid(fps),
      length: -1,
      annotations: anns,
      labels: weakLabels(anns),
    });
    rels.set(id, [{ store, rel: id }]);
  }
  return await finishOpen(
    {
      layout: "actionformer",
      root,
      classes,
      metas,
      sources: new Map(),
      stores: [store],
      checkFinite: opts.checkFinite ?? true,
      annotationFile: annFile,
    },
    rels,
    opts,
  );
}
