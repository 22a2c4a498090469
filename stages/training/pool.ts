/**
 * Every core for the student stage: a pool of Web Workers (`pool_worker.ts`), each with its
 * own tfjs-wasm module set up like the main thread's, that takes part of the work the main
 * thread would otherwise do alone. The number of threads is `lib/workers.ts`
 * {@linkcode workerCount} (`--workers N`: the main thread and N-1 workers).
 *
 * - Gradients ({@linkcode pooledGrads}): the micro-batches of a step (`cfg.microBatch`) are
 *   dealt round-robin to the main thread and the workers; each computes its micro-batches on a
 *   copy of the current weights, and the main thread sums the results in micro-batch order
 *   (0 + 1 + ...) exactly as `step.ts` {@linkcode accumulatedGrads} does. Each micro-batch's
 *   gradient does not depend on which thread computed it, so the sums are bit-identical to the
 *   sequential accumulation with the same `microBatch`, whatever the number of workers; a
 *   step of one micro-batch (`microBatch` 0, the presets' value) runs on the main thread.
 * - The EMA teacher's labels ({@linkcode pooledTeacher}): the chunks of a batch's crops
 *   (`batch.ts` `teacherChunks`: the step's micro-batches) are dealt round-robin the
 *   same way; each thread runs its chunks through the network with the EMA weights, sent to
 *   each worker once per step, and the labels are joined in crop order. A chunk's labels do
 *   not depend on which thread computed them, so they equal the main thread's alone.
 * - Detection ({@linkcode pooledDetect}): the videos of a split go to whichever thread is free;
 *   each is detected with the same `predictVideo`, and the detections are concatenated in the
 *   dataset's order.
 *
 * Workers run only on the wasm backend (with or without native BLAS: a worker loads the same
 * library), under Deno and Bun; on cpu and WebGPU, or with a model part a plugin registered on
 * the main thread only, everything runs on the main thread. The library's thread count is one
 * setting for the whole process, so while workers compute every product runs on one BLAS
 * thread. The pool lives while someone holds it ({@linkcode holdPool}: a training run, a
 * detection pass) and its workers are terminated when the last holder lets go. An error inside
 * a worker is re-thrown on the main thread as the same kind of error (an exhausted wasm heap,
 * an {@linkcode InputError}).
 *
 * @module
 */
import { tf } from "../../deps.ts";
import { InputError } from "../../lib/errors.ts";
import { blasActive, blasInfo, capBlasThreads } from "../../lib/blas.ts";
import { WasmHeapExhausted } from "../../lib/wasm_heap.ts";
import { workerCount } from "../../lib/workers.ts";
import type { ProgressSink } from "../../lib/plugin_types.ts";
import type { Detection } from "../../lib/types.ts";
import type { FeatureGrid, VideoFeatures, VideoMeta } from "../../datasets/types.ts";
import type { Layout } from "./model.ts";
import { DEFAULT_PARTS, type ModelChoice } from "./model/registry.ts";
import type { StudentConfig } from "./presets.ts";
import type { GridSegment } from "./assign.ts";
import {
  accumulatedGrads,
  addGrads,
  type MicroBatch,
  microBatches,
  microBatchGrads,
  type StepBatch,
  type StepGrads,
} from "./step.ts";

/** Work the workers have done in this process (tests and benchmarks check the pool ran). */
export const poolStats = {
  gradJobs: 0,
  detectJobs: 0,
  teacherJobs: 0,
  started: 0,
  workerErrors: 0,
};

/**
 * Fewest videos of a split for which a detection pass uses the pool (below: main thread alone).
 * Starting a worker (its own tfjs and wasm module) takes about as long as detecting a few
 * default-size videos.
 */
export const POOL_MIN_VIDEOS = 8;

/** Weights on the host: record keys, tensor names, shapes and values. */
interface HostWeights {
  names: string[];
  shapes: number[][];
  data: Float32Array[];
}

/** One crop as the EMA teacher reads it (`batch.ts` `teacherSegments`). */
export interface TeacherCrop {
  /** Feature rows of the crop (`length` rows of D). */
  data: Float32Array;
  length: number;
  /** Class ids of the video's weak (video-level) labels. */
  labels: number[];
  /** Grid and duration (seconds) of the video. */
  grid: FeatureGrid;
  duration: number;
}

