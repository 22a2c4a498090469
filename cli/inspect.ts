/**
 * `inspect` command (not built yet).
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";

/** Usage text of `inspect`. */
export const usage = "inspect: not built yet";

/** Runs `inspect`; returns the exit code. */
export function run(_args: string[]): Promise<number> {
  return Promise.reject(new InputError("inspect: this command is not built yet"));
}
