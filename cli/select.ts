/**
 * `select` command (not built yet).
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";

/** Usage text of `select`. */
export const usage = "select: not built yet";

/** Runs `select`; returns the exit code. */
export function run(_args: string[]): Promise<number> {
  return Promise.reject(new InputError("select: this command is not built yet"));
}