/** The teacher's labels of one crop: grid segments, or null to keep the generator's. */
export type TeacherLabels = GridSegment[] | null;

/** What the main thread asks a worker to do. */
export type PoolJob =
  | { kind: "init"; blas: string }
  | ({ kind: "vars"; varNames: string[] } & HostWeights)
  | ({ kind: "params" } & HostWeights)
  | { kind: "grads"; cfg: StudentConfig; layout: Layout; D: number; m: MicroBatch }
  | { kind: "teacher"; cfg: StudentConfig; D: number; K: number; items: TeacherCrop[] }
  | {
    kind: "detect";
    cfg: StudentConfig;
    features: VideoFeatures;
    video: { id: string; grid: FeatureGrid; duration: number };
    classes: string[];
  };

/** A {@linkcode PoolJob} as sent (`id` pairs it with its reply). */
export type PoolRequest = PoolJob & { id: number };

/** An error inside a worker, as it travels back. */
export interface WorkerError {
  name: string;
  message: string;
  stack?: string;
  /** Bytes of a failed wasm allocation ({@linkcode WasmHeapExhausted}). */
  bytes?: number;
  /** Exit code of an {@linkcode InputError}. */
  exitCode?: number;
}

/** A worker's reply to the request `id`. */
export type PoolReply = { id: number; ok: unknown } | { id: number; error: WorkerError };

/** What the gradients of one micro-batch come back as. */
interface RemoteGrads {
  losses: number[];
  names: string[];
  grads: Float32Array[];
}

/** The model parts a worker knows (its own registries). */
interface WorkerParts {
  backbones: string[];
  necks: string[];
  heads: string[];
}

/**
 * The error a worker reported, as the same kind of error on this thread: an exhausted wasm heap
 * stays a {@linkcode WasmHeapExhausted} (the step turns it into its one-line error), an
 * {@linkcode InputError} keeps its exit code, anything else keeps its name and message.
 */
export function reviveWorkerError(e: WorkerError): Error {
  if (e.name === "WasmHeapExhausted") return new WasmHeapExhausted(e.bytes ?? 0);
  if (e.name === "InputError" || e.exitCode !== undefined) {
    return new InputError(e.message, e.exitCode);
  }
  const err = new Error(e.message);
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}

/** One worker and its pending requests. */
class PoolWorker {
  #w: Worker;
  #next = 0;
  #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #dead: Error | null = null;

  constructor() {
    const url = new URL("./pool_worker.ts", import.meta.url).href;
    // Bun's workers do not run the bunfig preload that resolves `npm:` imports: name it.
    const bun = (globalThis as { Bun?: unknown }).Bun
      ? { preload: [new URL("../../bun-npm-plugin.ts", import.meta.url).href] }
      : {};
    this.#w = new Worker(url, { type: "module", ...bun } as WorkerOptions);
    this.#w.onmessage = (e: MessageEvent) => {
      const r = e.data as PoolReply;
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if ("error" in r) {
        poolStats.workerErrors++;
        p.reject(reviveWorkerError(r.error));
      } else p.resolve(r.ok);
    };
    this.#w.onerror = (e: ErrorEvent) => {
      // Keep a crashed worker from taking the process down: its requests fail instead.
      e.preventDefault();
      this.#fail(new Error(`student worker: ${e.message}`));
    };
    this.#w.onmessageerror = () => this.#fail(new Error("student worker: unreadable message"));
  }

  /** Whether the worker has crashed. */
  get dead(): boolean {
    return this.#dead !== null;
  }

  #fail(err: Error): void {
    this.#dead ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.#w.terminate();
  }

  /** Sends a request; resolves with the worker's answer. */
  call<T>(req: PoolJob, transfer: Transferable[] = []): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#w.postMessage({ ...req, id }, transfer);
    });
  }

  /** Stops the worker; pending requests fail. */
  terminate(): void {
    this.#fail(new Error("student worker: terminated"));
  }
}

/** A started pool: `workers.length` workers beside the main thread. */
export class StudentPool {
  /** The workers. */
  readonly workers: PoolWorker[];
  /** Backend setup the workers copy (`wasm`, BLAS library or off). */
  readonly setup: string;
  /** The workers' model parts once every worker is up; null when one failed to start. */
  readonly ready: Promise<WorkerParts | null>;

