/**
 * What the layout adapters share: the THUMOS'14 class table, split-name normalisation,
 * annotation checks, and {@linkcode StreamingDataset}, the {@linkcode Dataset} that holds
 * metadata and loads one video's features at a time.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";
import type { Annotation, Dataset, FeatureGrid, Split, VideoFeatures, VideoMeta } from "./types.ts";
import { gridToSeconds } from "./time.ts";
import { parseSegment } from "../lib/segment.ts";
import {
  checkFeatureArray,
  type FeatureReadOptions,
  type FeatureRef,
  type FeatureStore,
} from "./features.ts";

/**
 * The fixed alphabetical THUMOS'14 class table (FuSTAL `CrossVideo-Generator/core/config.py`,
 * `CLASS_DICT`): id = index.
 */
export const THUMOS14_CLASSES: readonly string[] = [
  "BaseballPitch",
  "BasketballDunk",
  "Billiards",
  "CleanAndJerk",
  "CliffDiving",
  "CricketBowling",
  "CricketShot",
  "Diving",
  "FrisbeeCatch",
  "GolfSwing",
  "HammerThrow",
  "HighJump",
  "JavelinThrow",
  "LongJump",
  "PoleVault",
  "Shotput",
  "SoccerPenalty",
  "TennisSwing",
  "ThrowDiscus",
  "VolleyballSpiking",
];

/** Options every adapter accepts. */
export interface OpenOptions extends FeatureReadOptions {
  /** Layout name (`actionformer`, `cola`, `activitynet`); auto-detected when omitted. */
  layout?: string;
  /** Annotation file to use instead of the layout's default path. */
  annotations?: string;
  /** Features folder or `.zip` to use instead of the layout's default path. */
  features?: string;
  /** Drop annotated videos that have no feature file (default: that is an error). */
  skipMissing?: boolean;
  /** ActivityNet: list the unlabeled `testing` videos as test videos. */
  includeTesting?: boolean;
  /** Class names (id = index) instead of the layout's own table. */
  classes?: string[];
  /** Check every loaded value is finite (default true). */
  checkFinite?: boolean;
  /** Receives warnings (skipped videos); default: ignored. */
  onWarning?: (line: string) => void;
}

/** Slack (seconds) before a segment counts as lying outside its video. */
export const SEGMENT_SLACK_S = 1;

/** Maps a class name through `classes`; an unknown name is an error naming file and video. */
export function classIdOf(
  classes: readonly string[],
  index: Map<string, number>,
  label: unknown,
  file: string,
  video: string,
): number {
  const id = typeof label === "string" ? index.get(label) : undefined;
  if (id === undefined) {
    throw new InputError(
      `${file}: video ${video}: unknown class ${JSON.stringify(label)} ` +
        `(not one of the ${classes.length} classes)`,
    );
  }
  return id;
}

/**
 * Parses a video's annotation list (`[{label, segment}]` as in every layout's JSON): class ids
 * through `classes`, segments in seconds; errors name the file and the video.
 */
export function parseAnnotations(
  list: unknown,
  classes: readonly string[],
  index: Map<string, number>,
  file: string,
  video: string,
): Annotation[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) {
    throw new InputError(
      `${file}: video ${video}: "annotations" is not a list (got ${
        typeof list === "object" ? "an object" : typeof list
      })`,
    );
  }
  return list.map((a, i) => {
    if (typeof a !== "object" || a === null || Array.isArray(a)) {
      throw new InputError(
        `${file}: video ${video}: annotation ${i} is not an object {label, segment} ` +
          `(got ${JSON.stringify(a)})`,
      );
    }
    const r = a as Record<string, unknown>;
    return {
      label: String(r.label),
      classId: classIdOf(classes, index, r.label, file, video),
      segment: parseSegment(r.segment, `${file}: video ${video}`),
    };
  });
}

/**
 * Checks that every segment overlaps the video. The video spans the larger of its annotated
 * duration and the time its features cover (real annotation files have a few segments past
 * their stated duration, e.g. THUMOS'14 video_validation_0000364, which real features do
 * cover); a segment starting after that, or ending before 0, lies outside the video. A
 * segment starting before 0 by more than {@linkcode SEGMENT_SLACK_S} (e.g. [-50, 5]) is
 * refused as well: no time exists there, so the annotation is wrong rather than late; so is
 * a segment that starts inside the video but ends more than one video length past its end
 * (e.g. [120, 10000] in a 129 s video; real files overshoot by seconds).
 */
