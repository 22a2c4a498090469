/**
 * The record a run returns and writes to `metrics.json`, and the figures it is made of.
 *
 * @module
 */
import type { ClassFusion } from "../fusion.ts";

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

/** What `runFuSTAL` returns (also written to `metrics.json`). */
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
  /**
   * The student's test-split figures (before the EMA switch, final) and the info it reported;
   * `snapshots`: every kept snapshot (oldest first, the last is `final`), `headlineEpoch` the
   * one reported as the result (the last), `bestEpoch` the one with the best average mAP.
   */
  student: {
    /**
     * Class fusion applied to every student figure here (`stages/fusion.ts`); with
     * `generator`, `unfused` holds the student's own figures.
     */
    classFusion: ClassFusion;
    unfused?: { beforeSwitch?: MapFigures; final: MapFigures };
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
