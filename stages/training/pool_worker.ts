/**
 * One worker of the student's pool (`pool.ts`): a tfjs-wasm module of its own, set up like the
 * main thread's (the same native BLAS or none, one BLAS thread), that computes what the main
 * thread sends: the gradients of one micro-batch (`step.ts` {@linkcode microBatchGrads}), the
 * EMA teacher's labels of a chunk of crops (`batch.ts` {@linkcode teacherSegments}) or the
 * detections of one video (`infer.ts` {@linkcode predictVideo}), with the weights it was last
 * sent. Messages are handled one at a time, in the order they arrive.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import { initBackend, setBlasOptions } from "../../lib/backend.ts";
import { WasmHeapExhausted } from "../../lib/wasm_heap.ts";
import { InputError } from "../../lib/errors.ts";
import { predictVideo } from "./infer.ts";
import { BACKBONES, HEADS, NECKS } from "./model/registry.ts";
import { microBatchGrads } from "./step.ts";
import { teacherSegments } from "./batch.ts";
import type { PoolReply, PoolRequest, WorkerError } from "./pool.ts";

interface Scope {
  postMessage(msg: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
}
const scope = globalThis as unknown as Scope;

/** Variables for gradients, by the main thread's record keys (named as the main thread's). */
let vars: Record<string, tf.Variable> = {};
/** Plain weights for detection and the EMA teacher, by record key. */
let params: Record<string, tf.Tensor> = {};

function loadVars(names: string[], varNames: string[], shapes: number[][], data: Float32Array[]) {
  const same = names.length === Object.keys(vars).length &&
    names.every((k, i) => vars[k]?.name === varNames[i]);
  if (!same) {
    tf.dispose(Object.values(vars));
    vars = {};
  }
  names.forEach((k, i) => {
    const t = tf.tensor(data[i], shapes[i]);
    if (same) vars[k].assign(t);
    else vars[k] = tf.variable(t, true, varNames[i]);
    t.dispose();
  });
}

function loadParams(names: string[], shapes: number[][], data: Float32Array[]) {
  tf.dispose(Object.values(params));
  params = {};
  names.forEach((k, i) => params[k] = tf.tensor(data[i], shapes[i]));
}

async function handle(req: PoolRequest): Promise<{ ok: unknown; transfer: Transferable[] }> {
  switch (req.kind) {
    case "init": {
      setBlasOptions({ path: req.blas, threads: 1 });
      const info = await initBackend("wasm");
      if (Boolean(info.blas) !== (req.blas !== "off")) {
        throw new Error(
          `the worker's BLAS (${info.blasNote ?? "on"}) differs from the main thread's`,
        );
      }
      return {
        ok: {
          backbones: [...BACKBONES.keys()],
          necks: [...NECKS.keys()],
          heads: [...HEADS.keys()],
        },
        transfer: [],
      };
    }
    case "vars":
      loadVars(req.names, req.varNames, req.shapes, req.data);
      return { ok: true, transfer: [] };
    case "params":
      loadParams(req.names, req.shapes, req.data);
      return { ok: true, transfer: [] };
    case "grads": {
      const g = microBatchGrads(vars, req.cfg, req.layout, req.D, req.m);
      const names = Object.keys(g.grads);
      const all = [g.total, g.cls, g.reg, g.mil, ...names.map((k) => g.grads[k])];
      const host = await Promise.all(all.map(async (t) => (await t.data()) as Float32Array));
      tf.dispose(all);
      const grads = host.slice(4);
      return {
        ok: { losses: host.slice(0, 4).map((h) => h[0]), names, grads },
        transfer: grads.map((a) => a.buffer as ArrayBuffer),
      };
    }
    case "teacher":
      return { ok: await teacherSegments(params, req.cfg, req.items, req.D, req.K), transfer: [] };
    case "detect":
      return {
        ok: await predictVideo(params, req.cfg, req.features, req.video, req.classes),
        transfer: [],
      };
  }
}

function describe(e: unknown): WorkerError {
  if (e instanceof WasmHeapExhausted) {
    return { name: e.name, message: e.message, bytes: e.bytes };
  }
  if (e instanceof InputError) {
    return { name: "InputError", message: e.message, exitCode: e.exitCode };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, message: err.message, stack: err.stack };
}

let chain: Promise<void> = Promise.resolve();
scope.onmessage = (e: MessageEvent) => {
  const req = e.data as PoolRequest;
  chain = chain.then(async () => {
    let reply: PoolReply;
    let transfer: Transferable[] = [];
    try {
      const r = await handle(req);
      reply = { id: req.id, ok: r.ok };
      transfer = r.transfer;
    } catch (err) {
      reply = { id: req.id, error: describe(err) };
    }
    scope.postMessage(reply, transfer);
  });
};
