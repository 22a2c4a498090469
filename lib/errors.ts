/**
 * Errors a user can fix (bad file, bad flag, bad plugin). The CLI prints their message as one
 * line and exits with their exit code (2 for bad input); anything else is a bug and keeps its
 * stack trace. {@linkcode userError} turns the file-system errors a user can cause (a folder
 * where a file goes, a read-only or full disk) into such one-line errors naming the path.
 *
 * @module
 */

/** Exit code of bad input (a file, a flag, a plugin). */
export const EXIT_INPUT = 2;
/** Exit code of a training run that diverged (non-finite or exploding loss). */
export const EXIT_DIVERGED = 3;

/** A problem with the user's input: reported as one line, exit code 2 (or `exitCode`). */
export class InputError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;
  /** Creates the error; `message` is printed as-is on one line. */
  constructor(message: string, exitCode = EXIT_INPUT) {
    super(message);
    this.name = "InputError";
    this.exitCode = exitCode;
  }
}

/**
 * Training diverged: the loss became non-finite or exploded. The message names the stage, the
 * step and the loss; the CLI exits with {@linkcode EXIT_DIVERGED}.
 */
export class DivergenceError extends InputError {
  /** Creates the error for `stage` at `step` with `loss`. */
  constructor(stage: string, step: number, loss: number, hint = "") {
    super(
      `${stage}: training diverged at step ${step} (loss ${loss}); try a lower learning rate ` +
        `(--lr)${hint ? `; ${hint}` : ""}`,
      EXIT_DIVERGED,
    );
    this.name = "DivergenceError";
  }
}

/**
 * Watches a training loss step by step: a non-finite loss (or gradient norm), or a loss more
 * than `factor` times the largest of 1 and the first loss seen, is divergence. `check` throws
 * a {@linkcode DivergenceError} naming the stage, the step and the loss; callers check before
 * they write any checkpoint of that step, so the last checkpoint on disk stays a good one.
 */
export class LossWatch {
  #stage: string;
  #factor: number;
  #first: number | undefined;
  /** Watches the loss of `stage` (e.g. "generator"); explosion is `factor` x the first loss. */
  constructor(stage: string, factor = 1e4) {
    this.#stage = stage;
    this.#factor = factor;
  }
  /** The last loss checked (NaN before the first). */
  last = NaN;
  /** Throws a {@linkcode DivergenceError} when `loss` (or `gradNorm`) shows divergence. */
  check(step: number, loss: number, gradNorm = 0): void {
    this.last = loss;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new DivergenceError(
        this.#stage,
        step,
        loss,
        Number.isFinite(loss) ? `gradient norm ${gradNorm}` : "",
      );
    }
    this.#first ??= Math.abs(loss);
    if (Math.abs(loss) > this.#factor * Math.max(1, this.#first)) {
      throw new DivergenceError(
        this.#stage,
        step,
        loss,
        `the loss exploded from ${this.#first.toPrecision(4)}`,
      );
    }
  }
}

/**
 * Throws an {@linkcode InputError} naming `what` when `options` has a key outside `allowed`
 * (a misspelt option would otherwise be ignored without a word).
 */
export function rejectUnknownKeys(
  options: object,
  allowed: readonly string[],
  what: string,
): void {
  const unknown = Object.keys(options).filter((k) => !allowed.includes(k));
  if (unknown.length) {
    throw new InputError(
      `${what}: unknown option${unknown.length > 1 ? "s" : ""} ${
        unknown.map((k) => JSON.stringify(k)).join(", ")
      } (known: ${allowed.join(", ")})`,
    );
  }
}

/** True for errors that should be reported as a one-line user error. */
export function isInputError(e: unknown): e is InputError {
  return e instanceof InputError;
}

const FS_REASONS: Record<string, string> = {
  ENOENT: "no such file or folder",
  EISDIR: "is a folder, expected a file",
  ENOTDIR: "a part of the path is a file, expected a folder",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EEXIST: "already exists",
  ENAMETOOLONG: "name too long",
  EMFILE: "too many open files",
};

const DENO_REASONS: Record<string, string> = {
  NotFound: "ENOENT",
  IsADirectory: "EISDIR",
  NotADirectory: "ENOTDIR",
  PermissionDenied: "EACCES",
  AlreadyExists: "EEXIST",
};

/** The one-line reason of a file-system error (`code` of node:fs, or a Deno error class). */
export function fsReason(e: unknown): string | undefined {
  const err = e as { code?: unknown; name?: unknown; message?: unknown } | null;
  let code = typeof err?.code === "string" ? err.code : undefined;
  if (!code && typeof err?.name === "string") code = DENO_REASONS[err.name];
  if (!code && typeof err?.message === "string") {
    code = Object.keys(FS_REASONS).find((c) => (err.message as string).includes(c));
  }
  return code ? FS_REASONS[code] : undefined;
}

/**
 * The user error `e` stands for, or undefined when it is a bug: an {@linkcode InputError} as
 * it is, a file-system error (with its path) as one line naming the path and the reason.
 */
export function userError(e: unknown): InputError | undefined {
  if (isInputError(e)) return e;
  const reason = fsReason(e);
  if (reason === undefined) return undefined;
  const p = (e as { path?: unknown }).path;
  const msg = String((e as Error)?.message ?? e).split("\n")[0];
  // Deno's messages carry the path after a comma: "Is a directory (os error 21): open 'x'".
  const quoted = /'([^']+)'/.exec(msg)?.[1];
  const where = typeof p === "string" ? p : quoted;
  return new InputError(where ? `${where}: ${reason}` : `${reason} (${msg})`);
}
