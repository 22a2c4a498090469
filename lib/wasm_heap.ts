/**
 * An exhausted tfjs-wasm heap as a catchable error. tfjs-wasm allocates every tensor with the
 * module's `_malloc`; when the 32-bit heap (at most 4 GB) cannot grow, `_malloc` returns 0 and
 * tfjs writes the tensor at address 0 anyway, which ends later in "memory access out of
 * bounds" or an `Aborted()` of the module. {@linkcode guardWasmHeap} makes that allocation throw
 * a {@linkcode WasmHeapExhausted} instead, before anything is written; callers turn it into a
 * one-line error naming the setting to lower ({@linkcode isHeapExhausted}).
 *
 * @module
 */
import { tf } from "../deps.ts";

/** Thrown when the wasm heap cannot hold a new tensor. */
export class WasmHeapExhausted extends Error {
  /** Bytes that were asked for. */
  readonly bytes: number;
  /** Creates the error for an allocation of `bytes`. */
  constructor(bytes: number) {
    super(`the wasm heap is exhausted (allocating ${(bytes / 2 ** 20).toFixed(1)} MiB)`);
    this.name = "WasmHeapExhausted";
    this.bytes = bytes;
  }
}

const guarded = new WeakSet<object>();

/**
 * Wraps the wasm backend's `_malloc` so that a failed allocation throws
 * {@linkcode WasmHeapExhausted}. No-op when the wasm backend is not active. Idempotent.
 */
export function guardWasmHeap(): void {
  if (tf.getBackend() !== "wasm") return;
  const wasm = (tf.backend() as unknown as {
    wasm?: { _malloc(n: number): number; _free(p: number): void };
  }).wasm;
  if (!wasm || guarded.has(wasm)) return;
  // Emscripten binds `_malloc` lazily: its first call replaces the property with the raw
  // export, which would drop a wrapper installed before it. Make that first call now.
  wasm._free(wasm._malloc(16));
  const malloc = wasm._malloc.bind(wasm);
  wasm._malloc = (n: number) => {
    // Sizes near or past 4 GB never fit beside the module's own data, and dlmalloc's size
    // arithmetic wraps on them (measured: a 4.28 GB request returned a small block).
    if (n >= 2 ** 32 - 2 ** 26) throw new WasmHeapExhausted(n);
    const p = malloc(n);
    if (p === 0 && n > 0) throw new WasmHeapExhausted(n);
    return p;
  };
  guarded.add(wasm);
}

/**
 * Whether `e` means the wasm heap ran out: a {@linkcode WasmHeapExhausted}, or the raw
 * errors of a heap that failed inside the module (out-of-bounds access, abort, OOM).
 */
export function isHeapExhausted(e: unknown): boolean {
  if (e instanceof WasmHeapExhausted) return true;
  const m = e instanceof Error ? e.message : String(e);
  return /memory access out of bounds|Aborted\(|out of memory|\bOOM\b|Cannot enlarge memory/i
    .test(m);
}
