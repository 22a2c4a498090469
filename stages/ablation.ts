/**
 * The method's ablation (`run --ablate`): runs of {@linkcode runFuSTAL} that switch on
 * FuSTAL's three additions one after the other (the component ablation of arXiv 2407.08971), each
 * over several seeds, reported as mean and standard deviation over the seeds.
 *
 * Every (row, seed) pair is a cell with its own run folder and summary file (`cell.json`), so
 * the cells can run as independent array tasks (`--ablate --row K --seed S`, or an array
 * index mapped to a cell by {@linkcode cellOfIndex}) and be joined by
 * {@linkcode mergeAblationCells} into the table a local run prints.
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { atomicWriteJson, exists, readJson } from "../lib/io.ts";
import { sha256Hex } from "../lib/shard.ts";
import { blasOptionsInUse, setBlasOptions } from "../lib/backend.ts";
import { type LaneJob, runLanes } from "../lib/lanes.ts";
import { logicalCores, setWorkers, workerCount } from "../lib/workers.ts";
import { DEFAULT_PLUGINS, listPlugins } from "../registry.ts";
import { stageDir } from "./pipeline/run_folder.ts";
import { SWITCH_FILE } from "./training/train.ts";
import {
  type FuSTALConfig,
  type FuSTALResult,
  runFuSTAL,
  writeDefaultDataset,
} from "./pipeline.ts";

export type {
  FuSTALConfig,
  FuSTALResult,
  MapFigures,
  QualityFigures,
  ScoringSource,
  SnapshotFigures,
} from "./pipeline.ts";
export type { PresetName } from "../lib/presets.ts";
export type { ClassFusion } from "./fusion.ts";
export type { BackendName } from "../lib/backend.ts";
export type { ProgressSink } from "../lib/plugin_types.ts";

/** One row of the ablation, with the switches it sets. */
export interface AblationRowSpec {
  /** Row number, 1-4. */
  row: number;
  /** Row name. */
  name: string;
  /** Whether the generator uses cross-video contrast. */
  crossVideo: boolean;
  /** Filter plugin of the row (`score`: the prior's confidence test only, or `prior`). */
  filter: string;
  /** Whether the student uses EMA-teacher distillation. */
  ema: boolean;
  /** Folder name of the row's runs. */
  dir: string;
}

/** The four rows: baseline, + cross-video contrast, + prior-based filter, + EMA distillation. */
export const ABLATION_ROWS: readonly AblationRowSpec[] = [
  {
    row: 1,
    name: "baseline (no cross-video, no prior filter, no EMA)",
    crossVideo: false,
    filter: "score",
    ema: false,
    dir: "1-baseline",
  },
  {
    row: 2,
    name: "+ cross-video contrast",
    crossVideo: true,
    filter: "score",
    ema: false,
    dir: "2-cross-video",
  },
  {
    row: 3,
    name: "+ prior-based filter",
    crossVideo: true,
    filter: "prior",
    ema: false,
    dir: "3-prior-filter",
  },
  {
    row: 4,
    name: "+ EMA distillation (FuSTAL)",
    crossVideo: true,
    filter: "prior",
    ema: true,
    dir: "4-ema",
  },
];

/** Seeds of `--ablate` when none are given. */
export const DEFAULT_ABLATION_SEEDS: readonly number[] = [0, 1, 2];

/** One cell of the ablation: a row at one seed, and its run's figures. */
export interface AblationRow {
  /** Row number, 1-4. */
  row: number;
  /** Seed of the run (also the synthetic dataset's seed when no root is given). */
  seed: number;
  /** Row name. */
  name: string;
  /** Whether the generator used cross-video contrast. */
  crossVideo: boolean;
  /** Filter plugin of the row (`score` or `prior`). */
  filter: string;
  /** Whether the student used EMA-teacher distillation. */
  ema: boolean;
  /** Fingerprint of the settings shared by all cells (cells of different settings never merge). */
  settings: string;
  /** The run's figures. */
  result: FuSTALResult;
}

