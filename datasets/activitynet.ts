/**
 * ActivityNet v1.3 (activitynet/ActivityNet `Evaluation/`; BSN's annotation files). Annotations,
 * either:
 * - the official database JSON (`activity_net.v1-3.min.json`: `{"database": {ytid: {subset,
 *   duration, annotations: [{label, segment}]}}}`), or
 * - the BSN pair `anet_anno_action.json` (`{"v_<ytid>": {duration_second, annotations}}`)
 *   + `video_info_new.csv` beside it (columns `video,...,fps,...,subset,...`: the subsets).
 *
 * Features: one file per video in `ROOT/features/` (or `features.zip`), named
 * `v_<ytid>.<ext>` or `<ytid>.<ext>` (an extension-less `.npy` is accepted). The rows are
 * taken as spread evenly over the video (`uniformGrid(duration, L)`), which is how the
 * common ActivityNet feature packages are resampled.
 *
 * Subsets: `training` -> train, `validation` -> test (results are reported on validation);
 * `testing` videos have no labels and are listed as test only with `includeTesting`.
 * Classes: the sorted names used in the annotation file, or `classes` when given.
 *
 * @module
 */
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { exists, readBytes, readJson } from "../lib/io.ts";
import {
  finishOpen,
  type OpenOptions,
  parseAnnotations,
  type StreamingDataset,
  weakLabels,
} from "./common.ts";
import { type FeatureStore, openFeatureStore } from "./features.ts";
import { uniformGrid } from "./time.ts";
import type { Split, VideoMeta } from "./types.ts";

/** Annotation file names looked for under the root (first found wins). */
export const ACTIVITYNET_ANNOTATION_NAMES = [
  "activity_net.v1-3.min.json",
  "annotations/activity_net.v1-3.min.json",
  "anet_anno_action.json",
  "annotations/anet_anno_action.json",
];

interface RawVideo {
  id: string;
  subset: string;
  duration: number;
  fps: number;
  annotations: { label: unknown; segment: unknown }[];
}

/** Finds the annotation file of an ActivityNet root, or null. */
export async function findActivityNetAnnotations(root: string): Promise<string | null> {
  for (const n of ACTIVITYNET_ANNOTATION_NAMES) {
    if (await exists(path.join(root, n))) return path.join(root, n);
  }
  return null;
}

async function readCsvInfo(file: string): Promise<Map<string, { subset: string; fps: number }>> {
  const text = new TextDecoder().decode(await readBytes(file));
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const head = lines[0]?.split(",") ?? [];
  const iv = head.indexOf("video");
  const is = head.indexOf("subset");
  const ifps = head.indexOf("fps");
  if (iv < 0 || is < 0) throw new InputError(`${file}: expected columns "video" and "subset"`);
  const out = new Map<string, { subset: string; fps: number }>();
  for (const l of lines.slice(1)) {
    const c = l.split(",");
    out.set(c[iv], { subset: c[is], fps: ifps >= 0 ? Number(c[ifps]) : NaN });
  }
  return out;
}

async function readRawVideos(annFile: string): Promise<RawVideo[]> {
  const json = await readJson(annFile) as Record<string, unknown>;
  if (!json || typeof json !== "object") throw new InputError(`${annFile}: not a JSON object`);
  const out: RawVideo[] = [];
  if (json.database && typeof json.database === "object") {
    for (
      const [id, v] of Object.entries(json.database as Record<string, Record<string, unknown>>)
    ) {
      if (typeof v !== "object" || v === null) {
        throw new InputError(`${annFile}: video ${id} is not an object`);
      }
      out.push({
        id,
        subset: String(v.subset ?? ""),
        duration: Number(v.duration),
        fps: Number(v.fps ?? NaN),
        annotations: (v.annotations as RawVideo["annotations"]) ?? [],
      });
    }
    return out;
  }
  // BSN layout: subsets live in video_info_new.csv next to the JSON.
  const csv = path.join(path.dirname(annFile), "video_info_new.csv");
  if (!(await exists(csv))) {
    throw new InputError(
      `${annFile}: no "database" object, and no ${csv} with subsets for a BSN annotation file`,
    );
  }
  const info = await readCsvInfo(csv);
  for (const [id, v] of Object.entries(json as Record<string, Record<string, unknown>>)) {
    const i = info.get(id);
    if (!i) throw new InputError(`${csv}: video ${id} of ${annFile} is not listed`);
    if (typeof v !== "object" || v === null) {
      throw new InputError(`${annFile}: video ${id} is not an object`);
    }
    out.push({
      id,
      subset: i.subset,
      duration: Number(v.duration_second),
      fps: i.fps,
      annotations: (v.annotations as RawVideo["annotations"]) ?? [],
    });
  }
  return out;
}

/** ActivityNet subset name to split (null: not listed). */
function anetSplitOf(subset: string, includeTesting: boolean): Split | null {
  const s = subset.toLowerCase();
  if (s === "training") return "train";
  if (s === "validation") return "test";
  if (s === "testing" && includeTesting) return "test";
  return null;
}

/** Opens an ActivityNet v1.3 dataset at `root`. */
export async function openActivityNet(
  root: string,
  opts: OpenOptions = {},
): Promise<StreamingDataset> {
  const annFile = opts.annotations ?? await findActivityNetAnnotations(root);
  if (!annFile) {
    throw new InputError(
      `${root}: no ActivityNet annotation file (looked for ${
        ACTIVITYNET_ANNOTATION_NAMES.join(", ")
      })`,
    );
  }
  const raw = await readRawVideos(annFile);
  const classes = opts.classes ??
    [
      ...new Set(
        raw.flatMap((v) =>
          // Malformed lists are reported by parseAnnotations below, naming the video.
          Array.isArray(v.annotations)
            ? v.annotations.filter((a) => typeof a === "object" && a !== null).map((a) =>
              String(a.label)
            )
            : []
        ),
      ),
    ].sort();
  const index = new Map(classes.map((c, i) => [c, i]));
  const featBase = opts.features ?? path.join(root, "features");
  const store = await openFeatureStore(featBase, opts);
  if (!store) {
    throw new InputError(`${featBase}: features folder (or ${featBase}.zip) not found`);
  }
  const metas: VideoMeta[] = [];
  const rels = new Map<string, { store: FeatureStore; rel: string[] }[]>();
  for (const v of raw) {
    const split = anetSplitOf(v.subset, opts.includeTesting ?? false);
    if (!split) continue;
    if (!(v.duration > 0)) throw new InputError(`${annFile}: video ${v.id}: bad duration`);
    const anns = parseAnnotations(v.annotations, classes, index, annFile, v.id);
    metas.push({
      id: v.id,
      split,
      subset: v.subset,
      duration: v.duration,
      fps: v.fps > 0 ? v.fps : 25,
      grid: uniformGrid(v.duration, 1),
      length: -1,
      annotations: anns,
      labels: weakLabels(anns),
    });
    const bare = v.id.startsWith("v_") ? v.id.slice(2) : v.id;
    rels.set(v.id, [{ store, rel: [`v_${bare}`, bare] }]);
  }
  return await finishOpen(
    {
      layout: "activitynet",
      root,
      classes,
      metas,
      sources: new Map(),
      stores: [store],
      checkFinite: opts.checkFinite ?? true,
      annotationFile: annFile,
      regrid: (meta, length) => uniformGrid(meta.duration, length),
    },
    rels,
    opts,
  );
}
