/**
 * Memory of one student training step: `tf.profile` around the forward + backward pass
 * (`variableGrads` of the full loss), reporting the peak bytes, the kernel calls and the kernels
 * that added the most bytes, plus the process's peak RSS.
 *
 * ```sh
 * deno run -A bench/student_memory_bench.ts [--rows 576] [--batch 1] [--width 128] [--dim 256]
 *   [--micro N] [--top 12] [--preset default|reference|paper] [--threads N] [--copy-clones]
 * ```
 *
 * `--micro N` accumulates the gradients over micro-batches of N items (`microBatch`), as the
 * training loop does. `--threads N` sets the native BLAS threads (default: every core).
 * `--copy-clones` puts back tfjs-wasm's copying `Identity` and `Cast` kernels (`lib/wasm_share.ts`), to
 * measure what sharing the clones' buffers saves.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../deps.ts";
import { describeBackend, initBackend, setBlasOptions } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { shareWasmCopies } from "../lib/wasm_share.ts";
import { initValues, paramSpecs } from "../stages/training/model.ts";
import { DEFAULT, PAPER, REFERENCE, type StudentConfig } from "../stages/training/presets.ts";
import { accumulatedGrads } from "../stages/training/train.ts";
import { peakRssMB } from "./peak_rss.ts";
import { randomStudentBatch } from "./student_step_bench.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rows: { type: "string", default: "576" },
    batch: { type: "string", default: "1" },
    width: { type: "string", default: "128" },
    dim: { type: "string", default: "256" },
    micro: { type: "string", default: "0" },
    top: { type: "string", default: "12" },
    preset: { type: "string", default: "default" },
    steps: { type: "string", default: "1" },
    threads: { type: "string" },
    "copy-clones": { type: "boolean", default: false },
  },
});

if (values.threads !== undefined) setBlasOptions({ threads: Number(values.threads) });
const info = await initBackend("auto");
if (values["copy-clones"]) shareWasmCopies(false);
console.error(describeBackend(info));
const base = values.preset === "paper"
  ? PAPER
  : values.preset === "reference"
  ? REFERENCE
  : DEFAULT;
const t0 = Number(values.rows), B = Number(values.batch), D = Number(values.dim);
const width = Number(values.width);
const cfg: StudentConfig = {
  ...base,
  dim: width,
  mlpDim: width === base.dim ? base.mlpDim : Math.round(width * 1.5),
  maxSeqLen: t0,
  batch: B,
  microBatch: Number(values.micro),
};
const K = 20;
const specs = paramSpecs(cfg, D, K);
const vals = initValues(specs, new Rng(1));
const vars = Object.fromEntries(
  specs.map((p) => [p.name, tf.variable(tf.tensor(vals.get(p.name)!, p.shape), true, p.name)]),
);
const { x, lens, layout, cls, reg, milKeep, weak, dropPath, numPos } = randomStudentBatch(
  cfg,
  B,
  t0,
  D,
);
const batch = { x, lens, dropPath, milKeep, cls, reg, weak, norm: Math.max(numPos, 1) };
let seconds = 0;
let prof: Awaited<ReturnType<typeof tf.profile>> | null = null;
for (let s = 0; s < Number(values.steps); s++) {
  const t = performance.now();
  prof = await tf.profile(async () => {
    const r = accumulatedGrads(vars, cfg, layout, D, K, batch);
    for (const g of Object.values(r.grads)) await g.data();
    tf.dispose([r.total, r.cls, r.reg, r.mil, ...Object.values(r.grads)]);
  });
  seconds = (performance.now() - t) / 1000;
}
const byName = new Map<string, { calls: number; bytes: number }>();
for (const k of prof!.kernels) {
  const e = byName.get(k.name) ?? { calls: 0, bytes: 0 };
  e.calls++;
  e.bytes += Math.max(0, k.bytesAdded);
  byName.set(k.name, e);
}
const top = [...byName].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(values.top));
console.log(JSON.stringify({
  backend: info.blas ? "wasm+BLAS" : info.backend,
  rows: t0,
  batch: B,
  width,
  dim: D,
  micro: cfg.microBatch,
  clones: values["copy-clones"] ? "copied" : "shared",
  seconds,
  kernelCalls: prof!.kernels.length,
  peakMB: prof!.peakBytes / 1e6,
  rssPeakMB: peakRssMB(),
  top: Object.fromEntries(
    top.map(([n, e]) => [n, `${e.calls} calls, ${(e.bytes / 1e6).toFixed(0)} MB`]),
  ),
}));
