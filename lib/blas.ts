/**
 * Native BLAS for tfjs-wasm: the matrix products run through a system `cblas_sgemm` (OpenBLAS,
 * every core) reached with the runtime's FFI (`Deno.dlopen`, or `bun:ffi` under Bun), working
 * in place on the wasm module's heap: the inputs are read and the output written at the
 * tensors' own offsets in that memory, with no copies.
 *
 * The `BatchMatMul` and `_FusedMatMul` kernels of the `wasm` backend are re-registered (same
 * backend name) with wrappers that call sgemm and fall back to the original XNNPACK kernel
 * for what they do not handle (non-float32, empty or tiny products, unsupported fused bias or
 * activation); so is `Sum`, whose reductions over leading axes become a product with a row of
 * ones. Keeping the backend name means every tensor, every other kernel and every
 * `tf.getBackend() === "wasm"` test of the toolkit stays as it is; a distinct backend name
 * would have needed a second copy of the whole wasm backend. The wrappers can be switched
 * off and on at run time ({@linkcode setBlasEnabled}), which is how the tests compare the
 * two paths in one process. Gradients are untouched: tfjs builds them from `matMul` calls,
 * which land on these kernels again.
 *
 * @module
 */
import { tf } from "../deps.ts";
import { InputError } from "./errors.ts";
import { logicalCores } from "./workers.ts";

/** What {@linkcode loadBlas} found and set up. */
export interface BlasInfo {
  /** The library file that was opened. */
  library: string;
  /** Threads BLAS uses (set with `openblas_set_num_threads` when the library has it). */
  threads: number;
  /** Whether the thread count could be set (OpenBLAS) or is the library's own. */
  threadsSet: boolean;
  /** `openblas_get_config()` when available (version and build), else null. */
  config: string | null;
}

/** Options of {@linkcode loadBlas}. */
export interface BlasOptions {
  /**
   * Library path (`--blas PATH`); `"off"` disables BLAS. Defaults to the `FUSTAL_BLAS`
   * environment variable, then the usual library names.
   */
  path?: string;
  /** BLAS threads (`--threads N`); default: the machine's logical cores. */
  threads?: number;
}

/** Library names tried, in order, when no path is given. */
export const BLAS_NAMES: readonly string[] = [
  "libopenblas.so.0",
  "libopenblas.so",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "libopenblas.dylib",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/usr/local/opt/openblas/lib/libopenblas.dylib",
  "libopenblas.dll",
  "libblas.so.3",
  "libblas.so",
];

/** One line telling how to get the library (printed when plain wasm runs without it). */
export const BLAS_HINT =
  "native BLAS not found: plain wasm (one core); for every core install OpenBLAS " +
  "(Debian/Ubuntu: apt-get install libopenblas0-pthread) or pass --blas PATH";

// CBLAS enums.
const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

type Sgemm = (
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: number,
  lda: number,
  b: number,
  ldb: number,
  beta: number,
  c: number,
  ldc: number,
  /** Multiply-adds that decide the thread count when this call is one of a series (default m·n·k). */
  work?: number,
) => void;

interface Native {
  /** sgemm on absolute addresses (row-major). */
  sgemm: Sgemm;
  /** Address of the first byte of an ArrayBuffer. */
  address(buf: ArrayBuffer): number;
  info: BlasInfo;
}

let native: Native | null = null;
let enabled = false;
let installed = false;
/**
 * Multiply-adds below which the original wasm kernel is used. 0: measured here, sgemm through
 * FFI beat the XNNPACK kernel from 8x8x8 (9 vs 45 us) to 4096x384x128 (6.7 vs 38 ms).
 */
let minWork = 0;

/** Counters of the wrapped kernels (for benchmarks and tests). */
export const blasStats = { sgemmCalls: 0, fallbacks: 0 };

