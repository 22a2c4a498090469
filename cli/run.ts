/**
 * `run` command (not built yet).
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";

/** Usage text of `run`. */
export const usage = "run: not built yet";

/** Runs `run`; returns the exit code. */
export function run(_args: string[]): Promise<number> {
  return Promise.reject(new InputError("run: this command is not built yet"));
}
