/**
 * `predict` command (not built yet).
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";

/** Usage text of `predict`. */
export const usage = "predict: not built yet";

/** Runs `predict`; returns the exit code. */
export function run(_args: string[]): Promise<number> {
  return Promise.reject(new InputError("predict: this command is not built yet"));
}
