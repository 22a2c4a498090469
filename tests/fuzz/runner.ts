/**
 * Runs fuzz cases in one process through the CLI's `main` (one `deno run` start for hundreds
 * of cases): `deno run -A tests/fuzz/runner.ts SEED SHARD SHARDS WORK_DIR RESULTS_JSON`.
 * Writes the template datasets, generates the seeded cases (`cases.ts`), runs this shard's
 * share, and writes one result per case: exit code, stderr lines, wall time, RSS growth, and
 * whether the case's folder changed.
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import process from "node:process";
import { main } from "../../cli.ts";
import { synthesize } from "../../datasets.ts";
import { decodeNpy } from "../../datasets/npy.ts";
import { controlCases, type FuzzCase, generateCases, type TemplateInfo } from "./cases.ts";

/** One case's outcome. */
export interface CaseResult {
  /** The case id. */
  id: string;
  /** Its class. */
  cls: string;
  /** The mutation. */
  what: string;
  /** Expected exit code. */
  expectExit: number;
  /** Expected text in the error line. */
  names: string;
  /** Command name. */
  command: string;
  /** Exit code `main` returned (1 when it threw). */
  exit: number;
  /** stderr, line by line. */
  stderr: string[];
  /** Wall time of the call (ms). */
  ms: number;
  /** RSS after minus RSS before (bytes). */
  rssGrowth: number;
  /** Paths added, removed or resized in the case's folder (empty when untouched). */
  changed: string[];
}

async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out.set(path.relative(dir, p) + "/", "dir");
        await walk(p);
      } else out.set(path.relative(dir, p), String((await fs.stat(p)).size));
    }
  };
  await walk(dir);
  return out;
}

async function templateInfo(work: string): Promise<TemplateInfo> {
  const af = path.join(work, "templates/thumos/actionformer");
  const colaDir = path.join(work, "templates/thumos/cola");
  const anet = path.join(work, "templates/anet/activitynet");
  const actionformerJson = await fs.readFile(path.join(af, "annotations/thumos14.json"), "utf8");
  const db = JSON.parse(actionformerJson).database as Record<string, { duration: number }>;
  const afVideos = [];
  for (const id of Object.keys(db)) {
    const a = decodeNpy(
      new Uint8Array(await fs.readFile(path.join(af, "i3d_features", `${id}.npy`))),
      id,
    );
    afVideos.push({ id, duration: db[id].duration, rows: a.shape[0] });
  }
  const split = async (s: string) =>
    (await fs.readFile(path.join(colaDir, `split_${s}.txt`), "utf8")).split("\n").filter((x) => x);
  return {
    actionformerJson,
    colaJson: await fs.readFile(path.join(colaDir, "gt.json"), "utf8"),
    colaSplits: { train: await split("train"), test: await split("test") },
    anetJson: await fs.readFile(path.join(anet, "activity_net.v1-3.min.json"), "utf8"),
    afVideos,
    durations: Object.fromEntries(Object.entries(db).map(([k, v]) => [k, v.duration])),
    dim: 4,
  };
}

async function runCase(c: FuzzCase, work: string): Promise<CaseResult> {
  const dir = path.join(work, "cases", c.id);
  await fs.mkdir(dir, { recursive: true });
  if (c.template) {
    await fs.cp(path.join(work, "templates", c.template), path.join(dir, "data"), {
      recursive: true,
    });
  }
  for (const r of c.remove ?? []) await fs.rm(path.join(dir, r), { recursive: true });
  for (const m of c.mkdir ?? []) await fs.mkdir(path.join(dir, m), { recursive: true });
  for (const [rel, data] of Object.entries(c.write ?? {})) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), data);
  }
  const before = await tree(dir);
  const args = c.args.map((a) => a.replaceAll("{d}", dir));
  const err: string[] = [];
  const saved = {
    write: process.stderr.write,
    outWrite: process.stdout.write,
    log: console.log,
    error: console.error,
    warn: console.warn,
  };
  // deno-lint-ignore no-explicit-any
  const sink = (chunk: any) => {
    err.push(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk));
    return true;
  };
  process.stderr.write = sink as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  console.log = () => {};
  console.error = (...a: unknown[]) => err.push(a.map(String).join(" ") + "\n");
  console.warn = console.error;
  const rss0 = Deno.memoryUsage().rss;
  const t0 = performance.now();
  let exit: number;
  try {
    exit = await main(args);
  } catch (e) {
    exit = 1;
    err.push(String((e as Error)?.stack ?? e) + "\n");
  } finally {
    process.stderr.write = saved.write;
    process.stdout.write = saved.outWrite;
    console.log = saved.log;
    console.error = saved.error;
    console.warn = saved.warn;
  }
  const ms = performance.now() - t0;
  const rssGrowth = Deno.memoryUsage().rss - rss0;
  const after = await tree(dir);
  const changed: string[] = [];
  for (const [k, v] of after) if (before.get(k) !== v) changed.push(k);
  for (const k of before.keys()) if (!after.has(k)) changed.push(`-${k}`);
  await fs.rm(dir, { recursive: true, force: true });
  return {
    id: c.id,
    cls: c.cls,
    what: c.what,
    expectExit: c.exit,
    names: c.names,
    command: c.args[0],
    exit,
    stderr: err.join("").split("\n").filter((l) => l.trim() !== ""),
    ms,
    rssGrowth,
    changed,
  };
}

if (import.meta.main) {
  const [seedS, shardS, shardsS, work, resultsFile] = Deno.args;
  const seed = Number(seedS), shard = Number(shardS), shards = Number(shardsS);
  await fs.mkdir(work, { recursive: true });
  await synthesize({
    out: path.join(work, "templates/thumos"),
    like: "thumos14",
    dim: 4,
    videos: 4,
    seed,
    format: "npy",
  });
  await synthesize({
    out: path.join(work, "templates/anet"),
    like: "activitynet",
    dim: 4,
    videos: 4,
    seed,
    format: "npy",
  });
  const info = await templateInfo(work);
  const all = [...controlCases(), ...generateCases(seed, info)];
  const mine = all.filter((_, i) => i % shards === shard);
  // Warm-up: load the tensor backend once so per-case memory growth measures the case.
  const { initBackend } = await import("../../lib/backend.ts");
  await initBackend("cpu");
  const results: CaseResult[] = [];
  for (const c of mine) results.push(await runCase(c, work));
  await fs.writeFile(
    resultsFile,
    JSON.stringify({ total: all.length, peakRss: Deno.memoryUsage().rss, results }),
  );
}