export function checkSegmentsInside(meta: VideoMeta, file: string): void {
  const span = Math.max(meta.duration, meta.length > 0 ? gridToSeconds(meta.grid, meta.length) : 0);
  for (const a of meta.annotations) {
    const [s, e] = a.segment;
    if (s < -SEGMENT_SLACK_S) {
      throw new InputError(
        `${file}: video ${meta.id}: segment [${s}, ${e}] (${a.label}) starts ${-s} s before ` +
          `the video (more than the ${SEGMENT_SLACK_S} s allowed)`,
      );
    }
    if (s <= span + SEGMENT_SLACK_S && e > 2 * span + SEGMENT_SLACK_S) {
      throw new InputError(
        `${file}: video ${meta.id}: segment [${s}, ${e}] (${a.label}) ends far past the ` +
          `video (0 to ${span.toFixed(2)} s)`,
      );
    }
    if (s > span + SEGMENT_SLACK_S || e < -SEGMENT_SLACK_S) {
      throw new InputError(
        `${file}: video ${meta.id}: segment [${s}, ${e}] (${a.label}) lies outside the video ` +
          `(0 to ${span.toFixed(2)} s)`,
      );
    }
  }
}

/**
 * Checks that a video id is a plain name that resolves inside the dataset root: no path
 * separator, not `.` or `..`, no NUL byte, not empty (ids become file names).
 */
export function checkVideoId(id: string, file: string): void {
  if (id === "" || id === "." || id === ".." || /[\/\\\0]/.test(id)) {
    throw new InputError(
      `${file}: video id ${JSON.stringify(id)} is not a plain name (ids are file names and ` +
        `must resolve inside the dataset root)`,
    );
  }
}

/** Sorted unique class ids of a video's annotations (its weak label). */
export function weakLabels(annotations: Annotation[]): number[] {
  return [...new Set(annotations.map((a) => a.classId))].sort((a, b) => a - b);
}

/** One video's feature files: one, or several concatenated along the feature axis. */
export interface VideoSource {
  /** Feature files (CoLA: rgb then flow). */
  refs: FeatureRef[];
}

/** Row-wise concatenation of equally long arrays along the feature axis. */
export function concatColumns(parts: VideoFeatures[]): VideoFeatures {
  if (parts.length === 1) return parts[0];
  const length = parts[0].length;
  const dim = parts.reduce((n, p) => n + p.dim, 0);
  const out = new Float32Array(length * dim);
  let col = 0;
  for (const p of parts) {
    for (let t = 0; t < length; t++) {
      out.set(p.data.subarray(t * p.dim, (t + 1) * p.dim), t * dim + col);
    }
    col += p.dim;
  }
  return { data: out, length, dim };
}

/** Construction data of a {@linkcode StreamingDataset}. */
export interface StreamingInit {
  /** Layout name (`actionformer`, `cola`, `activitynet`, ...). */
  layout: string;
  /** The dataset's root folder. */
  root: string;
  /** Class names; a class id is an index into this list. */
  classes: string[];
  /** Every video's metadata. */
  metas: VideoMeta[];
  /** Where each video's features are, by video id. */
  sources: Map<string, VideoSource>;
  /** The feature stores the sources point into. */
  stores: FeatureStore[];
  /** Reject non-finite feature values when loading. */
  checkFinite: boolean;
  /** Grid of a video once its length is known (ActivityNet: uniform over the duration). */
  regrid?: (meta: VideoMeta, length: number) => FeatureGrid;
}

/**
 * A dataset whose metadata is in memory and whose features are read from disk one video at
 * a time; {@linkcode StreamingDataset.videos} never holds more than one video's features.
 */
export class StreamingDataset implements Dataset {
  layout: string;
  root: string;
  classes: string[];
  featureDim: number;
  #metas: VideoMeta[];
  #byId = new Map<string, VideoMeta>();
  #sources: Map<string, VideoSource>;
  #stores: FeatureStore[];
  #checkFinite: boolean;

  /** A dataset over the videos and feature stores of `init`, rows of `featureDim` values. */
  constructor(init: StreamingInit, featureDim: number) {
    this.layout = init.layout;
    this.root = init.root;
    this.classes = init.classes;
    this.featureDim = featureDim;
    this.#metas = init.metas;
    for (const m of init.metas) this.#byId.set(m.id, m);
    this.#sources = init.sources;
    this.#stores = init.stores;
    this.#checkFinite = init.checkFinite;
  }

  list(split?: Split): VideoMeta[] {
    return split ? this.#metas.filter((m) => m.split === split) : this.#metas.slice();
  }

  async load(id: string): Promise<VideoFeatures> {
    try {
      return await this.#load(id);
    } catch (e) {
      // Container errors name the file; add the video when they do not.
      if (e instanceof InputError && !e.message.includes(id)) {
        throw new InputError(`${e.message} (video ${id})`);
      }
      throw e;
    }
  }