function envBlas(): string | undefined {
  try {
    const d = (globalThis as { Deno?: { env: { get(k: string): string | undefined } } }).Deno;
    if (d) return d.env.get("FUSTAL_BLAS");
    const p = (globalThis as { process?: { env: Record<string, string | undefined> } }).process;
    return p?.env.FUSTAL_BLAS;
  } catch {
    return undefined;
  }
}

/**
 * Whether BLAS is turned off by the user: `path` (from `--blas`) or else `FUSTAL_BLAS` is
 * `off` (also `none`, `0`, `false`).
 */
export function blasTurnedOff(path?: string): boolean {
  const given = path ?? envBlas();
  return given !== undefined && /^(off|none|0|false)$/i.test(given);
}

const SGEMM_PARAMS = [
  "i32",
  "i32",
  "i32",
  "i32",
  "i32",
  "i32",
  "f32",
  "usize",
  "i32",
  "usize",
  "i32",
  "f32",
  "usize",
  "i32",
] as const;

// deno-lint-ignore no-explicit-any
type AnyLib = any;

/**
 * Multiply-adds from which an sgemm gets every BLAS thread; smaller ones run on one. Measured
 * here (2 cores, OpenBLAS 0.3.21 pthreads): an older default student, whose products had at most
 * ~3e7 multiply-adds, trained 20 % faster on one thread than on two, whose workers spin for the
 * core the wasm main thread needs between products; the published generator's (~2e10) ran
 * 1.3x faster on two. Today's default student step (products of 1.1e8 and 5.7e7 at its first two
 * pyramid levels) is ~14 ms faster with those on two threads (threshold 2^26 against 2^27, 17
 * of 20 paired runs) and ~4 ms more with 2^25 (17 of 20); 2^24 gains nothing more.
 */
export const MULTI_THREAD_WORK = 2 ** 25;

/** Most threads any product may use ({@linkcode capBlasThreads}). */
let threadCap = Number.POSITIVE_INFINITY;
/** Sets the library's thread count now (when it can be set), within the cap. */
let applyCap: (() => void) | null = null;

/**
 * Caps the BLAS threads of every product at `n` from now on (the student's worker pool sets 1
 * while its workers compute beside the main thread: the library's thread count is one setting
 * for the whole process, shared with the workers); `Infinity` lifts the cap. Returns the
 * previous cap.
 */
export function capBlasThreads(n: number): number {
  const prev = threadCap;
  threadCap = n;
  applyCap?.();
  return prev;
}

