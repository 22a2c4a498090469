/**
 * Where a student step's peak tensor memory goes under tfjs's autograd, and what freeing early
 * would save. One forward + backward pass of the full loss, measured four ways under
 * `tf.profile` (peak tensor bytes above the variables and the batch):
 *
 * - `stock`: `tf.variableGrads` (tfjs 4.22 `Engine.gradients`). The forward runs inside one
 *   `tidy`, so every intermediate lives until the loss exists; then the backward walk
 *   (`backpropagateGradients` in tfjs-core `tape.ts`) keeps the gradient of every intermediate
 *   tensor until the walk ends.
 * - `freeDy`: the same walk re-implemented here, disposing each node's output gradients (and
 *   the addends of summed gradients) once the node's input gradients exist: no node earlier on
 *   the tape reads them.
 * - `tidyNode`: the stock walk, but each node's input gradients computed inside one `tidy`
 *   (`customGrad` runs its gradient function outside any `tidy`, so its temporaries otherwise
 *   stay until the walk ends).
 * - `tidyNodeFreeDy`: both.
 *
 * For the re-implemented walks it also prints the bytes held when the forward ended (the saved
 * tensors and the loss) and the most held after any backward node, so the forward's and the
 * backward's shares of the peak can be told apart. All four give the same gradients (max
 * |difference| printed). Analysis only: the toolkit's training code does not use this.
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

/** The parts of a tfjs tape node this walk reads (tfjs-core `tape.ts` `TapeNode`). */
interface TapeNode {
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient: ((dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>) | null;
  saved?: tf.Tensor[];
}

/** The private members of tfjs's `Engine` that `Engine.gradients` uses. */
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(nameOrFn: string | (() => T), fn?: () => T): T;
}

/**
 * Nodes of `tape` on a path from one of `xs` to `y`, inputs not depending on the xs pruned
 * (tfjs-core `getFilteredNodesXToY`, same rule: forward from the xs, backward from y).
 */
function nodesXToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = new Set<TapeNode>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      for (const o of node.outputs) fromX.add(o.id);
      nodeFromX.add(node);
    }
  }
  const toY = new Set([y.id]);
  const nodeToY = new Set<TapeNode>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (!node.outputs.some((o) => toY.has(o.id))) continue;
    for (const t of Object.values(node.inputs)) toY.add(t.id);
    nodeToY.add(node);
  }
  return tape.filter((node) => nodeFromX.has(node) && nodeToY.has(node)).map((node) => ({
    ...node,
    inputs: Object.fromEntries(Object.entries(node.inputs).filter(([, t]) => fromX.has(t.id))),
  }));
}

/**
 * Tensor bytes of the last {@linkcode lowMemGradients} call: held when its forward pass ended
 * (the saved tensors and the loss), and the most held after any node of its backward walk.
 */
const held = { afterForward: 0, backwardPeak: 0 };

/** Which early frees {@linkcode lowMemGradients} makes. */
interface Frees {
  /** Evaluate each node's input gradients inside one `tidy` (frees custom-gradient temporaries). */
  tidyNode: boolean;
  /** Dispose a node's output gradients and the addends of sums once its inputs' exist. */
  freeDy: boolean;
}

/**
 * `Engine.gradients` (tfjs-core 4.22 `engine.ts`) with the early frees of `frees`; with none it
 * is the stock walk. Tensors still held for another tensor (a gradient passed through
 * unchanged) are never disposed.
 */
function lowMemGradients(
  f: () => tf.Scalar,
  xs: tf.Variable[],
  frees: Frees,
): { value: tf.Scalar; grads: tf.Tensor[] } {
  const e = tf.engine() as unknown as EngineInternals;
  const y = e.scopedRun(() => e.startTape(), () => e.endTape(), () => e.tidy("forward", f));
  const tape = e.state.activeTape!;
  const nodes = nodesXToY(tape, xs, y);
  held.afterForward = held.backwardPeak = tf.memory().numBytes;
  return e.tidy("backward", () => {
    const acc = new Map<number, tf.Tensor>([[y.id, tf.onesLike(y)]]);
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i];
      const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
      const inputs = Object.entries(node.inputs);
      let dxs: tf.Tensor[];
      if (frees.tidyNode) {
        dxs = e.tidy(() => {
          const fns = node.gradient!(dys);
          return inputs.map(([name]) => fns[name]());
        });
      } else {
        const fns = node.gradient!(dys);
        dxs = inputs.map(([name]) => e.tidy(() => fns[name]()));
      }
      const done = new Set<tf.Tensor>();
      inputs.forEach(([, x], k) => {
        const cur = acc.get(x.id);
        if (!cur) acc.set(x.id, dxs[k]);
        else {
          acc.set(x.id, tf.add(cur, dxs[k]));
          done.add(cur).add(dxs[k]);
        }
      });
      held.backwardPeak = Math.max(held.backwardPeak, tf.memory().numBytes);
      if (!frees.freeDy) continue;
      for (const o of node.outputs) {
        const g = acc.get(o.id);
        if (!g || xs.some((x) => x.id === o.id)) continue;
        acc.delete(o.id);
        done.add(g);
      }
      const live = new Set(acc.values());
      for (const t of done) if (!live.has(t)) t.dispose();
    }
    const grads = xs.map((x) => acc.get(x.id)!);
    if (e.state.gradientDepth === 0) {
      for (const node of tape) for (const t of node.saved ?? []) t.dispose();
      e.state.activeTape = null;
    }
    return { value: y, grads };
  });
}

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
  const modes: Record<string, Frees | null> = {
    stock: null,
    freeDy: { tidyNode: false, freeDy: true },
    tidyNode: { tidyNode: true, freeDy: false },
    tidyNodeFreeDy: { tidyNode: true, freeDy: true },
  };
  for (const [mode, frees] of Object.entries(modes)) {
    let grads: Float32Array[] = [];
    const t = performance.now();
    const prof = await tf.profile(async () => {
      const r = frees ? lowMemGradients(loss, vars, frees) : (() => {
        const { value, grads } = tf.variableGrads(loss, vars);
        return { value, grads: vars.map((v) => grads[v.name]) };
      })();
      grads = await Promise.all(r.grads.map((g) => g.data() as Promise<Float32Array>));
      tf.dispose([r.value, ...r.grads]);
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
