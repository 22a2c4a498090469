/**
 * `runFuSTAL(config)`: dataset -> generator -> proposals -> filter -> student -> evaluation,
 * every stage resolved through the plugin registry. Each stage writes its output into the
 * run folder atomically and records itself in `state.json`; with `resume` a finished stage is
 * loaded from its files instead of being run again, and the generator and student resume
 * from their own checkpoints.
 *
 * Run folder:
 * - `data/` (the synthetic dataset, when no root is given)
 * - `generator/` (generator checkpoints), `proposals.json` (train-video proposals),
 *   `generator_test.json` (the generator's own test detections)
 * - `pseudo_labels.json` (selected proposals)
 * - `student/` (student checkpoints, `epoch_N.ckpt` the kept EMA snapshots),
 *   `detections.json` (final test detections), `detections_before_switch.json`,
 *   `detections_epoch_N.json` (each snapshot's test detections)
 * - `metrics.json`, `report.html`, `state.json`
 *
 * @module
 */
import * as path from "node:path";
import {
  type BackendInfo,
  type BackendName,
  describeBackend,
  initBackend,
} from "../lib/backend.ts";
import { rejectUnknownKeys } from "../lib/errors.ts";
import { atomicWrite, atomicWriteJson, checkOutputs, exists, readJson } from "../lib/io.ts";
import type { Detection } from "../lib/types.ts";
import type {
  CurvePoint,
  GeneratorResult,
  ProgressSink,
  StageContext,
  StudentResult,
} from "../lib/plugin_types.ts";
import type { Dataset, Split } from "../datasets/types.ts";
import {
  checkPluginOutput,
  DEFAULT_PLUGINS,
  getPlugin,
  guardPluginCall,
  loadPluginModule,
} from "../registry.ts";
import {
  evaluateDetections,
  groundTruthFromVideos,
  readResultsFile,
  tiouFor,
  writeResultsFile,
} from "./evaluation.ts";
import { groupByVideo, pseudoLabelQuality, selectProposals } from "./selection.ts";
import {
  type CurveAxes,
  renderReport,
  type ReportHeader,
  type VideoTimeline,
} from "../lib/report.ts";
import { VERSION } from "../lib/version.ts";

/** Configuration of {@linkcode runFuSTAL}; every field is optional. */
export interface FuSTALConfig {
  /**
   * Dataset root. A folder holding `cola/` and `actionformer/` (what `synth` writes) feeds
   * the generator from `cola/` and the student from `actionformer/`; any other folder is
   * opened with `layout` (auto-detected when omitted) for both stages. Omitted: the embedded
   * synthetic THUMOS'14-shaped set is written into `<out>/data` first.
   */
  root?: string;
  /** Layout of `root` (`actionformer`, `cola`, `activitynet`, or a dataset plugin's name). */
  layout?: string;
  /** Separate root for the generator (overrides the split of `root`). */
  generatorRoot?: string;
  /** Separate root for the student. */
  studentRoot?: string;
  /**
   * Make the dataset warnings errors: segments past their video's end (or of zero length) and
   * annotated videos without a feature file (default: one warning line each per file).
   */
  strict?: boolean;
  /** Run folder (default `runs/default`). */
  out?: string;
  /** Skip finished stages and continue from checkpoints. */
  resume?: boolean;
  /** Compute backend (default `auto`). */
  backend?: BackendName;
  /** Hyper-parameter preset: `default` (fits a CPU) or `paper` (published values). */
  preset?: "default" | "paper";
  /** Seed of every random stream (default 0). */
  seed?: number;
  /** Synthetic dataset options (when `root` is omitted). */
  synth?: { dim?: number; videos?: number; format?: string };
  /** Generator plugin name (default `cola-xv`). */
  generator?: string;
  /** Generator plugin options. */
  generatorOptions?: Record<string, unknown>;
  /** Cross-video contrast in the generator (default true). */
  crossVideo?: boolean;
  /** Filter plugin name (default `prior`). */
  filter?: string;
  /** Filter plugin options (e.g. `gamma`, `eta`). */
  filterOptions?: Record<string, unknown>;
  /** Student plugin name (default `tridet-ema`). */
  student?: string;
  /** Student plugin options. */
  studentOptions?: Record<string, unknown>;
  /** EMA-teacher distillation in the student (default true). */
  ema?: boolean;
  /**
   * A finished run folder whose generation outputs (`proposals.json`, `generator_test.json`)
   * are reused instead of training a generator (the ablation shares generators this way).
   */
  reuseGenerationFrom?: string;
  /** Plugin modules (paths or URLs) to load first. */
  plugins?: string[];
  /** The command line that started the run, for the report header (default: the call). */
  command?: string;
  /** Log sink (default: stderr). */
  onLog?: (line: string) => void;
  /** Progress indicator factory (default: none). */
  progress?: (label: string, total: number) => ProgressSink;
}

