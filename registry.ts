/**
 * The plugin registry. A plugin is a plain object `{ kind, name, ... }` (contract in
 * `lib/plugin_types.ts`); config files and the CLI name plugins by `name`, per kind. Built-in
 * stages are plugins too, registered the same way, but loaded lazily: a built-in's module is
 * imported the first time it is asked for, so `select` never loads tfjs.
 *
 * User plugins come from {@linkcode registerPlugin} (code) or {@linkcode loadPluginModule}
 * (`--plugin PATH_OR_URL`: a module whose default export is one plugin or an array of them).
 * Every check fails with an {@linkcode InputError} (CLI exit 2) naming the plugin and the
 * module it came from: missing fields, an unknown kind, a name already taken, a method that
 * is not a function, and (through {@linkcode guardPluginCall}) a method that throws, a call
 * that runs past the per-call timeout ({@linkcode setPluginCallTimeout}, `--plugin-timeout`),
 * and one whose promise can never settle (the CLI names it when the event loop runs dry, see
 * {@linkcode pendingPluginCalls}). What a plugin returns is checked at this boundary for every
 * kind ({@linkcode checkPluginOutput}): reversed, non-finite or absurd segments are refused.
 *
 * Importing a plugin module never edits the project's `deno.lock`: Deno records the remote
 * modules a dynamic import fetches in the lock file in effect, so {@linkcode loadPluginModule}
 * restores that file after the import (see {@linkcode importKeepingLock}).
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { InputError, isInputError } from "./lib/errors.ts";
import type { Detection } from "./lib/types.ts";
import {
  type DatasetPlugin,
  type FilterPlugin,
  type GeneratorPlugin,
  type Plugin,
  PLUGIN_KINDS,
  type StudentPlugin,
} from "./lib/plugin_types.ts";

/** A plugin kind: `dataset`, `generator`, `filter` or `student`. */
export type PluginKind = typeof PLUGIN_KINDS[number];

/** The plugin type of a kind. */
export type PluginOfKind<K extends PluginKind> = Extract<Plugin, { kind: K }>;

/** One row of {@linkcode listPlugins}. */
export interface PluginInfo {
  /** The plugin's kind. */
  kind: PluginKind;
  /** The plugin's name (unique per kind). */
  name: string;
  /** `built-in`, the module a plugin was loaded from, or `code` (registered directly). */
  source: string;
  /** The plugin's description (absent for built-ins not loaded yet). */
  description?: string;
}

/** Source label of built-in plugins. */
export const BUILTIN_SOURCE = "built-in";

interface BuiltinEntry {
  kind: PluginKind;
  name: string;
  load: () => Promise<unknown>;
}

function builtin(kind: PluginKind, name: string, load: () => Promise<unknown>): BuiltinEntry {
  return { kind, name, load };
}

// --- built-in plugins: one line each, loaded on first use (keep the module import lazy) ---
const BUILTINS: BuiltinEntry[] = [
  builtin("filter", "prior", async () => (await import("./stages/selection.ts")).priorFilterPlugin),
  builtin("filter", "score", async () => (await import("./stages/selection.ts")).scoreFilterPlugin),
  builtin("filter", "topk", async () => (await import("./stages/selection.ts")).topkFilterPlugin),
  builtin("filter", "none", async () => (await import("./stages/selection.ts")).noneFilterPlugin),
  builtin(
    "generator",
    "cola-xv",
    async () => (await import("./stages/generation/plugin.ts")).generatorPlugin,
  ),
  builtin(
    "student",
    "tridet-ema",
    async () => (await import("./stages/training/plugin.ts")).studentPlugin,
  ),
  builtin("dataset", "actionformer", async () => await datasetPlugin("actionformer")),
  builtin("dataset", "cola", async () => await datasetPlugin("cola")),
  builtin("dataset", "activitynet", async () => await datasetPlugin("activitynet")),
];
// --- end built-in plugins ---

