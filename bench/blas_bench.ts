/**
 * tfjs-wasm with and without the native BLAS (`lib/blas.ts`), in one run so that the ratios
 * compare like with like on a shared machine.
 *
 * ```sh
 * deno run -A bench/blas_bench.ts [--cases gen-default,gen-paper,student-default,sgemm]
 *   [--steps 3] [--paper-steps 2] [--threads N] [--torch /usr/bin/python3]
 * ```
 *
 * Every case runs in its own child process (so each reports its own peak RSS, read from
 * `/proc/self/status` VmHWM), once on plain wasm (`FUSTAL_BLAS=off`) and once on wasm+BLAS:
 * - `gen-default`: generator training step (forward + backward + Adam) at the default size,
 *   16 x 256 x 128 (best of `--steps` after one warm-up step).
 * - `gen-paper`: the same at the published size, 16 x 750 x 2048, best of `--paper-steps`
 *   after one warm-up step (plus a second BLAS run at one thread when the machine has more
 *   cores).
 * - `student-default`: student step (forward + backward of the full loss) of the `default`
 *   preset: its batch (8) of whole windows (576 rows) of 128-d features, in one pass.
 * - `sgemm`: one 2048^3 matMul (best of 3).
 *
 * With `--torch PYTHON` (an interpreter that has PyTorch, e.g. Debian's `python3-torch`), each
 * generator row on BLAS is followed by `bench/torch_generator_step.py` at the same size and
 * thread count, and the row gets PyTorch's s/step and the ratio (ours / PyTorch): the two run
 * one after the other, so they see the same machine. PyTorch is never a dependency of the
 * toolkit.
 *
 * With `--baseline REV` (a git revision of this repository, e.g. `c010e5e`, the code issue 11
 * measured: plain wasm, before the native BLAS), `gen-default` and `student-default` also run
 * that revision's own step benchmark on plain wasm (`bench/generation_bench.ts step`,
 * `bench/student_step_bench.ts --one`) from a `git archive` of it in a temp folder, in the same
 * run; its student is set to today's `default` width, MLP width and window (so that the shapes
 * match) by rewriting those three fields of its `DEFAULT` preset. The rows then also give the
 * speed-up over that code.
 *
 * GFLOP/s counts the matrix work analytically (generator: `stepFlops` of
 * `bench/generation_bench.ts`; student: `flopsPerStep` of `bench/student_step_bench.ts`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../deps.ts";
import { backendLabel, describeBackend, initBackend, setBlasOptions } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { peakRssMB } from "./peak_rss.ts";
import { generatorConfig } from "../stages/generation/presets.ts";
import { trainStep } from "../stages/generation/step.ts";
import { Adam, createParams, disposeParams } from "../stages/generation/model.ts";
import { DEFAULT } from "../stages/training/presets.ts";
import { stepFlops } from "./generation_bench.ts";
import { flopsPerStep, stepTime } from "./student_step_bench.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    cases: { type: "string", default: "sgemm,gen-default,student-default,gen-paper" },
    steps: { type: "string", default: "3" },
    "paper-steps": { type: "string", default: "2" },
    threads: { type: "string" },
    torch: { type: "string" },
    one: { type: "string" },
    baseline: { type: "string" },
  },
});

interface Result {
  backend: string;
  seconds: number;
  gflop: number;
  peakMB: number;
  threads: number | null;
}

async function genStep(paper: boolean, steps: number): Promise<{ s: number; gflop: number }> {
  const cfg = generatorConfig(paper ? "paper" : "default");
  const B = cfg.batch, T = cfg.snippets, D = paper ? 2048 : 128, H = D, C = 20;
  const rng = new Rng(1);
  const params = createParams(D, H, C, rng);
  const opt = new Adam(cfg);
  const x = new Float32Array(B * T * D);
  for (let i = 0; i < x.length; i++) x[i] = Math.max(0, rng.normal() - 0.5);
  const labels = Array.from({ length: B }, (_, i) => [i % 4]);
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    await trainStep(params, opt, { x, B, T, D, labels }, cfg, C, rng);
    times.push((performance.now() - t0) / 1000);
  }
  disposeParams(params);
  const best = times.length > 1 ? Math.min(...times.slice(1)) : times[0];
  return { s: best, gflop: stepFlops(B, T, D, H, C) / 1e9 };
}

function sgemm(): { s: number; gflop: number } {
  const n = 2048;
  const a = tf.randomUniform([n, n]);
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, a);
    c.dataSync();
    c.dispose();
    if (i > 0) best = Math.min(best, (performance.now() - t0) / 1000);
  }
  a.dispose();
  return { s: best, gflop: (2 * n ** 3) / 1e9 };
}

if (values.one) {
  const c = JSON.parse(values.one) as { name: string; blas: boolean; threads?: number };
  setBlasOptions({ path: c.blas ? undefined : "off", threads: c.threads });
  const info = await initBackend("wasm");
  console.error(describeBackend(info));
  const steps = Number(values.steps);
  let r: { s: number; gflop: number };
  if (c.name === "gen-default") r = await genStep(false, steps + 1);
  else if (c.name === "gen-paper") r = await genStep(true, Number(values["paper-steps"]) + 1);
  else if (c.name === "student-default") {
    const t = await stepTime("wasm", DEFAULT, 128, DEFAULT.batch, DEFAULT.maxSeqLen, steps);
    r = { s: t.step, gflop: flopsPerStep(DEFAULT, 128, DEFAULT.batch, DEFAULT.maxSeqLen) / 1e9 };
  } else if (c.name === "sgemm") r = sgemm();
  else throw new Error(`unknown case ${c.name}`);
  const out: Result = {
    backend: backendLabel(info),
    seconds: r.s,
    gflop: r.gflop,
    peakMB: peakRssMB(),
    threads: info.blas?.threads ?? null,
  };
  console.log(JSON.stringify(out));
  Deno.exit(0);
}

/** A `git archive` of `rev` unpacked in a temp folder (the caller removes it). */
async function checkout(rev: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "fustal-baseline-" });
  const root = new URL("..", import.meta.url).pathname;
  const out = await new Deno.Command("sh", {
    args: ["-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", root, rev, dir],
    stderr: "inherit",
  }).output();
  if (out.code !== 0) throw new Error(`--baseline: cannot unpack revision ${rev}`);
  return dir;
}

