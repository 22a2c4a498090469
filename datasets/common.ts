/**
 * What the layout adapters share: the THUMOS'14 class table, split-name normalisation,
 * annotation checks, and {@linkcode StreamingDataset}, the {@linkcode Dataset} that holds
 * metadata and loads one video's features at a time.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";
import type { Annotation, Dataset, FeatureGrid, Split, VideoFeatures, VideoMeta } from "./types.ts";
import { secondsPerRow } from "./time.ts";
import { endsFarPast, isPlainVideoId, parseSegment, SEGMENT_SLACK_S } from "../lib/segment.ts";
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
  /**
   * Kept for compatibility: annotated videos without a feature file are now skipped by
   * default (one warning line); use `strict` to make that an error.
   */
  skipMissing?: boolean;
  /**
   * Turn the two warnings about real annotation files into errors: segments that end after
   * their video (or have zero length), and annotated videos without a feature file.
   */
  strict?: boolean;
  /** ActivityNet: list the unlabeled `testing` videos as test videos. */
  includeTesting?: boolean;
  /** Class names (id = index) instead of the layout's own table. */
  classes?: string[];
  /** Check every loaded value is finite (default true). */
  checkFinite?: boolean;
  /**
   * Receives the warning lines (skipped videos, segments past the end; at most one line of
   * each kind per annotation file); default: printed to stderr.
   */
  onWarning?: (line: string) => void;
}

/** The warning sink of `opts`: its `onWarning`, else one `warning: ...` line on stderr. */
export function warningSink(opts: OpenOptions): (line: string) => void {
  return opts.onWarning ?? ((l) => console.error(`warning: ${l}`));
}

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

/** Segments of a file that do not lie inside their video (see {@linkcode segmentReport}). */
export interface SegmentReport {
  /** Segments ending after their video's end (start inside or not). */
  late: number;
  /** Of `late`, those that do not even start before the end. */
  startAfterEnd: number;
  /** Zero-length segments (start == end). */
  zeroLength: number;
  /** First offending video and segment, for the warning line. */
  first?: { video: string; segment: [number, number]; label: string; end: number };
  /** First zero-length segment. */
  firstZero?: { video: string; segment: [number, number]; label: string };
}

/**
 * The end of a video for the "past the end" rule: the annotated duration when the file gives
 * one; with a duration estimated from the features (CoLA's gt.json has none), the features'
 * span plus one row (the last partial snippet is not written by the feature extractor).
 */
export function videoEnd(meta: VideoMeta, estimated: boolean): number {
  return estimated ? meta.duration + secondsPerRow(meta.grid) : meta.duration;
}

/**
 * Counts a video's annotations that end after the video or have zero length into `r`. Real
 * files have such segments (the ActionFormer THUMOS'14 file: 30 segments starting after their
 * video ends; the BSN ActivityNet file: 215 ending after their video, 12 of zero length);
 * the official code loads them as they are, so they are counted, not rejected. A segment
 * starting before 0 is an input error, and so is one that starts inside the video but ends
 * more than a whole video length past its end (e.g. [120, 10000] in a 129 s video).
 */
export function countSegments(
  meta: VideoMeta,
  file: string,
  estimated: boolean,
  r: SegmentReport,
): void {
  const end = videoEnd(meta, estimated);
  for (const a of meta.annotations) {
    const [s, e] = a.segment;
    if (s < 0) {
      throw new InputError(
        `${file}: video ${meta.id}: segment [${s}, ${e}] (${a.label}) starts before 0` +
          (s < -SEGMENT_SLACK_S ? ` (${-s} s before the video)` : ""),
      );
    }
    // Late segments are real-file quirks (a few seconds); one that starts inside the video and
    // ends more than a whole video length past its end is a broken annotation, not a late one.
    if (s < end && endsFarPast(e, end)) {
      throw new InputError(
        `${file}: video ${meta.id}: segment [${s}, ${e}] (${a.label}) ends far past the ` +
          `video (0 to ${end.toFixed(2)} s)`,
      );
    }
    if (e > end) {
      r.late++;
      if (s >= end) r.startAfterEnd++;
      r.first ??= { video: meta.id, segment: [s, e], label: a.label, end };
    }
    if (e === s) {
      r.zeroLength++;
      r.firstZero ??= { video: meta.id, segment: [s, e], label: a.label };
    }
  }
}