  constructor(size: number, blas: string) {
    this.setup = blas;
    this.workers = Array.from({ length: size }, () => new PoolWorker());
    poolStats.started += size;
    this.ready = Promise.all(
      this.workers.map((w) => w.call<WorkerParts>({ kind: "init", blas })),
    ).then((parts) => parts[0], (e: Error) => {
      console.error(
        `student workers could not start (${e.message.split("\n")[0]}): running on one thread`,
      );
      return null;
    });
  }

  #turn: Promise<unknown> = Promise.resolve();

  /**
   * Runs `fn` when the work given to the pool before it is done: the workers hold one set of
   * weights at a time, so two passes must not interleave.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(fn, fn);
    this.#turn = run.catch(() => {});
    return run;
  }

  /** Whether every worker is alive. */
  get alive(): boolean {
    return this.workers.every((w) => !w.dead);
  }

  /** Terminates every worker. */
  close(): void {
    for (const w of this.workers) w.terminate();
  }
}

let shared: StudentPool | null = null;
let holders = 0;

/**
 * Holds the pool for a while (a training run, a detection pass); returns the function that lets
 * go. Workers start on first use inside a hold ({@linkcode poolFor}) and are terminated when the
 * last holder lets go, so nothing keeps the process alive afterwards.
 */
export function holdPool(): () => void {
  holders++;
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--holders === 0 && shared) {
      shared.close();
      shared = null;
    }
  };
}

/** The backend setup a worker must copy, or null where workers are not used. */
function backendSetup(): string | null {
  if (tf.getBackend() !== "wasm") return null;
  return blasActive() ? blasInfo()!.library : "off";
}

/**
 * The pool to use for `cfg` now, started on first use; null when the work stays on the main
 * thread (no hold, one thread, not wasm, a model part the workers lack, workers that failed).
 */
export async function poolFor(cfg: StudentConfig): Promise<StudentPool | null> {
  const n = workerCount();
  const setup = backendSetup();
  if (holders === 0 || n <= 1 || setup === null) return null;
  if (shared && (shared.setup !== setup || shared.workers.length !== n - 1 || !shared.alive)) {
    shared.close();
    shared = null;
  }
  shared ??= new StudentPool(n - 1, setup);
  const pool = shared;
  const parts = await pool.ready;
  if (!parts) return null;
  const c = cfg as StudentConfig & ModelChoice;
  const known = parts.backbones.includes(c.backbone ?? DEFAULT_PARTS.backbone) &&
    parts.necks.includes(c.neck ?? DEFAULT_PARTS.neck) &&
    parts.heads.includes(c.head ?? DEFAULT_PARTS.head);
  return known ? pool : null;
}

async function hostWeights(params: Record<string, tf.Tensor>): Promise<HostWeights> {
  const names = Object.keys(params);
  const ts = names.map((k) => params[k]);
  return {
    names,
    shapes: ts.map((t) => t.shape),
    data: await Promise.all(ts.map(async (t) => (await t.data()) as Float32Array)),
  };
}

/** A copy of `m` that owns its arrays (a view would send its whole buffer), and their buffers. */
function ownMicroBatch(m: MicroBatch): { m: MicroBatch; transfer: ArrayBuffer[] } {
  const own = (a: Float32Array) => a.slice();
  const c: MicroBatch = {
    ...m,
    x: own(m.x),
    dropPath: m.dropPath.map(([p, q]) => [own(p), own(q)]),
    milKeep: own(m.milKeep),
    cls: own(m.cls),
    reg: own(m.reg),
    weak: own(m.weak),
    milMask: m.milMask ? own(m.milMask) : undefined,
  };
  const arrays = [c.x, c.milKeep, c.cls, c.reg, c.weak, ...c.dropPath.flat()];
  if (c.milMask) arrays.push(c.milMask);
  return { m: c, transfer: arrays.map((a) => a.buffer as ArrayBuffer) };
}

/** Marks a promise's rejection as handled (it is awaited later, or dropped after an error). */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/**
 * Runs `fn` with the pool to itself ({@linkcode StudentPool.exclusive}) and BLAS held to one
 * thread per product: the main thread computes beside the workers, and the library's thread
 * count is one setting for the whole process.
 */
async function onThreads<T>(pool: StudentPool, fn: () => Promise<T>): Promise<T> {
  return await pool.exclusive(async () => {
    const cap = capBlasThreads(1);
    try {
      return await fn();
    } finally {
      capBlasThreads(cap);
    }
  });
}

