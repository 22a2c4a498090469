/**
 * How messages name a plugin, and the guard around plugin calls. Shared by the registry
 * (`registry.ts`, which records where each plugin came from) and the stages that call
 * plugins (`stages/selection.ts`), so that neither imports the other.
 *
 * @module
 */
import { InputError, isInputError } from "./errors.ts";
import { type Plugin, PLUGIN_KINDS } from "./plugin_types.ts";
import type { Detection } from "./types.ts";
import { endsFarPast, isPlainVideoId, SEGMENT_SLACK_S } from "./segment.ts";

/** Source label of built-in plugins. */
export const BUILTIN_SOURCE = "built-in";

/** The module each registered plugin came from (`built-in`, `code` or a path/URL). */
export const sources: WeakMap<object, string> = new WeakMap<object, string>();

/** `filter plugin "x" (module m)`: how messages name a plugin. */
export function label(
  kind: unknown,
  name: unknown,
  source: string | undefined,
  index?: number,
): string {
  const k = typeof kind === "string" && (PLUGIN_KINDS as readonly string[]).includes(kind)
    ? `${kind} plugin`
    : "plugin";
  const n = typeof name === "string" && name !== ""
    ? `"${name}"`
    : index !== undefined
    ? `#${index} (no name)`
    : "(no name)";
  const src = source && source !== "code" ? ` (module ${source})` : "";
  return `${k} ${n}${src}`;
}

/** How error messages name `plugin`: kind, name and module when known. */
export function describePlugin(plugin: Plugin): string {
  return label(plugin.kind, plugin.name, sources.get(plugin));
}

let callTimeoutMs = 0;

/**
 * Sets the per-call timeout of user plugins' methods in seconds (`--plugin-timeout`); 0 or
 * undefined: no limit. Built-in plugins are never timed out (training takes as long as it
 * takes).
 */
export function setPluginCallTimeout(seconds: number | undefined): void {
  if (seconds !== undefined && !(Number.isFinite(seconds) && seconds >= 0)) {
    throw new InputError(`--plugin-timeout: must be a number of seconds >= 0, got ${seconds}`);
  }
  callTimeoutMs = (seconds ?? 0) * 1000;
}

const pending = new Map<number, string>();
let callIds = 0;

/**
 * Descriptions of the plugin calls in progress (`filter plugin "x" (module m): apply on video
 * v`). When the event loop runs dry while one is pending, its promise can never settle: the
 * CLI reports it by name (see `cli.ts`).
 */
export function pendingPluginCalls(): string[] {
  return [...pending.values()];
}

/**
 * Calls a plugin method and reports a throw as an {@linkcode InputError} naming the plugin,
 * its module and `where` (e.g. the video). Errors of built-ins pass through unchanged: a
 * built-in's InputError is already a user message, anything else is a bug that keeps its
 * stack trace. A user plugin's call that has not settled after the per-call timeout
 * ({@linkcode setPluginCallTimeout}) fails with an InputError naming the plugin.
 */