// Every key of FuSTALConfig (the compiler checks the list is complete): others are an error.
const CONFIG_KEYS: Record<keyof FuSTALConfig, true> = {
  root: true,
  strict: true,
  layout: true,
  generatorRoot: true,
  studentRoot: true,
  out: true,
  resume: true,
  backend: true,
  preset: true,
  seed: true,
  synth: true,
  generator: true,
  generatorOptions: true,
  crossVideo: true,
  filter: true,
  filterOptions: true,
  student: true,
  studentOptions: true,
  ema: true,
  reuseGenerationFrom: true,
  plugins: true,
  command: true,
  onLog: true,
  progress: true,
};

/** Quality of a proposal set on the training videos. */
export interface QualityFigures {
  /** mAP per threshold of `FuSTALResult.tiou`. */
  mAP: number[];
  /** Mean of `mAP`. */
  average: number;
  /** Precision at tIoU 0.5 (one-to-one matching). */
  precision: number;
  /** Recall at tIoU 0.5 (one-to-one matching). */
  recall: number;
  /** Number of proposals. */
  proposals: number;
}

/** Test-split figures. */
export interface MapFigures {
  /** mAP per threshold of `FuSTALResult.tiou`. */
  mAP: number[];
  /** Mean of `mAP`. */
  average: number;
}

/** The figures of one kept student snapshot. */
export interface SnapshotFigures extends MapFigures {
  /** Epochs completed when the weights were kept. */
  epoch: number;
  /** Its checkpoint (`student/epoch_N.ckpt`), when the plugin wrote one. */
  checkpoint?: string;
  /** Its test detections (`detections_epoch_N.json`). */
  detections: string;
}

/** Which ground truth scored a stage. */
export interface ScoringSource {
  /** The annotation file (or dataset root when the layout does not say). */
  gt: string;
  /** Subset of that file. */
  subset: "train" | "test";
  /** Videos of the subset (with features) that the stage is scored on. */
  videos: number;
}

/** What {@linkcode runFuSTAL} returns (also written to `metrics.json`). */
export interface FuSTALResult {
  /** Thresholds of every `mAP` list. */
  tiou: number[];
  /** Backend and adapter. */
  backend: { name: string; adapter: string | null; software: boolean | null; reason: string };
  /** Dataset facts. */
  dataset: {
    generator: string;
    student: string;
    layout: string;
    classes: number;
    train: number;
    test: number;
  };
  /** The generator's own test-split figures and the info it reported. */
  generator: { test: MapFigures; info?: Record<string, unknown> };
  /** Quality of the training proposals before and after the filter (named by `filter`). */
  pseudoLabels: { before: QualityFigures; after: QualityFigures; filter: string };
  /**
   * The student's test-split figures (before the EMA switch, final) and the info it reported;
   * `snapshots`: every kept snapshot (oldest first, the last is `final`), `headlineEpoch` the
   * one reported as the result (the last), `bestEpoch` the one with the best average mAP.
   */
  student: {
    beforeSwitch?: MapFigures;
    final: MapFigures;
    snapshots?: SnapshotFigures[];
    headlineEpoch?: number;
    bestEpoch?: number;
    info?: Record<string, unknown>;
  };
  /**
   * What scored what: the evaluation ground truth is the generator dataset's annotation file;
   * its test subset scores the generator and the student (which predicts on exactly those
   * videos), its train subset the proposals and pseudo labels.
   */
  scoring: {
    generator: ScoringSource;
    pseudoLabels: ScoringSource;
    student: ScoringSource & { predicted: number };
  };
  /** Seconds per stage (of this invocation; 0 for stages loaded on resume). */
  seconds: Record<string, number>;
  /** Files written. */
  files: Record<string, string>;
}

