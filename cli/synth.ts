/**
 * `synth` command (not built yet).
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";

/** Usage text of `synth`. */
export const usage = "synth: not built yet";

/** Runs `synth`; returns the exit code. */
export function run(_args: string[]): Promise<number> {
  return Promise.reject(new InputError("synth: this command is not built yet"));
}
