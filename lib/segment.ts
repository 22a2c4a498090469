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
