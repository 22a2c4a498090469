/**
 * What a run leaves for people: `metrics.json`, the HTML report (header, figures, curves and
 * timelines of a few videos) and the results table printed at the end.
 *
 * @module
 */
import { type BackendInfo, describeBackend } from "../../lib/backend.ts";
import { atomicWrite, atomicWriteJson } from "../../lib/io.ts";
import type { Detection } from "../../lib/types.ts";
import type { GeneratorResult, StudentResult } from "../../lib/plugin_types.ts";
import type { Dataset, Split } from "../../datasets/types.ts";
import { DEFAULT_PLUGINS } from "../../registry.ts";
import { groupByVideo } from "../selection.ts";
import {
  type CurveAxes,
  renderReport,
  type ReportHeader,
  type VideoTimeline,
} from "../../lib/report.ts";
import { VERSION } from "../../lib/version.ts";
import type { FuSTALConfig, RunSettings } from "./config.ts";
import type { FuSTALResult, MapFigures, QualityFigures } from "./result.ts";
import type { RunFiles } from "./run_folder.ts";

/** What the report shows besides the result record. */
export interface ReportInputs {
  /** The run's configuration (the header lists its overrides). */
  config: FuSTALConfig;
  /** Its resolved settings. */
  settings: RunSettings;
  /** The initialised backend. */
  backend: BackendInfo;
  /** The generator's dataset (classes, videos for the timelines). */
  gen: Dataset;
  /** The generator's output. */
  generated: GeneratorResult;
  /** The pseudo labels. */
  pseudo: Detection[];
  /** The student's output. */
  trained: StudentResult;
}

/** Writes `metrics.json` (the record) and `report.html` into the run folder, atomically. */
export async function writeRunReport(
  files: RunFiles,
  result: FuSTALResult,
  r: ReportInputs,
): Promise<void> {
  const { config, settings } = r;
  await atomicWriteJson(files.metrics, result, true);
  await atomicWrite(
    files.report,
    buildReport(result, r.gen, r.generated, r.pseudo, r.trained, {
      command: config.command ?? "runFuSTAL(config)",
      seed: settings.seed,
      preset: settings.preset,
      overrides: Object.fromEntries(
        Object.entries(config).filter(([k, v]) =>
          v !== undefined && typeof v !== "function" && !["command", "seed", "preset"].includes(k)
        ),
      ),
      version: VERSION,
      backend: describeBackend(r.backend),
      date: new Date().toISOString(),
    }, {
      // The built-in generator records per iteration, the built-in student per epoch.
      generator: {
        x: settings.names.generator === DEFAULT_PLUGINS.generator ? "iteration" : "step",
      },
      student: { x: settings.names.student === DEFAULT_PLUGINS.student ? "epoch" : "step" },
    }),
  );
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
      backend: `${backendName(r)} (${r.backend.adapter ?? "no WebGPU adapter"})`,
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
    ...(r.student.unfused
      ? [
        `student rows: class fusion "${r.student.classFusion}" (only the classes the generator ` +
        `found in each test video; detections_fused.json); the student's own classes give ` +
        `${
          r.student.unfused.beforeSwitch
            ? `${(100 * r.student.unfused.beforeSwitch.average).toFixed(1)} before the switch, `
            : ""
        }${(100 * r.student.unfused.final.average).toFixed(1)} final`,
      ]
      : []),
    ...(r.student.headlineEpoch !== undefined
      ? [
        `student: headline = final EMA weights (epoch ${r.student.headlineEpoch}); best ` +
        `snapshot: epoch ${r.student.bestEpoch} (checkpoints student/epoch_N.ckpt)`,
      ]
      : []),
    `scored against: ${scoringLine(r)}`,
    `backend: ${backendName(r)}${r.backend.adapter ? ` (adapter: ${r.backend.adapter})` : ""}`,
    `seconds: ${secs}`,
  ].join("\n");
}

/** The backend as the run used it: `wasm+BLAS (libopenblas.so.0 (2 threads))` under a BLAS. */
function backendName(r: FuSTALResult): string {
  return r.backend.blas ? `${r.backend.name}+BLAS (${r.backend.blas})` : r.backend.name;
}