interface StageState {
  done: boolean;
  seconds: number;
  /** The settings the stage's output depends on (its own and every earlier stage's). */
  key?: string;
  extra?: Record<string, unknown>;
}

/** Cumulative settings fingerprints of the stages (see `isDone` in {@linkcode runFuSTAL}). */
function stageKeys(config: FuSTALConfig, seed: number, preset: string) {
  const data = JSON.stringify({
    root: config.root,
    layout: config.layout,
    generatorRoot: config.generatorRoot,
    studentRoot: config.studentRoot,
    synth: config.root ? undefined : config.synth,
    seed,
  });
  const generation = JSON.stringify({
    data,
    preset,
    generator: config.generator ?? DEFAULT_PLUGINS.generator,
    crossVideo: config.crossVideo ?? true,
    options: config.generatorOptions ?? {},
    reuse: config.reuseGenerationFrom,
  });
  const selection = JSON.stringify({
    generation,
    filter: config.filter ?? DEFAULT_PLUGINS.filter,
    options: config.filterOptions ?? {},
  });
  const training = JSON.stringify({
    selection,
    student: config.student ?? DEFAULT_PLUGINS.student,
    ema: config.ema ?? true,
    options: config.studentOptions ?? {},
  });
  return { data, generation, selection, training };
}

/** Every video's duration, for checks of what plugins return. */
function spansOf(ds: Dataset): Map<string, { duration: number }> {
  return new Map(ds.list().map((m) => [m.id, { duration: m.duration }]));
}

/** Test detections of the student snapshot kept after `epoch` epochs, in the run folder. */
export function snapshotDetectionsFile(out: string, epoch: number): string {
  return path.join(out, `detections_epoch_${epoch}.json`);
}

function nopProgress(): ProgressSink {
  return { update() {}, done() {} };
}

