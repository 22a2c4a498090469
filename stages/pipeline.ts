/**
 * `runFuSTAL(config)`: dataset -> generator -> proposals -> filter -> student -> evaluation,
 * every stage resolved through the plugin registry. Each stage writes its output into the
 * run folder atomically and records itself in `state.json`; with `resume` a finished stage is
 * loaded from its files instead of being run again, and the generator and student resume
 * from their own checkpoints.
 *
 * The parts, one job each, under `stages/pipeline/`: `config.ts` (the config and its
 * defaults), `run_folder.ts` (the run folder's files, output checks), `state.ts`
 * (`state.json`, resume), `data.ts` (datasets, ground truth, test subset), `stages.ts`
 * (generation, selection and training through their plugins), `evaluate.ts` (scores, the
 * result record), `report.ts` (`metrics.json`, `report.html`, the results table).
 *
 * @module
 */
import { type BackendInfo, describeBackend, initBackend } from "../lib/backend.ts";
import * as fs from "node:fs/promises";
import { loadPluginModule } from "../registry.ts";
import { writeResultsFile } from "./evaluation.ts";
import { keepVideoClasses, PRESET_CLASS_FUSION, videoClasses } from "./fusion.ts";
import { type FuSTALConfig, runSettings } from "./pipeline/config.ts";
import { dataStage, scoringPlan } from "./pipeline/data.ts";
import {
  resultRecord,
  scoreGenerator,
  scorePseudoLabels,
  scoreStudent,
} from "./pipeline/evaluate.ts";
import { writeRunReport } from "./pipeline/report.ts";
import type { FuSTALResult } from "./pipeline/result.ts";
import type { Detection } from "../lib/types.ts";
import { checkRunFolder, runFiles } from "./pipeline/run_folder.ts";
import { RunState, stageKeys } from "./pipeline/state.ts";
import {
  generationStage,
  selectionStage,
  type StageRun,
  trainingStage,
} from "./pipeline/stages.ts";

export type { FuSTALConfig } from "./pipeline/config.ts";
export type {
  FuSTALResult,
  MapFigures,
  QualityFigures,
  ScoringSource,
  SnapshotFigures,
} from "./pipeline/result.ts";
export { snapshotDetectionsFile } from "./pipeline/run_folder.ts";
export { restrictTestVideos, writeDefaultDataset } from "./pipeline/data.ts";
export { formatResultsTable, scoringLine } from "./pipeline/report.ts";

/**
 * Runs the whole method and returns every metric. See {@linkcode FuSTALConfig}; the CLI's
 * `run` command is a thin wrapper around this function.
 */
export async function runFuSTAL(config: FuSTALConfig = {}): Promise<FuSTALResult> {
  const settings = runSettings(config);
  const { out, log } = settings;
  const files = runFiles(out);
  // Every output must be writable before any work starts (not at the first checkpoint).
  await checkRunFolder(out, files);
  const keys = stageKeys(config, settings);
  const state = await RunState.open(files.state, keys, config.resume ?? false, out, log);
  const seconds: Record<string, number> = {};
  /** Runs `f` as stage `k`, recording its seconds (those of this invocation). */
  const timed = async <T>(k: string, f: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    const value = await f();
    seconds[k] = (performance.now() - t0) / 1000;
    return value;
  };

  for (const m of config.plugins ?? []) await loadPluginModule(m);

  const backendInfo: BackendInfo = await initBackend(config.backend ?? "auto");
  log(describeBackend(backendInfo));
  const run: StageRun = { ...settings, config, files, state, backend: backendInfo };

  // The stages in order, each timed; a stage's figures are computed right after it.
  const { gen, stu: stuAll } = await timed("data", () => dataStage(config, out, state, log));
  const plan = scoringPlan(gen, stuAll, log);
  const generated = await timed("generation", () => generationStage(run, gen));
  const genTest = scoreGenerator(plan, generated.test);
  const pseudo = await timed("selection", () => selectionStage(run, gen, generated.train));
  const pseudoLabels = scorePseudoLabels(plan, generated.train, pseudo, settings.names.filter, log);
  const trained = await timed("training", () => trainingStage(run, plan.stu, pseudo));
  const fusion = config.classFusion ?? PRESET_CLASS_FUSION[settings.preset];
  const genClasses = videoClasses(generated.test);
  const fuse = (dets: Detection[]) =>
    fusion === "generator" ? keepVideoClasses(dets, genClasses) : dets;
  const student = await timed("evaluation", async () => {
    const figures = scoreStudent(plan, trained, out, log, { mode: fusion, fuse });
    if (fusion === "generator") {
      await writeResultsFile(
        files.detectionsFused,
        fuse(trained.test),
        `[Student, generator classes] ${settings.names.student}`,
      );
    } else {
      // A resumed run that turned fusion off must not leave an earlier run's fused file behind.
      await fs.rm(files.detectionsFused, { force: true });
    }
    return figures;
  });

  const result = resultRecord({
    plan,
    backend: backendInfo,
    gen,
    stu: plan.stu,
    generator: { test: genTest, info: generated.info },
    pseudoLabels,
    student,
    seconds,
    files,
  });
  await writeRunReport(files, result, {
    config,
    settings,
    backend: backendInfo,
    gen,
    generated,
    pseudo,
    trained,
  });
  return result;
}
