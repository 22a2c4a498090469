/**
 * Student (TriDet) training-step throughput per backend: one forward + backward pass of the
 * full loss (focal + DIoU + MIL) on random features with assigned targets.
 *
 * `deno run -A bench/student_step_bench.ts [--backends wasm,cpu,webgpu] [--sizes default,paper]
 *   [--steps 2] [--paper-len-slow 576]`
 *
 * GFLOP counts the matrix work analytically: for every 2-D weight [in, out] (convolutions are
 * im2col matMuls, so `in` = kernel x channels), 2 x rows x in x out for the forward pass, where
 * rows are the time steps of its pyramid level (embedding and stem: T0, branch block l:
 * T0 / 2^(l+1), heads: the sum over all levels), times 3 for forward + backward (input and
 * weight gradients). Depthwise, norm and elementwise work is left out, so GFLOP/s is a floor.
 * cpu and webgpu (llvmpipe) run the published size at batch 1 and a shorter window
 * (`--paper-len-slow`): a full published step takes many minutes there.
 */
import { parseArgs } from "node:util";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { leanVariableGrads } from "../lib/grads.ts";
import { Rng } from "../lib/rng.ts";
import { assignTargets } from "../stages/training/assign.ts";
import { milKs, milTopkMask, studentLosses } from "../stages/training/losses.ts";
import { forward, initValues, makeLayout, paramSpecs } from "../stages/training/model.ts";
import { DEFAULT, PAPER, type StudentConfig } from "../stages/training/presets.ts";

// Imported (bench/blas_bench.ts uses stepTime and flopsPerStep): no flags are read.
const { values } = parseArgs({
  args: import.meta.main ? Deno.args : [],
  options: {
    backends: { type: "string", default: "wasm,cpu,webgpu" },
    sizes: { type: "string", default: "default,paper" },
    steps: { type: "string", default: "2" },
    "paper-len-slow": { type: "string", default: "576" },
    one: { type: "string" },
  },
});

const K = 20;

/** Matrix-work FLOPs of one student step (see the module doc). */
export function flopsPerStep(cfg: StudentConfig, D: number, B: number, t0: number): number {
  let levelRows = 0;
  for (let l = 0; l < cfg.levels; l++) levelRows += t0 / 2 ** l;
  let f = 0;
  for (const p of paramSpecs(cfg, D, K)) {
    if (p.shape.length !== 2 || p.shape[0] === 1 || p.name.endsWith(".b")) continue;
    const [inD, outD] = p.shape;
    if (inD < 2 || outD < 2) continue;
    let rows = t0;
    const m = p.name.match(/^branch\.(\d+)\./);
    if (m) rows = t0 / 2 ** (Number(m[1]) + 1);
    else if (p.name.startsWith("head.")) rows = levelRows;
    else if (p.name.includes("convkw")) continue; // depthwise kernel [11, C]
    f += 2 * rows * inD * outD;
  }
  return 3 * f * B;
}

/**
 * A seeded random student batch of `B` full windows of `t0` rows and `D` features, with two
 * actions per video assigned as targets, MIL dropout, weak labels and drop-path scales; shared
 * by this bench and `student_memory_bench.ts` so they time the same input.
 */
export function randomStudentBatch(cfg: StudentConfig, B: number, t0: number, D: number) {
  const rng = new Rng(2);
  const x = Float32Array.from({ length: B * t0 * D }, () => Math.max(0, rng.normal()));
  const lens = Array.from({ length: B }, () => t0);
  const layout = makeLayout(t0, cfg);
  const cls = new Float32Array(B * layout.total * K);
  const reg = new Float32Array(B * layout.total * 2);
  let numPos = 0;
  for (let b = 0; b < B; b++) {
    const segs = [{ a: 10, b: 40, c: b % K }, { a: t0 / 2, b: t0 / 2 + 60, c: (b + 3) % K }];
    const t = assignTargets(segs, layout, t0, K, cfg.regressionRanges, cfg.centerRadius);
    cls.set(t.cls, b * layout.total * K);
    reg.set(t.reg, b * layout.total * 2);
    numPos += t.numPos;
  }
  const milKeep = Float32Array.from({ length: B * t0 * K }, () => (rng.next() < 0.7 ? 0 : 1 / 0.3));
  const weak = new Float32Array(B * K).map((_, i) => (i % 7 === 0 ? 1 : 0));
  const dropPath = Array.from(
    { length: cfg.levels - 1 },
    () =>
      [new Float32Array(B).fill(1 / 0.9), new Float32Array(B).fill(1 / 0.9)] as [
        Float32Array,
        Float32Array,
      ],
  );
  return { x, lens, layout, cls, reg, milKeep, weak, dropPath, numPos };
}