async function openRoot(
  root: string,
  layout: string | undefined,
  opts: { strict: boolean; onWarning: (line: string) => void },
): Promise<Dataset> {
  const { openDataset, LAYOUTS } = await import("../datasets.ts");
  if (layout && !(LAYOUTS as readonly string[]).includes(layout)) {
    // A user's dataset plugin (loaded with --plugin): unknown names fail listing the choices.
    const plugin = await getPlugin("dataset", layout);
    const ds = await guardPluginCall(plugin, "open", () => plugin.open(root, { ...opts }), root);
    checkPluginOutput(plugin, "open", ds, undefined, root);
    return ds;
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
  const { synthesize } = await import("../datasets.ts");
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
  const { packageRoots } = await import("../datasets.ts");
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

function figures(q: ReturnType<typeof pseudoLabelQuality>): QualityFigures {
  return {
    mAP: q.mAP,
    average: q.average,
    precision: q.precision,
    recall: q.recall,
    proposals: q.proposals,
  };
}

/**
 * Runs the whole method and returns every metric. See {@linkcode FuSTALConfig}; the CLI's
 * `run` command is a thin wrapper around this function.
 */
export async function runFuSTAL(config: FuSTALConfig = {}): Promise<FuSTALResult> {
  rejectUnknownKeys(config, Object.keys(CONFIG_KEYS), "runFuSTAL config");
  const log = config.onLog ?? ((l: string) => console.error(l));
  const progress = config.progress ?? nopProgress;
  const out = path.resolve(config.out ?? "runs/default");
  const seed = config.seed ?? 0;
  const preset = config.preset ?? "default";
  const statePath = path.join(out, "state.json");
  const files = {
    proposals: path.join(out, "proposals.json"),
    generatorTest: path.join(out, "generator_test.json"),
    pseudoLabels: path.join(out, "pseudo_labels.json"),
    detections: path.join(out, "detections.json"),
    detectionsBeforeSwitch: path.join(out, "detections_before_switch.json"),
    metrics: path.join(out, "metrics.json"),
    report: path.join(out, "report.html"),
    state: statePath,
  };
  // Every output must be writable before any work starts (not at the first checkpoint).
  await checkOutputs("--out", {
    files: Object.values(files),
    dirs: [out, path.join(out, "generator"), path.join(out, "student")],
  });
  let state: Record<string, StageState> = {};
  if (config.resume && await exists(statePath)) {
    state = (await readJson(statePath)) as Record<string, StageState>;
    log(
      `resume: finished stages ${
        Object.keys(state).filter((k) => state[k].done).join(", ") || "none"
      }`,
    );
  } else if (!config.resume && await exists(statePath)) {
    log(`note: ${out} holds an earlier run; its stages are recomputed (use --resume to continue)`);
  }
  const keys = stageKeys(config, seed, preset);
  const saveState = () => atomicWriteJson(statePath, state, true);
  /** Records stage `k` as finished (with the settings it ran with) and saves the state. */
  const finishStage = (
    k: "data" | "generation" | "selection" | "training",
    started: number,
    extra?: Record<string, unknown>,
  ) => {
    state[k] = { done: true, seconds: (performance.now() - started) / 1000, key: keys[k], extra };
    return saveState();
  };
  // A stage counts as finished only with the same settings as now (its own and those of the
  // stages before it), so `--resume` after changing, say, the filter redoes selection and
  // training but keeps the generator.
  const isDone = (k: keyof typeof keys) =>
    Boolean(config.resume && state[k]?.done && state[k]?.key === keys[k]);
  const seconds: Record<string, number> = {};

  for (const m of config.plugins ?? []) await loadPluginModule(m);

  const backendInfo: BackendInfo = await initBackend(config.backend ?? "auto");
  log(describeBackend(backendInfo));

  // A plugin may continue from its own checkpoints only when the unfinished stage it left was
  // started with the same settings; the stage is marked started (not done) before it runs.
  const startStage = async (k: "generation" | "training"): Promise<boolean> => {
    const same = Boolean(config.resume && state[k] && state[k].key === keys[k]);
    state[k] = { done: false, seconds: 0, key: keys[k] };
    await saveState();
    return same;
  };
  const ctxFor = (
    stage: string,
    options: Record<string, unknown>,
    resume: boolean,
  ): StageContext => ({
    options,
    seed,
    backend: backendInfo,
    outDir: path.join(out, stage),
    resume,
    log,
    progress,
  });

  // --- data
  let t0 = performance.now();
  let dataRoot = config.root ? path.resolve(config.root) : path.join(out, "data");
  if (!config.root && !config.generatorRoot) {
    const { packageRoots } = await import("../datasets.ts");
    const synthDone = isDone("data") && await packageRoots(dataRoot) !== null;
    if (!synthDone) {
      log(`data: writing the synthetic THUMOS'14-shaped dataset to ${dataRoot}`);
      await writeDefaultDataset(dataRoot, config);
      await finishStage("data", t0);
    }
  } else if (config.generatorRoot && !config.root) {
    dataRoot = path.resolve(config.generatorRoot);
  }
  const { gen, stu: stuAll } = await openDatasets(config, dataRoot, log);
  seconds.data = (performance.now() - t0) / 1000;
  const tious = tiouFor(gen.layout, gen.classes.length);
  // The evaluation ground truth is the generator dataset's annotation file, as given (segments
  // past a video's end included: an undetectable instance is a miss, as in the official
  // evaluator). Its test subset is the test set of every stage.
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

  // --- generation
  const genName = config.generator ?? DEFAULT_PLUGINS.generator;
  let genResult: GeneratorResult;
  t0 = performance.now();
  const reuse = config.reuseGenerationFrom ? path.resolve(config.reuseGenerationFrom) : null;
  if (
    reuse || (isDone("generation") && await exists(files.proposals) &&
      await exists(files.generatorTest))
  ) {
    const from = reuse ?? out;
    const prev = reuse
      ? ((await readJson(path.join(reuse, "state.json"))) as Record<string, StageState>)
      : state;
    genResult = {
      train: await readResultsFile(path.join(from, "proposals.json")),
      test: await readResultsFile(path.join(from, "generator_test.json")),
      curves: prev.generation?.extra?.curves as Record<string, CurvePoint[]> | undefined,
      info: prev.generation?.extra?.info as Record<string, unknown> | undefined,
    };
    if (reuse) {
      await writeResultsFile(files.proposals, genResult.train, `[Generator] ${genName}`);
      await writeResultsFile(files.generatorTest, genResult.test, `[Generator] ${genName}`);
      await finishStage("generation", performance.now(), prev.generation?.extra);
    }
    log(`generation: loaded from ${path.join(from, "proposals.json")}`);
  } else {
    const generator = await getPlugin("generator", genName);
    const genCtx = ctxFor("generator", {
      preset,
      crossVideo: config.crossVideo ?? true,
      ...config.generatorOptions,
    }, await startStage("generation"));
    genResult = await guardPluginCall(generator, "generate", () => generator.generate(gen, genCtx));
    checkPluginOutput(generator, "generate", genResult, spansOf(gen));
    await writeResultsFile(files.proposals, genResult.train, `[Generator] ${genName}`);
    await writeResultsFile(files.generatorTest, genResult.test, `[Generator] ${genName}`);
    // Later stages depend on these proposals: they must run again.
    delete state.selection;
    delete state.training;
    await finishStage("generation", t0, { curves: genResult.curves, info: genResult.info });
  }
  seconds.generation = (performance.now() - t0) / 1000;
  const genTest = evaluateDetections(gtTest, genResult.test, { tiou: tious });

  // --- selection
  const filterName = config.filter ?? DEFAULT_PLUGINS.filter;
  let pseudo: Detection[];
  t0 = performance.now();
  if (isDone("selection") && await exists(files.pseudoLabels)) {
    pseudo = await readResultsFile(files.pseudoLabels);
  } else {
    const filter = await getPlugin("filter", filterName);
    const videos = new Map(gen.list("train").map((m) => [m.id, m]));
    pseudo = await selectProposals(genResult.train, filter, {
      options: config.filterOptions ?? {},
      videos,
    });
    await writeResultsFile(files.pseudoLabels, pseudo, `[Pseudo labels] ${filterName}`);
    delete state.training;
    await finishStage("selection", t0);
  }
  seconds.selection = (performance.now() - t0) / 1000;
  const before = pseudoLabelQuality(gtTrain, genResult.train, { tiou: tious });
  const after = pseudoLabelQuality(gtTrain, pseudo, { tiou: tious });
  log(
    `selection (${filterName}): ${genResult.train.length} -> ${pseudo.length} proposals; ` +
      `pseudo-label avg mAP ${(100 * before.average).toFixed(1)} -> ${
        (100 * after.average).toFixed(1)
      }`,
  );

  // --- training
  const stuName = config.student ?? DEFAULT_PLUGINS.student;
  let stuResult: StudentResult;
  t0 = performance.now();
  if (isDone("training") && await exists(files.detections)) {
    stuResult = {
      test: await readResultsFile(files.detections),
      testBeforeSwitch: await exists(files.detectionsBeforeSwitch)
        ? await readResultsFile(files.detectionsBeforeSwitch)
        : undefined,
      curves: state.training.extra?.curves as Record<string, CurvePoint[]> | undefined,
      info: state.training.extra?.info as Record<string, unknown> | undefined,
    };
    const kept = (state.training.extra?.snapshots ?? []) as {
      epoch: number;
      checkpoint?: string;
    }[];
    if (kept.length) {
      stuResult.snapshots = [];
      for (const k of kept) {
        stuResult.snapshots.push({
          ...k,
          test: await readResultsFile(snapshotDetectionsFile(out, k.epoch)),
        });
      }
    }
  } else {
    const student = await getPlugin("student", stuName);
    const stuCtx = ctxFor(
      "student",
      { preset, ema: config.ema ?? true, ...config.studentOptions },
      await startStage("training"),
    );
    stuResult = await guardPluginCall(student, "train", () => student.train(stu, pseudo, stuCtx));
    checkPluginOutput(student, "train", stuResult, spansOf(stu));
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
        snapshotDetectionsFile(out, k.epoch),
        k.test,
        `[Student, epoch ${k.epoch}] ${stuName}`,
      );
    }
    await finishStage("training", t0, {
      curves: stuResult.curves,
      info: stuResult.info,
      snapshots: stuResult.snapshots?.map((k) => ({ epoch: k.epoch, checkpoint: k.checkpoint })),
    });
  }
  seconds.training = (performance.now() - t0) / 1000;
  // Scored on the evaluation ground truth's test videos only (a plugin that predicted on
  // others would otherwise be charged false positives for videos nobody scores).
  const onTest = (dets: Detection[]) => dets.filter((d) => testIds.has(d.videoId));
  const outside = stuResult.test.length - onTest(stuResult.test).length;
  if (outside) {
    log(`evaluation: ignored ${outside} student detection(s) on videos outside the test subset`);
  }

  // --- evaluation
  t0 = performance.now();
  const final = evaluateDetections(gtTest, onTest(stuResult.test), { tiou: tious });
  const beforeSwitch = stuResult.testBeforeSwitch
    ? evaluateDetections(gtTest, onTest(stuResult.testBeforeSwitch), { tiou: tious })
    : undefined;
  const snapshots: SnapshotFigures[] = (stuResult.snapshots ?? []).map((k) => {
    const e = evaluateDetections(gtTest, onTest(k.test), { tiou: tious });
    return {
      epoch: k.epoch,
      mAP: e.mAP,
      average: e.average,
      checkpoint: k.checkpoint,
      detections: snapshotDetectionsFile(out, k.epoch),
    };
  });
  const headline = snapshots.at(-1);
  const best = snapshots.reduce<SnapshotFigures | undefined>(
    (b, k) => (!b || k.average > b.average ? k : b),
    undefined,
  );
  if (headline && best) {
    log(
      `student snapshots: ${
        snapshots.map((k) => `epoch ${k.epoch} ${(100 * k.average).toFixed(1)}`).join(", ")
      } (avg mAP %); headline: epoch ${headline.epoch} (the last), best: epoch ${best.epoch}`,
    );
  }
  seconds.evaluation = (performance.now() - t0) / 1000;

  const result: FuSTALResult = {
    tiou: tious,
    backend: {
      name: backendInfo.backend,
      adapter: backendInfo.adapter,
      software: backendInfo.adapterIsSoftware,
      reason: backendInfo.reason,
    },
    dataset: {
      generator: gen.root,
      student: stu.root,
      layout: gen.layout,
      classes: gen.classes.length,
      train: gen.list("train").length,
      test: gen.list("test").length,
    },
    generator: { test: { mAP: genTest.mAP, average: genTest.average }, info: genResult.info },
    pseudoLabels: { before: figures(before), after: figures(after), filter: filterName },
    student: {
      beforeSwitch: beforeSwitch
        ? { mAP: beforeSwitch.mAP, average: beforeSwitch.average }
        : undefined,
      final: { mAP: final.mAP, average: final.average },
      snapshots: snapshots.length ? snapshots : undefined,
      headlineEpoch: headline?.epoch,
      bestEpoch: best?.epoch,
      info: stuResult.info,
    },
    scoring,
    seconds,
    files: { ...files },
  };
  await atomicWriteJson(files.metrics, result, true);
  await atomicWrite(
    files.report,
    buildReport(result, gen, genResult, pseudo, stuResult, {
      command: config.command ?? "runFuSTAL(config)",
      seed,
      preset,
      overrides: Object.fromEntries(
        Object.entries(config).filter(([k, v]) =>
          v !== undefined && typeof v !== "function" && !["command", "seed", "preset"].includes(k)
        ),
      ),
      version: VERSION,
      backend: describeBackend(backendInfo),
      date: new Date().toISOString(),
    }, {
      // The built-in generator records per iteration, the built-in student per epoch.
      generator: { x: genName === DEFAULT_PLUGINS.generator ? "iteration" : "step" },
      student: { x: stuName === DEFAULT_PLUGINS.student ? "epoch" : "step" },
    }),
  );
  return result;
}