/** An sgemm that uses `threads` threads for large products and one for small ones. */
function threaded(
  f: (...a: number[]) => void,
  setThreads: ((n: number) => void) | null,
  threads: number,
): Sgemm {
  let current = threads;
  if (setThreads) {
    applyCap = () => {
      // Another thread of the process may have changed the count: set it again.
      current = Math.min(threads, threadCap);
      setThreads(current);
    };
  }
  return (ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc, work = m * n * k) => {
    if (setThreads && threads > 1) {
      const want = work >= MULTI_THREAD_WORK ? Math.min(threads, threadCap) : 1;
      if (want !== current) {
        setThreads(want);
        current = want;
      }
    }
    f(ROW_MAJOR, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
  };
}

function openDeno(path: string, threads: number): Native {
  // deno-lint-ignore no-explicit-any
  const D = (globalThis as any).Deno;
  const lib: AnyLib = D.dlopen(path, {
    cblas_sgemm: { parameters: SGEMM_PARAMS, result: "void" },
    openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
    openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
    openblas_get_config: { parameters: [], result: "pointer", optional: true },
  }).symbols;
  const f = lib.cblas_sgemm;
  let threadsSet = false;
  if (lib.openblas_set_num_threads) {
    lib.openblas_set_num_threads(threads);
    threadsSet = true;
  }
  const actual = lib.openblas_get_num_threads ? lib.openblas_get_num_threads() : threads;
  let config: string | null = null;
  if (lib.openblas_get_config) {
    const p = lib.openblas_get_config();
    if (p) config = new D.UnsafePointerView(p).getCString();
  }
  return {
    sgemm: threaded(f, threadsSet ? (n) => lib.openblas_set_num_threads(n) : null, actual),
    address: (buf) => Number(D.UnsafePointer.value(D.UnsafePointer.of(buf))),
    info: { library: path, threads: actual, threadsSet, config },
  };
}

async function openBun(path: string, threads: number): Promise<Native> {
  const spec = "bun:ffi";
  // deno-lint-ignore no-explicit-any
  const ffi: any = await import(spec);
  const T = ffi.FFIType;
  const p = SGEMM_PARAMS.map((t) => t === "usize" ? T.ptr : t === "f32" ? T.f32 : T.i32);
  const lib = ffi.dlopen(path, { cblas_sgemm: { args: p, returns: T.void } }).symbols;
  let threadsSet = false;
  let actual = threads;
  let config: string | null = null;
  let setThreads: ((n: number) => void) | null = null;
  try {
    const o = ffi.dlopen(path, {
      openblas_set_num_threads: { args: [T.i32], returns: T.void },
      openblas_get_num_threads: { args: [], returns: T.i32 },
      openblas_get_config: { args: [], returns: T.ptr },
    }).symbols;
    o.openblas_set_num_threads(threads);
    setThreads = (n) => o.openblas_set_num_threads(n);
    threadsSet = true;
    actual = o.openblas_get_num_threads();
    const cp = o.openblas_get_config();
    if (cp) config = String(new ffi.CString(cp));
  } catch {
    // not OpenBLAS: the library's own threading
  }
  const f = lib.cblas_sgemm;
  return {
    sgemm: threaded(f, setThreads, actual),
    address: (buf) => ffi.ptr(buf) as number,
    info: { library: path, threads: actual, threadsSet, config },
  };
}

/**
 * Opens the BLAS library: `opts.path`, else `FUSTAL_BLAS`, else the first of
 * {@linkcode BLAS_NAMES} that loads. Returns null when none loads or BLAS is turned off
 * (`"off"`); a path that was given explicitly and cannot be opened is an
 * {@linkcode InputError}. Idempotent: a second call returns the first result.
 */
export async function loadBlas(opts: BlasOptions = {}): Promise<BlasInfo | null> {
  if (native) return native.info;
  const threads = opts.threads ?? logicalCores();
  if (!Number.isInteger(threads) || threads < 1) {
    throw new InputError(`--threads: must be a positive integer, got ${threads}`);
  }
  const given = opts.path ?? envBlas();
  if (blasTurnedOff(opts.path)) return null;
  const isBun = Boolean((globalThis as { Bun?: unknown }).Bun);
  const isDeno = Boolean((globalThis as { Deno?: unknown }).Deno);
  if (!isBun && !isDeno) return null;
  const open = (p: string) => isBun ? openBun(p, threads) : Promise.resolve(openDeno(p, threads));
  if (given) {
    try {
      native = await open(given);
    } catch (e) {
      const src = opts.path !== undefined ? "--blas" : "FUSTAL_BLAS";
      throw new InputError(
        `${src}: cannot use "${given}" as a BLAS library (${
          String((e as Error).message).split("\n")[0]
        })`,
      );
    }
    return native.info;
  }
  for (const name of BLAS_NAMES) {
    try {
      native = await open(name);
      return native.info;
    } catch {
      // try the next name
    }
  }
  return null;
}

/** The BLAS library in use, or null. */
export function blasInfo(): BlasInfo | null {
  return native?.info ?? null;
}

/** Whether the native kernels are installed and switched on (the matMuls run on BLAS). */
export function blasActive(): boolean {
  return enabled && installed && native !== null && tf.getBackend() === "wasm";
}

/**
 * Switches the native kernels on or off (the original wasm kernels run when off). Returns
 * the previous state. Used by tests and benchmarks to compare both paths in one process.
 */
export function setBlasEnabled(on: boolean): boolean {
  const prev = enabled;
  enabled = on;
  return prev;
}

/** Sets the smallest product (multiply-adds) sent to BLAS; smaller ones stay on wasm. */
export function setBlasMinWork(n: number): void {
  minWork = n;
}

// ---------------------------------------------------------------------------------------
// Kernels

interface WasmData {
  memoryOffset: number;
}
/** The parts of tfjs-wasm's backend object that the native kernels use. */
export interface WasmBackendLike {
  /** The module's heap. */
  wasm: { HEAPU8: Uint8Array };
  /** Where each tensor's data lives in the heap. */
  dataIdMap: { get(id: unknown): WasmData };
  /** Allocates an output tensor on the heap. */
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  /** Frees a tensor's data (a kernel's temporary). */
  disposeData(dataId: unknown): boolean;
}

/** A float32 view of a wasm tensor's data, in place (valid until the heap next grows). */
export function heapView(backend: WasmBackendLike, t: tf.TensorInfo): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  return new Float32Array(
    backend.wasm.HEAPU8.buffer,
    backend.dataIdMap.get(t.dataId).memoryOffset,
    n,
  );
}