async function datasetPlugin(name: string): Promise<Plugin> {
  const { DATASET_PLUGINS } = await import("./datasets.ts");
  return DATASET_PLUGINS.find((p) => p.name === name)!;
}

/** Default plugin name per kind used by {@linkcode resolvePlugins} when config names none. */
export const DEFAULT_PLUGINS: Partial<Record<PluginKind, string>> = {
  generator: "cola-xv",
  filter: "prior",
  student: "tridet-ema",
};

interface Entry {
  plugin: Plugin;
  source: string;
}

const registered = new Map<string, Entry>();
const sources = new WeakMap<object, string>();
const keyOf = (kind: string, name: string) => `${kind}\u0000${name}`;

const METHODS: Record<PluginKind, { required: string[]; optional: string[] }> = {
  dataset: { required: ["open"], optional: ["detect"] },
  generator: { required: ["generate"], optional: [] },
  filter: { required: ["apply"], optional: [] },
  student: { required: ["train"], optional: [] },
};

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/** `filter plugin "x" (module m)`: how messages name a plugin. */
function label(kind: unknown, name: unknown, source: string | undefined, index?: number): string {
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

/** The module a plugin was loaded from, `built-in`, `code`, or undefined if unregistered. */
export function pluginSource(plugin: Plugin): string | undefined {
  return sources.get(plugin);
}

/**
 * Checks the shape of a would-be plugin and returns it typed; throws an
 * {@linkcode InputError} naming the plugin (and `source`) otherwise.
 */
export function validatePlugin(value: unknown, source?: string, index?: number): Plugin {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const what = index !== undefined ? `default export item #${index}` : "plugin";
    const where = source && source !== "code" ? `module ${source}: ` : "";
    throw new InputError(
      `${where}${what} is not a plugin object {kind, name, ...} (got ${typeName(value)})`,
    );
  }
  const p = value as Record<string, unknown>;
  const who = label(p.kind, p.name, source, index);
  const fail = (problem: string): never => {
    throw new InputError(`${who}: ${problem}`);
  };
  const kinds = PLUGIN_KINDS.join(", ");
  if (p.kind === undefined) fail(`missing field "kind" (one of ${kinds})`);
  if (typeof p.kind !== "string" || !(PLUGIN_KINDS as readonly string[]).includes(p.kind)) {
    fail(`kind ${JSON.stringify(p.kind)} is not one of ${kinds}`);
  }
  if (p.name === undefined) fail(`missing field "name"`);
  if (typeof p.name !== "string" || !/^[^\s]+$/.test(p.name)) {
    fail(`"name" must be a non-empty string without spaces (got ${JSON.stringify(p.name)})`);
  }
  if (p.description !== undefined && typeof p.description !== "string") {
    fail(`"description" must be a string (got ${typeName(p.description)})`);
  }
  const m = METHODS[p.kind as PluginKind];
  for (const f of m.required) {
    if (p[f] === undefined) {
      fail(`missing method "${f}" (a ${p.kind} plugin needs ${m.required.join(", ")})`);
    }
    if (typeof p[f] !== "function") fail(`"${f}" is not a function (got ${typeName(p[f])})`);
  }
  for (const f of m.optional) {
    if (p[f] !== undefined && typeof p[f] !== "function") {
      fail(`"${f}" is not a function (got ${typeName(p[f])})`);
    }
  }
  return value as Plugin;
}

function checkFree(plugin: Plugin, source: string): void {
  const key = keyOf(plugin.kind, plugin.name);
  const have = registered.get(key);
  if (have && have.plugin !== plugin) {
    throw new InputError(
      `${label(plugin.kind, plugin.name, source)}: name already taken by the ` +
        (have.source === BUILTIN_SOURCE
          ? `built-in ${plugin.kind} "${plugin.name}"`
          : have.source === "code"
          ? `${plugin.kind} "${plugin.name}" registered earlier`
          : `${plugin.kind} "${plugin.name}" from module ${have.source}`),
    );
  }
  if (!have && source !== BUILTIN_SOURCE) {
    if (BUILTINS.some((b) => b.kind === plugin.kind && b.name === plugin.name)) {
      throw new InputError(
        `${label(plugin.kind, plugin.name, source)}: name already taken by the built-in ` +
          `${plugin.kind} "${plugin.name}"`,
      );
    }
  }
}

