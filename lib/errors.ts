/**
 * Errors a user can fix (bad file, bad flag, bad plugin). The CLI prints their message as one
 * line and exits with code 2; anything else is a bug and keeps its stack trace.
 *
 * @module
 */

/** A problem with the user's input: reported as one line, exit code 2. */
export class InputError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode = 2;
  /** Creates the error; `message` is printed as-is on one line. */
  constructor(message: string) {
    super(message);
    this.name = "InputError";
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