/**
 * {@linkcode accumulatedGrads} with the micro-batches dealt round-robin to the main thread and
 * the pool's workers (micro-batch j to thread j mod P, the main thread being 0), summed on the
 * main thread in micro-batch order. Bit-identical to `accumulatedGrads` with the same
 * `cfg.microBatch`; a batch of one micro-batch runs on the main thread only.
 */
export async function pooledGrads(
  pool: StudentPool,
  vars: Record<string, tf.Variable>,
  cfg: StudentConfig,
  layout: Layout,
  D: number,
  K: number,
  b: StepBatch,
): Promise<StepGrads> {
  const mbs = microBatches(cfg, layout, D, K, b);
  if (mbs.length < 2) return accumulatedGrads(vars, cfg, layout, D, K, b);
  return await onThreads(pool, () => gradsOnThreads(pool, vars, cfg, layout, D, mbs));
}

async function gradsOnThreads(
  pool: StudentPool,
  vars: Record<string, tf.Variable>,
  cfg: StudentConfig,
  layout: Layout,
  D: number,
  mbs: MicroBatch[],
): Promise<StepGrads> {
  const P = Math.min(pool.workers.length + 1, mbs.length);
  const used = pool.workers.slice(0, P - 1);
  const w = await hostWeights(vars);
  const varNames = w.names.map((k) => vars[k].name);
  const shapes = new Map(varNames.map((name, i) => [name, w.shapes[i]]));
  const loaded = used.map((pw) => quiet(pw.call({ kind: "vars", varNames, ...w })));
  const remote = new Map<number, Promise<RemoteGrads>>();
  mbs.forEach((m, j) => {
    if (j % P === 0) return;
    const own = ownMicroBatch(m);
    remote.set(
      j,
      quiet(used[(j % P) - 1].call({ kind: "grads", cfg, layout, D, m: own.m }, own.transfer)),
    );
  });
  let acc: StepGrads | null = null;
  try {
    for (let j = 0; j < mbs.length; j++) {
      let part: StepGrads;
      if (j % P === 0) part = microBatchGrads(vars, cfg, layout, D, mbs[j]);
      else {
        const r = await remote.get(j)!;
        poolStats.gradJobs++;
        const grads: tf.NamedTensorMap = {};
        r.names.forEach((k, i) => grads[k] = tf.tensor(r.grads[i], shapes.get(k)));
        const [total, cls, reg, mil] = r.losses.map((v) => tf.scalar(v));
        part = { total, cls, reg, mil, grads };
      }
      acc = acc ? addGrads(acc, part) : part;
    }
    await Promise.all(loaded);
  } catch (e) {
    if (acc) tf.dispose([acc.total, acc.cls, acc.reg, acc.mil, ...Object.values(acc.grads)]);
    // Let the workers finish what they were given before the caller goes on.
    await Promise.allSettled([...loaded, ...remote.values()]);
    throw e;
  }
  return acc!;
}

/**
 * The EMA teacher's labels of `chunks` (crops of one batch, `batch.ts`
 * `teacherChunks`) with chunk j on thread j mod P (the main thread being 0, running
 * `local`; the workers run the same `teacherSegments` on a copy of `ema`, sent once), joined in
 * chunk order. Equal to running `local` on every chunk in turn; a single chunk runs on the main
 * thread only.
 */
export async function pooledTeacher(
  pool: StudentPool,
  ema: Record<string, tf.Tensor>,
  cfg: StudentConfig,
  chunks: TeacherCrop[][],
  D: number,
  K: number,
  local: (items: TeacherCrop[]) => Promise<TeacherLabels[]>,
): Promise<TeacherLabels[][]> {
  if (chunks.length < 2) return chunks.length ? [await local(chunks[0])] : [];
  return await onThreads(pool, () => teacherOnThreads(pool, ema, cfg, chunks, D, K, local));
}