/**
 * Registers a plugin so config and CLI can name it. Validates it first (see module doc);
 * registering the very same object twice is a no-op, another object under a taken
 * (kind, name) is an error. `source` names the module it came from in error messages.
 *
 * @returns the plugin, typed.
 */
export function registerPlugin(plugin: unknown, source = "code"): Plugin {
  const p = validatePlugin(plugin, source);
  checkFree(p, source);
  const key = keyOf(p.kind, p.name);
  if (!registered.has(key)) {
    registered.set(key, { plugin: p, source });
    sources.set(p, source);
  }
  return p;
}

/**
 * The plugin of `kind` called `name`, loading a built-in on first use. Unknown names fail
 * with an {@linkcode InputError} listing the available ones (and pointing out a plugin of
 * that name but another kind).
 */
export async function getPlugin<K extends PluginKind>(
  kind: K,
  name: string,
): Promise<PluginOfKind<K>> {
  const key = keyOf(kind, name);
  const have = registered.get(key);
  if (have) return have.plugin as PluginOfKind<K>;
  const b = BUILTINS.find((x) => x.kind === kind && x.name === name);
  if (b) {
    const p = validatePlugin(await b.load(), BUILTIN_SOURCE);
    if (p.kind !== kind || p.name !== name) {
      throw new Error(`built-in ${kind} "${name}" loaded a ${p.kind} named "${p.name}"`);
    }
    // Another caller may have loaded it concurrently: keep the first.
    const again = registered.get(key);
    if (again) return again.plugin as PluginOfKind<K>;
    registered.set(key, { plugin: p, source: BUILTIN_SOURCE });
    sources.set(p, BUILTIN_SOURCE);
    return p as PluginOfKind<K>;
  }
  const others = listPlugins().filter((x) => x.name === name && x.kind !== kind);
  const avail = listPlugins(kind).map((x) => x.name).join(", ") || "none";
  const hint = others.length
    ? ` (there is a ${others[0].kind} plugin "${name}"` +
      (others[0].source === BUILTIN_SOURCE || others[0].source === "code"
        ? ")"
        : ` from module ${others[0].source})`)
    : "";
  throw new InputError(`no ${kind} plugin named "${name}"${hint}; ${kind} plugins: ${avail}`);
}

/** Every known plugin (built-ins first, then registered ones), optionally of one kind. */
export function listPlugins(kind?: PluginKind): PluginInfo[] {
  const out: PluginInfo[] = [];
  const seen = new Set<string>();
  for (const b of BUILTINS) {
    if (kind && b.kind !== kind) continue;
    const e = registered.get(keyOf(b.kind, b.name));
    out.push({
      kind: b.kind,
      name: b.name,
      source: BUILTIN_SOURCE,
      ...(e?.plugin.description ? { description: e.plugin.description } : {}),
    });
    seen.add(keyOf(b.kind, b.name));
  }
  for (const [key, e] of registered) {
    if (seen.has(key) || (kind && e.plugin.kind !== kind)) continue;
    out.push({
      kind: e.plugin.kind,
      name: e.plugin.name,
      source: e.source,
      ...(e.plugin.description ? { description: e.plugin.description } : {}),
    });
  }
  return out;
}

/** Turns `--plugin` input into an import specifier: URLs stay, paths become file URLs. */
export function pluginSpecifier(pathOrUrl: string): string {
  // A scheme of two or more letters (file:, https:, jsr:, npm:); "C:\x" is a Windows path.
  if (/^[a-z][a-z0-9+.-]+:/i.test(pathOrUrl)) return pathOrUrl;
  return pathToFileURL(path.resolve(pathOrUrl)).href;
}

