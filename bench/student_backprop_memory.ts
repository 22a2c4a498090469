/**
 * Where a student step's peak tensor memory goes under tfjs's autograd, and what freeing early
 * saves. One forward + backward pass of the full loss, measured five ways under `tf.profile`
 * (peak tensor bytes above the variables and the batch):
 *
 * - `stock`: `tf.variableGrads` (tfjs 4.22 `Engine.gradients`). The forward runs inside one
 *   `tidy`, so every intermediate lives until the loss exists; then the backward walk
 *   (`backpropagateGradients` in tfjs-core `tape.ts`) keeps the gradient of every intermediate
 *   tensor until the walk ends.
 * - `freeDy`: `leanVariableGrads` (`lib/grads.ts`) disposing each node's output gradients (and
 *   the addends of summed gradients) once the node's input gradients exist.
 * - `tidyNode`: the same walk, each node's input gradients computed inside one `tidy` only
 *   (`customGrad` runs its gradient function outside any `tidy`, so its temporaries otherwise
 *   stay until the walk ends).
 * - `tidyNodeFreeDy`: both.
 * - `all`: both, and each node's saved tensors disposed once the node is done (the default of
 *   `leanVariableGrads`, which the training step uses).
 *
 * For the lean walks it also prints the bytes held when the forward ended (the saved tensors and
 * the loss) and the most held after any backward node, so the forward's and the backward's
 * shares of the peak can be told apart. All give the same gradients (max |difference| printed,
 * expected 0).
 *
 * ```sh
 * deno run -A bench/student_backprop_memory.ts [--preset reference|paper] [--rows 2304]
 *   [--batch 1] [--threads 1]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../deps.ts";
import { initBackend, setBlasOptions } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { studentLosses } from "../stages/training/losses.ts";
import { forward, initValues, paramSpecs } from "../stages/training/model.ts";
import { PAPER, REFERENCE, type StudentConfig } from "../stages/training/presets.ts";
import { randomStudentBatch } from "./student_step_bench.ts";
import { type LeanGradsOptions, leanVariableGrads } from "../lib/grads.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      preset: { type: "string", default: "reference" },
      rows: { type: "string", default: "2304" },
      batch: { type: "string", default: "1" },
      threads: { type: "string", default: "1" },
    },
  });
  setBlasOptions({ threads: Number(values.threads) });
  await initBackend("auto");
  const paper = values.preset === "paper";
  const T = Number(values.rows), B = Number(values.batch), K = 20, D = paper ? 2048 : 256;
  const cfg: StudentConfig = {
    ...(paper ? PAPER : REFERENCE),
    maxSeqLen: T,
    batch: B,
    microBatch: 0,
  };
  const specs = paramSpecs(cfg, D, K);
  const vals = initValues(specs, new Rng(1));
  const vars = specs.map((p) => tf.variable(tf.tensor(vals.get(p.name)!, p.shape), true, p.name));
  const byName = Object.fromEntries(specs.map((p, i) => [p.name, vars[i]]));
  const bt = randomStudentBatch(cfg, B, T, D);
  const loss = () =>
    studentLosses(
      forward(byName, cfg, { x: bt.x, lens: bt.lens, t0: T, dim: D, dropPath: bt.dropPath }, true),
      bt.layout,
      { cls: bt.cls, reg: bt.reg, norm: 100, weak: bt.weak, milKeep: bt.milKeep, lens: bt.lens },
      cfg,
    ).total;
  const base = tf.memory().numBytes, tensors0 = tf.memory().numTensors;
  const results: Record<string, unknown> = { preset: values.preset, rows: T, batch: B };
  let ref: Float32Array[] | null = null;
  const held = { afterForward: 0, backwardPeak: 0 };
  const modes: Record<string, LeanGradsOptions | null> = {
    stock: null,
    freeDy: { freeDy: true, tidyNode: false, freeSaved: false },
    tidyNode: { freeDy: false, tidyNode: true, freeSaved: false },
    tidyNodeFreeDy: { freeDy: true, tidyNode: true, freeSaved: false },
    all: { freeDy: true, tidyNode: true, freeSaved: true },
  };
  for (const [mode, frees] of Object.entries(modes)) {
    let grads: Float32Array[] = [];
    const t = performance.now();
    const prof = await tf.profile(async () => {
      const { value, grads: g } = frees
        ? leanVariableGrads(loss, vars, { ...frees, trace: held })
        : tf.variableGrads(loss, vars);
      const list = vars.map((v) => g[v.name]);
      grads = await Promise.all(list.map((t) => t.data() as Promise<Float32Array>));
      tf.dispose([value, ...list]);
    });
    const seconds = (performance.now() - t) / 1000;
    let maxDiff = 0;
    if (ref) {
      for (let i = 0; i < ref.length; i++) {
        for (let j = 0; j < ref[i].length; j++) {
          maxDiff = Math.max(maxDiff, Math.abs(ref[i][j] - grads[i][j]));
        }
      }
    } else ref = grads;
    results[mode] = {
      peakMB: +((prof.peakBytes - base) / 1e6).toFixed(1),
      afterForwardMB: frees ? +((held.afterForward - base) / 1e6).toFixed(1) : undefined,
      backwardPeakMB: frees ? +((held.backwardPeak - base) / 1e6).toFixed(1) : undefined,
      seconds: +seconds.toFixed(2),
      maxAbsGradDiff: maxDiff,
    };
  }
  results.leakedTensors = tf.memory().numTensors - tensors0;
  console.log(JSON.stringify(results));
}
