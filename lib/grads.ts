/**
 * `tf.variableGrads` with a backward walk that frees memory as it goes.
 *
 * Why this exists: tfjs 4.22's backward walk (`backpropagateGradients` in tfjs-core `tape.ts`,
 * called by `Engine.gradients` in `engine.ts`) keeps the gradient of every intermediate tensor
 * until the whole walk ends, and runs custom-gradient functions outside any `tidy`, so their
 * temporaries live as long; the tensors the forward pass saved for the backward are disposed only
 * at the end too. A gradient with respect to a tensor is read by one node only (the node that
 * produced the tensor), and a node's saved tensors by that node only, so each can go as soon as
 * that node is done. {@linkcode leanVariableGrads} walks the same tape in the same order with the
 * same kernels, so its gradients are bit-identical to `tf.variableGrads` (tested); only the
 * moments tensors are disposed change.
 *
 * It reads private members of tfjs's engine (`scopedRun`, `startTape`, `endTape`, the active
 * tape). Where they are missing (another tfjs build) it calls `tf.variableGrads` instead; so it
 * does inside another gradient computation (higher-order gradients need the tape intact).
 *
 * @module
 */
import { tf } from "../deps.ts";

/** The parts of a tfjs tape node the walk reads (tfjs-core `tape.ts` `TapeNode`). */
interface TapeNode {
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
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

/** Which early frees the walk makes (all on by default). */
export interface LeanGradsOptions {
  /**
   * Dispose a node's output gradients (and the addends of summed gradients) once the node's
   * input gradients exist. Default true.
   */
  freeDy?: boolean;
  /**
   * Compute each node's input gradients inside one `tidy`, so the temporaries of custom
   * gradients go when the node is done. Default true.
   */
  tidyNode?: boolean;
  /** Dispose the tensors a node saved for its gradient once the node is done. Default true. */
  freeSaved?: boolean;
  /**
   * Filled, when given, with the tensor bytes (`tf.memory().numBytes`) held when the forward
   * pass ended and the most held after any node of the backward walk (for benchmarks).
   */
  trace?: { afterForward: number; backwardPeak: number };
}

let internals: EngineInternals | null | undefined;

/** The engine's internals, or null when this tfjs build lacks one of them (checked once). */
function engineInternals(): EngineInternals | null {
  if (internals !== undefined) return internals;
  const e = tf.engine() as unknown as Partial<EngineInternals>;
  const ok = typeof e.scopedRun === "function" && typeof e.startTape === "function" &&
    typeof e.endTape === "function" && typeof e.tidy === "function" &&
    typeof e.state === "object" && e.state !== null &&
    typeof e.state.gradientDepth === "number";
  internals = ok ? e as EngineInternals : null;
  return internals;
}

/**
 * Whether {@linkcode leanVariableGrads} walks the tape itself (true) or calls
 * `tf.variableGrads` because this tfjs build lacks the engine internals it reads (false).
 */
export function leanGradsSupported(): boolean {
  return engineInternals() !== null;
}

/**
 * Nodes of `tape` on a path from one of `xs` to `y`, each with its inputs that do not depend
 * on the xs pruned: tfjs-core `getFilteredNodesXToY`, same rule and order.
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

/** The input gradients of `node` for output gradients `dys`, in the order of `names`. */
function nodeGrads(node: TapeNode, dys: (tf.Tensor | null)[], names: string[]): tf.Tensor[] {
  if (!node.gradient) {
    throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
  }
  const fns = node.gradient(dys);
  return names.map((name) => {
    if (!(name in fns)) {
      throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}.`);
    }
    const dx = tf.tidy(() => fns[name]());
    const x = node.inputs[name];
    if (dx.dtype !== "float32" || !tf.util.arraysEqual(dx.shape, x.shape)) {
      throw new Error(
        `Error in gradient for op ${node.kernelName}: the gradient of input ${name} is ` +
          `${dx.dtype} [${dx.shape}], the input float32 [${x.shape}]`,
      );
    }
    return dx;
  });
}

/**
 * `Engine.gradients` (tfjs-core 4.22 `engine.ts`) for a scalar `f` and `xs`, with the early
 * frees of `opts`. A tensor still held as some tensor's gradient (a gradient passed through
 * unchanged) is never disposed early.
 */
function leanGradients(
  e: EngineInternals,
  f: () => tf.Scalar,
  xs: tf.Variable[],
  opts: LeanGradsOptions,
): { value: tf.Scalar; grads: (tf.Tensor | undefined)[] } | null {
  const { freeDy = true, tidyNode = true, freeSaved = true, trace } = opts;
  const y = e.scopedRun(() => e.startTape(), () => e.endTape(), () => e.tidy("forward", f));
  if (!(y instanceof tf.Tensor)) throw new Error("The result y returned by f() must be a tensor.");
  const tape = e.state.activeTape;
  if (!Array.isArray(tape)) {
    // not the tape this walk knows: let tfjs do it (once more, and from now on)
    internals = null;
    y.dispose();
    return null;
  }
  const nodes = nodesXToY(tape, xs, y);
  if (trace) trace.afterForward = trace.backwardPeak = tf.memory().numBytes;
  const isX = new Set(xs.map((x) => x.id));
  return e.tidy("backward", () => {
    const acc = new Map<number, tf.Tensor>([[y.id, tf.ones(y.shape)]]);
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i];
      const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
      const names = Object.keys(node.inputs);
      const dxs = tidyNode
        ? e.tidy(() => nodeGrads(node, dys, names))
        : nodeGrads(node, dys, names);
      // disposed after this node unless still some tensor's gradient; tfjs disposes `cur`
      const done = new Set<tf.Tensor>();
      names.forEach((name, k) => {
        const x = node.inputs[name];
        const cur = acc.get(x.id);
        if (!cur) acc.set(x.id, dxs[k]);
        else {
          acc.set(x.id, tf.add(cur, dxs[k]));
          done.add(cur);
          if (freeDy) done.add(dxs[k]);
        }
      });
      if (freeDy) {
        for (const o of node.outputs) {
          const g = acc.get(o.id);
          if (!g || isX.has(o.id)) continue;
          acc.delete(o.id);
          done.add(g);
        }
      }
      if (freeSaved) { for (const t of node.saved ?? []) done.add(t); }
      if (done.size > 0) {
        const live = new Set(acc.values());
        for (const t of done) if (!live.has(t)) t.dispose();
      }
      if (trace) trace.backwardPeak = Math.max(trace.backwardPeak, tf.memory().numBytes);
    }
    const grads = xs.map((x) => acc.get(x.id));
    for (const node of tape) for (const t of node.saved ?? []) t.dispose();
    e.state.activeTape = null;
    return { value: y, grads };
  });
}

/**
 * Same contract and result as `tf.variableGrads(f, vars)`: the value of the scalar `f()` and
 * the gradient of it with respect to each trainable variable of `vars`, keyed by variable name
 * (a variable `f` does not reach has no entry; a non-trainable one maps to null). The gradients
 * are bit-identical to tfjs's; the backward walk frees what it no longer needs as it goes (see
 * the module doc), which lowers the peak tensor memory of a training step. Falls back to
 * `tf.variableGrads` where the engine internals it needs are missing or when called inside
 * another gradient computation.
 *
 * @param f The loss: returns a scalar; its intermediates are disposed as in `tf.variableGrads`.
 * @param vars The variables to differentiate with respect to.
 * @param opts Which early frees to make (all by default).
 */
export function leanVariableGrads(
  f: () => tf.Scalar,
  vars: tf.Variable[],
  opts: LeanGradsOptions = {},
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const e = engineInternals();
  if (!e || e.state.gradientDepth > 0) return tf.variableGrads(f, vars);
  const xs = vars.filter((v) => v.trainable);
  if (xs.length === 0) {
    throw new Error(
      `variableGrads() expects at least one of the input variables to be trainable, but none ` +
        `of the ${vars.length} variables is trainable.`,
    );
  }
  const lean = leanGradients(e, f, xs, opts);
  if (!lean) return tf.variableGrads(f, vars);
  const { value, grads } = lean;
  if (value.rank !== 0) {
    tf.dispose([value, ...grads.filter((g) => g !== undefined)]);
    throw new Error(
      `The f passed in variableGrads(f) must return a scalar, but it returned a ` +
        `rank-${value.rank} tensor`,
    );
  }
  if (!grads.some((g) => g !== undefined)) {
    value.dispose();
    throw new Error(
      "Cannot find a connection between any variable and the result of the loss function " +
        "y=f(x).",
    );
  }
  const named: tf.NamedTensorMap = {};
  xs.forEach((v, i) => {
    if (grads[i] !== undefined) named[v.name] = grads[i]!;
  });
  for (const v of vars) {
    if (!v.trainable) (named as Record<string, tf.Tensor | null>)[v.name] = null;
  }
  return { value, grads: named };
}