/**
 * Imports a plugin module (`--plugin PATH_OR_URL`) and registers its default export: one
 * plugin or an array of them. All of the module's plugins are validated before any is
 * registered. Loading the same module twice is harmless (same objects).
 *
 * @returns the plugins the module provides.
 */
export async function loadPluginModule(pathOrUrl: string): Promise<Plugin[]> {
  const spec = pluginSpecifier(pathOrUrl);
  let mod: Record<string, unknown>;
  try {
    mod = await importKeepingLock(spec) as Record<string, unknown>;
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new InputError(`plugin module ${pathOrUrl}: cannot import it (${msg})`);
  }
  if (!("default" in mod) || mod.default === undefined) {
    throw new InputError(
      `plugin module ${pathOrUrl}: no default export (export default one plugin ` +
        `{kind, name, ...} or an array of them)`,
    );
  }
  const items = Array.isArray(mod.default) ? mod.default : [mod.default];
  if (items.length === 0) {
    throw new InputError(`plugin module ${pathOrUrl}: the default export is an empty array`);
  }
  const plugins = items.map((x, i) =>
    validatePlugin(x, pathOrUrl, Array.isArray(mod.default) ? i : undefined)
  );
  const names = new Set<string>();
  for (const p of plugins) {
    const k = keyOf(p.kind, p.name);
    if (names.has(k)) {
      throw new InputError(
        `${label(p.kind, p.name, pathOrUrl)}: name already taken by another ${p.kind} ` +
          `in the same module`,
      );
    }
    names.add(k);
    checkFree(p, pathOrUrl);
  }
  return plugins.map((p) => registerPlugin(p, pathOrUrl));
}

/**
 * The lock files a Deno process may write: for the nearest `deno.json` / `deno.jsonc` above
 * the main module's folder (where `deno run FILE` finds its config; measured with Deno 2.9)
 * and above the working folder, its `lock` path or `deno.lock` beside it.
 */
async function lockFilesInEffect(): Promise<string[]> {
  const starts: string[] = [];
  const main = (globalThis as { Deno?: { mainModule?: string } }).Deno?.mainModule;
  if (main?.startsWith("file:")) starts.push(path.dirname(new URL(main).pathname));
  starts.push(path.resolve("."));
  const found = new Set<string>();
  for (const s of starts) for (const f of await lockFileAbove(s)) found.add(f);
  return [...found];
}

async function lockFileAbove(start: string): Promise<string[]> {
  const out: string[] = [];
  let dir = start;
  for (;;) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      const cfg = path.join(dir, name);
      let text: string;
      try {
        text = await fs.readFile(cfg, "utf8");
      } catch {
        continue;
      }
      let lock: unknown;
      try {
        lock = (JSON.parse(text) as { lock?: unknown }).lock;
      } catch {
        lock = undefined; // jsonc with comments: assume the default
      }
      if (lock === false) return out;
      const rel = typeof lock === "string"
        ? lock
        : typeof (lock as { path?: unknown })?.path === "string"
        ? (lock as { path: string }).path
        : "deno.lock";
      out.push(path.resolve(dir, rel));
      return out;
    }
    const up = path.dirname(dir);
    if (up === dir) return out;
    dir = up;
  }
}

/**
 * `import(spec)` that leaves the project's lock file as it was. Deno adds every remote module
 * a dynamic import fetches to the lock file in effect (and creates it when missing); this
 * reads that file before the import and, when the import changed it, writes the old bytes
 * back atomically (or removes a file the import created). The plugin's modules stay
 * unrecorded, as with `deno run --no-lock`; the project's own pins are untouched. Runtimes
 * without lock files (Bun) are unaffected.
 */
