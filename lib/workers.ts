/**
 * How many threads of computation the student stage may use: the main thread plus
 * `workers - 1` Web Workers (`stages/training/pool.ts`). Set with `--workers N` or the
 * `FUSTAL_WORKERS` environment variable; `1` (or `0`) runs everything on the main thread, as
 * before workers existed.
 *
 * Default: the machine's logical cores, at most {@linkcode MAX_DEFAULT_WORKERS}, under Deno and
 * Bun; 1 elsewhere and inside a worker. Every worker holds its own tfjs-wasm module (its own
 * heap, up to 4 GB, and a copy of the weights), so the default stops at four; the work that goes
 * to workers (micro-batches of a step, videos of a detection pass) rarely has more independent
 * parts than that at the CPU presets.
 *
 * @module
 */
import { InputError } from "./errors.ts";

/** The machine's logical cores as the runtime reports them (`navigator.hardwareConcurrency`), at least 1. */
export function logicalCores(): number {
  const n = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)
    ?.hardwareConcurrency;
  return n && n > 0 ? n : 1;
}

/** The `--workers` flag of the commands that train a student (`node:util` parseArgs form). */
export const WORKER_FLAGS = { workers: { type: "string" } } as const;

/** Usage lines of {@linkcode WORKER_FLAGS}. */
export const WORKERS_USAGE =
  `  --workers N           threads of the student stage on wasm (detection passes, micro-batches):
                        the main thread + N-1 workers (default: FUSTAL_WORKERS, else the
                        cores, at most 4; 1: no workers)`;

/** Largest worker count chosen by default (an explicit setting may be higher). */
export const MAX_DEFAULT_WORKERS = 4;

let explicit: number | undefined;

function envWorkers(): string | undefined {
  try {
    const d = (globalThis as { Deno?: { env: { get(k: string): string | undefined } } }).Deno;
    if (d) return d.env.get("FUSTAL_WORKERS");
    const p = (globalThis as { process?: { env: Record<string, string | undefined> } }).process;
    return p?.env.FUSTAL_WORKERS;
  } catch {
    return undefined;
  }
}

/**
 * Parses a worker count (`--workers` or `FUSTAL_WORKERS`, named by `source`): a
 * non-negative integer; 0 means 1. Anything else is an {@linkcode InputError}.
 */
export function parseWorkers(source: string, value: unknown): number {
  const n = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 0) {
    throw new InputError(`${source}: must be a non-negative integer, got "${String(value)}"`);
  }
  return Math.max(1, n);
}

/** Sets the worker count (`--workers N`); undefined goes back to `FUSTAL_WORKERS` / the default. */
export function setWorkers(n: number | undefined): void {
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
    throw new InputError(`--workers: must be a non-negative integer, got ${n}`);
  }
  explicit = n === undefined ? undefined : Math.max(1, n);
}

/** Whether this runtime can run the toolkit's module workers (Deno's or Bun's main thread). */
export function workersSupported(): boolean {
  const g = globalThis as { Deno?: unknown; Bun?: unknown; Worker?: unknown };
  // `WorkerGlobalScope` exists inside workers only: workers never start workers of their own.
  const inWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
    "undefined";
  return Boolean(g.Deno || g.Bun) && typeof g.Worker === "function" && !inWorker;
}

/**
 * The worker count in force: `--workers`, else `FUSTAL_WORKERS`, else the default (cores, at
 * most {@linkcode MAX_DEFAULT_WORKERS}). Always 1 where workers are not supported.
 */
export function workerCount(): number {
  if (!workersSupported()) return 1;
  if (explicit !== undefined) return explicit;
  const env = envWorkers();
  if (env !== undefined && env.trim() !== "") return parseWorkers("FUSTAL_WORKERS", env);
  return Math.min(MAX_DEFAULT_WORKERS, logicalCores());
}