/** Which cells to run. */
export interface AblationSelection {
  /** Rows (1-4); default all four. */
  rows?: readonly number[];
  /** Seeds; default `[config.seed ?? 0]`. */
  seeds?: readonly number[];
  /**
   * Cells run side by side in this many child processes (default 1: one after another in
   * this process). `run --ablate` sets the cores, at most 4 ({@linkcode defaultParallel}).
   */
  parallel?: number;
}

/** Processes of a local `run --ablate` by default: the machine's cores, at most 4. */
export function defaultParallel(): number {
  return Math.min(4, logicalCores());
}

/** Name of a cell's summary file inside its run folder. */
export const CELL_FILE = "cell.json";

/** The run folder of a cell under the ablation's output folder. */
export function cellDir(out: string, row: number, seed: number): string {
  return path.join(path.resolve(out), "ablation", `seed-${seed}`, rowSpec(row).dir);
}

function rowSpec(row: number): AblationRowSpec {
  const s = ABLATION_ROWS.find((r) => r.row === row);
  if (!s) throw new InputError(`--row: ${row} is not a row of the ablation (1, 2, 3 or 4)`);
  return s;
}

/**
 * The cell of an array index: rows vary fastest, `index = 4 * seedIndex + (row - 1)`, so
 * an array of `4 * seeds.length` tasks (indices 0..4·S−1) covers every cell once.
 */
export function cellOfIndex(
  index: number,
  seeds: readonly number[],
): { row: number; seed: number } {
  const n = ABLATION_ROWS.length * seeds.length;
  if (!Number.isInteger(index) || index < 0 || index >= n) {
    throw new InputError(
      `ablation: array index ${index} is out of range (0..${
        n - 1
      } for 4 rows x ${seeds.length} seeds)`,
    );
  }
  return {
    row: (index % ABLATION_ROWS.length) + 1,
    seed: seeds[Math.floor(index / ABLATION_ROWS.length)],
  };
}

/** Fingerprint of the settings every cell of one ablation shares (not the seed or row). */
export function ablationSettings(config: FuSTALConfig): string {
  return sha256Hex(JSON.stringify({
    preset: config.preset ?? "default",
    layout: config.layout ?? null,
    generator: config.generator ?? null,
    student: config.student ?? null,
    generatorOptions: config.generatorOptions ?? {},
    studentOptions: config.studentOptions ?? {},
    classFusion: config.classFusion ?? null,
    filterOptions: config.filterOptions ?? {},
    synth: config.root || config.generatorRoot ? null : (config.synth ?? {}),
  })).slice(0, 16);
}

/** A cell as planned: its row, seed, run configuration and the cells it builds on. */
interface PlannedCell {
  spec: AblationRowSpec;
  seed: number;
  config: FuSTALConfig;
  /** Cells (row/seed keys) whose outputs this one reads: row 2's generation, row 4's switch. */
  after: string[];
}

const cellKey = (row: number, seed: number) => `${row}/${seed}`;

/**
 * Runs the selected cells (default: the four rows at `config.seed`). Row 1 trains a
 * generator without cross-video contrast; rows 2-4 of one seed share row 2's generator and
 * rows 3-4 its selection when row 2 runs in the same call (a row run alone trains its own,
 * which gives the same figures: the generator depends only on the data, settings and seed).
 * Rows 3 and 4 differ only from the EMA switch on, so with the built-in student row 4 runs
 * first and row 3 continues from its switch checkpoint instead of training the first stage
 * again (same figures as a row 3 run alone). Cells skip the test passes that only report
 * (at the switch, and EMA snapshots before the end) unless the student options ask for them:
 * the table needs the final detections only.
 * Without a dataset root, each seed's synthetic set is written once (seeded by the seed) and
 * shared by that seed's rows; a lone cell writes it into its own folder. Each cell writes
 * `cell.json` into its run folder `<out>/ablation/seed-S/<row>`; when all four rows ran,
 * `<out>/ablation.json` lists every cell.
 *
 * With `select.parallel` above 1 the cells run side by side in that many child processes of
 * the CLI (`ablation task`, {@linkcode runAblationTask}), in dependency order (the synthetic
 * sets first, row 2 before rows 3-4, row 4 before row 3) and each with its share of the
 * threads ({@linkcode laneThreads}); the figures are those of a run with that share in one
 * process (BLAS results depend on the thread count, the worker count does not change them).
 */
