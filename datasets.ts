/**
 * Datasets: open THUMOS'14 (ActionFormer or CoLA layout) or ActivityNet v1.3 feature folders
 * as they are on disk, compressed or not, one video at a time; and write the synthetic
 * dataset in those layouts.
 *
 * ```ts
 * import { openDataset } from "./datasets.ts";
 * const ds = await openDataset("data/thumos");           // layout auto-detected
 * for await (const { meta, features } of ds.videos("train")) {
 *   console.log(meta.id, features.length, features.dim, meta.labels);
 * }
 * ```
 *
 * Layout detection (when `layout` is not given), in order: `annotations/thumos14.json` ->
 * `actionformer`; `gt.json` + `split_train.txt` -> `cola`; an ActivityNet annotation file ->
 * `activitynet`. A folder written by `synth` (with `actionformer/` and `cola/` inside) needs
 * `layout` to pick one, and then opens that subfolder.
 *
 * @module
 */
import * as path from "node:path";
import { InputError } from "./lib/errors.ts";
import { exists } from "./lib/io.ts";
import type { DatasetPlugin } from "./lib/plugin_types.ts";
import { openActionFormer } from "./datasets/actionformer.ts";
import { findActivityNetAnnotations, openActivityNet } from "./datasets/activitynet.ts";
import { openCola } from "./datasets/cola.ts";
import type { OpenOptions, StreamingDataset } from "./datasets/common.ts";
import type { Dataset } from "./datasets/types.ts";

export type {
  Annotation,
  Dataset,
  DatasetInfo,
  FeatureGrid,
  Split,
  VideoFeatures,
  VideoMeta,
} from "./datasets/types.ts";
export {
  actionFormerGrid,
  COLA_GRID,
  gridToSeconds,
  secondsPerRow,
  secondsToGrid,
  uniformGrid,
} from "./datasets/time.ts";
export {
  type OpenOptions,
  StreamingDataset,
  type StreamingInit,
  THUMOS14_CLASSES,
  type VideoSource,
} from "./datasets/common.ts";
export type { Segment } from "./lib/types.ts";
export type { DatasetPlugin } from "./lib/plugin_types.ts";
export { openActionFormer } from "./datasets/actionformer.ts";
export { openCola, readIdList } from "./datasets/cola.ts";
export { openActivityNet } from "./datasets/activitynet.ts";
export {
  decodeNpy,
  encodeNpy,
  type EncodeNpyOptions,
  type NpyArray,
  type NpyHeader,
  type NpyWriteDtype,
  parseNpyHeader,
} from "./datasets/npy.ts";
export { encodeNpz, readNpz } from "./datasets/npz.ts";
export {
  type ByteSink,
  type ByteSource,
  bytesSource,
  fileSource,
  type ZipEntry,
  ZipReader,
  ZipWriter,
} from "./datasets/zip.ts";
export {
  decodeFeatureBytes,
  type FeatureReadOptions,
  type FeatureRef,
  type FeatureStore,
  openFeatureStore,
} from "./datasets/features.ts";
export { getInflater, type Inflater, setInflater } from "./datasets/inflate.ts";
export {
  activityNetGeometry,
  type GeometryVideo,
  synthesize,
  type SynthFormat,
  type SynthOptions,
  type SynthResult,
  thumos14Geometry,
} from "./datasets/synth.ts";

/** The built-in layouts. */
export const LAYOUTS = ["actionformer", "cola", "activitynet"] as const;

/**
 * The one rule for a THUMOS'14 folder holding both packages (what `synth` writes, and how the
 * official code expects them): `cola/` feeds the generator and `actionformer/` the student.
 * Returns both roots, or null when `root` lacks either subfolder.
 */
export async function packageRoots(
  root: string,
): Promise<{ generator: string; student: string } | null> {
  const generator = path.join(root, "cola"), student = path.join(root, "actionformer");
  return await exists(generator) && await exists(student) ? { generator, student } : null;
}

async function isActionFormer(root: string): Promise<boolean> {
  return await exists(path.join(root, "annotations", "thumos14.json"));
}
async function isCola(root: string): Promise<boolean> {
  return (await exists(path.join(root, "gt.json"))) &&
    (await exists(path.join(root, "split_train.txt")));
}
async function isActivityNet(root: string): Promise<boolean> {
  return (await findActivityNetAnnotations(root)) !== null;
}

/** The built-in layouts as dataset plugins (the same contract a user's plugin implements). */
export const DATASET_PLUGINS: DatasetPlugin[] = [
  {
    kind: "dataset",
    name: "actionformer",
    description: "THUMOS'14, ActionFormer layout (annotations/thumos14.json + i3d_features/)",
    detect: isActionFormer,
    open: (root, o) => openActionFormer(root, o as OpenOptions),
  },
  {
    kind: "dataset",
    name: "cola",
    description: "THUMOS'14, CoLA layout (gt.json, split_*.txt, features/{train,test}/{rgb,flow})",
    detect: isCola,
    open: (root, o) => openCola(root, o as OpenOptions),
  },
  {
    kind: "dataset",
    name: "activitynet",
    description: "ActivityNet v1.3 (official or BSN annotations + features/v_<id>.npy)",
    detect: isActivityNet,
    open: (root, o) => openActivityNet(root, o as OpenOptions),
  },
];

/**
 * Finds the layout of `root` (see the module doc); with `layout` given, also accepts a
 * synth output folder holding `root/<layout>/`. Returns the layout and the folder to open.
 */
export async function detectLayout(
  root: string,
  layout?: string,
  plugins: DatasetPlugin[] = DATASET_PLUGINS,
): Promise<{ plugin: DatasetPlugin; root: string }> {
  if (!(await exists(root))) throw new InputError(`${root}: dataset folder not found`);
  if (layout !== undefined) {
    const plugin = plugins.find((p) => p.name === layout);
    if (!plugin) {
      throw new InputError(
        `unknown layout "${layout}" (known: ${plugins.map((p) => p.name).join(", ")})`,
      );
    }
    const sub = path.join(root, layout);
    if (plugin.detect && !(await plugin.detect(root)) && (await exists(sub))) {
      return { plugin, root: sub };
    }
    return { plugin, root };
  }
  for (const p of plugins) if (p.detect && (await p.detect(root))) return { plugin: p, root };
  const subs = [];
  for (const p of plugins) {
    const sub = path.join(root, p.name);
    if (p.detect && (await exists(sub)) && (await p.detect(sub))) subs.push(p);
  }
  if (subs.length === 1) return { plugin: subs[0], root: path.join(root, subs[0].name) };
  if (subs.length > 1) {
    throw new InputError(
      `${root}: holds several layouts (${subs.map((p) => p.name + "/").join(", ")}); ` +
        `choose one with --layout`,
    );
  }
  throw new InputError(
    `${root}: unrecognised dataset layout (expected annotations/thumos14.json, gt.json + ` +
      `split_train.txt, or an ActivityNet annotation file)`,
  );
}

/**
 * Opens the dataset at `root` (layout from `opts.layout` or detected). Features are read
 * one video at a time; headers are read at open to know every video's length and check
 * dims. `opts.plugins` adds user layouts (tried before the built-ins).
 */
export async function openDataset(
  root: string,
  opts: OpenOptions & { plugins?: DatasetPlugin[] } = {},
): Promise<Dataset & { close?: () => Promise<void> }> {
  const plugins = [...(opts.plugins ?? []), ...DATASET_PLUGINS];
  const found = await detectLayout(root, opts.layout, plugins);
  return await found.plugin.open(found.root, opts as Record<string, unknown>) as
    | StreamingDataset
    | Dataset;
}
