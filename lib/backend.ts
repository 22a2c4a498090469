/**
 * Compute-backend selection for tfjs.
 *
 * `auto` prefers a hardware WebGPU adapter. On a software adapter (Mesa llvmpipe reports
 * `isFallbackAdapter`) or with none, it times the same small matMul on every backend that
 * loads and keeps the fastest: on the 2-core CPU machines measured here tfjs-wasm (SIMD) beat
 * tfjs-webgpu on llvmpipe by ~5-10x, and tfjs-cpu is slowest. Every run reports its choice.
 *
 * tfjs-wasm runs its matrix products on a native BLAS when one is found (`lib/blas.ts`:
 * `--blas PATH`, `FUSTAL_BLAS`, or the usual OpenBLAS names; `--threads N`, default every
 * core). Without a hardware GPU, `auto` then takes wasm+BLAS without timing the others
 * (sgemm on every core is several times XNNPACK's one core). Without a library, plain wasm
 * runs and the backend line says how to get one.
 *
 * @module
 */
import { loadWasmBackend, loadWebgpuBackend, tf } from "../deps.ts";
import { InputError } from "./errors.ts";
import {
  BLAS_HINT,
  type BlasInfo,
  type BlasOptions,
  blasTurnedOff,
  installBlasKernels,
  loadBlas,
  setBlasEnabled,
} from "./blas.ts";
import { guardWasmHeap } from "./wasm_heap.ts";
import { useQueueUploads } from "./webgpu_upload.ts";
import { shareWasmCopies } from "./wasm_share.ts";
import { fastWasmSlices } from "./wasm_slice.ts";
import { parseWorkers, setWorkers, workerCount } from "./workers.ts";
export type { BlasInfo, BlasOptions } from "./blas.ts";
export { setWorkers, workerCount } from "./workers.ts";

/** Names accepted by `--backend` / `config.backend`. */
export type BackendName = "auto" | "webgpu" | "wasm" | "cpu";

/** What {@linkcode initBackend} chose and why. */
export interface BackendInfo {
  /** The tfjs backend in use. */
  backend: "webgpu" | "wasm" | "cpu";
  /**
   * WebGPU adapter description, when one was found (even if not used). Not looked for when
   * wasm or cpu is requested by name: nothing then needs a GPU instance in the process.
   */
  adapter: string | null;
  /** Whether that adapter is a software (fallback) adapter. */
  adapterIsSoftware: boolean | null;
  /** Why this backend was picked. */
  reason: string;
  /** ms per 256x256 matMul measured during `auto` selection, per backend tried. */
  timings?: Record<string, number>;
  /** The native BLAS under tfjs-wasm's matMuls, or null (plain wasm, or another backend). */
  blas?: BlasInfo | null;
  /** Why no BLAS is used on wasm (how to get one), when none is. */
  blasNote?: string;
}

let blasOptions: BlasOptions = {};
/**
 * Sets how the native BLAS is found before {@linkcode initBackend} (`--blas PATH` or `off`,
 * `--threads N`). Unset fields fall back to `FUSTAL_BLAS` and the machine's core count.
 */
export function setBlasOptions(opts: BlasOptions): void {
  blasOptions = { ...opts };
}

/** The BLAS settings given to {@linkcode setBlasOptions} (a copy; unset fields are defaults). */
export function blasOptionsInUse(): BlasOptions {
  return { ...blasOptions };
}

/** Loads BLAS (when found) and installs its kernels on the loaded wasm backend. */
async function attachBlas(): Promise<{ blas: BlasInfo | null; blasNote?: string }> {
  guardWasmHeap();
  const off = blasTurnedOff(blasOptions.path);
  const blas = await loadBlas(blasOptions);
  if (!blas) {
    setBlasEnabled(false);
    return { blas: null, blasNote: off ? "BLAS off" : BLAS_HINT };
  }
  if (off) {
    setBlasEnabled(false);
    return { blas: null, blasNote: "BLAS off" };
  }
  installBlasKernels();
  return { blas };
}

const BACKENDS = ["auto", "webgpu", "wasm", "cpu"] as const;