export async function runAblation(
  config: FuSTALConfig = {},
  select: AblationSelection = {},
): Promise<AblationRow[]> {
  const out = path.resolve(config.out ?? "runs/ablation");
  const rows = [...(select.rows ?? ABLATION_ROWS.map((r) => r.row))].map(rowSpec);
  const seeds = [...(select.seeds ?? [config.seed ?? 0])];
  if (new Set(seeds).size !== seeds.length) throw new InputError(`--seeds: a seed is repeated`);
  const settings = ablationSettings(config);
  const log = config.onLog ?? ((l: string) => console.error(l));
  const builtIn = (config.student ?? DEFAULT_PLUGINS.student) === DEFAULT_PLUGINS.student;
  const lanes = Math.min(Math.max(1, Math.floor(select.parallel ?? 1)), rows.length * seeds.length);
  const blocker = lanes > 1 ? laneBlocker(config) : null;
  if (blocker) log(`ablation: cells run one after another: ${blocker}`);
  const inLanes = lanes > 1 && !blocker;
  const plan: PlannedCell[] = [];
  /** Synthetic sets still to write (in lanes: as jobs the seed's cells wait for). */
  const data: { seed: number; config: FuSTALConfig }[] = [];
  for (const seed of seeds) {
    const base: FuSTALConfig = { ...config, seed, out: undefined };
    let dataKey: string | null = null;
    if (!config.root && !config.generatorRoot && rows.length > 1) {
      // Synthesize once per seed, shared by its rows.
      base.root = path.join(out, "ablation", `seed-${seed}`, "data");
      if (!(config.resume && await exists(path.join(base.root, "cola")))) {
        if (inLanes) {
          dataKey = `data/${seed}`;
          data.push({ seed, config: { ...base } });
        } else await writeDefaultDataset(base.root, base);
      }
    }
    const ranRow2 = rows.some((r) => r.row === 2);
    // Row 4 before row 3: row 3 starts from row 4's switch checkpoint (built-in student only).
    const shareFirstStage = builtIn && rows.some((r) => r.row === 3) &&
      rows.some((r) => r.row === 4);
    const order = shareFirstStage
      ? [...rows].sort((a, b) => (a.row === 3 ? 4.5 : a.row) - (b.row === 3 ? 4.5 : b.row))
      : rows;
    for (const s of order) {
      const dir = cellDir(out, s.row, seed);
      const after: string[] = dataKey ? [dataKey] : [];
      const studentOptions: Record<string, unknown> = builtIn
        ? { evalBeforeSwitch: false, snapshots: 1, ...config.studentOptions }
        : { ...config.studentOptions };
      if (shareFirstStage && s.row === 3) {
        studentOptions.startFrom = path.join(
          stageDir(cellDir(out, 4, seed), "student"),
          SWITCH_FILE,
        );
        after.push(cellKey(4, seed));
      }
      const reuse = s.row >= 3 && ranRow2;
      if (reuse) after.push(cellKey(2, seed));
      plan.push({
        spec: s,
        seed,
        after,
        config: {
          ...base,
          out: dir,
          crossVideo: s.crossVideo,
          filter: s.filter,
          ema: s.ema,
          reuseGenerationFrom: reuse ? cellDir(out, 2, seed) : undefined,
          studentOptions,
        },
      });
    }
  }
  const cells = inLanes
    ? await runCellsInLanes(plan, data, lanes, settings, log)
    : await runCellsHere(plan, settings, log);
  // In row order within each seed (row 4 may have run before row 3).
  cells.sort((a, b) => seeds.indexOf(a.seed) - seeds.indexOf(b.seed) || a.row - b.row);
  if (rows.length === ABLATION_ROWS.length) {
    await atomicWriteJson(
      path.join(out, "ablation.json"),
      cells.map((r) => ({ ...r, result: { ...r.result, files: undefined } })),
      true,
    );
  }
  return cells;
}

