/**
 * `predict`: run a trained student checkpoint on features of any videos (a dataset's test
 * split, or feature files of the user's own videos without annotations) and write an
 * ActivityNet result file in seconds.
 *
 * @module
 */
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { atomicWriteJson, readBytes } from "../lib/io.ts";
import { isInteractive, logErr, numberFlag, parseFlags, Progress } from "../lib/cli_util.ts";
import {
  applyBlasFlags,
  type BackendName,
  BLAS_FLAGS,
  describeBackend,
  initBackend,
} from "../lib/backend.ts";
import type { Detection } from "../lib/types.ts";
import { decodeFeatureBytes } from "../datasets/features.ts";
import { actionFormerGrid, gridToSeconds } from "../datasets/time.ts";
import { predictVideo } from "../stages/training/infer.ts";
import { loadStudent } from "../stages/training/train.ts";
import { openStudentDataset, resultsJson } from "./train.ts";

/** Usage text of `predict`. */
export const usage =
  `predict --checkpoint CKPT (--root DIR [--layout NAME] [--split test|train|all] |
        --features FILE... [--fps F]) --out RESULTS.json [--weights ema|raw]
        [--backend auto|webgpu|wasm|cpu] [--blas PATH|off] [--threads N] [--json]
  Detects actions with a student checkpoint. --features takes .npy / .npy.gz / .npz files of
  T x D features on the ActionFormer grid (16-frame windows every 4 frames at --fps, default
  30); the video id is the file name without extension, no annotations needed. Output:
  ActivityNet result JSON in seconds. --json: last line {"videos", "detections", "out"}.`;

/** Runs `predict`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("predict", args, {
    checkpoint: { type: "string" },
    root: { type: "string" },
    layout: { type: "string" },
    split: { type: "string" },
    features: { type: "string", multiple: true },
    fps: { type: "string" },
    out: { type: "string" },
    weights: { type: "string" },
    backend: { type: "string" },
    ...BLAS_FLAGS,
    json: { type: "boolean", default: false },
  }, true);
  const ckpt = values.checkpoint as string | undefined;
  const out = values.out as string | undefined;
  if (!ckpt) throw new InputError("predict: missing required flag --checkpoint");
  if (!out) throw new InputError("predict: missing required flag --out");
  const files = [...((values.features as string[] | undefined) ?? []), ...positionals];
  if (!values.root && files.length === 0) {
    throw new InputError("predict: give --root DIR or --features FILE...");
  }
  const which = (values.weights as string | undefined) ?? "ema";
  if (which !== "ema" && which !== "raw") {
    throw new InputError(`predict: --weights must be ema or raw, got "${which}"`);
  }
  const json = values.json === true;
  applyBlasFlags("predict", values);
  const backend = await initBackend((values.backend as BackendName | undefined) ?? "auto");
  logErr(describeBackend(backend));
  const { params, meta } = await loadStudent(ckpt, which);
  const dets: Detection[] = [];
  let videos = 0;
  if (values.root) {
    const ds = await openStudentDataset(values.root as string, values.layout as string | undefined);
    if (ds.featureDim !== meta.inDim) {
      throw new InputError(
        `${ds.root}: features are ${ds.featureDim}-d, the checkpoint expects ${meta.inDim}-d`,
      );
    }
    const split = (values.split as string | undefined) ?? "test";
    if (!["test", "train", "all"].includes(split)) {
      throw new InputError(`predict: --split must be test, train or all, got "${split}"`);
    }
    const classes = meta.classes;
    const prog = new Progress(
      "predict",
      ds.list(split === "all" ? undefined : split as "test").length,
      isInteractive(json),
    );
    for await (
      const { meta: vm, features } of ds.videos(split === "all" ? undefined : split as "test")
    ) {
      dets.push(...await predictVideo(params, meta.config, features, vm, classes));
      prog.update(++videos);
    }
    prog.done();
  } else {
    const fps = numberFlag("predict", values, "fps") ?? 30;
    if (!(fps > 0)) throw new InputError(`predict: --fps must be > 0, got ${fps}`);
    const grid = actionFormerGrid(fps);
    for (const f of files) {
      const arr = await decodeFeatureBytes(await readBytes(f), f);
      if (arr.shape.length !== 2 || arr.shape[1] !== meta.inDim) {
        throw new InputError(
          `${f}: expected a T x ${meta.inDim} feature array, got shape (${arr.shape.join(", ")})`,
        );
      }
      for (const x of arr.data) {
        if (!Number.isFinite(x)) throw new InputError(`${f}: features contain NaN or Inf`);
      }
      const t = arr.shape[0];
      if (t < 1) throw new InputError(`${f}: no feature rows`);
      const id = path.basename(f).replace(/(\.npy\.gz|\.npy|\.npz)$/i, "");
      // Frames covered by the rows: the last window ends at (T-1)*stride + window.
      const duration = gridToSeconds(grid, t - 1) + (grid.window - grid.offset) / grid.fps;
      dets.push(
        ...await predictVideo(params, meta.config, { data: arr.data, length: t, dim: meta.inDim }, {
          id,
          grid,
          duration,
        }, meta.classes),
      );
      videos++;
    }
  }
  await atomicWriteJson(out, resultsJson("[Student] tridet-ema", dets));
  logErr(`predict: ${dets.length} detections on ${videos} video(s) -> ${out}`);
  if (json) console.log(JSON.stringify({ videos, detections: dets.length, out }));
  return 0;
}
