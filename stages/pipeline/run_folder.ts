/**
 * The names of the files in a run folder, and the check that all of them can be written.
 *
 * Run folder:
 * - `data/` (the synthetic dataset, when no root is given)
 * - `generator/` (generator checkpoints), `proposals.json` (train-video proposals),
 *   `generator_test.json` (the generator's own test detections)
 * - `pseudo_labels.json` (selected proposals)
 * - `student/` (student checkpoints, `epoch_N.ckpt` the kept EMA snapshots),
 *   `detections.json` (final test detections), `detections_fused.json` (those kept by class
 *   fusion, when on), `detections_before_switch.json`,
 *   `detections_epoch_N.json` (each snapshot's test detections)
 * - `metrics.json`, `report.html`, `state.json`
 *
 * @module
 */
import * as path from "node:path";
import { checkOutputs } from "../../lib/io.ts";

/** The files of a run folder (absolute paths). */
export interface RunFiles {
  /** Proposals on the training videos. */
  proposals: string;
  /** The generator's test detections. */
  generatorTest: string;
  /** The selected proposals. */
  pseudoLabels: string;
  /** The student's final test detections. */
  detections: string;
  /** The student's final test detections after class fusion (`stages/fusion.ts`), when on. */
  detectionsFused: string;
  /** The student's test detections at the EMA-teacher switch. */
  detectionsBeforeSwitch: string;
  /** Every figure of the run. */
  metrics: string;
  /** The HTML report. */
  report: string;
  /** Finished stages and their settings. */
  state: string;
}

/** The files of run folder `out`. */
export function runFiles(out: string): RunFiles {
  return {
    proposals: path.join(out, "proposals.json"),
    generatorTest: path.join(out, "generator_test.json"),
    pseudoLabels: path.join(out, "pseudo_labels.json"),
    detections: path.join(out, "detections.json"),
    detectionsFused: path.join(out, "detections_fused.json"),
    detectionsBeforeSwitch: path.join(out, "detections_before_switch.json"),
    metrics: path.join(out, "metrics.json"),
    report: path.join(out, "report.html"),
    state: path.join(out, "state.json"),
  };
}

/** Test detections of the student snapshot kept after `epoch` epochs, in the run folder. */
export function snapshotDetectionsFile(out: string, epoch: number): string {
  return path.join(out, `detections_epoch_${epoch}.json`);
}

/** The checkpoint folder of a trained stage (its plugin's `ctx.outDir`). */
export function stageDir(out: string, stage: "generator" | "student"): string {
  return path.join(out, stage);
}

/** Where the synthetic dataset is written when no root is given. */
export function synthDataDir(out: string): string {
  return path.join(out, "data");
}

/** Fails (one line naming `--out`) unless every output of the run can be written. */
export async function checkRunFolder(out: string, files: RunFiles): Promise<void> {
  await checkOutputs("--out", {
    files: Object.values(files),
    dirs: [out, stageDir(out, "generator"), stageDir(out, "student")],
  });
}
