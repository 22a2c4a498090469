/**
 * ActivityNet-style temporal detection mAP, with the semantics of the official evaluator
 * (activitynet/ActivityNet `Evaluation/eval_detection.py`,
 * `compute_average_precision_detection`). Pure TypeScript, no tensors: ~21k detections score
 * in tens of milliseconds.
 *
 * Tie rules (the official code uses numpy's unstable argsort; any fixed rule can only differ
 * on exact ties): detections of a class are visited by descending score, equal scores with
 * the later input item first; the ground truths a detection is compared with are visited by
 * descending tIoU, equal tIoU with the later ground truth first. Both are "stable ascending
 * sort, then reverse", the order numpy's argsort gives on small or already sorted inputs.
 *
 * Where the official evaluator differs: its `segment_iou` divides by the union without a
 * guard, so a zero-length prediction on a zero-length ground truth gives 0/0 = NaN, which its
 * `tiou < threshold` test never rejects: it is counted as a hit. Here the tIoU of segments
 * whose union is empty is 0 (no overlap), and the inputs that lead there are refused: a ground
 * truth must have end > start, a prediction end >= start (a zero-length prediction is scored,
 * with no overlap; a reversed one is an input error, where the official code would compute a
 * meaningless negative-length IoU).
 *
 * @module
 */
import { InputError, rejectUnknownKeys } from "../lib/errors.ts";
import { atomicWriteJson, readJson } from "../lib/io.ts";
import { parseSegment } from "../lib/segment.ts";
import { VERSION } from "../lib/version.ts";
import type { Detection, GroundTruth, GroundTruthInstance, Segment } from "../lib/types.ts";

/** tIoU thresholds used by THUMOS'14 papers: 0.1:0.7:0.1. */
export const THUMOS_TIOUS: readonly number[] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
/** tIoU thresholds of the ActivityNet challenge: 0.5:0.95:0.05. */
export const ACTIVITYNET_TIOUS: readonly number[] = [
  0.5,
  0.55,
  0.6,
  0.65,
  0.7,
  0.75,
  0.8,
  0.85,
  0.9,
  0.95,
];

/** Result of an evaluation: mAP per threshold, their mean, and AP per class. */
export interface EvalResult {
  /** The thresholds, in the order given. */
  tiou: number[];
  /** mAP at each threshold (mean over ground-truth classes). */
  mAP: number[];
  /** Mean of `mAP`. */
  average: number;
  /** AP per class per threshold; classes are those with ground truth in the subset. */
  perClass: Record<string, number[]>;
  /** Counts that help read the figures. */
  counts: { videos: number; instances: number; detections: number; ignored: number };
}

/** Options of {@linkcode evaluateDetections}. */
export interface EvalOptions {
  /** tIoU thresholds (default: {@linkcode tiouFor} the ground truth's class count). */
  tiou?: readonly number[];
  /** Called once per unknown label that was ignored. */
  onWarning?: (message: string) => void;
}

/**
 * Plain IoU of two segments in seconds (no "+1"); 0 when the union is empty (two zero-length
 * segments: no overlap, where the official code gives NaN, see the module doc).
 */
