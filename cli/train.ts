/**
 * `train` command (not built yet).
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";

/** Usage text of `train`. */
export const usage = "train: not built yet";

/** Runs `train`; returns the exit code. */
export function run(_args: string[]): Promise<number> {
  return Promise.reject(new InputError("train: this command is not built yet"));
}