let lastBuf: ArrayBuffer | null = null;
let lastBase = 0;
function heapBase(be: WasmBackendLike): number {
  // Memory growth replaces the ArrayBuffer (the old one is detached): take the address of
  // the current one, after the output has been allocated.
  const buf = be.wasm.HEAPU8.buffer as ArrayBuffer;
  if (buf !== lastBuf) {
    lastBase = native!.address(buf);
    lastBuf = buf;
  }
  return lastBase;
}

interface Plan {
  m: number;
  n: number;
  k: number;
  outShape: number[];
  /** Per output batch: element offset into a and b. */
  aIdx: Int32Array;
  bIdx: Int32Array;
  /** All batches of a folded into the rows of one product (b has one batch, a not transposed). */
  fold: boolean;
  /** The batches broadcast in a way tfjs-wasm's own kernel gets wrong (it only handles equal batch counts or one side with a single batch). */
  wasmWrong: boolean;
}

function plan(
  aShape: number[],
  bShape: number[],
  transposeA: boolean,
  transposeB: boolean,
): Plan | null {
  const ra = aShape.length, rb = bShape.length;
  if (ra < 2 || rb < 2) return null;
  const m = transposeA ? aShape[ra - 1] : aShape[ra - 2];
  const ka = transposeA ? aShape[ra - 2] : aShape[ra - 1];
  const kb = transposeB ? bShape[rb - 1] : bShape[rb - 2];
  const n = transposeB ? bShape[rb - 2] : bShape[rb - 1];
  if (ka !== kb) return null; // the original kernel reports the mismatch
  const oa = aShape.slice(0, -2), ob = bShape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(oa, ob);
  } catch {
    return null;
  }
  const batches = outer.reduce((x, y) => x * y, 1);
  const aIdx = new Int32Array(batches), bIdx = new Int32Array(batches);
  const r = outer.length;
  const pa = Array(r - oa.length).fill(1).concat(oa) as number[];
  const pb = Array(r - ob.length).fill(1).concat(ob) as number[];
  for (let i = 0; i < batches; i++) {
    let rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
    for (let d = r - 1; d >= 0; d--) {
      const c = rem % outer[d];
      rem = (rem - c) / outer[d];
      if (pa[d] !== 1) ia += c * sa;
      if (pb[d] !== 1) ib += c * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    aIdx[i] = ia * m * ka;
    bIdx[i] = ib * ka * n;
  }
  const aBatches = oa.reduce((x, y) => x * y, 1);
  const bBatches = ob.reduce((x, y) => x * y, 1);
  const fold = bBatches === 1 && !transposeA && aBatches === batches;
  const wasmWrong = batches !== Math.max(aBatches, bBatches);
  return { m, n, k: ka, outShape: [...outer, m, n], aIdx, bIdx, fold, wasmWrong };
}

