/**
 * The one parser of `[start, end]` segments in JSON files (annotations and result files):
 * two numbers, or two numeric strings as in CoLA's `gt.json`.
 *
 * @module
 */
import { InputError } from "./errors.ts";
import type { Segment } from "./types.ts";

/**
 * Parses a segment; `where` names the file and item in the error (e.g.
 * `gt.json: video v`). Fails on anything but a pair of finite numbers (or numeric strings)
 * with end >= start.
 */
export function parseSegment(v: unknown, where: string): Segment {
  const show = JSON.stringify(v);
  if (!Array.isArray(v) || v.length !== 2) {
    throw new InputError(`${where}: segment ${show} is not [start, end]`);
  }
  const num = (x: unknown) =>
    typeof x === "number" ? x : typeof x === "string" && x.trim() !== "" ? Number(x) : NaN;
  const s = num(v[0]), e = num(v[1]);
  if (!Number.isFinite(s) || !Number.isFinite(e)) {
    throw new InputError(`${where}: segment ${show} is not numeric`);
  }
  if (e < s) throw new InputError(`${where}: segment [${s}, ${e}] ends before it starts`);
  return [s, e];
}

/** Slack (seconds) of the rules that place a segment against its video. */
export const SEGMENT_SLACK_S = 1;

/**
 * Whether a segment ending at `end` lies more than a whole video length past a video that
 * ends at `videoEnd` (e.g. [120, 10000] in a 129 s video): a broken annotation or detection,
 * not a late one (real annotation files overshoot by seconds).
 */
export function endsFarPast(end: number, videoEnd: number): boolean {
  return end > 2 * videoEnd + SEGMENT_SLACK_S;
}

/**
 * Whether `id` is a plain video id: not empty, not `.` or `..`, no path separator or NUL
 * byte. Ids become file names, so only plain ones resolve inside a dataset root.
 */
export function isPlainVideoId(id: unknown): id is string {
  return typeof id === "string" && id !== "" && id !== "." && id !== ".." &&
    !/[\/\\\0]/.test(id);
}