  async #load(id: string): Promise<VideoFeatures> {
    const meta = this.#byId.get(id);
    const src = this.#sources.get(id);
    if (!meta || !src) throw new InputError(`${this.root}: no video "${id}" in this dataset`);
    const parts: VideoFeatures[] = [];
    let dimSoFar = 0;
    for (const ref of src.refs) {
      const arr = await ref.load();
      checkFeatureArray(arr, ref.path, id, undefined, this.#checkFinite);
      const [length, dim] = arr.shape;
      if (parts.length && length !== parts[0].length) {
        throw new InputError(
          `${ref.path} (video ${id}): ${length} rows, but ${src.refs[0].path} has ` +
            `${parts[0].length}`,
        );
      }
      parts.push({ data: arr.data, length, dim });
      dimSoFar += dim;
    }
    if (dimSoFar !== this.featureDim) {
      throw new InputError(
        `${src.refs.map((r) => r.path).join(" + ")} (video ${id}): feature dim ${dimSoFar} ` +
          `differs from the dataset's ${this.featureDim}`,
      );
    }
    const f = concatColumns(parts);
    if (meta.length >= 0 && meta.length !== f.length) {
      throw new InputError(
        `${src.refs[0].path} (video ${id}): ${f.length} rows, its header said ${meta.length}`,
      );
    }
    return f;
  }

  async *videos(split?: Split): AsyncIterable<{ meta: VideoMeta; features: VideoFeatures }> {
    for (const meta of this.list(split)) {
      yield { meta, features: await this.load(meta.id) };
    }
  }

  /** Closes open archives. */
  close(): Promise<void> {
    return Promise.all(this.#stores.map((s) => s.close())).then(() => {});
  }
}

/**
 * Resolves every video's feature files, reads their headers (shape only), fills `length`
 * (and the grid, via `regrid`), checks dims agree and segments lie inside, and returns the
 * dataset. A missing file is an error naming the video and the expected path, unless
 * `skipMissing` (then the video is dropped with a warning).
 */
export async function finishOpen(
  init: StreamingInit & { annotationFile: string },
  rels: Map<string, { store: FeatureStore; rel: string | string[] }[]>,
  opts: OpenOptions,
  fixDuration?: (meta: VideoMeta) => void,
): Promise<StreamingDataset> {
  const kept: VideoMeta[] = [];
  let dim = -1;
  let dimFrom = "";
  for (const meta of init.metas) {
    checkVideoId(meta.id, init.annotationFile);
    const want = rels.get(meta.id) ?? [];
    const refs = [];
    let missing: string | null = null;
    for (const { store, rel } of want) {
      // Several candidate names (e.g. `v_<id>` and `<id>`): the first that exists.
      const names = Array.isArray(rel) ? rel : [rel];
      let r: FeatureRef | null = null;
      for (const n of names) if (!r) r = await store.find(n);
      if (!r) {
        missing = store.expected(names[0]);
        break;
      }
      refs.push(r);
    }
    if (missing !== null) {
      if (opts.skipMissing) {
        opts.onWarning?.(`skipping video ${meta.id}: no feature file (expected ${missing})`);
        continue;
      }
      throw new InputError(
        `video ${meta.id} (listed in ${init.annotationFile}) has no feature file: ` +
          `expected ${missing}`,
      );
    }
    let length = -1;
    let d = 0;
    for (const r of refs) {
      let shape: number[];
      try {
        shape = await r.shape();
      } catch (e) {
        if (e instanceof InputError && !e.message.includes(meta.id)) {
          throw new InputError(`${e.message} (video ${meta.id})`);
        }
        throw e;
      }
      if (shape.length !== 2) {
        throw new InputError(
          `${r.path} (video ${meta.id}): expected a 2-D T x D array, got shape ` +
            `(${shape.join(", ")})`,
        );
      }
      if (length >= 0 && shape[0] !== length) {
        throw new InputError(
          `${r.path} (video ${meta.id}): ${shape[0]} rows, but ${refs[0].path} has ${length}`,
        );
      }
      length = shape[0];
      d += shape[1];
    }
    if (dim < 0) {
      dim = d;
      dimFrom = refs.map((r) => r.path).join(" + ");
    } else if (d !== dim) {
      throw new InputError(
        `${refs.map((r) => r.path).join(" + ")} (video ${meta.id}): feature dim ${d} differs ` +
          `from ${dim} of ${dimFrom}`,
      );
    }
    meta.length = length;
    if (init.regrid) meta.grid = init.regrid(meta, length);
    fixDuration?.(meta);
    checkSegmentsInside(meta, init.annotationFile);
    init.sources.set(meta.id, { refs });
    kept.push(meta);
  }
  init.metas = kept;
  return new StreamingDataset(init, Math.max(0, dim));
}

/**
 * THUMOS'14 subset name to split: ActionFormer `Validation` and CoLA `train` are the
 * training videos, `Test`/`test` the evaluation videos; anything else is null.
 */
export function thumosSplitOf(subset: string): Split | null {
  const s = subset.toLowerCase();
  if (s === "validation" || s === "train" || s === "training") return "train";
  if (s === "test") return "test";
  return null;
}
