/**
 * Scoring of every stage of a run against its ground truth, and the result record.
 *
 * @module
 */
import type { ClassFusion } from "../fusion.ts";
import type { BackendInfo } from "../../lib/backend.ts";
import type { Detection } from "../../lib/types.ts";
import type { StudentResult } from "../../lib/plugin_types.ts";
import type { Dataset } from "../../datasets/types.ts";
import { evaluateDetections } from "../evaluation.ts";
import { pseudoLabelQuality } from "../selection.ts";
import type { ScoringPlan } from "./data.ts";
import type { FuSTALResult, MapFigures, QualityFigures, SnapshotFigures } from "./result.ts";
import type { RunFiles } from "./run_folder.ts";
import { snapshotDetectionsFile } from "./run_folder.ts";

function figures(q: ReturnType<typeof pseudoLabelQuality>): QualityFigures {
  return {
    mAP: q.mAP,
    average: q.average,
    precision: q.precision,
    recall: q.recall,
    proposals: q.proposals,
  };
}

const figuresOf = (e: { mAP: number[]; average: number }): MapFigures => ({
  mAP: e.mAP,
  average: e.average,
});

/** The generator's test detections scored on the test subset. */
export function scoreGenerator(plan: ScoringPlan, test: Detection[]): MapFigures {
  const e = evaluateDetections(plan.gtTest, test, { tiou: plan.tiou });
  return { mAP: e.mAP, average: e.average };
}

/** The training proposals before and after the filter, scored on the train subset (logged). */
export function scorePseudoLabels(
  plan: ScoringPlan,
  proposals: Detection[],
  pseudo: Detection[],
  filterName: string,
  log: (line: string) => void,
): FuSTALResult["pseudoLabels"] {
  const before = pseudoLabelQuality(plan.gtTrain, proposals, { tiou: plan.tiou });
  const after = pseudoLabelQuality(plan.gtTrain, pseudo, { tiou: plan.tiou });
  log(
    `selection (${filterName}): ${proposals.length} -> ${pseudo.length} proposals; ` +
      `pseudo-label avg mAP ${(100 * before.average).toFixed(1)} -> ${
        (100 * after.average).toFixed(1)
      }`,
  );
  return { before: figures(before), after: figures(after), filter: filterName };
}

/**
 * The student's test detections (final, before the EMA switch, every kept snapshot) scored on
 * the test subset; the snapshots are logged with the headline (the last) and the best one.
 */
export function scoreStudent(
  plan: ScoringPlan,
  s: StudentResult,
  out: string,
  log: (line: string) => void,
  fusion: { mode: ClassFusion; fuse: (dets: Detection[]) => Detection[] } = {
    mode: "none",
    fuse: (dets) => dets,
  },
): FuSTALResult["student"] {
  const { gtTest, testIds, tiou } = plan;
  const { fuse } = fusion;
  // Scored on the evaluation ground truth's test videos only (a plugin that predicted on
  // others would otherwise be charged false positives for videos nobody scores).
  const onTestRaw = (dets: Detection[]) => dets.filter((d) => testIds.has(d.videoId));
  const onTest = (dets: Detection[]) => fuse(onTestRaw(dets));
  const outside = s.test.length - onTestRaw(s.test).length;
  if (outside) {
    log(`evaluation: ignored ${outside} student detection(s) on videos outside the test subset`);
  }
  const final = evaluateDetections(gtTest, onTest(s.test), { tiou });
  const beforeSwitch = s.testBeforeSwitch
    ? evaluateDetections(gtTest, onTest(s.testBeforeSwitch), { tiou })
    : undefined;
  const snapshots: SnapshotFigures[] = (s.snapshots ?? []).map((k) => {
    const e = evaluateDetections(gtTest, onTest(k.test), { tiou });
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
  const unfused = fusion.mode === "none" ? undefined : {
    final: figuresOf(evaluateDetections(gtTest, onTestRaw(s.test), { tiou })),
    beforeSwitch: s.testBeforeSwitch
      ? figuresOf(evaluateDetections(gtTest, onTestRaw(s.testBeforeSwitch), { tiou }))
      : undefined,
  };
  return {
    classFusion: fusion.mode,
    unfused,
    beforeSwitch: beforeSwitch
      ? { mAP: beforeSwitch.mAP, average: beforeSwitch.average }
      : undefined,
    final: { mAP: final.mAP, average: final.average },
    snapshots: snapshots.length ? snapshots : undefined,
    headlineEpoch: headline?.epoch,
    bestEpoch: best?.epoch,
    info: s.info,
  };
}

/** The parts of a run's result record. */
export interface ResultParts {
  /** The scoring plan (thresholds, what scored what). */
  plan: ScoringPlan;
  /** The initialised backend. */
  backend: BackendInfo;
  /** The generator's dataset. */
  gen: Dataset;
  /** The student's dataset. */
  stu: Dataset;
  /** The generator's figures and info. */
  generator: FuSTALResult["generator"];
  /** The pseudo-label figures. */
  pseudoLabels: FuSTALResult["pseudoLabels"];
  /** The student's figures and info. */
  student: FuSTALResult["student"];
  /** Seconds per stage. */
  seconds: Record<string, number>;
  /** The run folder's files. */
  files: RunFiles;
}

/** The result record of a run (what `runFuSTAL` returns and writes to `metrics.json`). */
export function resultRecord(p: ResultParts): FuSTALResult {
  return {
    tiou: p.plan.tiou,
    backend: {
      name: p.backend.backend,
      adapter: p.backend.adapter,
      software: p.backend.adapterIsSoftware,
      reason: p.backend.reason,
      blas: p.backend.blas ? `${p.backend.blas.library} (${p.backend.blas.threads} threads)` : null,
    },
    dataset: {
      generator: p.gen.root,
      student: p.stu.root,
      layout: p.gen.layout,
      classes: p.gen.classes.length,
      train: p.gen.list("train").length,
      test: p.gen.list("test").length,
    },
    generator: p.generator,
    pseudoLabels: p.pseudoLabels,
    student: p.student,
    scoring: p.plan.scoring,
    seconds: p.seconds,
    files: { ...p.files },
  };
}