/** Last JSON line of a child's stdout. */
function lastJson<T = Record<string, number>>(stdout: Uint8Array): T {
  return JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
}

/** s/step of `case` at the baseline revision in `dir`, on plain wasm (null: not measurable). */
async function baselineStep(dir: string, name: string): Promise<number | null> {
  const deno = (args: string[]) =>
    new Deno.Command(Deno.execPath(), { args: ["run", "-A", ...args], cwd: dir, stderr: "null" })
      .output();
  if (name === "gen-default") {
    const out = await deno([
      "bench/generation_bench.ts",
      "step",
      "--backend",
      "wasm",
      "--size",
      "default",
      "--steps",
      String(Number(values.steps) + 1),
      "--results",
      `${dir}/steps.jsonl`,
    ]);
    return out.code === 0 ? lastJson(out.stdout).stepSeconds : null;
  }
  if (name === "student-default") {
    // Today's default shape in the old code: its DEFAULT block with today's three sizes.
    const file = `${dir}/stages/training/presets.ts`;
    const src = await Deno.readTextFile(file);
    const start = src.indexOf("export const DEFAULT");
    const end = src.indexOf("\n};", start);
    if (start < 0 || end < 0) return null;
    let block = src.slice(start, end);
    for (
      const [key, v] of [["dim", DEFAULT.dim], ["mlpDim", DEFAULT.mlpDim], [
        "maxSeqLen",
        DEFAULT.maxSeqLen,
      ]]
    ) {
      const re = new RegExp(`\\n  ${key}: [^,]+,`);
      block = re.test(block)
        ? block.replace(re, `\n  ${key}: ${v},`)
        : block.replace("...PAPER,", `...PAPER,\n  ${key}: ${v},`);
    }
    await Deno.writeTextFile(file, src.slice(0, start) + block + src.slice(end));
    const c = { backend: "wasm", size: "default", B: DEFAULT.batch, t0: DEFAULT.maxSeqLen };
    const out = await deno([
      "bench/student_step_bench.ts",
      "--steps",
      values.steps!,
      "--one",
      JSON.stringify(c),
    ]);
    return out.code === 0 ? lastJson(out.stdout).step : null;
  }
  return null;
}

