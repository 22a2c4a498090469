/**
 * The names of the hyper-parameter presets, one list for every stage and command (each stage
 * defines its values under these names: `stages/generation/presets.ts`,
 * `stages/training/presets.ts`).
 *
 * - `default`: sized for the one-command synthetic run on a CPU.
 * - `reference`: the published method at reduced widths and schedule (256-snippet generator,
 *   width-128 student on whole 2304-row windows), faithful in everything else but two measured
 *   choices that `default` shares: the student trains without union labels and its test
 *   detections keep the generator's classes; about two hours on a 2-core CPU at THUMOS'14
 *   scale (`bench/BENCH-training.md`).
 * - `paper`: the published values.
 *
 * @module
 */
import { InputError } from "./errors.ts";

/** Every preset name, smallest first. */
export const PRESET_NAMES: readonly PresetName[] = ["default", "reference", "paper"];

/** A preset name. */
export type PresetName = "default" | "reference" | "paper";

/** `name` as a preset name, or an InputError naming `where` (a flag or option) and the choices. */
export function presetName(name: unknown, where = "--preset"): PresetName {
  if (typeof name === "string" && (PRESET_NAMES as readonly string[]).includes(name)) {
    return name as PresetName;
  }
  throw new InputError(
    `${where}: unknown preset ${JSON.stringify(name)} (use ${PRESET_NAMES.join(", ")})`,
  );
}
