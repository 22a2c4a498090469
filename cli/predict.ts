/**
 * `predict`: run a trained student checkpoint on features of any videos (a dataset's test
 * split, or feature files of the user's own videos without annotations) and write an
 * ActivityNet result file in seconds.
 *
 * @module
 */
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { atomicWriteJson, checkOutputs, readBytes } from "../lib/io.ts";
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
import { holdPool, POOL_MIN_VIDEOS, pooledDetect, poolFor } from "../stages/training/pool.ts";
import { WORKER_FLAGS, WORKERS_USAGE } from "../lib/workers.ts";
import { loadStudent } from "../stages/training/train.ts";
import { readResultsFile, toResultsFile } from "../stages/evaluation.ts";
import { keepVideoClasses, videoClasses } from "../stages/fusion.ts";
import { loadPluginModule } from "../registry.ts";
import { planShard, type ShardMeta } from "../lib/shard.ts";
import {
  fileHash,
  fileRows,
  metaRows,
  SHARD_FLAGS,
  SHARD_USAGE,
  shardFromFlags,
  withShard,
} from "./sharding.ts";

/** Usage text of `predict`. */
export const usage =
  `predict --checkpoint CKPT (--root DIR [--layout NAME] [--split test|train|all] |
        --features FILE... [--fps F]) --out RESULTS.json [--weights ema|raw]
        [--backend auto|webgpu|wasm|cpu] [--blas PATH|off] [--threads N] [--workers N]
        [--shard i/n | --shard-count N] [--class-scores RESULTS.json] [--json]
  Detects actions with a student checkpoint. --features takes .npy / .npy.gz / .npz files of
  T x D features on the ActionFormer grid (16-frame windows every 4 frames at --fps, default
  30); the video id is the file name without extension, no annotations needed. Output:
  ActivityNet result JSON in seconds. --json: last line {"videos", "detections", "out"}.
  --class-scores F      class fusion: keep only the detections of the classes F (a result file,
                        e.g. a run's generator_test.json) lists for each video; videos F does
                        not list keep all (what \`run\` does with --class-fusion generator)
  --plugin PATH_OR_URL  load a plugin module first (repeatable; see the plugins command)
${WORKERS_USAGE}
${SHARD_USAGE}`;

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
    ...WORKER_FLAGS,
    json: { type: "boolean", default: false },
    "class-scores": { type: "string" },
    plugin: { type: "string", multiple: true },
    ...SHARD_FLAGS,
  }, true);
  for (const m of (values.plugin as string[] | undefined) ?? []) await loadPluginModule(m);
  const ckpt = values.checkpoint as string | undefined;
  const out = values.out as string | undefined;
  if (!ckpt) throw new InputError("predict: missing required flag --checkpoint");
  if (!out) throw new InputError("predict: missing required flag --out");
  await checkOutputs("--out", { files: [out] });
  // Read before any work, so a bad file fails at once (one line, exit 2).
  const classScores = values["class-scores"] === undefined
    ? undefined
    : await readResultsFile(values["class-scores"] as string);
  const files = [...((values.features as string[] | undefined) ?? []), ...positionals];
  if (!values.root && files.length === 0) {
    throw new InputError("predict: give --root DIR or --features FILE...");
  }
  const which = (values.weights as string | undefined) ?? "ema";
  if (which !== "ema" && which !== "raw") {
    throw new InputError(`predict: --weights must be ema or raw, got "${which}"`);
  }
  const json = values.json === true;
  const shard = shardFromFlags("predict", values);
  applyBlasFlags("predict", values);
  const backend = await initBackend((values.backend as BackendName | undefined) ?? "auto");
  logErr(describeBackend(backend));
  const { params, meta } = await loadStudent(ckpt, which);
  let dets: Detection[] = [];
  let videos = 0;
  const settings = shard
    ? { checkpoint: await fileHash(ckpt), weights: which, inDim: meta.inDim }
    : {};
  let shardMeta: ShardMeta | null = null;
  if (values.root) {
    const { openDataset } = await import("../datasets.ts");
    const layout = values.layout as string | undefined;
    const ds = await openDataset(values.root as string, layout ? { layout } : {});
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
    const plan = planShard(
      "predict",
      { ...settings, layout: ds.layout, split },
      ds.list(split === "all" ? undefined : split as "test").map((m) => ({
        id: m.id,
        rows: metaRows(m),
        meta: m,
      })),
      shard,
    );
    shardMeta = plan.meta;
    const prog = new Progress("predict", plan.items.length, isInteractive(json));
    // One video at a time: a video's detections never depend on which others run with it,
    // so any split of the list into shards (or over the workers) reproduces the
    // single-process output exactly.
    const release = holdPool();
    try {
      const pool = plan.items.length >= POOL_MIN_VIDEOS ? await poolFor(meta.config) : null;
      if (pool) {
        const loaded = async function* () {
          for (const { meta: vm } of plan.items) yield { meta: vm, features: await ds.load(vm.id) };
        };
        const per = await pooledDetect(
          pool,
          loaded(),
          params,
          meta.config,
          classes,
          (v) => predictVideo(params, meta.config, v.features, v.meta, classes),
          prog,
        );
        for (const d of per) dets.push(...d);
        videos = per.length;
      } else {
        for (const { meta: vm } of plan.items) {
          const features = await ds.load(vm.id);
          dets.push(...await predictVideo(params, meta.config, features, vm, classes));
          prog.update(++videos);
        }
      }
    } finally {
      release();
    }
    prog.done();
  } else {
    const fps = numberFlag("predict", values, "fps") ?? 30;
    if (!(fps > 0)) throw new InputError(`predict: --fps must be > 0, got ${fps}`);
    const grid = actionFormerGrid(fps);
    const items = [];
    for (const f of files) {
      const id = path.basename(f).replace(/(\.npy\.gz|\.npy|\.npz)$/i, "");
      items.push({ id, rows: shard ? await fileRows(f) : 0, file: f });
    }
    const plan = shard
      ? planShard("predict", { ...settings, fps }, items, shard)
      : { items, meta: null };
    shardMeta = plan.meta;
    for (const { file: f, id } of plan.items) {
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
  if (classScores) dets = keepVideoClasses(dets, videoClasses(classScores));
  await atomicWriteJson(
    out,
    withShard(toResultsFile(dets, "[Student] tridet-ema", { official: true }), shardMeta),
  );
  logErr(
    `predict: ${dets.length} detections on ${videos} video(s)` +
      `${shardMeta ? ` (shard ${shardMeta.spec} of ${shardMeta.total})` : ""} -> ${out}`,
  );
  if (json) {
    console.log(JSON.stringify({
      videos,
      detections: dets.length,
      out,
      ...(shardMeta ? { shard: shardMeta.spec } : {}),
    }));
  }
  return 0;
}