/** Times `steps` student steps after one warm-up; returns the first and the best step (s). */
export async function stepTime(
  backend: "wasm" | "cpu" | "webgpu",
  cfg: StudentConfig,
  D: number,
  B: number,
  t0: number,
  steps: number,
) {
  await initBackend(backend);
  const specs = paramSpecs(cfg, D, K);
  const vals = initValues(specs, new Rng(1));
  const vars = Object.fromEntries(
    specs.map((p) => [
      p.name,
      tf.variable(tf.tensor(vals.get(p.name)!, p.shape), true, `${backend}${t0}${B}/${p.name}`),
    ]),
  );
  const { x, lens, layout, cls, reg, milKeep, weak, dropPath } = randomStudentBatch(cfg, B, t0, D);
  const times: number[] = [];
  const ks = milKs(lens, t0, cfg);
  for (let s = 0; s < steps + 1; s++) {
    const t = performance.now();
    let milMask: Float32Array | undefined;
    if (backend === "webgpu" && ks.some((k) => k < t0)) {
      // As in training: WebGPU reads the MIL logits asynchronously in an extra forward pass.
      const zd = tf.tidy(() => {
        const o = forward(vars, cfg, { x, lens, t0, dim: D, dropPath }, true);
        const z = tf.slice(o.cls, [0, layout.offsets[0], 0], [B, t0, K]);
        return tf.mul(z, tf.tensor3d(milKeep, [B, t0, K]));
      });
      milMask = milTopkMask((await zd.data()) as Float32Array, B, t0, K, ks);
      zd.dispose();
    }
    // as in training (stages/training/step.ts): the lean backward walk, same gradients
    const { value, grads } = leanVariableGrads(() => {
      const o = forward(vars, cfg, { x, lens, t0, dim: D, dropPath }, true);
      return studentLosses(o, layout, { cls, reg, norm: 100, weak, milKeep, lens, milMask }, cfg)
        .total;
    }, Object.values(vars));
    // One read that needs every gradient: on WebGPU each read is a submit and a mapAsync round
    // trip, so reading the ~80-190 gradients one by one would time the reads, not the step.
    const done = tf.tidy(() =>
      tf.add(value, tf.addN(Object.values(grads).map((g) => tf.sum(g)))) as tf.Scalar
    );
    await done.data();
    tf.dispose([value, done, ...Object.values(grads)]);
    times.push((performance.now() - t) / 1000);
  }
  tf.dispose(Object.values(vars));
  return { first: times[0], step: Math.min(...times.slice(1)) };
}

interface Case {
  backend: "wasm" | "cpu" | "webgpu";
  size: string;
  B: number;
  t0: number;
}

function row(c: Case, r: { first: number; step: number } | string): string {
  const paper = c.size === "paper";
  const cfg = paper ? PAPER : DEFAULT;
  const D = paper ? 2048 : 128;
  const shape = `${c.B} x ${c.t0} x ${D}`;
  if (typeof r === "string") {
    return `| ${c.backend} | ${c.size} | ${shape} | failed: ${r} | | | | |`;
  }
  const gf = flopsPerStep(cfg, D, c.B, c.t0) / 1e9;
  return `| ${c.backend} | ${c.size} | ${shape} | ${r.first.toFixed(2)} | ${r.step.toFixed(3)} | ${
    Math.round((c.B * c.t0) / r.step)
  } | ${gf.toFixed(1)} | ${(gf / r.step).toFixed(2)} |`;
}

if (!import.meta.main) {
  // imported as a module
} else if (values.one) {
  // Child mode: one case, result as JSON on stdout.
  const c = JSON.parse(values.one) as Case;
  const paper = c.size === "paper";
  const r = await stepTime(
    c.backend,
    paper ? PAPER : DEFAULT,
    paper ? 2048 : 128,
    c.B,
    c.t0,
    Number(values.steps),
  );
  console.log(JSON.stringify(r));
  Deno.exit(0);
}

if (import.meta.main) {
  // Each case runs in its own process: a wasm heap exhausted by one case (32-bit memory) must
  // not poison the next.
  const cases: Case[] = [];
  for (const backend of values.backends!.split(",") as Case["backend"][]) {
    for (const size of values.sizes!.split(",")) {
      if (size !== "paper") {
        cases.push({ backend, size, B: DEFAULT.batch, t0: DEFAULT.maxSeqLen });
      } else if (backend === "wasm") {
        // The full published batch does not fit the wasm heap; the short window compares with
        // the other backends.
        cases.push({ backend, size, B: PAPER.batch, t0: PAPER.maxSeqLen });
        cases.push({ backend, size, B: 1, t0: PAPER.maxSeqLen });
        cases.push({ backend, size, B: 1, t0: Number(values["paper-len-slow"]) });
      } else {
        cases.push({ backend, size, B: 1, t0: Number(values["paper-len-slow"]) });
      }
    }
  }
  const rows: string[] = [];
  for (const c of cases) {
    console.error(`student step: ${c.backend} ${c.size} (${c.B} x ${c.t0})`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        import.meta.filename!,
        "--steps",
        values.steps!,
        "--one",
        JSON.stringify(c),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code === 0) {
      rows.push(
        row(c, JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!)),
      );
    } else {
      const err = new TextDecoder().decode(out.stderr);
      rows.push(
        row(
          c,
          /memory access out of bounds|Out of memory/i.test(err)
            ? "wasm heap exhausted (32-bit memory)"
            : `exit ${out.code}`,
        ),
      );
    }
  }
  console.log(
    "| backend | size | B x T x D | first step s | step s | snippets/s | GFLOP/step | GFLOP/s |",
  );
  console.log("|---|---|---|---:|---:|---:|---:|---:|");
  for (const r of rows) console.log(r);
}
