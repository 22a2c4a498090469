/**
 * Import time of the package entries, each imported by a fresh `deno` process, 3 times; the
 * median wall time of the whole process is printed per entry, with a process that imports
 * nothing as the baseline.
 * - cold: a new, empty DENO_DIR per run except for the downloaded npm packages (linked from
 *   the real cache, so nothing is downloaded): every module is transpiled and compiled anew,
 *   as on a user's first import after installing;
 * - warm: the real DENO_DIR, already filled by an earlier import.
 *
 * deno run -A bench/import_bench.ts
 */
import * as path from "node:path";

const ROOT = path.resolve(import.meta.dirname!, "..");
const ENTRIES = ["(nothing)", "eval.ts", "plugins.ts", "datasets.ts", "mod.ts"];

const REAL_DIR = JSON.parse(
  new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output()).stdout,
  ),
).denoDir as string;

async function once(entry: string, cold = false): Promise<number> {
  let env: Record<string, string> = {};
  let tmp: string | undefined;
  if (cold) {
    tmp = await Deno.makeTempDir({ prefix: "fustal_denodir_" });
    await Deno.symlink(path.join(REAL_DIR, "npm"), path.join(tmp, "npm"));
    env = { DENO_DIR: tmp };
  }
  const code = entry === "(nothing)"
    ? "0"
    : `await import(${JSON.stringify(path.join(ROOT, entry))})`;
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    cwd: ROOT,
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  if (tmp) await Deno.remove(tmp, { recursive: true });
  if (out.code !== 0) throw new Error(`${entry}: ${new TextDecoder().decode(out.stderr)}`);
  return ms;
}

await once("mod.ts"); // fill the real module cache once
const median = async (e: string, cold: boolean) =>
  [await once(e, cold), await once(e, cold), await once(e, cold)].sort((a, b) => a - b)[1];
const rows: string[] = [];
for (const e of ENTRIES) {
  const cold = await median(e, true), warm = await median(e, false);
  rows.push(`| ${e} | ${(cold / 1000).toFixed(2)} | ${(warm / 1000).toFixed(2)} |`);
}
console.log("| entry | cold import (s) | warm import (s) |");
console.log("| ----- | --------------- | --------------- |");
console.log(rows.join("\n"));