const baseDir = values.baseline ? await checkout(values.baseline) : null;
const cores = navigator.hardwareConcurrency || 1;
const threads = values.threads ? Number(values.threads) : undefined;

/** PyTorch's s/step of the generator-like step at `size` on `n` threads (best after a warm-up). */
async function torchStep(size: "default" | "paper", n: number): Promise<number | null> {
  const script = new URL("./torch_generator_step.py", import.meta.url).pathname;
  const steps = size === "paper" ? values["paper-steps"]! : values.steps!;
  const out = await new Deno.Command(values.torch!, {
    args: [script, "--size", size, "--threads", String(n), "--steps", steps],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (out.code !== 0) return null;
  return lastJson(out.stdout).stepSeconds;
}

const torchCols = values.torch ? " PyTorch s / step | ours / PyTorch |" : "";
const baseCol = baseDir ? ` speed-up vs ${values.baseline} wasm |` : "";
console.log(
  `| case | backend | threads | s / step | GFLOP / step | GFLOP/s | peak RSS MB | speed-up vs wasm |${baseCol}${torchCols}`,
);
console.log(
  `|---|---|---:|---:|---:|---:|---:|---:|${baseDir ? "---:|" : ""}${
    values.torch ? "---:|---:|" : ""
  }`,
);
for (const name of values.cases!.split(",")) {
  const runs: { blas: boolean; threads?: number }[] = [{ blas: false }, { blas: true, threads }];
  if (name === "gen-paper" && cores > 1 && !threads) runs.push({ blas: true, threads: 1 });
  let base: number | null = null;
  const old = baseDir ? await baselineStep(baseDir, name) : null;
  if (old !== null) {
    console.log(
      `| ${name} | wasm at ${values.baseline} | 1 | ${old.toFixed(3)} | | | | |${
        baseDir ? " 1.00x |" : ""
      }${values.torch ? " | |" : ""}`,
    );
  }
  for (const r of runs) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        import.meta.filename!,
        "--steps",
        values.steps!,
        "--paper-steps",
        values["paper-steps"]!,
        "--one",
        JSON.stringify({ name, ...r }),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (out.code !== 0) {
      console.log(
        `| ${name} | ${r.blas ? "wasm+BLAS" : "wasm"} | | failed (exit ${out.code}) | | | | |`,
      );
      continue;
    }
    const j = lastJson<Result>(out.stdout);
    if (!r.blas) base = j.seconds;
    let torch = "";
    if (values.torch) {
      const size = name === "gen-paper" ? "paper" : name === "gen-default" ? "default" : null;
      const t = size && r.blas ? await torchStep(size, j.threads ?? 1) : null;
      torch = t === null ? " | |" : ` ${t.toFixed(3)} | ${(j.seconds / t).toFixed(2)}x |`;
    }
    console.log(
      `| ${name} | ${j.backend} | ${j.threads ?? 1} | ${j.seconds.toFixed(3)} | ${
        j.gflop.toFixed(1)
      } | ${(j.gflop / j.seconds).toFixed(1)} | ${Math.round(j.peakMB)} | ${
        base ? (base / j.seconds).toFixed(2) + "x" : "-"
      } |${baseDir ? ` ${old ? (old / j.seconds).toFixed(2) + "x" : "-"} |` : ""}${torch}`,
    );
  }
}
if (baseDir) await Deno.remove(baseDir, { recursive: true });
