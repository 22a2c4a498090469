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
import { InputError } from "./lib/errors.ts";
import { BUILTIN_SOURCE, label, sources } from "./lib/plugin_guard.ts";
import {
  type DatasetPlugin,
  type FilterPlugin,
  type GeneratorPlugin,
  type Plugin,
  PLUGIN_KINDS,
  type StudentPlugin,
} from "./lib/plugin_types.ts";

export {
  BUILTIN_SOURCE,
  callPlugin,
  checkDetections,
  checkPluginOutput,
  describePlugin,
  guardPluginCall,
  pendingPluginCalls,
  setPluginCallTimeout,
  type VideoSpans,
  videoSpans,
} from "./lib/plugin_guard.ts";

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
  /** The options the plugin reads, name -> description (absent when it declares none). */
  options?: Readonly<Record<string, string>>;
}

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

/**
 * Default plugin name per kind, the one place they are defined: {@linkcode resolvePlugins},
 * `runFuSTAL` and the commands use it when config names none (datasets: by layout).
 */
export const DEFAULT_PLUGINS: {
  readonly dataset?: string;
  readonly generator: string;
  readonly filter: string;
  readonly student: string;
} = {
  generator: "cola-xv",
  filter: "prior",
  student: "tridet-ema",
};

interface Entry {
  plugin: Plugin;
  source: string;
}

const registered = new Map<string, Entry>();
const keyOf = (kind: string, name: string) => `${kind}\u0000${name}`;

const METHODS: Record<PluginKind, { required: string[]; optional: string[] }> = {
  dataset: { required: ["open"], optional: ["detect"] },
  generator: { required: ["generate"], optional: [] },
  filter: { required: ["apply"], optional: [] },
  student: { required: ["train"], optional: ["predict"] },
};

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
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
  if (
    p.options !== undefined &&
    (typeName(p.options) !== "object" ||
      Object.values(p.options as object).some((d) => typeof d !== "string"))
  ) {
    fail(`"options" must be an object of option name -> description string`);
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
 * The type parameter gives editor help for the plugin's kind: `registerPlugin<FilterPlugin>({
 * kind: "filter", ... })` checks the object against the filter contract. A value of unknown
 * type (e.g. from JavaScript) is still checked at run time.
 *
 * @returns the plugin, typed.
 */
export function registerPlugin<P extends Plugin>(plugin: P, source = "code"): P {
  const p = validatePlugin(plugin, source) as P;
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
      ...(e?.plugin.options ? { options: e.plugin.options } : {}),
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
      ...(e.plugin.options ? { options: e.plugin.options } : {}),
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