/** Runs a planned cell in this process and writes its `cell.json`. */
async function runCell(c: PlannedCell, settings: string): Promise<AblationRow> {
  const result = await runFuSTAL(c.config);
  const cell: AblationRow = {
    row: c.spec.row,
    seed: c.seed,
    name: c.spec.name,
    crossVideo: c.spec.crossVideo,
    filter: c.spec.filter,
    ema: c.spec.ema,
    settings,
    result: { ...result, files: undefined as unknown as Record<string, string> },
  };
  await atomicWriteJson(
    path.join(c.config.out!, CELL_FILE),
    { format: "fustal-ablation-cell", ...cell },
    true,
  );
  return { ...cell, result };
}

async function runCellsHere(
  plan: readonly PlannedCell[],
  settings: string,
  log: (l: string) => void,
): Promise<AblationRow[]> {
  const cells: AblationRow[] = [];
  for (const [k, c] of plan.entries()) {
    log(
      `ablation cell ${k + 1}/${plan.length}: row ${c.spec.row} (${c.spec.name}), seed ${c.seed}`,
    );
    cells.push(await runCell(c, settings));
  }
  return cells;
}

/**
 * Why the cells cannot run in child processes, or null: a child rebuilds the run from the
 * configuration, so every plugin must be a built-in or come from a module the configuration
 * lists (`plugins`, `--plugin`); one registered by code in this process has no way there.
 */
function laneBlocker(config: FuSTALConfig): string | null {
  const listed = new Set(config.plugins ?? []);
  const foreign = listPlugins().filter((p) => p.source !== "built-in" && !listed.has(p.source));
  if (foreign.length > 0) {
    return `${foreign[0].kind} plugin "${foreign[0].name}" was registered in this process ` +
      `(${foreign[0].source}), so a child process could not build it; list its module in ` +
      `the configuration's plugins (--plugin) to run cells side by side`;
  }
  return null;
}

/**
 * Threads of one of `lanes` child processes: the BLAS threads (`--threads`, default every
 * core) and student workers (`--workers`) of this process, shared out evenly, at least one
 * each.
 */
export function laneThreads(lanes: number): { threads: number; workers: number } {
  const threads = blasOptionsInUse().threads ?? logicalCores();
  return {
    threads: Math.max(1, Math.floor(threads / lanes)),
    workers: Math.max(1, Math.floor(workerCount() / lanes)),
  };
}

/** What a child process of {@linkcode runCellsInLanes} runs: one planned cell. */
export interface AblationTask {
  /** Always `fustal-ablation-task`. */
  format: "fustal-ablation-task";
  /** `cell`: run the cell; `data`: write the seed's synthetic set (`config.root`). */
  kind: "cell" | "data";
  /** Row of the cell (0 for a data task). */
  row: number;
  /** Seed of the cell. */
  seed: number;
  /** The ablation's settings fingerprint. */
  settings: string;
  /** The cell's run configuration (no functions: they cannot cross a process boundary). */
  config: FuSTALConfig;
  /** Native BLAS library (`--blas`) and threads of the child. */
  blas: { path?: string; threads: number };
  /** Student workers of the child. */
  workers: number;
}