function buildReport(
  r: FuSTALResult,
  gen: Dataset,
  g: GeneratorResult,
  pseudo: Detection[],
  s: StudentResult,
  header: ReportHeader,
  curveAxes: Record<string, CurveAxes>,
): string {
  const top = (list: Detection[] | undefined, n: number) =>
    [...(list ?? [])].sort((a, b) => b.score - a.score).slice(0, n);
  const rawBy = groupByVideo(g.train), selBy = groupByVideo(pseudo);
  const genBy = groupByVideo(g.test), finBy = groupByVideo(s.test);
  const pick = (split: Split) =>
    gen.list(split).filter((m) => m.annotations.length > 0).slice(0, 3);
  const timelines: VideoTimeline[] = [
    ...pick("train").map((m) => ({
      videoId: `${m.id} (train)`,
      duration: m.duration,
      tracks: [
        { name: "ground truth", items: m.annotations },
        { name: "raw proposals", items: top(rawBy.get(m.id), 60) },
        { name: "pseudo labels", items: top(selBy.get(m.id), 60) },
      ],
    })),
    ...pick("test").map((m) => ({
      videoId: `${m.id} (test)`,
      duration: m.duration,
      tracks: [
        { name: "ground truth", items: m.annotations },
        { name: "generator", items: top(genBy.get(m.id), 40) },
        { name: "final detections", items: top(finBy.get(m.id), 40) },
      ],
    })),
  ];
  const series = [
    { name: "generator (test)", ...r.generator.test },
    { name: "proposals (train)", ...r.pseudoLabels.before },
    { name: "pseudo labels (train)", ...r.pseudoLabels.after },
    ...(r.student.beforeSwitch
      ? [{ name: "student pre-EMA (test)", ...r.student.beforeSwitch }]
      : []),
    ...(r.student.snapshots ?? []).slice(0, -1).map((k) => ({
      name: `student EMA epoch ${k.epoch} (test)${k.epoch === r.student.bestEpoch ? ", best" : ""}`,
      mAP: k.mAP,
      average: k.average,
    })),
    {
      name: `student final (test)${
        r.student.headlineEpoch !== undefined
          ? `, epoch ${r.student.headlineEpoch}, headline${
            r.student.headlineEpoch === r.student.bestEpoch ? ", best" : ""
          }`
          : ""
      }`,
      ...r.student.final,
    },
  ];
  return renderReport({
    title: "FuSTAL-TS run",
    header,
    classes: gen.classes,
    curveAxes,
    facts: {
      backend: `${r.backend.name} (${r.backend.adapter ?? "no WebGPU adapter"})`,
      dataset:
        `${r.dataset.layout}: ${r.dataset.train} train / ${r.dataset.test} test videos, ${r.dataset.classes} classes`,
      ...Object.fromEntries(Object.entries(r.seconds).map(([k, v]) => [`${k} (s)`, v.toFixed(1)])),
      filter: r.pseudoLabels.filter,
      "scored against": scoringLine(r),
      ...(r.student.headlineEpoch !== undefined
        ? {
          "student snapshot":
            `headline epoch ${r.student.headlineEpoch} (the last), best epoch ${r.student.bestEpoch}`,
        }
        : {}),
    },
    tiou: r.tiou,
    series,
    curves: { generator: g.curves ?? {}, student: s.curves ?? {} },
    timelines,
  });
}

