/**
 * The datasets of a run and the ground truth each stage is scored on.
 *
 * A folder with `cola/` and `actionformer/` feeds the generator from the first and the student
 * from the second; any other root is opened with the configured layout (or a dataset plugin)
 * for both; without a root the synthetic THUMOS'14-shaped set is written first. The evaluation
 * ground truth is the generator dataset's annotation file; its test subset is the test set of
 * every stage.
 *
 * @module
 */
import * as path from "node:path";
import type { GroundTruth } from "../../lib/types.ts";
import type { Dataset, Split } from "../../datasets/types.ts";
import { callPlugin, getPlugin } from "../../registry.ts";
import { groundTruthFromVideos, tiouFor } from "../evaluation.ts";
import type { FuSTALConfig } from "./config.ts";
import type { FuSTALResult } from "./result.ts";
import { synthDataDir } from "./run_folder.ts";
import type { RunState } from "./state.ts";

async function openRoot(
  root: string,
  layout: string | undefined,
  opts: { strict: boolean; onWarning: (line: string) => void },
): Promise<Dataset> {
  const { openDataset, LAYOUTS } = await import("../../datasets.ts");
  if (layout && !(LAYOUTS as readonly string[]).includes(layout)) {
    // A user's dataset plugin (loaded with --plugin): unknown names fail listing the choices.
    const plugin = await getPlugin("dataset", layout);
    return await callPlugin(plugin, "open", () => plugin.open(root, { ...opts }), { where: root });
  }
  return await openDataset(root, { layout, ...opts });
}

/** The annotation file a dataset was read from (its root when it does not say). */
function gtSource(ds: Dataset): string {
  return ds.annotationFile ?? ds.root;
}

/**
 * `ds` with its test split cut down to the videos in `ids` (the evaluation ground truth's
 * test subset): the student predicts on exactly the videos that are scored, so a video the
 * student's annotation file lists but the evaluation ground truth does not (ActionFormer's
 * 212 THUMOS'14 test videos vs CoLA's 210) is neither predicted nor counted.
 */
export function restrictTestVideos(ds: Dataset, ids: ReadonlySet<string>): Dataset {
  const keep = (m: { split: Split; id: string }) => m.split !== "test" || ids.has(m.id);
  const view: Dataset = {
    layout: ds.layout,
    root: ds.root,
    classes: ds.classes,
    featureDim: ds.featureDim,
    annotationFile: ds.annotationFile,
    list: (split?: Split) => ds.list(split).filter(keep),
    load: (id: string) => ds.load(id),
    async *videos(split?: Split) {
      for (const meta of view.list(split)) yield { meta, features: await ds.load(meta.id) };
    },
  };
  return view;
}

/**
 * Writes the embedded synthetic THUMOS'14-shaped dataset (both layouts) into `root`, sized by
 * `config.synth` (default 128-d, all 412 videos) and seeded by `config.seed`.
 */
export async function writeDefaultDataset(root: string, config: FuSTALConfig): Promise<void> {
  const { synthesize } = await import("../../datasets.ts");
  await synthesize({
    out: root,
    like: "thumos14",
    dim: config.synth?.dim ?? 128,
    videos: config.synth?.videos,
    seed: config.seed ?? 0,
    format: (config.synth?.format ?? "npy") as "npy",
  });
}

/** Opens the generator's and the student's datasets from the config. */
async function openDatasets(
  config: FuSTALConfig,
  dataRoot: string,
  log: (line: string) => void,
): Promise<{ gen: Dataset; stu: Dataset }> {
  const opts = { strict: config.strict ?? false, onWarning: (l: string) => log(`warning: ${l}`) };
  const { packageRoots } = await import("../../datasets.ts");
  const pkg = config.layout ? null : await packageRoots(dataRoot);
  const split = pkg !== null;
  const genRoot = config.generatorRoot ?? pkg?.generator ?? dataRoot;
  const stuRoot = config.studentRoot ?? pkg?.student ?? dataRoot;
  const gen = await openRoot(
    genRoot,
    split || config.generatorRoot ? undefined : config.layout,
    opts,
  );
  const stu = genRoot === stuRoot
    ? gen
    : await openRoot(stuRoot, split || config.studentRoot ? undefined : config.layout, opts);
  return { gen, stu };
}