/** Runs the product into `out` (already allocated) on the wasm heap. */
function gemm(
  be: WasmBackendLike,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  out: tf.TensorInfo,
  p: Plan,
  transposeA: boolean,
  transposeB: boolean,
): void {
  const base = heapBase(be);
  const pa = base + be.dataIdMap.get(a.dataId).memoryOffset;
  const pb = base + be.dataIdMap.get(b.dataId).memoryOffset;
  const pc = base + be.dataIdMap.get(out.dataId).memoryOffset;
  const { m, n, k } = p;
  const ta = transposeA ? TRANS : NO_TRANS, tb = transposeB ? TRANS : NO_TRANS;
  const lda = transposeA ? m : k, ldb = transposeB ? k : n;
  const s = native!.sgemm;
  if (p.fold) {
    s(ta, tb, m * p.aIdx.length, n, k, 1, pa, lda, pb, ldb, 0, pc, n);
    blasStats.sgemmCalls++;
    return;
  }
  for (let i = 0; i < p.aIdx.length; i++) {
    s(
      ta,
      tb,
      m,
      n,
      k,
      1,
      pa + 4 * p.aIdx[i],
      lda,
      pb + 4 * p.bIdx[i],
      ldb,
      0,
      pc + 4 * i * m * n,
      n,
    );
  }
  blasStats.sgemmCalls += p.aIdx.length;
}

/**
 * One sgemm on float32 tensors of the wasm heap, each operand addressed by its tensor and an
 * element offset into it (row-major; `beta` 1 accumulates into `c`). For kernels that slice
 * their operands by offset instead of copying (`lib/blas_conv.ts`). `work`: the multiply-adds of
 * the whole series this call belongs to, which decide its thread count as one product would
 * (default: this call's m·n·k). BLAS must be loaded.
 */
export function heapSgemm(
  backend: unknown,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: { t: tf.TensorInfo; off: number; ld: number },
  b: { t: tf.TensorInfo; off: number; ld: number },
  beta: number,
  c: { t: tf.TensorInfo; off: number; ld: number },
  work?: number,
): void {
  const be = backend as WasmBackendLike;
  const base = heapBase(be);
  const at = (x: { t: tf.TensorInfo; off: number }) =>
    base + be.dataIdMap.get(x.t.dataId).memoryOffset + 4 * x.off;
  native!.sgemm(
    transA ? TRANS : NO_TRANS,
    transB ? TRANS : NO_TRANS,
    m,
    n,
    k,
    1,
    at(a),
    a.ld,
    at(b),
    b.ld,
    beta,
    at(c),
    c.ld,
    work,
  );
  blasStats.sgemmCalls++;
}

function usable(a: tf.TensorInfo, b: tf.TensorInfo, p: Plan | null): p is Plan {
  if (!enabled || !native || a.dtype !== "float32" || b.dtype !== "float32" || !p) return false;
  if (p.m === 0 || p.n === 0 || p.k === 0) return false;
  return p.wasmWrong || p.m * p.n * p.k * p.aIdx.length >= minWork;
}

type KernelArgs = {
  inputs: Record<string, tf.TensorInfo | undefined>;
  backend: unknown;
  attrs?: Record<string, unknown>;
};