interface GpuAdapterLike {
  info?: { description?: string; vendor?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
}

/** Looks for a WebGPU adapter without touching tfjs. Never throws. */
export async function probeAdapter(): Promise<
  { description: string; software: boolean } | null
> {
  const gpu = (globalThis.navigator as unknown as {
    gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> };
  })?.gpu;
  if (!gpu) return null;
  try {
    const ad = await gpu.requestAdapter();
    if (!ad) return null;
    const desc = ad.info?.description || ad.info?.vendor || "unknown adapter";
    const software = Boolean(ad.info?.isFallbackAdapter ?? ad.isFallbackAdapter) ||
      /llvmpipe|swiftshader|lavapipe|software/i.test(desc);
    return { description: desc, software };
  } catch {
    return null;
  }
}

let current: BackendInfo | null = null;
/**
 * Runs `fn` with tfjs's one-time "install tfjs-node" banner (printed when the cpu backend is
 * first constructed) filtered out of the console: it is noise in a CLI. Only that message is
 * dropped, and only while backends are being set up.
 */
async function withoutTfjsBanner<T>(fn: () => Promise<T>): Promise<T> {
  const origWarn = console.warn;
  const origLog = console.log;
  const banner = (args: unknown[]) =>
    typeof args[0] === "string" &&
    args[0].includes("looks like you are running TensorFlow.js in Node.js");
  console.warn = (...a: unknown[]) => {
    if (!banner(a)) origWarn(...a);
  };
  console.log = (...a: unknown[]) => {
    if (!banner(a)) origLog(...a);
  };
  try {
    return await fn();
  } finally {
    console.warn = origWarn;
    console.log = origLog;
  }
}

async function tryLoad(name: "webgpu" | "wasm" | "cpu"): Promise<boolean> {
  try {
    if (name === "wasm") {
      await loadWasmBackend();
      shareWasmCopies();
      fastWasmSlices();
    }
    if (name === "webgpu") await loadWebgpuBackend();
    const ok = await tf.setBackend(name);
    // Deno's mapped-buffer writes are ~170x slower than writeBuffer (lib/webgpu_upload.ts).
    if (ok && name === "webgpu") useQueueUploads(tf.backend());
    return ok;
  } catch {
    return false;
  }
}

async function timeMatMul(): Promise<number> {
  const a = tf.randomUniform([256, 256]);
  // warm-up compiles shaders / pipelines
  const w = tf.matMul(a, a);
  await w.data();
  w.dispose();
  const reps = 4;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const c = tf.matMul(a, a);
    await c.data();
    c.dispose();
  }
  a.dispose();
  return (performance.now() - t0) / reps;
}

/**
 * Selects and initialises the tfjs backend. Idempotent for the same request.
 *
 * @param name `auto` (default) or a backend to force.
 * @returns what was chosen, with the adapter seen and the reason.
 */
export function initBackend(name: BackendName = "auto"): Promise<BackendInfo> {
  return withoutTfjsBanner(() => selectBackend(name));
}

async function selectBackend(name: BackendName): Promise<BackendInfo> {
  if (!BACKENDS.includes(name)) {
    throw new InputError(`--backend: unknown backend "${name}" (use ${BACKENDS.join(", ")})`);
  }
  if (current && (name === "auto" || current.backend === name)) return current;
  if (name === "wasm" || name === "cpu") {
    if (!(await tryLoad(name))) {
      throw new InputError(`--backend ${name}: backend could not be initialised`);
    }
    current = { backend: name, adapter: null, adapterIsSoftware: null, reason: "requested" };
    if (name === "wasm") Object.assign(current, await attachBlas());
    return current;
  }
  const ad = await probeAdapter();
  const adapter = ad?.description ?? null;
  const adapterIsSoftware = ad ? ad.software : null;
  if (name === "webgpu") {
    if (!(await tryLoad(name))) {
      throw new InputError(
        `--backend ${name}: backend could not be initialised (no WebGPU adapter in this runtime)`,
      );
    }
    current = { backend: name, adapter, adapterIsSoftware, reason: "requested" };
    return current;
  }
  if (ad && !ad.software && await tryLoad("webgpu")) {
    current = {
      backend: "webgpu",
      adapter,
      adapterIsSoftware,
      reason: "hardware WebGPU adapter",
    };
    return current;
  }
  let noBlas: string | undefined;
  if (await tryLoad("wasm")) {
    const b = await attachBlas();
    noBlas = b.blasNote;
    if (b.blas) {
      current = {
        backend: "wasm",
        adapter,
        adapterIsSoftware,
        reason: (ad ? "software adapter, so " : "") + "native BLAS found",
        ...b,
      };
      return current;
    }
  }
  const timings: Record<string, number> = {};
  const candidates: ("webgpu" | "wasm" | "cpu")[] = ad ? ["wasm", "webgpu", "cpu"] : [
    "wasm",
    "cpu",
  ];
  for (const b of candidates) {
    if (await tryLoad(b)) timings[b] = await timeMatMul();
  }
  const ranked = Object.entries(timings).sort((x, y) => x[1] - y[1]);
  if (ranked.length === 0) throw new Error("no tfjs backend could be initialised");
  const best = ranked[0][0] as "webgpu" | "wasm" | "cpu";
  await tf.setBackend(best);
  const why = ad ? "software adapter, so " : "";
  current = {
    backend: best,
    adapter,
    adapterIsSoftware,
    reason: why + "fastest measured: " +
      ranked.map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(", "),
    timings,
  };
  if (best === "wasm") current.blasNote = noBlas ?? BLAS_HINT;
  return current;
}

