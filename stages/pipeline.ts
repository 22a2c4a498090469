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
 * - `student/` (student checkpoints), `detections.json` (final test detections),
 *   `detections_before_switch.json`
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
import { atomicWrite, atomicWriteJson, exists, readJson } from "../lib/io.ts";
import type { Detection } from "../lib/types.ts";
import type {
  CurvePoint,
  GeneratorResult,
  ProgressSink,
  StageContext,
  StudentResult,
} from "../lib/plugin_types.ts";
import type { Dataset, Split } from "../datasets/types.ts";
import { getPlugin, loadPluginModule } from "../registry.ts";
import {
  ACTIVITYNET_TIOUS,
  evaluateDetections,
  groundTruthFromVideos,
  parseResults,
  type ResultsFile,
  THUMOS_TIOUS,
  toResultsFile,
} from "./evaluation.ts";
import { groupByVideo, pseudoLabelQuality, selectProposals } from "./selection.ts";
import { renderReport, type VideoTimeline } from "../lib/report.ts";

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
  /** Log sink (default: stderr). */
  onLog?: (line: string) => void;
  /** Progress indicator factory (default: none). */
  progress?: (label: string, total: number) => ProgressSink;
}

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

/** What {@linkcode runFuSTAL} returns (also written to `metrics.json`). */
export interface FuSTALResult {
  /** Thresholds of every `mAP` list. */
  tiou: number[];
  /** Backend and adapter. */
  backend: {
    name: string;
    adapter: string | null;
    software: boolean | null;
    reason: string;
    /** The native BLAS under wasm's matMuls (library, threads), or null. */
    blas?: string | null;
  };
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
  /** The student's test-split figures (before the EMA switch, final) and the info it reported. */
  student: { beforeSwitch?: MapFigures; final: MapFigures; info?: Record<string, unknown> };
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
    generator: config.generator ?? "cola-xv",
    crossVideo: config.crossVideo ?? true,
    options: config.generatorOptions ?? {},
    reuse: config.reuseGenerationFrom,
  });
  const selection = JSON.stringify({
    generation,
    filter: config.filter ?? "prior",
    options: config.filterOptions ?? {},
  });
  const training = JSON.stringify({
    selection,
    student: config.student ?? "tridet-ema",
    ema: config.ema ?? true,
    options: config.studentOptions ?? {},
  });
  return { data, generation, selection, training };
}

function nopProgress(): ProgressSink {
  return { update() {}, done() {} };
}

function toResultsJson(method: string, dets: readonly Detection[]): ResultsFile {
  return toResultsFile(dets, method, { official: true });
}

async function readResultsFile(file: string): Promise<Detection[]> {
  return parseResults(await readJson(file), file);
}