export async function importKeepingLock(spec: string): Promise<unknown> {
  const saved: { file: string; bytes: Uint8Array | null }[] = [];
  if ("Deno" in globalThis) {
    for (const file of await lockFilesInEffect()) {
      saved.push({
        file,
        bytes: await fs.readFile(file).then((b) => new Uint8Array(b), () => null),
      });
    }
  }
  try {
    return await import(spec);
  } finally {
    for (const { file, bytes } of saved) {
      const now = await fs.readFile(file).then((b) => new Uint8Array(b), () => null);
      const same = now === null
        ? bytes === null
        : bytes !== null && now.length === bytes.length && now.every((x, i) => x === bytes[i]);
      if (same) continue;
      if (bytes === null) await fs.rm(file, { force: true });
      else {
        const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
        await fs.writeFile(tmp, bytes);
        await fs.rename(tmp, file);
      }
    }
  }
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

/** Slack (seconds) allowed around a video when checking plugin outputs. */
export const OUTPUT_SLACK_S = 1;

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
  if (s < -OUTPUT_SLACK_S) return `segment [${s}, ${e}] starts before the video`;
  if (duration !== undefined && duration > 0) {
    if (s > duration + OUTPUT_SLACK_S) {
      return `segment [${s}, ${e}] starts after the video's end (${duration.toFixed(2)} s)`;
    }
    if (e > 2 * duration + OUTPUT_SLACK_S) {
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
      if (typeof id !== "string" || id === "" || id === "." || id === ".." || /[\/\\\0]/.test(id)) {
        throw new InputError(`${who}: video id ${JSON.stringify(id)} is not a plain name`);
      }
      const anns = m.annotations;
      if (!Array.isArray(anns)) throw new InputError(`${who}: video ${id} has no annotation list`);
      const dur = typeof m.duration === "number" ? m.duration : undefined;
      anns.forEach((a: { segment?: unknown } | null, i: number) => {
        const why = segmentProblem(a?.segment, undefined);
        // Annotations may end past the stated duration (real files do); far outside is wrong.
        const far = why ??
          (dur !== undefined && dur > 0
            ? segmentProblem(a?.segment, Math.max(dur, 0))?.includes("far past")
              ? `segment ${JSON.stringify(a?.segment)} ends far past the video's end`
              : undefined
            : undefined);
        if (far) throw new InputError(`${who}: video ${id} annotation ${i}: ${far}`);
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

/** What {@linkcode resolvePlugins} reads: plugin modules and a plugin name per kind. */
export interface PluginConfig {
  /** Modules to load first (`--plugin`), in order. */
  plugins?: readonly string[];
  /** Dataset plugin name. */
  dataset?: string;
  /** Generator plugin name. */
  generator?: string;
  /** Filter plugin name. */
  filter?: string;
  /** Student plugin name. */
  student?: string;
}

/** The plugins a run uses, per kind (absent when config and defaults name none). */
export interface ResolvedPlugins {
  /** The dataset plugin. */
  dataset?: DatasetPlugin;
  /** The generator plugin. */
  generator?: GeneratorPlugin;
  /** The filter plugin. */
  filter?: FilterPlugin;
  /** The student plugin. */
  student?: StudentPlugin;
  /** Plugins the modules in `config.plugins` provided. */
  loaded: Plugin[];
}

/**
 * Loads `config.plugins` and looks up the plugin of each kind by the name config gives (or
 * {@linkcode DEFAULT_PLUGINS}). For `run`: `const p = await resolvePlugins(config)`.
 */
export async function resolvePlugins(config: PluginConfig): Promise<ResolvedPlugins> {
  const loaded: Plugin[] = [];
  for (const m of config.plugins ?? []) loaded.push(...await loadPluginModule(m));
  const out: ResolvedPlugins = { loaded };
  for (const kind of PLUGIN_KINDS) {
    const name = config[kind] ?? DEFAULT_PLUGINS[kind];
    if (name === undefined) continue;
    // deno-lint-ignore no-explicit-any
    (out as any)[kind] = await getPlugin(kind, name);
  }
  return out;
}
