/**
 * The method's ablation (`run --ablate`): four runs of {@linkcode runFuSTAL} on the same data
 * and seed that switch on FuSTAL's three additions one after the other.
 *
 * @module
 */
import * as path from "node:path";
import { atomicWriteJson } from "../lib/io.ts";
import {
  type FuSTALConfig,
  type FuSTALResult,
  runFuSTAL,
  writeDefaultDataset,
} from "./pipeline.ts";

export type { FuSTALConfig, FuSTALResult, MapFigures, QualityFigures } from "./pipeline.ts";
export type { BackendName } from "../lib/backend.ts";
export type { ProgressSink } from "../lib/plugin_types.ts";

/** One row of the ablation table. */
export interface AblationRow {
  /** Row name. */
  name: string;
  /** Whether the generator used cross-video contrast. */
  crossVideo: boolean;
  /** Filter plugin of the row (`score` or `prior`). */
  filter: string;
  /** Whether the student used EMA-teacher distillation. */
  ema: boolean;
  /** The run's figures. */
  result: FuSTALResult;
}

/**
 * The method's ablation on one dataset and seed: (1) baseline without cross-video contrast,
 * prior filter and EMA (the filter keeps only the prior's confidence test, `score`),
 * (2) + cross-video, (3) + prior filter, (4) + EMA. Rows 2-4 share one generator and rows
 * 3-4 one selection; each row is a run folder under `<out>/ablation/`.
 */
export async function runAblation(config: FuSTALConfig = {}): Promise<AblationRow[]> {
  const out = path.resolve(config.out ?? "runs/ablation");
  const base: FuSTALConfig = { ...config, out: undefined };
  if (!config.root && !config.generatorRoot) {
    // Synthesize once, share it.
    base.root = path.join(out, "data");
    const { packageRoots } = await import("../datasets.ts");
    if (!(config.resume && await packageRoots(base.root) !== null)) {
      await writeDefaultDataset(base.root, config);
    }
  }
  const specs = [
    {
      name: "baseline (no cross-video, no prior filter, no EMA)",
      crossVideo: false,
      filter: "score",
      ema: false,
      dir: "1-baseline",
    },
    {
      name: "+ cross-video contrast",
      crossVideo: true,
      filter: "score",
      ema: false,
      dir: "2-cross-video",
    },
    {
      name: "+ prior-based filter",
      crossVideo: true,
      filter: "prior",
      ema: false,
      dir: "3-prior-filter",
    },
    {
      name: "+ EMA distillation (FuSTAL)",
      crossVideo: true,
      filter: "prior",
      ema: true,
      dir: "4-ema",
    },
  ];
  const rows: AblationRow[] = [];
  for (const [i, s] of specs.entries()) {
    (config.onLog ?? ((l: string) => console.error(l)))(`ablation row ${i + 1}/4: ${s.name}`);
    const result = await runFuSTAL({
      ...base,
      out: path.join(out, "ablation", s.dir),
      crossVideo: s.crossVideo,
      filter: s.filter,
      ema: s.ema,
      reuseGenerationFrom: i >= 2 ? path.join(out, "ablation", specs[1].dir) : undefined,
    });
    rows.push({ name: s.name, crossVideo: s.crossVideo, filter: s.filter, ema: s.ema, result });
  }
  await atomicWriteJson(
    path.join(out, "ablation.json"),
    rows.map((r) => ({ ...r, result: { ...r.result, files: undefined } })),
    true,
  );
  return rows;
}

/**
 * Formats the ablation table (student final test mAP in %, with generator and pseudo-label
 * averages).
 */
export function formatAblationTable(rows: AblationRow[]): string {
  if (rows.length === 0) return "";
  const tiou = rows[0].result.tiou;
  const head = ["row", ...tiou.map((t) => t.toFixed(2)), "avg", "gen avg", "pseudo avg"];
  const body = rows.map((r) => [
    r.name,
    ...r.result.student.final.mAP.map((x) => (100 * x).toFixed(1)),
    (100 * r.result.student.final.average).toFixed(1),
    (100 * r.result.generator.test.average).toFixed(1),
    (100 * r.result.pseudoLabels.after.average).toFixed(1),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) =>
    c.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join("  ");
  return ["student test mAP (%)", line(head), ...body.map(line)].join("\n");
}