function batchMatMulKernel(orig: tf.KernelFunc) {
  return (args: KernelArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const tA = Boolean(args.attrs?.transposeA), tB = Boolean(args.attrs?.transposeB);
    const p = plan(a.shape, b.shape, tA, tB);
    if (!usable(a, b, p)) {
      blasStats.fallbacks++;
      return orig(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const be = args.backend as WasmBackendLike;
    const out = be.makeOutput(p.outShape, "float32");
    gemm(be, a, b, out, p, tA, tB);
    return out;
  };
}

/** Bias + activation applied in place to the output rows (n columns). */
function epilogue(
  c: Float32Array,
  n: number,
  bias: Float32Array | null,
  act: string,
  alpha: number,
  prelu: Float32Array | null,
): void {
  const len = c.length;
  if (bias) {
    if (bias.length === 1) {
      const v = bias[0];
      for (let i = 0; i < len; i++) c[i] += v;
    } else {
      for (let r = 0; r < len; r += n) {
        for (let j = 0; j < n; j++) c[r + j] += bias[j];
      }
    }
  }
  switch (act) {
    case "linear":
      return;
    case "relu":
      for (let i = 0; i < len; i++) if (c[i] < 0) c[i] = 0;
      return;
    case "relu6":
      for (let i = 0; i < len; i++) c[i] = c[i] < 0 ? 0 : c[i] > 6 ? 6 : c[i];
      return;
    case "leakyrelu":
      for (let i = 0; i < len; i++) if (c[i] < 0) c[i] *= alpha;
      return;
    case "elu":
      for (let i = 0; i < len; i++) if (c[i] < 0) c[i] = Math.expm1(c[i]);
      return;
    case "sigmoid":
      for (let i = 0; i < len; i++) c[i] = 1 / (1 + Math.exp(-c[i]));
      return;
    case "prelu": {
      const w = prelu!;
      if (w.length === 1) {
        for (let i = 0; i < len; i++) if (c[i] < 0) c[i] *= w[0];
      } else {
        for (let r = 0; r < len; r += n) {
          for (let j = 0; j < n; j++) if (c[r + j] < 0) c[r + j] *= w[j];
        }
      }
      return;
    }
  }
}

const FUSED_ACTS = new Set(["linear", "relu", "relu6", "leakyrelu", "elu", "sigmoid", "prelu"]);

function fusedMatMulKernel(orig: tf.KernelFunc) {
  return (args: KernelArgs) => {
    const { a, b, bias, preluActivationWeights: pw } = args.inputs as Record<
      string,
      tf.TensorInfo | undefined
    >;
    const at = args.attrs ?? {};
    const tA = Boolean(at.transposeA), tB = Boolean(at.transposeB);
    const act = (at.activation as string | undefined) ?? "linear";
    const p = plan(a!.shape, b!.shape, tA, tB);
    const vecOk = (t: tf.TensorInfo | undefined, n: number) => {
      if (!t) return true;
      const size = t.shape.reduce((x, y) => x * y, 1);
      return t.dtype === "float32" && (size === 1 || (size === n && t.shape.at(-1) === n));
    };
    const ok = usable(a!, b!, p) && FUSED_ACTS.has(act) && vecOk(bias, p.n) &&
      (act !== "prelu" || (pw !== undefined && vecOk(pw, p.n)));
    if (!ok) {
      blasStats.fallbacks++;
      return orig(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const be = args.backend as WasmBackendLike;
    const pl = p as Plan;
    const out = be.makeOutput(pl.outShape, "float32");
    gemm(be, a!, b!, out, pl, tA, tB);
    if (bias || act !== "linear") {
      const buf = be.wasm.HEAPU8.buffer;
      const view = (t: tf.TensorInfo) =>
        new Float32Array(
          buf,
          be.dataIdMap.get(t.dataId).memoryOffset,
          t.shape.reduce((x, y) => x * y, 1),
        );
      epilogue(
        view(out),
        pl.n,
        bias ? view(bias) : null,
        act,
        Number(at.leakyreluAlpha ?? 0.2),
        pw ? view(pw) : null,
      );
    }
    return out;
  };
}

/** A heap buffer of ones (float32) for the column sums of {@linkcode sumKernel}. */
let ones = { ptr: 0, n: 0 };

interface WasmAlloc {
  _malloc(n: number): number;
  _free(p: number): void;
}

/** Address of at least `n` float32 ones on the heap (grown by doubling, never shrunk). */
function onesAt(be: WasmBackendLike, n: number): number {
  const wasm = be.wasm as unknown as WasmAlloc & { HEAPU8: Uint8Array };
  if (ones.n < n) {
    if (ones.ptr) wasm._free(ones.ptr);
    const size = Math.max(n, 2 * ones.n);
    ones = { ptr: wasm._malloc(4 * size) >>> 0, n: size };
    new Float32Array(wasm.HEAPU8.buffer, ones.ptr, size).fill(1);
  }
  return ones.ptr;
}

/**
 * `Sum` over the leading axes (the bias gradients of every layer: [B, T, C] → [C]) as one
 * product with a row of ones. tfjs-wasm reduces only the innermost axes, so it first transposes
 * the whole input (measured 230 ms for [12000, 2048] against 26 ms for the product). Other
 * reductions go to the original kernel.
 */
function sumKernel(orig: tf.KernelFunc) {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const rank = x.shape.length;
    const raw = args.attrs?.axis as number | number[] | null | undefined;
    // No axis: every axis (the original kernel's case).
    const given = raw == null ? x.shape.map((_, i) => i) : Array.isArray(raw) ? raw : [raw];
    const axes = [...new Set(given.map((a) => (a + rank) % rank))].sort((a, b) => a - b);
    const lead = axes.length;
    const leading = lead > 0 && lead < rank && axes.every((a, i) => a === i);
    const n = x.shape.slice(0, lead).reduce((a, b) => a * b, 1);
    const c = x.shape.slice(lead).reduce((a, b) => a * b, 1);
    if (!enabled || !native || x.dtype !== "float32" || !leading || n < 2 || c === 0) {
      return orig(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const be = args.backend as WasmBackendLike;
    const keep = Boolean(args.attrs?.keepDims);
    const out = be.makeOutput(
      keep ? x.shape.map((d, i) => (i < lead ? 1 : d)) : x.shape.slice(lead),
      "float32",
    );
    const pOnes = onesAt(be, n);
    const base = heapBase(be);
    native.sgemm(
      NO_TRANS,
      NO_TRANS,
      1,
      c,
      n,
      1,
      base + pOnes,
      n,
      base + be.dataIdMap.get(x.dataId).memoryOffset,
      c,
      0,
      base + be.dataIdMap.get(out.dataId).memoryOffset,
      c,
    );
    blasStats.sgemmCalls++;
    return out;
  };
}

/**
 * Re-registers `BatchMatMul`, `_FusedMatMul` and `Sum` of the `wasm` backend so that they
 * call BLAS, and switches them on. The tfjs-wasm module must be loaded first and the library
 * opened with {@linkcode loadBlas}. Idempotent.
 */
export function installBlasKernels(): void {
  if (!native) throw new Error("installBlasKernels: no BLAS library loaded");
  if (!installed) {
    for (
      const [name, make] of [
        ["BatchMatMul", batchMatMulKernel],
        ["_FusedMatMul", fusedMatMulKernel],
        ["Sum", sumKernel],
      ] as const
    ) {
      const cfg = tf.getKernel(name, "wasm");
      if (!cfg) throw new Error(`installBlasKernels: tfjs-wasm has no ${name} kernel`);
      tf.unregisterKernel(name, "wasm");
      tf.registerKernel({
        kernelName: name,
        backendName: "wasm",
        kernelFunc: make(cfg.kernelFunc) as unknown as tf.KernelFunc,
        setupFunc: cfg.setupFunc,
        disposeFunc: cfg.disposeFunc,
      });
    }
    installed = true;
  }
  enabled = true;
}

/**
 * `op(a) @ op(b)` for rank-2 or batched operands, where `op` transposes the last two axes
 * when asked. With BLAS the transposes are sgemm flags (free); on plain wasm they are explicit
 * `tf.transpose` calls followed by a plain matMul, because tfjs-wasm's own transposed matMul
 * is ~10x slower. Used by the custom gradients of the im2col convolutions.
 */
export function matMulT<R extends tf.Tensor>(
  a: tf.Tensor,
  b: tf.Tensor,
  transposeA: boolean,
  transposeB: boolean,
): R {
  if (blasActive()) return tf.matMul(a, b, transposeA, transposeB) as R;
  const sw = (t: tf.Tensor) => {
    const perm = t.shape.map((_, i) => i);
    const r = perm.length;
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    return tf.transpose(t, perm);
  };
  return tf.matMul(transposeA ? sw(a) : a, transposeB ? sw(b) : b) as R;
}