/**
 * The data stage: writes the synthetic dataset into the run folder `out` when no root is given
 * (unless a resumed run already has it), then opens the generator's and the student's datasets.
 */
export async function dataStage(
  config: FuSTALConfig,
  out: string,
  state: RunState,
  log: (line: string) => void,
): Promise<{ gen: Dataset; stu: Dataset }> {
  const t0 = performance.now();
  let dataRoot = config.root ? path.resolve(config.root) : synthDataDir(out);
  if (!config.root && !config.generatorRoot) {
    const { packageRoots } = await import("../../datasets.ts");
    const synthDone = state.isDone("data") && await packageRoots(dataRoot) !== null;
    if (!synthDone) {
      log(`data: writing the synthetic THUMOS'14-shaped dataset to ${dataRoot}`);
      await writeDefaultDataset(dataRoot, config);
      await state.finish("data", t0);
    }
  } else if (config.generatorRoot && !config.root) {
    dataRoot = path.resolve(config.generatorRoot);
  }
  return await openDatasets(config, dataRoot, log);
}

/** The ground truth of every stage and the student's view of the test videos. */
export interface ScoringPlan {
  /** The tIoU thresholds of every mAP. */
  tiou: number[];
  /** Ground truth of the train subset (scores proposals and pseudo labels). */
  gtTrain: GroundTruth;
  /** Ground truth of the test subset (scores the generator and the student). */
  gtTest: GroundTruth;
  /** The videos of `gtTest`. */
  testIds: Set<string>;
  /** The student's dataset with its test split cut down to `testIds`. */
  stu: Dataset;
  /** What scored what (for the result record). */
  scoring: FuSTALResult["scoring"];
}

/**
 * The evaluation ground truth (the generator dataset's annotation file, as given: segments past
 * a video's end included, an undetectable instance is a miss, as in the official evaluator) and
 * the student dataset restricted to its test subset; logs the datasets and what scores what.
 */
export function scoringPlan(
  gen: Dataset,
  stuAll: Dataset,
  log: (line: string) => void,
): ScoringPlan {
  const tiou = tiouFor(gen.layout, gen.classes.length);
  const gtTrain = groundTruthFromVideos(gen.list("train"));
  const gtTest = groundTruthFromVideos(gen.list("test"));
  const testIds = new Set(gtTest.videos);
  const stu = restrictTestVideos(stuAll, testIds);
  const stuTest = stu.list("test").length;
  const gtFile = gtSource(gen);
  const scoring: FuSTALResult["scoring"] = {
    generator: { gt: gtFile, subset: "test", videos: testIds.size },
    pseudoLabels: { gt: gtFile, subset: "train", videos: gtTrain.videos.length },
    student: { gt: gtFile, subset: "test", videos: testIds.size, predicted: stuTest },
  };
  log(
    `data: generator ${gen.layout} (${gen.list("train").length} train / ${
      gen.list("test").length
    } test videos, ${gen.featureDim}-d), student ${stu.layout} (${stu.featureDim}-d), ${gen.classes.length} classes`,
  );
  const extra = stuAll.list("test").length - stuTest;
  log(
    `scoring: the generator and the student (test) against ${gtFile}, test subset ` +
      `(${testIds.size} videos); proposals and pseudo labels against its train subset ` +
      `(${gtTrain.videos.length} videos). The student predicts on the ${stuTest} of those ` +
      `test videos that ${gtSource(stuAll)} has` +
      (extra ? ` (its ${extra} other test video(s) are not predicted)` : "") +
      (stuTest < testIds.size
        ? `; ${testIds.size - stuTest} without student features count as misses`
        : ""),
  );
  return { tiou, gtTrain, gtTest, testIds, stu, scoring };
}