/** `wasm+BLAS` when tfjs-wasm runs its matMuls on a native BLAS, else the backend's name. */
export function backendLabel(info: BackendInfo): string {
  return info.backend === "wasm" && info.blas ? "wasm+BLAS" : info.backend;
}

/**
 * One line for logs: `backend wasm+BLAS (OpenBLAS 0.3.21 ..., 2 threads, libopenblas.so.0;
 * WebGPU not probed; requested)`.
 */
export function describeBackend(info: BackendInfo): string {
  const ad = info.adapter
    ? `adapter: ${info.adapter}${info.adapterIsSoftware ? ", software" : ", hardware"}`
    : info.backend === "webgpu" || info.reason !== "requested"
    ? "no WebGPU adapter"
    : "WebGPU not probed";
  const blas = info.blas
    ? `${info.blas.config?.split(" ").slice(0, 2).join(" ") ?? "BLAS"}, ${info.blas.threads} ` +
      `thread${info.blas.threads === 1 ? "" : "s"}, ${info.blas.library}; `
    : "";
  const note = info.blasNote ? `; ${info.blasNote}` : "";
  return `backend ${backendLabel(info)} (${blas}${ad}; ${info.reason}${note})`;
}

/** Flags every command that computes accepts for the native BLAS (`node:util` parseArgs form). */
export const BLAS_FLAGS = {
  blas: { type: "string" },
  threads: { type: "string" },
} as const;

/** Usage lines of {@linkcode BLAS_FLAGS}. */
export const BLAS_USAGE =
  `  --blas PATH|off       native BLAS library for wasm matMuls (default: FUSTAL_BLAS, then
                        libopenblas.so.0 and other usual names; off: plain wasm)
  --threads N           BLAS threads (default: every core)`;

/**
 * Reads `--blas` and `--threads` from parsed flags into {@linkcode setBlasOptions}, and
 * `--workers` (the commands that train a student: `lib/workers.ts` `WORKER_FLAGS`) into
 * `setWorkers`. A bad `--threads` or `--workers` is an {@linkcode InputError} naming the
 * command, a bad `FUSTAL_WORKERS` one naming the variable.
 */
export function applyBlasFlags(command: string, values: Record<string, unknown>): void {
  const opts: BlasOptions = {};
  if (typeof values.blas === "string" && values.blas !== "") opts.path = values.blas;
  if (values.threads !== undefined) {
    const n = Number(values.threads);
    if (typeof values.threads !== "string" || !Number.isInteger(n) || n < 1) {
      throw new InputError(
        `${command}: --threads must be a positive integer, got "${values.threads}"`,
      );
    }
    opts.threads = n;
  }
  setBlasOptions(opts);
  if (values.workers !== undefined) {
    setWorkers(parseWorkers(`${command}: --workers`, values.workers));
  } else workerCount(); // a bad FUSTAL_WORKERS is reported now, not at the first detection pass
}