/**
 * Checks that a video id is a plain name that resolves inside the dataset root: no path
 * separator, not `.` or `..`, no NUL byte, not empty (ids become file names).
 */
export function checkVideoId(id: string, file: string): void {
  if (!isPlainVideoId(id)) {
    throw new InputError(
      `${file}: video id ${JSON.stringify(id)} is not a plain name (ids are file names and ` +
        `must resolve inside the dataset root)`,
    );
  }
}

/** The warning lines (or, with `strict`, the error) of a {@linkcode SegmentReport}. */
export function segmentReport(r: SegmentReport, file: string, strict: boolean): string[] {
  const lines: string[] = [];
  if (r.late && r.first) {
    const f = r.first;
    lines.push(
      `${file}: ${r.late} segment(s) end after their video (${r.startAfterEnd} start at or ` +
        `after its end); first: video ${f.video} [${f.segment[0]}, ${f.segment[1]}] ` +
        `(${f.label}), video ends at ${+f.end.toFixed(2)} s. Training clips them to the ` +
        `features (dropping those left empty); evaluation keeps them as given`,
    );
  }
  if (r.zeroLength && r.firstZero) {
    const f = r.firstZero;
    lines.push(
      `${file}: ${r.zeroLength} segment(s) have zero length; first: video ${f.video} ` +
        `[${f.segment[0]}, ${f.segment[1]}] (${f.label}). Training drops them; evaluation ` +
        `keeps them as given`,
    );
  }
  if (strict && lines.length) throw new InputError(`${lines[0]} (--strict)`);
  return lines;
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
  /** The annotation file the metadata came from. */
  annotationFile?: string;
  /** Annotated videos left out because they have no feature file. */
  skipped?: string[];
  /** The warning lines issued while opening. */
  warnings?: string[];
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
  /** The annotation file the metadata (and the evaluation ground truth) came from. */
  annotationFile?: string;
  /** Ids of annotated videos left out because they have no feature file. */
  skipped: string[];
  /** The warning lines issued while opening (also sent to `onWarning`). */
  warnings: string[];
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
    this.annotationFile = init.annotationFile;
    this.skipped = init.skipped ?? [];
    this.warnings = init.warnings ?? [];
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
 * (and the grid, via `regrid`), checks dims agree, counts segments past their video's end,
 * and returns the dataset. Annotated videos without a feature file are left out with one
 * warning line (count and first id), as are segments past the end (see
 * {@linkcode countSegments}); with `strict` either is an error. A split whose videos all
 * lack features is an error.
 */
export async function finishOpen(
  init: StreamingInit & { annotationFile: string },
  rels: Map<string, { store: FeatureStore; rel: string | string[] }[]>,
  opts: OpenOptions,
  fixDuration?: (meta: VideoMeta) => void,
): Promise<StreamingDataset> {
  const kept: VideoMeta[] = [];
  const warn = warningSink(opts);
  const strict = opts.strict ?? false;
  const missingIds: string[] = [];
  let firstExpected = "";
  const segs: SegmentReport = { late: 0, startAfterEnd: 0, zeroLength: 0 };
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
      if (strict) {
        throw new InputError(
          `video ${meta.id} (listed in ${init.annotationFile}) has no feature file: ` +
            `expected ${missing} (--strict)`,
        );
      }
      if (!missingIds.length) firstExpected = missing;
      missingIds.push(meta.id);
      continue;
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
    countSegments(meta, init.annotationFile, fixDuration !== undefined, segs);
    init.sources.set(meta.id, { refs });
    kept.push(meta);
  }
  const warnings = segmentReport(segs, init.annotationFile, strict);
  if (missingIds.length) {
    warnings.push(
      `${init.annotationFile}: ${missingIds.length} annotated video(s) have no feature file ` +
        `and are skipped; first: ${missingIds[0]} (expected ${firstExpected})`,
    );
  }
  for (const split of ["train", "test"] as Split[]) {
    const listed = init.metas.filter((m) => m.split === split).length;
    if (listed > 0 && !kept.some((m) => m.split === split)) {
      throw new InputError(
        `${init.annotationFile}: none of the ${listed} ${split} video(s) has a feature file ` +
          `(first: ${init.metas.find((m) => m.split === split)!.id}, expected ${firstExpected})`,
      );
    }
  }
  for (const w of warnings) warn(w);
  init.metas = kept;
  init.skipped = missingIds;
  init.warnings = warnings;
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