/** One line saying which ground truth scored which stage. */
export function scoringLine(r: FuSTALResult): string {
  const sc = r.scoring;
  return `generator and student: ${sc.generator.gt} [${sc.generator.subset}, ` +
    `${sc.generator.videos} videos; student predicts ${sc.student.predicted}]; proposals and ` +
    `pseudo labels: ${sc.pseudoLabels.gt} [${sc.pseudoLabels.subset}, ${sc.pseudoLabels.videos} videos]`;
}

/** Formats the results table printed at the end of a run (mAP in %). */
export function formatResultsTable(r: FuSTALResult): string {
  const rows: [string, { mAP: number[]; average: number } | undefined][] = [
    ["generator, test", r.generator.test],
    ["proposals, train (before selection)", r.pseudoLabels.before],
    [`pseudo labels, train (after ${r.pseudoLabels.filter})`, r.pseudoLabels.after],
    ["student before EMA switch, test", r.student.beforeSwitch],
    ...(r.student.snapshots ?? []).slice(0, -1).map((k): [string, MapFigures] => [
      `student EMA epoch ${k.epoch}, test${k.epoch === r.student.bestEpoch ? " (best)" : ""}`,
      k,
    ]),
    [
      `student final (EMA${
        r.student.headlineEpoch !== undefined ? `, epoch ${r.student.headlineEpoch}` : ""
      }), test${
        r.student.headlineEpoch !== undefined && r.student.bestEpoch === r.student.headlineEpoch
          ? " (best)"
          : ""
      }`,
      r.student.final,
    ],
  ];
  const head = ["mAP (%) @ tIoU", ...r.tiou.map((t) => t.toFixed(2)), "avg"];
  const body = rows.filter(([, v]) => v).map(([name, v]) => [
    name,
    ...v!.mAP.map((x) => (100 * x).toFixed(1)),
    (100 * v!.average).toFixed(1),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) =>
    c.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join("  ");
  const pr = (q: QualityFigures) =>
    `${q.proposals} proposals, precision ${(100 * q.precision).toFixed(1)}%, recall ${
      (100 * q.recall).toFixed(1)
    }% @0.5`;
  const secs = Object.entries(r.seconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(", ");
  return [
    line(head),
    ...body.map(line),
    "",
    `pseudo labels before: ${pr(r.pseudoLabels.before)}`,
    `pseudo labels after:  ${pr(r.pseudoLabels.after)}`,
    ...(r.student.headlineEpoch !== undefined
      ? [
        `student: headline = final EMA weights (epoch ${r.student.headlineEpoch}); best ` +
        `snapshot: epoch ${r.student.bestEpoch} (checkpoints student/epoch_N.ckpt)`,
      ]
      : []),
    `scored against: ${scoringLine(r)}`,
    `backend: ${r.backend.name}${r.backend.adapter ? ` (adapter: ${r.backend.adapter})` : ""}`,
    `seconds: ${secs}`,
  ].join("\n");
}
