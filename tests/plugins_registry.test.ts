/**
 * The plugin registry: validation of bad plugins (each error names the plugin and module),
 * lookup, and a plugin module written OUTSIDE the project (temp folder, no deno.json) loaded
 * by `select --plugin file:///...`.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { InputError } from "../lib/errors.ts";
import type { FilterPlugin, Plugin } from "../lib/plugin_types.ts";
import {
  getPlugin,
  listPlugins,
  loadPluginModule,
  pluginSpecifier,
  registerPlugin,
  resolvePlugins,
} from "../registry.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MOD_URL = pathToFileURL(path.join(ROOT, "mod.ts")).href;

async function tempModule(dir: string, name: string, source: string): Promise<string> {
  const file = path.join(dir, name);
  await Deno.writeTextFile(file, source);
  return pathToFileURL(file).href;
}

async function rejectsInput(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof InputError, `not an InputError: ${e}`);
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("plugins: built-in filters are registered lazily and listed", async () => {
  const names = listPlugins("filter").map((p) => p.name);
  for (const n of ["prior", "score", "topk", "none"]) assert.ok(names.includes(n), n);
  const prior = await getPlugin("filter", "prior");
  assert.equal(prior.kind, "filter");
  assert.equal(await getPlugin("filter", "prior"), prior);
  assert.ok(listPlugins("filter").find((p) => p.name === "prior")?.description);
  await rejectsInput(getPlugin("filter", "nope"), /no filter plugin named "nope".*prior/);
  const r = await resolvePlugins({});
  assert.equal(r.filter, prior);
  assert.equal(pluginSpecifier("https://x.org/p.ts"), "https://x.org/p.ts");
  assert.equal(pluginSpecifier("/a/b.ts"), pathToFileURL("/a/b.ts").href);
});

Deno.test("plugins: every bad plugin is an InputError naming the plugin and module", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal_badplugins_" });
  try {
    const cases: [string, string, RegExp][] = [
      [
        "no_kind.ts",
        `export default { name: "nokind", apply: (p) => p };`,
        /plugin "nokind" \(module .*no_kind\.ts\): missing field "kind"/,
      ],
      [
        "bad_kind.ts",
        `export default { kind: "filtre", name: "typo", apply: (p) => p };`,
        /plugin "typo" \(module .*bad_kind\.ts\): kind "filtre" is not one of dataset, generator, filter, student/,
      ],
      [
        "no_name.ts",
        `export default [{ kind: "filter", apply: (p) => p }];`,
        /filter plugin #0 \(no name\) \(module .*no_name\.ts\): missing field "name"/,
      ],
      [
        "no_method.ts",
        `export default { kind: "generator", name: "lazy-gen" };`,
        /generator plugin "lazy-gen" \(module .*no_method\.ts\): missing method "generate"/,
      ],
      [
        "not_fn.ts",
        `export default { kind: "filter", name: "notfn", apply: 3 };`,
        /filter plugin "notfn" \(module .*not_fn\.ts\): "apply" is not a function \(got number\)/,
      ],
      [
        "bad_detect.ts",
        `export default { kind: "dataset", name: "ds-x", open: async () => ({}), detect: "yes" };`,
        /dataset plugin "ds-x" \(module .*bad_detect\.ts\): "detect" is not a function/,
      ],
      [
        "taken.ts",
        `export default { kind: "filter", name: "prior", apply: (p) => p };`,
        /filter plugin "prior" \(module .*taken\.ts\): name already taken by the built-in filter "prior"/,
      ],
      [
        "dup_in_module.ts",
        `const f = { kind: "filter", name: "twice", apply: (p) => p };
         export default [f, { ...f }];`,
        /filter plugin "twice" \(module .*dup_in_module\.ts\): name already taken by another filter in the same module/,
      ],
      [
        "no_default.ts",
        `export const plugin = { kind: "filter", name: "named", apply: (p) => p };`,
        /plugin module .*no_default\.ts: no default export/,
      ],
      [
        "number.ts",
        `export default 42;`,
        /module .*number\.ts: plugin is not a plugin object .*got number/,
      ],
      [
        "syntax.ts",
        `export default { kind: "filter", name: ;`,
        /plugin module .*syntax\.ts: cannot import it/,
      ],
    ];
    for (const [file, src, re] of cases) {
      const url = await tempModule(dir, file, src);
      await rejectsInput(loadPluginModule(url), re);
    }
    await rejectsInput(
      loadPluginModule(path.join(dir, "missing.ts")),
      /plugin module .*missing\.ts: cannot import it/,
    );
    // A failed module registers nothing (validated before registering).
    assert.ok(!listPlugins().some((p) => p.name === "twice" || p.name === "typo"));

    // The same name from a second module: names both modules.
    const a = await tempModule(
      dir,
      "a.ts",
      `export default { kind: "filter", name: "same", apply: (p) => p };`,
    );
    const b = await tempModule(
      dir,
      "b.ts",
      `export default { kind: "filter", name: "same", apply: (p) => p };`,
    );
    await loadPluginModule(a);
    await loadPluginModule(a); // loading a module twice is harmless
    await rejectsInput(
      loadPluginModule(b),
      /filter plugin "same" \(module .*b\.ts\): name already taken by the filter "same" from module .*a\.ts/,
    );

    // Wrong kind at lookup: a generator asked for as a filter.
    const g = await tempModule(
      dir,
      "gen.ts",
      `export default { kind: "generator", name: "gen-only", generate: async () => ({ train: [], test: [] }) };`,
    );
    await loadPluginModule(g);
    await rejectsInput(
      getPlugin("filter", "gen-only"),
      /no filter plugin named "gen-only" \(there is a generator plugin "gen-only" from module .*gen\.ts\)/,
    );

    // registerPlugin from code: same object twice is fine, another object is not.
    const f: FilterPlugin = { kind: "filter", name: "code-filter", apply: (p) => p };
    registerPlugin(f);
    registerPlugin(f);
    assert.throws(
      () => registerPlugin({ ...f }),
      /filter plugin "code-filter": name already taken by the filter "code-filter" registered earlier/,
    );
    assert.throws(
      () => registerPlugin(null as unknown as Plugin),
      /plugin is not a plugin object/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path.join(ROOT, "mod.ts"), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("plugins: a module outside the project is loaded by select --plugin file:///", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal_userplugin_" });
  try {
    // A user's module: types imported by URL from mod.ts (optional), nothing else.
    const good = await tempModule(
      dir,
      "long_only.ts",
      `import type { Detection, FilterContext, FilterPlugin } from "${MOD_URL}";
const longOnly: FilterPlugin = {
  kind: "filter",
  name: "long-only",
  description: "keep proposals at least minLength seconds long",
  apply(proposals: Detection[], ctx: FilterContext): Detection[] {
    const min = Number(ctx.options.minLength ?? 2);
    return proposals.filter((p) => p.segment[1] - p.segment[0] >= min);
  },
};
export default [longOnly];
`,
    );
    const throwing = await tempModule(
      dir,
      "throwing.ts",
      `export default { kind: "filter", name: "explodes",
  apply(p, ctx) { if (ctx.videoId === "v2") throw new RangeError("no luck"); return p; } };`,
    );
    const props = path.join(dir, "props.json");
    await Deno.writeTextFile(
      props,
      JSON.stringify({
        method: "user-gen",
        version: "VERSION 1.3",
        results: {
          v1: [
            { label: "A", score: 0.9, segment: [0, 1] },
            { label: "A", score: 0.8, segment: [2, 10] },
          ],
          v2: [{ label: "B", score: 0.5, segment: [3, 9] }],
          v3: [],
        },
      }),
    );
    const gt = path.join(dir, "gt.json");
    await Deno.writeTextFile(
      gt,
      JSON.stringify({
        database: {
          v1: { subset: "train", annotations: [{ label: "A", segment: ["2", "10"] }] },
          v2: { subset: "train", annotations: [{ label: "B", segment: [0, 1] }] },
          v3: { subset: "train", annotations: [] },
          t1: { subset: "test", annotations: [{ label: "A", segment: [0, 1] }] },
        },
      }),
    );
    const out = path.join(dir, "out.json");
    const r = await cli([
      "select",
      "--proposals",
      props,
      "--out",
      out,
      "--plugin",
      good,
      "--filter",
      "long-only",
      "--option",
      "minLength=5",
      "--gt",
      gt,
      "--subset",
      "train",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const last = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.equal(last.before, 3);
    assert.equal(last.after, 2);
    assert.equal(last.videos, 3);
    assert.equal(last.filter, "long-only");
    // Before: 1 of 3 proposals matches (v1 [2,10]); 1 of 2 instances. After: 1 of 2, 1 of 2.
    assert.equal(last.quality.before.precision, 1 / 3);
    assert.equal(last.quality.after.precision, 1 / 2);
    assert.equal(last.quality.before.recall, 1 / 2);
    assert.equal(last.quality.after.recall, 1 / 2);
    assert.equal(last.quality.before.mAP.length, 7);
    assert.equal(typeof last.quality.after.average, "number");
    const written = JSON.parse(await Deno.readTextFile(out));
    assert.equal(written.method, "user-gen");
    assert.equal(written.version, "VERSION 1.3");
    assert.deepEqual(written.results, {
      v1: [{ label: "A", score: 0.8, segment: [2, 10] }],
      v2: [{ label: "B", score: 0.5, segment: [3, 9] }],
      v3: [],
    });

    // A throwing apply: exit 2, one line naming the plugin, its module and the video; no output.
    const out2 = path.join(dir, "out2.json");
    const bad = await cli([
      "select",
      "--proposals",
      props,
      "--out",
      out2,
      "--plugin",
      throwing,
      "--filter",
      "explodes",
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(
      bad.stderr,
      /^error: filter plugin "explodes" \(module file:\/\/.*throwing\.ts\): apply on video v2 threw: RangeError: no luck\n$/,
    );
    await assert.rejects(() => Deno.stat(out2));

    // A bad plugin module on the command line: exit 2 naming plugin and module.
    const bk = await tempModule(dir, "bk.ts", `export default { kind: "filtre", name: "k1" };`);
    const bad2 = await cli(["select", "--proposals", props, "--out", out2, "--plugin", bk]);
    assert.equal(bad2.code, 2);
    assert.match(bad2.stderr, /plugin "k1" \(module .*bk\.ts\): kind "filtre" is not one of/);
    // A plugin name of the wrong kind.
    const bad3 = await cli([
      "select",
      "--proposals",
      props,
      "--out",
      out2,
      "--filter",
      "nope",
    ]);
    assert.equal(bad3.code, 2);
    assert.match(
      bad3.stderr,
      /no filter plugin named "nope"; filter plugins: prior, score, topk, none/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
