/**
 * Generation-stage benchmark.
 *
 * ```sh
 * # 1. generator test mAP and pseudo-label mAP, with and without cross-video contrast, over
 * #    3 seeds on the synthetic THUMOS'14-shaped default (writes JSON lines to --results)
 * deno run -A bench/generation_bench.ts table --data DIR [--seeds 0,1,2] [--results FILE]
 * # 2. one training step's throughput (run once per backend: tfjs keeps one backend per process)
 * deno run -A bench/generation_bench.ts step --backend wasm --size default|paper [--steps N]
 * ```
 *
 * `DIR` is a folder written by `deno run -A mod.ts synth --out DIR` (the CoLA layout under
 * `DIR/cola` is used); without `--data` the table part synthesises one in a temp folder.
 * Results are appended as JSON lines; bench/BENCH-generation.md reports them.
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { tf } from "../deps.ts";
import { type BackendName, describeBackend, initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { openDataset } from "../datasets.ts";
import { synthesize } from "../datasets/synth.ts";
import { type GeneratorConfig, generatorConfig } from "../stages/generation/presets.ts";
import { trainGenerator } from "../stages/generation/train.ts";
import { trainStep } from "../stages/generation/step.ts";
import { Adam, createParams, disposeParams } from "../stages/generation/model.ts";

// Imported (bench/blas_bench.ts uses stepFlops): no flags are read and nothing runs.
const { positionals, values } = parseArgs({
  args: import.meta.main ? Deno.args : [],
  allowPositionals: true,
  options: {
    data: { type: "string" },
    seeds: { type: "string", default: "0,1,2" },
    results: { type: "string", default: "runs/generation_bench.jsonl" },
    backend: { type: "string", default: "wasm" },
    size: { type: "string", default: "default" },
    steps: { type: "string", default: "3" },
    batch: { type: "string" },
    "cross-video": { type: "string", default: "both" },
  },
});

async function record(row: Record<string, unknown>): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(values.results!)), { recursive: true });
  console.log(JSON.stringify(row));
  await fs.appendFile(values.results!, JSON.stringify(row) + "\n");
}

/** Matmul FLOPs of one training step (multiply-add = 2), as counted in BENCH-generation.md. */
export function stepFlops(B: number, T: number, D: number, H: number, C: number): number {
  const R = B * T;
  return 4 * R * 3 * D * H + 6 * R * H * C + 6 * B * 4 * T * H + 6 * R * H * 2 * B;
}

/**
 * A seeded generator (hidden width = D, 20 classes) with its optimiser and a random batch of `B`
 * videos of `T` snippets, one label each; shared with `gpu_profile.ts` so both time the same step.
 */
export function randomGeneratorStep(cfg: GeneratorConfig, B: number, T: number, D: number) {
  const rng = new Rng(1);
  const params = createParams(D, D, 20, rng);
  const opt = new Adam(cfg);
  // Sparse non-negative features like I3D's (values do not change the FLOP count).
  const x = new Float32Array(B * T * D);
  for (let i = 0; i < x.length; i++) x[i] = Math.max(0, rng.normal() - 0.5);
  const labels = Array.from({ length: B }, (_, i) => [i % 4]);
  return { rng, params, opt, x, labels };
}

if (!import.meta.main) {
  // imported as a module
} else if (positionals[0] === "table") {
  const info = await initBackend(values.backend as BackendName);
  console.error(describeBackend(info));
  let data = values.data;
  if (!data) {
    data = await fs.mkdtemp(path.join(os.tmpdir(), "gen-bench-"));
    await synthesize({ out: data, like: "thumos14", dim: 128, seed: 0 });
  }
  const ds = await openDataset(path.join(data, "cola"), { layout: "cola" });
  const modes = values["cross-video"] === "both"
    ? [true, false]
    : [values["cross-video"] === "true"];
  for (const seed of values.seeds!.split(",").map(Number)) {
    for (const crossVideo of modes) {
      const cfg = generatorConfig("default", { seed, crossVideo });
      const r = await trainGenerator(ds, cfg, { log: (l) => console.error(l) });
      await record({
        kind: "table",
        seed,
        crossVideo,
        testAverage: r.testEval.average,
        testMAP: r.testEval.mAP,
        pseudoAverage: r.trainEval.average,
        pseudoMAP: r.trainEval.mAP,
        proposals: r.train.length,
        bestStep: r.bestStep,
        trainSeconds: r.trainSeconds,
        seconds: r.seconds,
        backend: info.backend,
      });
    }
  }
} else if (positionals[0] === "step") {
  const info = await initBackend(values.backend as BackendName);
  console.error(describeBackend(info));
  const paper = values.size === "paper";
  const cfg = generatorConfig(paper ? "paper" : "default");
  const B = values.batch ? Number(values.batch) : cfg.batch;
  const T = cfg.snippets, D = paper ? 2048 : 128, H = D, C = 20;
  const { rng, params, opt, x, labels } = randomGeneratorStep(cfg, B, T, D);
  const steps = Number(values.steps);
  const times: number[] = [];
  let last = null;
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    last = await trainStep(params, opt, { x, B, T, D, labels }, cfg, C, rng);
    times.push((performance.now() - t0) / 1000);
    console.error(`step ${s + 1}: ${times[s].toFixed(3)} s, loss ${last.total.toFixed(4)}`);
  }
  // The first step includes kernel compilation / warm-up; report the best of the rest.
  const steady = times.length > 1 ? Math.min(...times.slice(1)) : times[0];
  const flops = stepFlops(B, T, D, H, C);
  await record({
    kind: "step",
    backend: info.backend,
    size: values.size,
    B,
    T,
    D,
    firstStepSeconds: times[0],
    stepSeconds: steady,
    gflop: flops / 1e9,
    gflops: flops / 1e9 / steady,
    finite: Number.isFinite(last!.total) && Number.isFinite(last!.gradNorm),
    memoryMB: tf.memory().numBytes / 1e6,
  });
  disposeParams(params);
} else {
  console.error("usage: generation_bench.ts table|step [flags] (see the module doc)");
  Deno.exit(2);
}
