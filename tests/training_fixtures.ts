/**
 * Tiny in-memory datasets for the training-stage tests: a few short videos whose feature rows
 * carry a class-specific pattern inside the annotated actions, on the ActionFormer grid.
 *
 * @module
 */
import { Rng } from "../lib/rng.ts";
import type { Dataset, VideoFeatures, VideoMeta } from "../datasets/types.ts";
import type { Detection } from "../lib/types.ts";
import { actionFormerGrid, gridToSeconds } from "../datasets/time.ts";
import { THUMOS14_CLASSES } from "../datasets/common.ts";
import { encodeNpy } from "../datasets/npy.ts";
import { atomicWrite, atomicWriteJson } from "../lib/io.ts";
import * as path from "node:path";
import { DEFAULT, type StudentConfig } from "../stages/training/presets.ts";
import { assignTargets, type GridSegment } from "../stages/training/assign.ts";
import { makeLayout } from "../stages/training/model.ts";

/**
 * A student small enough for unit tests: 16 wide, 3 levels, 64-row windows at the full feature
 * rate, batch 2 in one pass.
 */
export const TINY_STUDENT: Readonly<StudentConfig> = {
  ...DEFAULT,
  dim: 16,
  mlpDim: 24,
  levels: 3,
  gnGroups: 4,
  numBins: 4,
  downsample: 1,
  microBatch: 0,
  maxSeqLen: 64,
  regressionRanges: [[0, 4], [4, 8], [8, 10000]],
  batch: 2,
};

/** Builds a dataset of `nTrain` + `nTest` videos of `rows` rows, `dim` features, `k` classes. */
export function tinyDataset(
  opts: {
    nTrain?: number;
    nTest?: number;
    rows?: number;
    dim?: number;
    k?: number;
    seed?: number;
  } = {},
): Dataset {
  const { nTrain = 8, nTest = 4, rows = 96, dim = 12, k = 3, seed = 7 } = opts;
  const rng = new Rng(seed);
  const classes = THUMOS14_CLASSES.slice(0, k);
  const protos = classes.map(() => Float32Array.from({ length: dim }, () => rng.next()));
  const metas: VideoMeta[] = [];
  const feats = new Map<string, VideoFeatures>();
  for (let v = 0; v < nTrain + nTest; v++) {
    const split = v < nTrain ? "train" : "test";
    const id = `video_${split}_${v}`;
    const len = rows - rng.int(0, rows / 4);
    const grid = actionFormerGrid(30);
    const data = new Float32Array(len * dim);
    for (let i = 0; i < data.length; i++) data[i] = 0.3 * rng.next();
    const annotations = [];
    const nAct = rng.int(1, 2);
    for (let a = 0; a < nAct; a++) {
      const c = rng.int(0, k - 1);
      const alen = rng.int(6, 20);
      const st = rng.int(0, len - alen - 1);
      for (let g = st; g < st + alen; g++) {
        for (let d = 0; d < dim; d++) data[g * dim + d] += protos[c][d];
      }
      annotations.push({
        label: classes[c],
        classId: c,
        segment: [gridToSeconds(grid, st), gridToSeconds(grid, st + alen)] as [number, number],
      });
    }
    metas.push({
      id,
      split,
      subset: split === "train" ? "Validation" : "Test",
      duration: gridToSeconds(grid, len),
      fps: 30,
      grid,
      length: len,
      annotations,
      labels: [...new Set(annotations.map((a) => a.classId))].sort((x, y) => x - y),
    });
    feats.set(id, { data, length: len, dim });
  }
  const list = (s?: "train" | "test") => metas.filter((m) => !s || m.split === s);
  return {
    layout: "actionformer",
    root: "memory",
    classes,
    featureDim: dim,
    list,
    load: (id) => Promise.resolve(feats.get(id)!),
    async *videos(s) {
      for (const m of list(s)) yield { meta: m, features: feats.get(m.id)! };
    },
  };
}

/** Pseudo labels = training GT with a little deterministic jitter (tests only). */
export function jitteredLabels(ds: Dataset, seed = 1): Detection[] {
  const rng = new Rng(seed);
  return ds.list("train").flatMap((m) =>
    m.annotations.map((a) => ({
      videoId: m.id,
      label: a.label,
      score: 0.5 + 0.5 * rng.next(),
      segment: [
        a.segment[0] + 0.1 * (rng.next() - 0.5),
        a.segment[1] + 0.1 * (rng.next() - 0.5),
      ] as [
        number,
        number,
      ],
    }))
  );
}

/** Writes `ds` in the ActionFormer layout under `dir` (annotations + one .npy per video). */
export async function writeActionFormer(ds: Dataset, dir: string): Promise<void> {
  const database: Record<string, unknown> = {};
  for (const m of ds.list()) {
    database[m.id] = {
      subset: m.split === "train" ? "Validation" : "Test",
      duration: m.duration,
      fps: m.fps,
      annotations: m.annotations.map((a) => ({ label: a.label, segment: a.segment })),
    };
    const f = await ds.load(m.id);
    await atomicWrite(
      path.join(dir, "i3d_features", `${m.id}.npy`),
      encodeNpy(f.data, [f.length, f.dim]),
    );
  }
  await atomicWriteJson(path.join(dir, "annotations", "thumos14.json"), {
    version: "tiny",
    database,
  });
}

/**
 * The per-point targets of a batch of items of lengths `lens` with grid segments `segs` (one
 * list per item) on the `cfg.maxSeqLen` layout, packed as a step batch holds them, and the
 * loss normaliser (positive points, at least 1).
 */
export function targetsOf(
  cfg: StudentConfig,
  K: number,
  lens: number[],
  segs: GridSegment[][],
): { cls: Float32Array; reg: Float32Array; norm: number } {
  const layout = makeLayout(cfg.maxSeqLen, cfg);
  const cls = new Float32Array(lens.length * layout.total * K);
  const reg = new Float32Array(lens.length * layout.total * 2);
  let numPos = 0;
  segs.forEach((s, i) => {
    const t = assignTargets(s, layout, lens[i], K, cfg.regressionRanges, cfg.centerRadius);
    cls.set(t.cls, i * layout.total * K);
    reg.set(t.reg, i * layout.total * 2);
    numPos += t.numPos;
  });
  return { cls, reg, norm: Math.max(1, numPos) };
}

/** Detections as an ActivityNet result object. */
export function asResults(dets: Detection[]): { results: Record<string, unknown[]> } {
  const results: Record<string, unknown[]> = {};
  for (const d of dets) {
    (results[d.videoId] ??= []).push({ label: d.label, score: d.score, segment: d.segment });
  }
  return { results };
}