async function runCellsInLanes(
  plan: readonly PlannedCell[],
  data: readonly { seed: number; config: FuSTALConfig }[],
  lanes: number,
  settings: string,
  log: (l: string) => void,
): Promise<AblationRow[]> {
  const { threads, workers } = laneThreads(lanes);
  log(
    `ablation: ${plan.length} cells in ${lanes} processes side by side (each: ${threads} BLAS ` +
      `thread${threads === 1 ? "" : "s"}, ${workers} student worker${workers === 1 ? "" : "s"})`,
  );
  const task = (
    kind: AblationTask["kind"],
    row: number,
    c: { seed: number; config: FuSTALConfig },
  ) => {
    const { onLog: _onLog, progress: _progress, ...config } = c.config;
    const t: AblationTask = {
      format: "fustal-ablation-task",
      kind,
      row,
      seed: c.seed,
      settings,
      config,
      blas: { ...blasOptionsInUse(), threads },
      workers,
    };
    return JSON.stringify(t);
  };
  const jobs: LaneJob[] = [
    ...data.map((d) => ({
      id: `data/${d.seed}`,
      label: `data seed ${d.seed}`,
      after: [],
      weight: 0.05,
      args: ["ablation", "task"],
      input: task("data", 0, d),
    })),
    ...plan.map((c) => ({
      id: cellKey(c.spec.row, c.seed),
      label: `row ${c.spec.row} seed ${c.seed}`,
      after: c.after,
      // Row 3 continuing from row 4's switch trains a quarter of the epochs.
      weight: c.config.studentOptions?.startFrom ? 0.3 : 1,
      args: ["ablation", "task"],
      input: task("cell", c.spec.row, c),
    })),
  ];
  await runLanes(jobs, lanes, log);
  const cells: AblationRow[] = [];
  for (const c of plan) {
    const [cell] = await readAblationCells([c.config.out!]);
    const { file: _file, ...rest } = cell as AblationRow & { file?: string };
    cells.push(rest as AblationRow);
  }
  return cells;
}

/**
 * Runs one task handed over by a parent `run --ablate --parallel N` (`ablation task`, the
 * task on stdin): the parent's BLAS and worker settings, then the cell's run and its
 * `cell.json`, or the seed's synthetic set.
 */
export async function runAblationTask(task: unknown): Promise<void> {
  const t = task as AblationTask;
  if (
    !t || t.format !== "fustal-ablation-task" || typeof t.row !== "number" ||
    typeof t.seed !== "number" || typeof t.settings !== "string" ||
    !(t.kind === "cell" ? t.config?.out : t.kind === "data" && t.config?.root)
  ) {
    throw new InputError("ablation task: stdin is not an ablation task (run --ablate writes it)");
  }
  setBlasOptions(t.blas ?? {});
  setWorkers(t.workers);
  if (t.kind === "data") return await writeDefaultDataset(t.config.root!, t.config);
  await runCell({ spec: rowSpec(t.row), seed: t.seed, config: t.config, after: [] }, t.settings);
}

async function findCellFiles(dir: string, depth: number, out: string[]): Promise<void> {
  const own = path.join(dir, CELL_FILE);
  if (await exists(own)) {
    out.push(own);
    return;
  }
  if (depth === 0) return;
  let entries: import("node:fs").Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    throw new InputError(`${dir}: not a folder (expected an ablation run or cell folder)`);
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.isDirectory() && e.name !== "data") {
      await findCellFiles(path.join(dir, e.name), depth - 1, out);
    }
  }
}

/** Reads every cell summary (`cell.json`) in or under the given folders. */
export async function readAblationCells(dirs: readonly string[]): Promise<AblationRow[]> {
  const files: string[] = [];
  for (const d of dirs) {
    const before = files.length;
    await findCellFiles(path.resolve(d), 4, files);
    if (files.length === before) {
      throw new InputError(`${d}: no ablation cell (${CELL_FILE}) in or under it`);
    }
  }
  const cells: AblationRow[] = [];
  for (const f of files) {
    const v = await readJson(f) as Record<string, unknown>;
    const r = v?.result as Record<string, unknown> | undefined;
    if (
      v?.format !== "fustal-ablation-cell" || typeof v.row !== "number" ||
      typeof v.seed !== "number" || typeof v.settings !== "string" || !r ||
      !Array.isArray(r.tiou)
    ) {
      throw new InputError(`${f}: not an ablation cell summary`);
    }
    const { format: _, ...cell } = v;
    cells.push({ ...(cell as unknown as AblationRow), file: f } as AblationRow);
  }
  return cells;
}

/**
 * Checks that cells form a whole ablation: one settings fingerprint, no (row, seed) twice,
 * every row with the same seeds. Returns them sorted by row, then seed.
 */
