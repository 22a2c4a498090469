/**
 * Where a training step's time goes on a backend, kernel by kernel (`tf.profile`): the
 * generator or the student step at a given size, printed as the 25 kernels with the most
 * kernel time, with their call counts and the input shapes of their slowest calls. Part of the
 * GPU check (bench/gpu_check.sh); runs on any backend.
 *
 * `deno run -A bench/gpu_profile.ts generator|student BACKEND B T D`
 *
 * @module
 */
import { tf } from "../deps.ts";
import { type BackendName, initBackend } from "../lib/backend.ts";
import { generatorConfig } from "../stages/generation/presets.ts";
import { trainStep } from "../stages/generation/step.ts";
import { PAPER } from "../stages/training/presets.ts";
import { stepTime } from "./student_step_bench.ts";
import { randomGeneratorStep } from "./generation_bench.ts";

const [what, backend, Bs, Ts, Ds] = Deno.args;
await initBackend(backend as BackendName);
const B = Number(Bs), T = Number(Ts), D = Number(Ds);
let run: () => Promise<unknown>;
if (what === "generator") {
  const cfg = { ...generatorConfig("paper"), snippets: T };
  const { rng, params, opt, x, labels } = randomGeneratorStep(cfg, B, T, D);
  run = () => trainStep(params, opt, { x, B, T, D, labels }, cfg, 20, rng);
} else {
  // One step (stepTime's warm-up) per call; the published student at these sizes.
  run = () => stepTime(backend as "webgpu", PAPER, D, B, T, 0);
}
await run(); // compiles the shaders
const t0 = performance.now();
const info = await tf.profile(async () => {
  await run();
  return [];
});
const wall = (performance.now() - t0) / 1000;
const agg = new Map<string, { n: number; ms: number; slow: [number, string][] }>();
let total = 0;
for (const k of info.kernels) {
  const a = agg.get(k.name) ?? { n: 0, ms: 0, slow: [] };
  const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
  a.n++;
  a.ms += ms;
  total += ms;
  a.slow.push([ms, JSON.stringify(k.inputShapes)]);
  agg.set(k.name, a);
}
console.log(
  `${what} ${backend} ${B}x${T}x${D}: wall ${wall.toFixed(2)} s, kernel time ${
    (total / 1000).toFixed(2)
  } s, ${info.kernels.length} kernels, peak ${(info.peakBytes / 2 ** 20).toFixed(0)} MiB`,
);
for (const [n, a] of [...agg].sort((p, q) => q[1].ms - p[1].ms).slice(0, 25)) {
  const slow = a.slow.sort((p, q) => q[0] - p[0]).slice(0, 3).map(([ms, s]) =>
    `${s} ${ms.toFixed(0)} ms`
  ).join("; ");
  console.log(
    `${n.padEnd(24)} ${String(a.n).padStart(5)} ${a.ms.toFixed(0).padStart(8)} ms  ${slow}`,
  );
}