export async function guardPluginCall<T>(
  plugin: Plugin,
  method: string,
  call: () => T | Promise<T>,
  where?: string,
): Promise<Awaited<T>> {
  const builtin = sources.get(plugin) === BUILTIN_SOURCE;
  const what = `${describePlugin(plugin)}: ${method}${where ? ` on ${where}` : ""}`;
  const id = callIds++;
  pending.set(id, what);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const p = Promise.resolve().then(call);
    if (builtin || callTimeoutMs <= 0) return await p;
    const limit = callTimeoutMs;
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new InputError(
                `${what} did not settle within ${limit / 1000} s (--plugin-timeout)`,
              ),
            ),
          limit,
        );
      }),
    ]);
  } catch (e) {
    if (builtin) throw e;
    if (isInputError(e) && e.message.startsWith(what)) throw e;
    const msg = e instanceof Error
      ? (isInputError(e) ? e.message : `${e.name}: ${e.message}`)
      : String(e);
    throw new InputError(
      `${describePlugin(plugin)}: ${method}${where ? ` on ${where}` : ""} threw: ` +
        msg.split("\n")[0],
    );
  } finally {
    pending.delete(id);
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** Video durations a check of plugin outputs may use (by id). */
export type VideoSpans = ReadonlyMap<string, { duration: number }>;

function segmentProblem(seg: unknown, duration?: number): string | undefined {
  if (!Array.isArray(seg) || seg.length !== 2) return "segment is not [start, end]";
  const [s, e] = seg;
  if (
    typeof s !== "number" || typeof e !== "number" || !Number.isFinite(s) || !Number.isFinite(e)
  ) {
    return `segment ${JSON.stringify(seg)} is not two finite numbers`;
  }
  if (e < s) return `segment [${s}, ${e}] is reversed (end before start)`;
  if (s < -SEGMENT_SLACK_S) return `segment [${s}, ${e}] starts before the video`;
  if (duration !== undefined && duration > 0) {
    if (s > duration + SEGMENT_SLACK_S) {
      return `segment [${s}, ${e}] starts after the video's end (${duration.toFixed(2)} s)`;
    }
    if (endsFarPast(e, duration)) {
      return `segment [${s}, ${e}] ends far past the video's end (${duration.toFixed(2)} s)`;
    }
  }
  return undefined;
}

/**
 * Checks detections a plugin returned: a list of `{videoId, label, score, segment}` with a
 * string label, a finite score and a segment that is finite, not reversed, not starting before
 * the video and (when `videos` knows the video's duration) not starting after its end or
 * ending more than one video length past it. Fails with an {@linkcode InputError} starting
 * with `who` and naming the item. `videoId`, when given, is the video every item must belong
 * to (filters return one video's proposals; items may omit the id).
 *
 * @returns the detections as plain records (copied).
 */
export function checkDetections(
  list: unknown,
  who: string,
  videos?: VideoSpans,
  videoId?: string,
): Detection[] {
  if (!Array.isArray(list)) {
    throw new InputError(`${who} returned ${typeName(list)}, not an array of detections`);
  }
  return list.map((d, i) => {
    const r = d as Partial<Detection> | null;
    const vid = videoId ?? r?.videoId;
    const item = `${who} item ${i}${vid !== undefined ? ` (video ${vid})` : ""}`;
    if (typeof r !== "object" || r === null || typeof r.label !== "string") {
      throw new InputError(`${item} is not a detection {videoId, label, score, segment}`);
    }
    if (videoId !== undefined && r.videoId !== undefined && r.videoId !== videoId) {
      throw new InputError(`${item} belongs to video "${r.videoId}"`);
    }
    if (typeof vid !== "string") throw new InputError(`${item} has no string "videoId"`);
    if (typeof r.score !== "number" || !Number.isFinite(r.score)) {
      throw new InputError(`${item}: score ${JSON.stringify(r.score)} is not a finite number`);
    }
    const why = segmentProblem(r.segment, videos?.get(vid)?.duration);
    if (why) throw new InputError(`${item}: ${why}`);
    const seg = r.segment as [number, number];
    return { videoId: vid, label: r.label, score: r.score, segment: [seg[0], seg[1]] };
  });
}

/**
 * Checks what a plugin method returned, for every kind: a dataset plugin's `open` must give a
 * dataset (`list`, `load`, `videos`, `classes`, `featureDim`) whose videos have plain ids and
 * sane segments; a generator's `generate` `{train, test}` detection lists; a student's `train`
 * `{test}` (and `testBeforeSwitch` when present); a filter's `apply` a detection list of its
 * video. Detections are checked by {@linkcode checkDetections}.
 */
export function checkPluginOutput(
  plugin: Plugin,
  method: string,
  value: unknown,
  videos?: VideoSpans,
  where?: string,
): void {
  const who = `${describePlugin(plugin)}: ${method}${where ? ` on ${where}` : ""}`;
  const rec = (v: unknown): Record<string, unknown> => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new InputError(`${who} returned ${typeName(v)}, not an object`);
    }
    return v as Record<string, unknown>;
  };
  if (plugin.kind === "dataset") {
    const ds = rec(value);
    for (const f of ["list", "load", "videos"]) {
      if (typeof ds[f] !== "function") {
        throw new InputError(`${who}: the dataset has no "${f}" method`);
      }
    }
    if (!Array.isArray(ds.classes)) {
      throw new InputError(`${who}: the dataset has no "classes" list`);
    }
    if (typeof ds.featureDim !== "number" || !(ds.featureDim > 0)) {
      throw new InputError(
        `${who}: the dataset's featureDim ${
          JSON.stringify(ds.featureDim)
        } is not a positive number`,
      );
    }
    const metas = (ds.list as () => unknown)();
    if (!Array.isArray(metas)) throw new InputError(`${who}: list() did not return an array`);
    for (const m of metas as Record<string, unknown>[]) {
      const id = m?.id;
      if (!isPlainVideoId(id)) {
        throw new InputError(`${who}: video id ${JSON.stringify(id)} is not a plain name`);
      }
      const anns = m.annotations;
      if (!Array.isArray(anns)) throw new InputError(`${who}: video ${id} has no annotation list`);
      const dur = typeof m.duration === "number" ? m.duration : undefined;
      anns.forEach((a: { segment?: unknown } | null, i: number) => {
        let problem = segmentProblem(a?.segment, undefined);
        // Annotations may end past the stated duration (real files do); far outside is wrong.
        if (!problem && dur !== undefined && dur > 0) {
          const [s, e] = a!.segment as [number, number];
          if (s <= dur + SEGMENT_SLACK_S && endsFarPast(e, dur)) {
            problem = `segment ${JSON.stringify(a!.segment)} ends far past the video's end`;
          }
        }
        if (problem) throw new InputError(`${who}: video ${id} annotation ${i}: ${problem}`);
      });
    }
    return;
  }
  if (plugin.kind === "generator") {
    const r = rec(value);
    checkDetections(r.train, `${who} (train)`, videos);
    checkDetections(r.test, `${who} (test)`, videos);
    return;
  }
  if (plugin.kind === "student" && method === "predict") {
    checkDetections(value, who, videos);
    return;
  }
  if (plugin.kind === "student") {
    const r = rec(value);
    checkDetections(r.test, `${who} (test)`, videos);
    if (r.testBeforeSwitch !== undefined) {
      checkDetections(r.testBeforeSwitch, `${who} (testBeforeSwitch)`, videos);
    }
    return;
  }
  checkDetections(value, who, videos);
}

/** The durations of a dataset's videos by id, for {@linkcode checkPluginOutput}. */
export function videoSpans(
  ds: { list(): readonly { id: string; duration: number }[] },
): Map<string, { duration: number }> {
  return new Map(ds.list().map((m) => [m.id, { duration: m.duration }]));
}

/**
 * Calls a plugin method through {@linkcode guardPluginCall} and checks what it returned with
 * {@linkcode checkPluginOutput} (against `check.videos` when given): the one way the stages and
 * the commands call a dataset's `open`, a generator's `generate` and a student's `train`.
 */
export async function callPlugin<T>(
  plugin: Plugin,
  method: string,
  call: () => T | Promise<T>,
  check: { videos?: VideoSpans; where?: string } = {},
): Promise<Awaited<T>> {
  const value = await guardPluginCall(plugin, method, call, check.where);
  checkPluginOutput(plugin, method, value, check.videos, check.where);
  return value;
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}
