// Where the workspace's real data files are (outside this repository) and whether this clone
// can see them. Tests that read them are registered with `ignore: skipWithoutSharedData(...)`,
// which prints why they are skipped, so a clone outside the workspace still passes.
import { existsSync } from "node:fs";
import * as path from "node:path";

/** The folder of real annotation/result files, beside the repository root. */
export const SHARED_DATA = path.resolve(import.meta.dirname!, "../../shared/data");

/** Whether `SHARED_DATA` exists on this machine. */
export const HAVE_SHARED_DATA = existsSync(SHARED_DATA);

/** True (skip) when the real data is absent, after printing one line saying so. */
export function skipWithoutSharedData(test: string): boolean {
  if (!HAVE_SHARED_DATA) console.log(`SKIP ${test}: ${SHARED_DATA} is absent (real data files)`);
  return !HAVE_SHARED_DATA;
}