async function openRoot(root: string, layout?: string): Promise<Dataset> {
  const { openDataset, LAYOUTS } = await import("../datasets.ts");
  if (layout && !(LAYOUTS as readonly string[]).includes(layout)) {
    // A user's dataset plugin (loaded with --plugin): unknown names fail listing the choices.
    const plugin = await getPlugin("dataset", layout);
    return await plugin.open(root, {});
  }
  return await openDataset(root, layout ? { layout } : {});
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
): Promise<{ gen: Dataset; stu: Dataset }> {
  const split = !config.layout && await exists(path.join(dataRoot, "cola")) &&
    await exists(path.join(dataRoot, "actionformer"));
  const genRoot = config.generatorRoot ?? (split ? path.join(dataRoot, "cola") : dataRoot);
  const stuRoot = config.studentRoot ?? (split ? path.join(dataRoot, "actionformer") : dataRoot);
  const gen = await openRoot(genRoot, split || config.generatorRoot ? undefined : config.layout);
  const stu = genRoot === stuRoot
    ? gen
    : await openRoot(stuRoot, split || config.studentRoot ? undefined : config.layout);
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
    const synthDone = isDone("data") && await exists(path.join(dataRoot, "cola"));
    if (!synthDone) {
      log(`data: writing the synthetic THUMOS'14-shaped dataset to ${dataRoot}`);
      await writeDefaultDataset(dataRoot, config);
      await finishStage("data", t0);
    }
  } else if (config.generatorRoot && !config.root) {
    dataRoot = path.resolve(config.generatorRoot);
  }
  const { gen, stu } = await openDatasets(config, dataRoot);
  seconds.data = (performance.now() - t0) / 1000;
  const anet = gen.layout === "activitynet" || gen.classes.length > 20;
  const tious = [...(anet ? ACTIVITYNET_TIOUS : THUMOS_TIOUS)];
  const gtTrain = groundTruthFromVideos(gen.list("train"));
  const gtTest = groundTruthFromVideos(gen.list("test"));
  log(
    `data: generator ${gen.layout} (${gen.list("train").length} train / ${
      gen.list("test").length
    } test videos, ${gen.featureDim}-d), student ${stu.layout} (${stu.featureDim}-d), ${gen.classes.length} classes`,
  );

  // --- generation
  const genName = config.generator ?? "cola-xv";
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
      await atomicWriteJson(
        files.proposals,
        toResultsJson(`[Generator] ${genName}`, genResult.train),
      );
      await atomicWriteJson(
        files.generatorTest,
        toResultsJson(`[Generator] ${genName}`, genResult.test),
      );
      await finishStage("generation", performance.now(), prev.generation?.extra);
    }
    log(`generation: loaded from ${path.join(from, "proposals.json")}`);
  } else {
    const generator = await getPlugin("generator", genName);
    genResult = await generator.generate(
      gen,
      ctxFor("generator", {
        preset,
        crossVideo: config.crossVideo ?? true,
        ...config.generatorOptions,
      }, await startStage("generation")),
    );
    await atomicWriteJson(
      files.proposals,
      toResultsJson(`[Generator] ${genName}`, genResult.train),
    );
    await atomicWriteJson(
      files.generatorTest,
      toResultsJson(`[Generator] ${genName}`, genResult.test),
    );
    // Later stages depend on these proposals: they must run again.
    delete state.selection;
    delete state.training;
    await finishStage("generation", t0, { curves: genResult.curves, info: genResult.info });
  }
  seconds.generation = (performance.now() - t0) / 1000;
  const genTest = evaluateDetections(gtTest, genResult.test, { tious });

  // --- selection
  const filterName = config.filter ?? "prior";
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
    await atomicWriteJson(
      files.pseudoLabels,
      toResultsJson(`[Pseudo labels] ${filterName}`, pseudo),
    );
    delete state.training;
    await finishStage("selection", t0);
  }
  seconds.selection = (performance.now() - t0) / 1000;
  const before = pseudoLabelQuality(gtTrain, genResult.train, { tious });
  const after = pseudoLabelQuality(gtTrain, pseudo, { tious });
  log(
    `selection (${filterName}): ${genResult.train.length} -> ${pseudo.length} proposals; ` +
      `pseudo-label avg mAP ${(100 * before.average).toFixed(1)} -> ${
        (100 * after.average).toFixed(1)
      }`,
  );

  // --- training
  const stuName = config.student ?? "tridet-ema";
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
  } else {
    const student = await getPlugin("student", stuName);
    stuResult = await student.train(
      stu,
      pseudo,
      ctxFor(
        "student",
        { preset, ema: config.ema ?? true, ...config.studentOptions },
        await startStage("training"),
      ),
    );
    await atomicWriteJson(files.detections, toResultsJson(`[Student] ${stuName}`, stuResult.test));
    if (stuResult.testBeforeSwitch) {
      await atomicWriteJson(
        files.detectionsBeforeSwitch,
        toResultsJson(`[Student before EMA switch] ${stuName}`, stuResult.testBeforeSwitch),
      );
    }
    await finishStage("training", t0, { curves: stuResult.curves, info: stuResult.info });
  }
  seconds.training = (performance.now() - t0) / 1000;

  // --- evaluation
  t0 = performance.now();
  const final = evaluateDetections(gtTest, stuResult.test, { tious });
  const beforeSwitch = stuResult.testBeforeSwitch
    ? evaluateDetections(gtTest, stuResult.testBeforeSwitch, { tious })
    : undefined;
  seconds.evaluation = (performance.now() - t0) / 1000;

  const result: FuSTALResult = {
    tiou: tious,
    backend: {
      name: backendInfo.backend,
      adapter: backendInfo.adapter,
      software: backendInfo.adapterIsSoftware,
      reason: backendInfo.reason,
      blas: backendInfo.blas
        ? `${backendInfo.blas.library} (${backendInfo.blas.threads} threads)`
        : null,
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
      info: stuResult.info,
    },
    seconds,
    files: { ...files },
  };
  await atomicWriteJson(files.metrics, result, true);
  await atomicWrite(
    files.report,
    buildReport(result, gen, genResult, pseudo, stuResult),
  );
  return result;
}

function buildReport(
  r: FuSTALResult,
  gen: Dataset,
  g: GeneratorResult,
  pseudo: Detection[],
  s: StudentResult,
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
    { name: "student final (test)", ...r.student.final },
  ];
  return renderReport({
    title: "FuSTAL-TS run",
    facts: {
      backend: `${r.backend.name} (${r.backend.adapter ?? "no WebGPU adapter"})`,
      dataset:
        `${r.dataset.layout}: ${r.dataset.train} train / ${r.dataset.test} test videos, ${r.dataset.classes} classes`,
      ...Object.fromEntries(Object.entries(r.seconds).map(([k, v]) => [`${k} (s)`, v.toFixed(1)])),
      filter: r.pseudoLabels.filter,
    },
    tiou: r.tiou,
    series,
    curves: { generator: g.curves ?? {}, student: s.curves ?? {} },
    timelines,
  });
}

/** Formats the results table printed at the end of a run (mAP in %). */
export function formatResultsTable(r: FuSTALResult): string {
  const rows: [string, { mAP: number[]; average: number } | undefined][] = [
    ["generator, test", r.generator.test],
    ["proposals, train (before selection)", r.pseudoLabels.before],
    [`pseudo labels, train (after ${r.pseudoLabels.filter})`, r.pseudoLabels.after],
    ["student before EMA switch, test", r.student.beforeSwitch],
    ["student final (EMA), test", r.student.final],
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
    `backend: ${r.backend.name}${r.backend.adapter ? ` (adapter: ${r.backend.adapter})` : ""}`,
    `seconds: ${secs}`,
  ].join("\n");
}
