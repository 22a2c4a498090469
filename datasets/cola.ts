/**
 * THUMOS'14 in the CoLA / BaS-Net layout (CoLA `core/dataset.py`, `NpyFeature`), the generator's
 * input:
 *
 * ```
 * ROOT/gt.json                         {"database": {vid: {subset, annotations}}}, string segments
 * ROOT/split_train.txt, split_test.txt one video id per line (these drive the video list)
 * ROOT/features/{train,test}/{rgb,flow}/<vid>.npy   L x 1024 each (or .npy.gz / .npz,
 *                                                   or the features folder as features.zip)
 * ```
 *
 * A video's features are concat(rgb, flow) per row, RGB first (D = 2048 for real data).
 * Rows are 16-frame snippets at 25 fps (`COLA_GRID`). The file has no durations or fps:
 * duration is estimated as L * 16 / 25 s and fps is 25.
 *
 * @module
 */
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { readBytes, readJson } from "../lib/io.ts";
import {
  finishOpen,
  type OpenOptions,
  parseAnnotations,
  type StreamingDataset,
  THUMOS14_CLASSES,
  weakLabels,
} from "./common.ts";
import { type FeatureStore, openFeatureStore } from "./features.ts";
import { COLA_GRID, gridToSeconds } from "./time.ts";
import type { Split, VideoMeta } from "./types.ts";

/** Reads a split file: one id per line, blank lines ignored. */
export async function readIdList(file: string): Promise<string[]> {
  const text = new TextDecoder().decode(await readBytes(file));
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
}

/** Opens a THUMOS'14 CoLA-layout dataset at `root`. */
export async function openCola(root: string, opts: OpenOptions = {}): Promise<StreamingDataset> {
  const annFile = opts.annotations ?? path.join(root, "gt.json");
  const json = await readJson(annFile) as { database?: Record<string, Record<string, unknown>> };
  if (!json || typeof json.database !== "object" || json.database === null) {
    throw new InputError(`${annFile}: no "database" object (not a CoLA gt.json)`);
  }
  const db = json.database;
  const classes = opts.classes ?? THUMOS14_CLASSES.slice();
  const index = new Map(classes.map((c, i) => [c, i]));
  const featBase = opts.features ?? path.join(root, "features");
  const store = await openFeatureStore(featBase, opts);
  if (!store) {
    throw new InputError(`${featBase}: features folder (or ${featBase}.zip) not found`);
  }
  const metas: VideoMeta[] = [];
  const rels = new Map<string, { store: FeatureStore; rel: string }[]>();
  // Which split file (and line) listed each id: a video listed twice would be counted twice,
  // a video in both splits would leak test videos into training. Both are errors.
  const listedIn = new Map<string, string>();
  for (const split of ["train", "test"] as Split[]) {
    const listFile = path.join(root, `split_${split}.txt`);
    for (const id of await readIdList(listFile)) {
      const before = listedIn.get(id);
      if (before !== undefined) {
        throw new InputError(
          before === listFile
            ? `${listFile}: video ${id} is listed twice`
            : `${listFile}: video ${id} is also listed in ${before} (a video in both splits)`,
        );
      }
      listedIn.set(id, listFile);
      const v = Object.hasOwn(db, id) ? db[id] : undefined;
      if (!v) throw new InputError(`${listFile}: video ${id} is not in ${annFile}`);
      const anns = parseAnnotations(v.annotations, classes, index, annFile, id);
      metas.push({
        id,
        split,
        subset: String(v.subset ?? split),
        duration: 0, // set from the feature length below
        fps: COLA_GRID.fps,
        grid: { ...COLA_GRID },
        length: -1,
        annotations: anns,
        labels: weakLabels(anns),
      });
      rels.set(id, [
        { store, rel: `${split}/rgb/${id}` },
        { store, rel: `${split}/flow/${id}` },
      ]);
    }
  }
  return await finishOpen(
    {
      layout: "cola",
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
    (meta) => {
      // No durations in gt.json: L snippets of 16 frames at 25 fps.
      meta.duration = gridToSeconds(meta.grid, meta.length);
    },
  );
}
