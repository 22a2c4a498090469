// The project's import graph: no module imports itself through others (static imports,
// type-only imports and literal dynamic `import()` all count), and the evaluation-only and
// dataset entries reach no tfjs module.
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";

const ROOT = path.resolve(import.meta.dirname!, "..");
const SKIP_DIRS = new Set(["node_modules", "runs", ".cache", ".git", "tests", "bench"]);

async function projectFiles(dir = ROOT): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".") || SKIP_DIRS.has(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...await projectFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** Relative specifiers of `import`/`export ... from` and literal `import("...")` in `src`. */
export function relativeImports(src: string): string[] {
  const code = src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;
  return [...code.matchAll(re)].map((m) => m[1]);
}

async function graph(): Promise<Map<string, string[]>> {
  const g = new Map<string, string[]>();
  for (const f of await projectFiles()) {
    const deps = relativeImports(await fs.readFile(f, "utf8"))
      .map((s) => path.resolve(path.dirname(f), s));
    g.set(f, deps);
  }
  return g;
}

/** The first import cycle found by depth-first search, as a list of files, or null. */
function findCycle(g: Map<string, string[]>): string[] | null {
  const state = new Map<string, 1 | 2>(); // 1: on the stack, 2: done
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, 1);
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (state.get(d) === 1) return [...stack.slice(stack.indexOf(d)), d];
      if (!state.has(d)) {
        const c = visit(d);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 2);
    return null;
  };
  for (const n of [...g.keys()].sort()) {
    if (!state.has(n)) {
      const c = visit(n);
      if (c) return c;
    }
  }
  return null;
}

Deno.test("import graph: the cycle finder sees a cycle and its absence", () => {
  assert.deepEqual(
    relativeImports(
      'import { a } from "./a.ts";\nimport type { B } from "../b.ts";\n' +
        'export * from "./c.ts";\nconst m = () => import("./d.ts");\n// import "./no.ts"\n' +
        'import "./side.ts";\nimport x from "npm:x";',
    ),
    ["./a.ts", "../b.ts", "./c.ts", "./d.ts", "./side.ts"],
  );
  const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]]);
  assert.deepEqual(findCycle(g), ["a", "b", "c", "a"]);
  g.set("c", []);
  assert.equal(findCycle(g), null);
});

Deno.test("import graph: no cycle among the project's modules", async () => {
  const g = await graph();
  assert.ok(g.size > 50, `only ${g.size} modules found`);
  const c = findCycle(g);
  assert.equal(c, null, `import cycle: ${c?.map((f) => path.relative(ROOT, f)).join(" -> ")}`);
});

/**
 * The modules loading `entry` evaluates: `deno info`'s graph walked along static code imports
 * (type-only imports are erased, dynamic ones load on demand).
 */
async function staticModules(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", path.join(ROOT, entry)],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  type Dep = { code?: { specifier: string }; isDynamic?: boolean };
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: { specifier: string; dependencies?: Dep[] }[];
    redirects: Record<string, string>;
  };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length) {
    const s0 = todo.pop()!;
    const s = info.redirects[s0] ?? s0;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpec.get(s)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) todo.push(d.code.specifier);
    }
  }
  return [...seen];
}

for (const entry of ["eval.ts", "datasets.ts", "plugins.ts"]) {
  Deno.test(`import graph: ${entry} loads no tfjs`, async () => {
    const mods = await staticModules(entry);
    assert.ok(mods.some((m) => m.endsWith("/lib/errors.ts")), "the walk reached no module");
    const tf = mods.filter((m) => m.includes("tensorflow"));
    assert.deepEqual(tf, [], `${entry} statically reaches tfjs`);
  });
}

Deno.test("import graph: the pipeline does reach tfjs (the check above can fail)", async () => {
  const mods = await staticModules("stages/pipeline.ts");
  assert.ok(mods.some((m) => m.includes("tensorflow")));
});