export function mergeAblationCells(cells: readonly AblationRow[]): AblationRow[] {
  if (cells.length === 0) throw new InputError("ablation merge: no cells");
  const where = (c: AblationRow) => (c as { file?: string }).file ?? `row ${c.row} seed ${c.seed}`;
  const seen = new Map<string, AblationRow>();
  for (const c of cells) {
    if (c.settings !== cells[0].settings) {
      throw new InputError(
        `${where(c)}: settings fingerprint ${c.settings} differs from ${where(cells[0])}'s ${
          cells[0].settings
        }`,
      );
    }
    const key = `${c.row}/${c.seed}`;
    const other = seen.get(key);
    if (other) {
      throw new InputError(
        `${where(c)}: row ${c.row} seed ${c.seed} given twice (also ${where(other)})`,
      );
    }
    seen.set(key, c);
  }
  const rows = [...new Set(cells.map((c) => c.row))].sort((a, b) => a - b);
  const seeds = [...new Set(cells.map((c) => c.seed))].sort((a, b) => a - b);
  for (const r of rows) {
    for (const s of seeds) {
      if (!seen.has(`${r}/${s}`)) {
        throw new InputError(`ablation merge: row ${r} has no cell for seed ${s} (missing cell)`);
      }
    }
  }
  return rows.flatMap((r) => seeds.map((s) => seen.get(`${r}/${s}`)!));
}

/** Mean and sample standard deviation (n − 1; 0 for one value). */
export function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd };
}

/** Per row: the cells' figures as mean and sd over seeds (fractions, not %). */
export interface AblationSummaryRow {
  /** Row number. */
  row: number;
  /** Row name. */
  name: string;
  /** Seeds averaged. */
  seeds: number[];
  /** Student final test mAP per tIoU. */
  studentMAP: { mean: number; sd: number }[];
  /** Student final average mAP. */
  student: { mean: number; sd: number };
  /** Generator test average mAP. */
  generator: { mean: number; sd: number };
  /** Pseudo-label (after selection) average mAP on the training videos. */
  pseudo: { mean: number; sd: number };
}

/** Groups cells by row and summarises them over seeds. */
export function summarizeAblation(cells: readonly AblationRow[]): AblationSummaryRow[] {
  const sorted = mergeAblationCells(cells);
  const rows = [...new Set(sorted.map((c) => c.row))];
  return rows.map((r) => {
    const cs = sorted.filter((c) => c.row === r);
    const tiou = cs[0].result.tiou;
    return {
      row: r,
      name: cs[0].name,
      seeds: cs.map((c) => c.seed),
      studentMAP: tiou.map((_, i) => meanSd(cs.map((c) => c.result.student.final.mAP[i]))),
      student: meanSd(cs.map((c) => c.result.student.final.average)),
      generator: meanSd(cs.map((c) => c.result.generator.test.average)),
      pseudo: meanSd(cs.map((c) => c.result.pseudoLabels.after.average)),
    };
  });
}

/**
 * Formats the ablation table: student final test mAP (%) per tIoU (mean over seeds) and its
 * average, generator and pseudo-label averages, as mean ± sample sd over the seeds.
 */
export function formatAblationTable(cells: readonly AblationRow[]): string {
  if (cells.length === 0) return "";
  const sum = summarizeAblation(cells);
  const tiou = cells[0].result.tiou;
  const pm = (m: { mean: number; sd: number }) =>
    `${(100 * m.mean).toFixed(1)} ± ${(100 * m.sd).toFixed(1)}`;
  const head = ["row", ...tiou.map((t) => t.toFixed(2)), "avg", "gen avg", "pseudo avg"];
  const body = sum.map((r) => [
    r.name,
    ...r.studentMAP.map((x) => (100 * x.mean).toFixed(1)),
    pm(r.student),
    pm(r.generator),
    pm(r.pseudo),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) =>
    c.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join("  ");
  const seeds = sum[0].seeds;
  return [
    `student test mAP (%), mean over seeds ${seeds.join(", ")}; avg columns: mean ± sd (n-1)`,
    line(head),
    ...body.map(line),
  ].join("\n");
}
