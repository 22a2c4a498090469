/**
 * The generation, selection and training stages of a run: each loads its output from the run
 * folder when a resumed run finished it with the same settings, and otherwise calls its plugin
 * (resolved by the registry, called through its guard, its output checked), writes the output
 * atomically and records itself in `state.json`.
 *
 * @module
 */
import * as path from "node:path";
import type { BackendInfo } from "../../lib/backend.ts";
import { exists } from "../../lib/io.ts";
import type { Detection } from "../../lib/types.ts";
import type {
  CurvePoint,
  GeneratorResult,
  StageContext,
  StudentResult,
} from "../../lib/plugin_types.ts";
import type { Dataset } from "../../datasets/types.ts";
import { callPlugin, getPlugin, videoSpans } from "../../registry.ts";
import { readResultsFile, writeResultsFile } from "../evaluation.ts";
import { selectProposals } from "../selection.ts";
import type { FuSTALConfig, RunSettings } from "./config.ts";
import { type RunFiles, runFiles, snapshotDetectionsFile, stageDir } from "./run_folder.ts";
import { readStageStates, type RunState } from "./state.ts";

/** What every stage of a run needs: its config and settings, files, state and backend. */
export interface StageRun extends RunSettings {
  /** The run's configuration. */
  config: FuSTALConfig;
  /** The run folder's files. */
  files: RunFiles;
  /** The run's finished-stage bookkeeping. */
  state: RunState;
  /** The initialised compute backend. */
  backend: BackendInfo;
}

/** The context a plugin of `stage` runs with (its checkpoints go to `<out>/<stage>`). */
function ctxFor(
  run: StageRun,
  stage: "generator" | "student",
  options: Record<string, unknown>,
  resume: boolean,
): StageContext {
  return {
    options,
    seed: run.seed,
    backend: run.backend,
    outDir: stageDir(run.out, stage),
    resume,
    log: run.log,
    progress: run.progress,
  };
}

/**
 * Generation: proposals on the training videos and detections on the test videos of `gen`,
 * from the generator plugin, or reused from `config.reuseGenerationFrom`, or loaded on resume.
 */
export async function generationStage(run: StageRun, gen: Dataset): Promise<GeneratorResult> {
  const { config, files, state, log } = run;
  const genName = run.names.generator;
  const t0 = performance.now();
  const reuse = config.reuseGenerationFrom ? path.resolve(config.reuseGenerationFrom) : null;
  if (
    reuse || (state.isDone("generation") && await exists(files.proposals) &&
      await exists(files.generatorTest))
  ) {
    const from = reuse ? runFiles(reuse) : files;
    const prevExtra = reuse
      ? (await readStageStates(from.state)).generation?.extra
      : state.extra("generation");
    const genResult: GeneratorResult = {
      train: await readResultsFile(from.proposals),
      test: await readResultsFile(from.generatorTest),
      curves: prevExtra?.curves as Record<string, CurvePoint[]> | undefined,
      info: prevExtra?.info as Record<string, unknown> | undefined,
    };
    if (reuse) {
      await writeResultsFile(files.proposals, genResult.train, `[Generator] ${genName}`);
      await writeResultsFile(files.generatorTest, genResult.test, `[Generator] ${genName}`);
      await state.finish("generation", performance.now(), prevExtra);
    }
    log(`generation: loaded from ${from.proposals}`);
    return genResult;
  }
  const generator = await getPlugin("generator", genName);
  const genCtx = ctxFor(run, "generator", {
    preset: run.preset,
    crossVideo: config.crossVideo ?? true,
    ...config.generatorOptions,
  }, await state.start("generation"));
  const genResult = await callPlugin(
    generator,
    "generate",
    () => generator.generate(gen, genCtx),
    { videos: videoSpans(gen) },
  );
  await writeResultsFile(files.proposals, genResult.train, `[Generator] ${genName}`);
  await writeResultsFile(files.generatorTest, genResult.test, `[Generator] ${genName}`);
  // Later stages depend on these proposals: they must run again.
  state.invalidate("selection", "training");
  await state.finish("generation", t0, { curves: genResult.curves, info: genResult.info });
  return genResult;
}

/** Selection: the filter plugin's pick of the training `proposals` (the pseudo labels). */
export async function selectionStage(
  run: StageRun,
  gen: Dataset,
  proposals: Detection[],
): Promise<Detection[]> {
  const { config, files, state } = run;
  const filterName = run.names.filter;
  const t0 = performance.now();
  if (state.isDone("selection") && await exists(files.pseudoLabels)) {
    return await readResultsFile(files.pseudoLabels);
  }
  const filter = await getPlugin("filter", filterName);
  const videos = new Map(gen.list("train").map((m) => [m.id, m]));
  const pseudo = await selectProposals(proposals, filter, {
    options: config.filterOptions ?? {},
    videos,
  });
  await writeResultsFile(files.pseudoLabels, pseudo, `[Pseudo labels] ${filterName}`);
  state.invalidate("training");
  await state.finish("selection", t0);
  return pseudo;
}

/** Loads a finished training stage's detections (final, before the switch, snapshots). */
async function loadTraining(run: StageRun): Promise<StudentResult> {
  const { files, state } = run;
  const extra = state.extra("training");
  const stuResult: StudentResult = {
    test: await readResultsFile(files.detections),
    testBeforeSwitch: await exists(files.detectionsBeforeSwitch)
      ? await readResultsFile(files.detectionsBeforeSwitch)
      : undefined,
    curves: extra?.curves as Record<string, CurvePoint[]> | undefined,
    info: extra?.info as Record<string, unknown> | undefined,
  };
  const kept = (extra?.snapshots ?? []) as { epoch: number; checkpoint?: string }[];
  if (kept.length) {
    stuResult.snapshots = [];
    for (const k of kept) {
      stuResult.snapshots.push({
        ...k,
        test: await readResultsFile(snapshotDetectionsFile(run.out, k.epoch)),
      });
    }
  }
  return stuResult;
}

/**
 * Training: the student plugin trained on `stu` with the `pseudo` labels, its test detections
 * (final, before the EMA switch, each kept snapshot) written to the run folder.
 */
export async function trainingStage(
  run: StageRun,
  stu: Dataset,
  pseudo: Detection[],
): Promise<StudentResult> {
  const { config, files, state } = run;
  const stuName = run.names.student;
  const t0 = performance.now();
  if (state.isDone("training") && await exists(files.detections)) return await loadTraining(run);
  const student = await getPlugin("student", stuName);
  const stuCtx = ctxFor(
    run,
    "student",
    { preset: run.preset, ema: config.ema ?? true, ...config.studentOptions },
    await state.start("training"),
  );
  const stuResult = await callPlugin(
    student,
    "train",
    () => student.train(stu, pseudo, stuCtx),
    { videos: videoSpans(stu) },
  );
  await writeResultsFile(files.detections, stuResult.test, `[Student] ${stuName}`);
  if (stuResult.testBeforeSwitch) {
    await writeResultsFile(
      files.detectionsBeforeSwitch,
      stuResult.testBeforeSwitch,
      `[Student before EMA switch] ${stuName}`,
    );
  }
  for (const k of stuResult.snapshots ?? []) {
    await writeResultsFile(
      snapshotDetectionsFile(run.out, k.epoch),
      k.test,
      `[Student, epoch ${k.epoch}] ${stuName}`,
    );
  }
  await state.finish("training", t0, {
    curves: stuResult.curves,
    info: stuResult.info,
    snapshots: stuResult.snapshots?.map((k) => ({ epoch: k.epoch, checkpoint: k.checkpoint })),
  });
  return stuResult;
}