async function teacherOnThreads(
  pool: StudentPool,
  ema: Record<string, tf.Tensor>,
  cfg: StudentConfig,
  chunks: TeacherCrop[][],
  D: number,
  K: number,
  local: (items: TeacherCrop[]) => Promise<TeacherLabels[]>,
): Promise<TeacherLabels[][]> {
  const P = Math.min(pool.workers.length + 1, chunks.length);
  const used = pool.workers.slice(0, P - 1);
  const w = await hostWeights(ema);
  const loaded = used.map((pw) => quiet(pw.call({ kind: "params", ...w })));
  const remote = new Map<number, Promise<TeacherLabels[]>>();
  chunks.forEach((items, j) => {
    if (j % P === 0) return;
    // Own copies of the rows (a crop is a view into the feature cache): sent, not shared.
    const own = items.map((it) => ({ ...it, data: it.data.slice(0, it.length * D) }));
    const job = { kind: "teacher" as const, cfg, D, K, items: own };
    remote.set(j, quiet(used[(j % P) - 1].call(job, own.map((it) => it.data.buffer))));
  });
  const out: TeacherLabels[][] = [];
  try {
    for (let j = 0; j < chunks.length; j++) {
      if (j % P === 0) out.push(await local(chunks[j]));
      else {
        out.push(await remote.get(j)!);
        poolStats.teacherJobs++;
      }
    }
    await Promise.all(loaded);
  } catch (e) {
    // Let the workers finish what they were given before the caller goes on.
    await Promise.allSettled([...loaded, ...remote.values()]);
    throw e;
  }
  return out;
}

/**
 * One turn of the event loop, so that the workers' replies are handled between two videos the
 * main thread detects (measured: a message-channel turn does not let them in; a timer does).
 */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** One video of a split as `Dataset.videos` yields it. */
interface SplitVideo {
  meta: VideoMeta;
  features: VideoFeatures;
}

/**
 * Detections of every video of `videos`, each computed by whichever thread is free (the main
 * thread with `local`, or a worker with `predictVideo` on a copy of `params`), returned per
 * video in the order of `videos`. Reports each finished video to `progress`.
 */
export function pooledDetect(
  pool: StudentPool,
  videos: AsyncIterable<SplitVideo>,
  params: Record<string, tf.Tensor>,
  cfg: StudentConfig,
  classes: string[],
  local: (v: SplitVideo) => Promise<Detection[]>,
  progress?: ProgressSink,
): Promise<Detection[][]> {
  return pool.exclusive(() => detectOnThreads(pool, videos, params, cfg, classes, local, progress));
}

async function detectOnThreads(
  pool: StudentPool,
  videos: AsyncIterable<SplitVideo>,
  params: Record<string, tf.Tensor>,
  cfg: StudentConfig,
  classes: string[],
  local: (v: SplitVideo) => Promise<Detection[]>,
  progress?: ProgressSink,
): Promise<Detection[][]> {
  const w = await hostWeights(params);
  const loaded = pool.workers.map((pw) => quiet(pw.call({ kind: "params", ...w })));
  const it = videos[Symbol.asyncIterator]();
  const out: Detection[][] = [];
  let taken = 0, done = 0;
  let failure: { e: unknown } | null = null;
  const take = async (): Promise<{ i: number; v: SplitVideo } | null> => {
    if (failure) return null;
    const r = await it.next();
    return r.done ? null : { i: taken++, v: r.value };
  };
  const finish = (i: number, d: Detection[]) => {
    out[i] = d;
    progress?.update(++done);
  };
  const guard = async (f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      failure ??= { e };
    }
  };
  const mainLoop = async () => {
    for (let job = await take(); job; job = await take()) {
      finish(job.i, await local(job.v));
      await macrotask();
    }
  };
  const workerLoop = (pw: PoolWorker) => async () => {
    for (let job = await take(); job; job = await take()) {
      const { meta, features } = job.v;
      const data = features.data.slice(0, features.length * features.dim);
      const d = await pw.call<Detection[]>({
        kind: "detect",
        cfg,
        features: { data, length: features.length, dim: features.dim },
        video: { id: meta.id, grid: meta.grid, duration: meta.duration },
        classes,
      }, [data.buffer]);
      poolStats.detectJobs++;
      finish(job.i, d);
    }
  };
  // Every worker has the weights before the first video is handed out.
  await Promise.all(loaded);
  const cap = capBlasThreads(1);
  try {
    // Two loops per worker keep a second video queued in it: a worker's reply is only read
    // between two of the main thread's videos, and the worker need not wait for that.
    await Promise.all([
      guard(mainLoop),
      ...pool.workers.flatMap((pw) => [guard(workerLoop(pw)), guard(workerLoop(pw))]),
    ]);
  } finally {
    capBlasThreads(cap);
  }
  if (failure) throw (failure as { e: unknown }).e;
  return out;
}
