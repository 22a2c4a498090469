/**
 * `generate` command (not built yet).
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";

/** Usage text of `generate`. */
export const usage = "generate: not built yet";

/** Runs `generate`; returns the exit code. */
export function run(_args: string[]): Promise<number> {
  return Promise.reject(new InputError("generate: this command is not built yet"));
}