export function segmentIoU(a: Segment, b: Segment): number {
  const inter = Math.max(0, Math.min(a[1], b[1]) - Math.max(a[0], b[0]));
  const union = (a[1] - a[0]) + (b[1] - b[0]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * VOC-2011 interpolated AP from cumulative precision/recall: prepend (0, 0), append (1, 0),
 * take the running maximum of precision from the right, sum over recall changes.
 */
export function interpolatedAP(precision: ArrayLike<number>, recall: ArrayLike<number>): number {
  const n = precision.length;
  const mp = new Float64Array(n + 2);
  const mr = new Float64Array(n + 2);
  for (let i = 0; i < n; i++) {
    mp[i + 1] = precision[i];
    mr[i + 1] = recall[i];
  }
  mr[n + 1] = 1;
  for (let i = n; i >= 0; i--) mp[i] = Math.max(mp[i], mp[i + 1]);
  let ap = 0;
  for (let i = 1; i < n + 2; i++) {
    if (mr[i] !== mr[i - 1]) ap += (mr[i] - mr[i - 1]) * mp[i];
  }
  return ap;
}

/** Order in which numpy's `argsort()[::-1]` visits keys, with a stable sort: see module doc. */
function descendingOrder(keys: ArrayLike<number>): number[] {
  const idx = Array.from({ length: keys.length }, (_, i) => i);
  // NaN sorts as the largest value in numpy; keep that.
  const k = (i: number) => (Number.isNaN(keys[i]) ? Infinity : keys[i]);
  idx.sort((a, b) => (k(b) - k(a)) || (b - a));
  return idx;
}

/**
 * AP of one class at every threshold.
 *
 * @param gt the class's ground truth in the subset (npos = its length).
 * @param preds the class's detections.
 */
export function averagePrecisionForClass(
  gt: readonly GroundTruthInstance[],
  preds: readonly Detection[],
  tious: readonly number[],
): number[] {
  const nT = tious.length;
  const ap = new Array<number>(nT).fill(0);
  if (preds.length === 0 || gt.length === 0) return ap;
  const gtByVideo = new Map<string, number[]>();
  gt.forEach((g, i) => {
    const list = gtByVideo.get(g.videoId);
    if (list) list.push(i);
    else gtByVideo.set(g.videoId, [i]);
  });
  const order = descendingOrder(preds.map((p) => p.score));
  const used = Array.from({ length: nT }, () => new Uint8Array(gt.length));
  const tp = Array.from({ length: nT }, () => new Uint8Array(preds.length));
  for (let rank = 0; rank < order.length; rank++) {
    const p = preds[order[rank]];
    const cands = gtByVideo.get(p.videoId);
    if (!cands) continue; // no GT of this class in this video: FP at every threshold
    const ious = cands.map((gi) => segmentIoU(p.segment, gt[gi].segment));
    const byIoU = descendingOrder(ious);
    for (let t = 0; t < nT; t++) {
      for (const j of byIoU) {
        if (ious[j] < tious[t]) break; // FP
        const gi = cands[j];
        if (used[t][gi]) continue;
        used[t][gi] = 1;
        tp[t][rank] = 1;
        break;
      }
    }
  }
  const npos = gt.length;
  const prec = new Float64Array(preds.length);
  const rec = new Float64Array(preds.length);
  for (let t = 0; t < nT; t++) {
    let ctp = 0;
    for (let r = 0; r < preds.length; r++) {
      ctp += tp[t][r];
      prec[r] = ctp / (r + 1);
      rec[r] = ctp / npos;
    }
    ap[t] = interpolatedAP(prec, rec);
  }
  return ap;
}

/**
 * Detection mAP of `preds` against `gt` (one subset), as the official evaluator computes it.
 *
 * Classes are those with at least one ground-truth instance; a class without detections has
 * AP 0. Detections on videos absent from the ground truth are false positives. Detections
 * whose label is not a ground-truth class are ignored, with one warning per label.
 */
export function evaluateDetections(
  gt: GroundTruth,
  preds: readonly Detection[],
  options: EvalOptions = {},
): EvalResult {
  rejectUnknownKeys(options, EVAL_OPTION_KEYS, "evaluation options");
  const gtByClass = new Map<string, GroundTruthInstance[]>();
  for (const g of gt.instances) {
    const l = gtByClass.get(g.label);
    if (l) l.push(g);
    else gtByClass.set(g.label, [g]);
  }
  const classes = [...gtByClass.keys()].sort();
  const tious = [...(options.tiou ?? tiouFor(undefined, classes.length))];
  const predByClass = new Map<string, Detection[]>(classes.map((c) => [c, []]));
  const unknown = new Map<string, number>();
  for (const p of preds) {
    const l = predByClass.get(p.label);
    if (l) l.push(p);
    else unknown.set(p.label, (unknown.get(p.label) ?? 0) + 1);
  }
  let ignored = 0;
  for (const [label, n] of unknown) {
    ignored += n;
    options.onWarning?.(
      `warning: ignored ${n} detection(s) with label "${label}", not a ground-truth class`,
    );
  }
  const perClass: Record<string, number[]> = {};
  const sums = new Array<number>(tious.length).fill(0);
  for (const c of classes) {
    const ap = averagePrecisionForClass(gtByClass.get(c)!, predByClass.get(c)!, tious);
    perClass[c] = ap;
    ap.forEach((v, t) => (sums[t] += v));
  }
  const mAP = sums.map((s) => (classes.length ? s / classes.length : 0));
  const average = mAP.length ? mAP.reduce((a, b) => a + b, 0) / mAP.length : 0;
  return {
    tiou: tious,
    mAP,
    average,
    perClass,
    counts: {
      videos: gt.videos.length,
      instances: gt.instances.length,
      detections: preds.length - ignored,
      ignored,
    },
  };
}

// ---------------------------------------------------------------------------------------
// Parsing of the JSON layouts

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Reads ground truth from an ActivityNet-style object
 * `{"database": {vid: {"subset", "annotations": [{"label", "segment"}]}}}`.
 *
 * @param subset keep only videos of this subset (compared case-insensitively); all when
 *   omitted. An unknown subset is an error listing those present.
 */
export function parseGroundTruth(obj: unknown, file: string, subset?: string): GroundTruth {
  if (!isRecord(obj) || !isRecord(obj.database)) {
    throw new InputError(`${file}: missing "database" object (not an ActivityNet-style GT)`);
  }
  const db = obj.database as Record<string, unknown>;
  const subsets = new Set<string>();
  const videos: string[] = [];
  const instances: GroundTruthInstance[] = [];
  const want = subset?.toLowerCase();
  for (const [vid, entry] of Object.entries(db)) {
    if (!isRecord(entry)) throw new InputError(`${file}: database["${vid}"] is not an object`);
    const s = typeof entry.subset === "string" ? entry.subset : "";
    subsets.add(s);
    if (want !== undefined && s.toLowerCase() !== want) continue;
    videos.push(vid);
    const anns = entry.annotations ?? [];
    if (!Array.isArray(anns)) {
      throw new InputError(`${file}: database["${vid}"].annotations is not a list`);
    }
    anns.forEach((a, i) => {
      const where = `${file}: video ${vid} annotation ${i}`;
      if (!isRecord(a) || typeof a.label !== "string") {
        throw new InputError(`${where}: missing string "label"`);
      }
      const seg = parseSegment(a.segment, where);
      if (!(seg[1] > seg[0])) {
        throw new InputError(
          `${where}: ground-truth segment [${seg[0]}, ${seg[1]}] ` +
            (seg[1] === seg[0] ? "has zero length" : "ends before it starts"),
        );
      }
      instances.push({ videoId: vid, label: a.label, segment: seg });
    });
  }
  if (want !== undefined && videos.length === 0) {
    const have = [...subsets].filter((x) => x).map((x) => `"${x}"`).join(", ") || "none";
    throw new InputError(`${file}: unknown subset "${subset}" (subsets present: ${have})`);
  }
  if (instances.length === 0) {
    const where = want !== undefined ? ` in subset "${subset}"` : "";
    throw new InputError(`${file}: no ground-truth annotations${where}, nothing to score`);
  }
  return { videos, instances };
}

/**
 * Ground truth of a set of videos from their annotations (every video listed, with or
 * without instances): what the datasets' metadata gives, in the evaluator's form.
 */
export function groundTruthFromVideos(
  videos: readonly { id: string; annotations: readonly { label: string; segment: Segment }[] }[],
): GroundTruth {
  return {
    videos: videos.map((v) => v.id),
    instances: videos.flatMap((v) =>
      v.annotations.map((a) => ({ videoId: v.id, label: a.label, segment: a.segment }))
    ),
  };
}

/** One entry of a result file. */
export interface ResultEntry {
  /** Class name. */
  label: string;
  /** Confidence (proposal scores may be outside [0, 1]). */
  score: number;
  /** `[start, end]` in seconds. */
  segment: [number, number];
}

/** A result file: CoLA style (`method`, `results`), plus the official keys when asked. */
export interface ResultsFile {
  /** Official ActivityNet style only. */
  version?: string;
  /** Who made the detections (the CoLA evaluator requires the key). */
  method: string;
  /** Detections per video, in seconds. */
  results: Record<string, ResultEntry[]>;
  /** Official ActivityNet style only. */
  external_data?: { used: boolean; details: string };
}

/**
 * The result file of `detections` (the inverse of {@linkcode parseResults}): videos in order of
 * `videoIds` first (each listed video gets a list, empty when it has no detection), then of
 * first appearance; within a video, the detections' order. `official` adds the `version` and
 * `external_data` keys of the official ActivityNet format (`Evaluation/eval_detection.py`); without
 * it the file is exactly the reference generator's `{method, results}` (`result2json`).
 */
export function toResultsFile(
  detections: readonly Detection[],
  method: string,
  options: { videoIds?: readonly string[]; official?: boolean } = {},
): ResultsFile {
  const results: Record<string, ResultEntry[]> = {};
  for (const id of options.videoIds ?? []) results[id] = [];
  for (const d of detections) {
    (results[d.videoId] ??= []).push({
      label: d.label,
      score: d.score,
      segment: [d.segment[0], d.segment[1]],
    });
  }
  return options.official
    ? {
      version: `FuSTAL-TS ${VERSION}`,
      method,
      results,
      external_data: { used: false, details: "" },
    }
    : { method, results };
}

/**
 * Writes detections as a result file, atomically (the one writer of every stage's and
 * command's result files). `official` (default true) adds the official format's keys, see
 * {@linkcode toResultsFile}.
 */
export async function writeResultsFile(
  file: string,
  detections: readonly Detection[],
  method: string,
  options: { videoIds?: readonly string[]; official?: boolean } = {},
): Promise<void> {
  await atomicWriteJson(
    file,
    toResultsFile(detections, method, { official: true, ...options }),
  );
}

/** Reads a result file (see {@linkcode parseResults}); errors name the file. */
export async function readResultsFile(file: string): Promise<Detection[]> {
  return parseResults(await readJson(file), file);
}

/** Reads detections from `{"results": {vid: [{"label", "score", "segment"}]}}`. */
export function parseResults(obj: unknown, file: string): Detection[] {
  if (!isRecord(obj) || !isRecord(obj.results)) {
    throw new InputError(`${file}: missing "results" object (not an ActivityNet result file)`);
  }
  const out: Detection[] = [];
  for (const [vid, list] of Object.entries(obj.results as Record<string, unknown>)) {
    if (!Array.isArray(list)) throw new InputError(`${file}: results["${vid}"] is not a list`);
    list.forEach((d, i) => {
      const where = `${file}: video ${vid} detection ${i}`;
      if (!isRecord(d) || typeof d.label !== "string") {
        throw new InputError(`${where}: missing string "label"`);
      }
      const score = typeof d.score === "string" && d.score.trim() !== ""
        ? Number(d.score)
        : d.score;
      if (typeof score !== "number" || !Number.isFinite(score)) {
        throw new InputError(`${where}: "score" is not a number (${JSON.stringify(d.score)})`);
      }
      const segment = parseSegment(d.segment, where);
      if (segment[1] < segment[0]) {
        throw new InputError(
          `${where}: segment [${segment[0]}, ${segment[1]}] ends before it starts`,
        );
      }
      out.push({ videoId: vid, label: d.label, score, segment });
    });
  }
  return out;
}

/** The most tIoU thresholds `--tiou` accepts (the published protocols use 7 and 10). */
export const MAX_TIOUS = 100;

/**
 * Parses `--tiou`: a comma list (`0.3,0.5,0.7`) or an inclusive range `lo:hi:step`; at most
 * {@linkcode MAX_TIOUS} thresholds (counted before any list is built).
 */
export function parseTious(spec: string): number[] {
  const tooMany = (n: number) =>
    new InputError(`--tiou: ${n} thresholds, at most ${MAX_TIOUS} are allowed`);
  const bad = () =>
    new InputError(
      `--tiou: cannot read "${spec}" (use a list like 0.3,0.5,0.7 or a range like 0.1:0.7:0.1)`,
    );
  let out: number[];
  if (spec.includes(":")) {
    const parts = spec.split(":").map(Number);
    if (parts.length !== 3 || parts.some((x) => !Number.isFinite(x))) throw bad();
    const [lo, hi, step] = parts;
    if (step <= 0 || hi < lo) throw bad();
    const n = Math.floor((hi - lo) / step + 1e-9) + 1;
    if (n > MAX_TIOUS) throw tooMany(n);
    out = Array.from({ length: n }, (_, i) => Number((lo + i * step).toFixed(10)));
  } else {
    let commas = 0;
    for (let i = 0; i < spec.length; i++) if (spec.charCodeAt(i) === 44) commas++;
    if (commas >= MAX_TIOUS) throw tooMany(commas + 1);
    out = spec.split(",").map((x) => Number(x.trim()));
    if (out.length === 0 || out.some((x) => !Number.isFinite(x))) throw bad();
  }
  if (out.some((x) => x <= 0 || x > 1)) {
    throw new InputError(`--tiou: thresholds must be in (0, 1], got "${spec}"`);
  }
  return out;
}

/**
 * The tIoU thresholds a dataset is scored at, the one rule every stage and command uses:
 * ActivityNet's 0.5:0.95 for the `activitynet` layout or 100 classes and more (ActivityNet
 * v1.3 has 200), THUMOS'14's 0.1:0.7 otherwise (20 classes).
 */
export function tiouFor(layout: string | undefined, classCount: number): number[] {
  return layout === "activitynet" || classCount >= 100 ? [...ACTIVITYNET_TIOUS] : [
    ...THUMOS_TIOUS,
  ];
}

/** Default thresholds of a dataset family named on the command line (`--dataset`). */
export function datasetTious(name: string): number[] {
  if (name === "thumos14") return [...THUMOS_TIOUS];
  if (name === "activitynet") return [...ACTIVITYNET_TIOUS];
  throw new InputError(`--dataset: unknown dataset "${name}" (use thumos14 or activitynet)`);
}

/** Options of {@linkcode evaluateFiles}. */
export interface EvalFileOptions extends EvalOptions {
  /** Subset of the GT to score against (all videos when omitted). */
  subset?: string;
}

const EVAL_OPTION_KEYS = ["tiou", "onWarning"] as const satisfies readonly (keyof EvalOptions)[];
const EVAL_FILE_OPTION_KEYS = [...EVAL_OPTION_KEYS, "subset"] as const satisfies readonly (
  keyof EvalFileOptions
)[];

/** Reads both files and evaluates; errors name the file and problem. */
export async function evaluateFiles(
  gtFile: string,
  predFile: string,
  options: EvalFileOptions = {},
): Promise<EvalResult> {
  rejectUnknownKeys(options, EVAL_FILE_OPTION_KEYS, "evaluateFiles options");
  const gt = parseGroundTruth(await readJson(gtFile), gtFile, options.subset);
  const preds = await readResultsFile(predFile);
  return evaluateDetections(gt, preds, { tiou: options.tiou, onWarning: options.onWarning });
}

/** Formats a result as a fixed-width table (percent, one decimal), per tIoU then average. */
export function formatEvalTable(r: EvalResult, title = "mAP (%)"): string {
  const head = ["tIoU", ...r.tiou.map((t) => t.toFixed(2)), "avg"];
  const row = ["mAP", ...r.mAP.map((v) => (100 * v).toFixed(1)), (100 * r.average).toFixed(1)];
  const w = head.map((h, i) => Math.max(h.length, row[i].length));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(w[i])).join("  ");
  return `${title}\n${line(head)}\n${line(row)}`;
}
