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
import {
  isInteractive,
  keyValueOptions,
  logErr,
  numberFlag,
  parseFlags,
  Progress,
} from "../lib/cli_util.ts";
import {
  applyBlasFlags,
  type BackendInfo,
  type BackendName,
  BLAS_FLAGS,
  describeBackend,
  initBackend,
} from "../lib/backend.ts";
import type { Detection } from "../lib/types.ts";
import type { StudentPlugin } from "../lib/plugin_types.ts";
import type { Dataset, FeatureGrid, VideoFeatures, VideoMeta } from "../lib/dataset_types.ts";
import { decodeFeatureBytes } from "../datasets/features.ts";
import { actionFormerGrid, gridToSeconds } from "../datasets/time.ts";
import { predictVideo } from "../stages/training/infer.ts";
import { holdPool, POOL_MIN_VIDEOS, pooledDetect, poolFor } from "../stages/training/pool.ts";
import { WORKER_FLAGS, WORKERS_USAGE } from "../lib/workers.ts";
import { loadStudent } from "../stages/training/train.ts";
import { INFERENCE_OPTIONS, withInferenceOptions } from "../stages/training/plugin.ts";
import { DEFAULT } from "../stages/training/presets.ts";
import { readResultsFile, toResultsFile } from "../stages/evaluation.ts";
import { keepVideoClasses, videoClasses } from "../stages/fusion.ts";
import {
  callPlugin,
  DEFAULT_PLUGINS,
  describePlugin,
  getPlugin,
  loadPluginModule,
} from "../registry.ts";
import { CHECKPOINT_MAGIC } from "../stages/training/checkpoint.ts";
import { planShard, type ShardMeta, type ShardSpec } from "../lib/shard.ts";
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
        [--shard i/n | --shard-count N] [--class-scores RESULTS.json] [--student NAME]
        [--option KEY=VALUE ...] [--plugin PATH_OR_URL] [--json]
  Detects actions with a student checkpoint. --features takes .npy / .npy.gz / .npz files of
  T x D features on the ActionFormer grid (16-frame windows every 4 frames at --fps, default
  30); the video id is the file name without extension, no annotations needed. Output:
  ActivityNet result JSON in seconds. --json: last line {"videos", "detections", "out"}.
  --class-scores F      class fusion: keep only the detections of the classes F (a result file,
                        e.g. a run's generator_test.json) lists for each video; videos F does
                        not list keep all (what \`run\` does with --class-fusion generator)
  --option KEY=VALUE    run the checkpoint with another value of an inference setting
                        (repeatable; VALUE as JSON; stages/training/presets.ts), one of
                        ${INFERENCE_OPTIONS.slice(0, 5).join(", ")},
                        ${INFERENCE_OPTIONS.slice(5).join(", ")}
  --plugin PATH_OR_URL  load a plugin module first (repeatable; see the plugins command)
  --student NAME        the student plugin that reads the checkpoint (default: the one it
                        names: tridet-ema for the built-in format, else the "student" field of
                        a JSON checkpoint); a plugin student detects with its own predict
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
    student: { type: "string" },
    option: { type: "string", multiple: true },
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
  // The student that reads the checkpoint: a plugin's detects with its own `predict`.
  const stuName = (values.student as string | undefined) ?? await checkpointStudent(ckpt);
  const plugin = stuName === DEFAULT_PLUGINS.student ? null : await predictingStudent(stuName);
  if (plugin && values.weights !== undefined) {
    throw new InputError(`predict: --weights is for the built-in ${DEFAULT_PLUGINS.student} only`);
  }
  const options = keyValueOptions("predict", "option", values.option as string[] | undefined);
  if (plugin && Object.keys(options).length) {
    throw new InputError(`predict: --option is for the built-in ${DEFAULT_PLUGINS.student} only`);
  }
  withInferenceOptions(DEFAULT, options); // checked before any work; applied to the checkpoint's config
  applyBlasFlags("predict", values);
  const backend = await initBackend((values.backend as BackendName | undefined) ?? "auto");
  logErr(describeBackend(backend));
  if (plugin) {
    const { dets: pd, videos: n, shardMeta: sm } = await pluginPredict(plugin, ckpt, {
      root: values.root as string | undefined,
      layout: values.layout as string | undefined,
      split: values.split as string | undefined,
      files,
      fps: numberFlag("predict", values, "fps"),
      shard,
      json,
      backend,
    });
    return await finish(pd, n, sm, `[Student] ${stuName}`);
  }
  const { params, meta } = await loadStudent(ckpt, which);
  meta.config = withInferenceOptions(meta.config, options);
  const dets: Detection[] = [];
  let videos = 0;
  // The post-processing actually used (so `--option` given in any order, or at the
  // checkpoint's own values, fingerprints the same).
  const post = Object.fromEntries(INFERENCE_OPTIONS.map((k) => [k, meta.config[k]]));
  const settings = shard
    ? { checkpoint: await fileHash(ckpt), weights: which, inDim: meta.inDim, post }
    : {};
  let shardMeta: ShardMeta | null = null;
  if (values.root) {
    const { ds, plan } = await rootPlan(
      values.root as string,
      values.layout as string | undefined,
      values.split as string | undefined,
      settings,
      shard,
      (ds) => {
        if (ds.featureDim !== meta.inDim) {
          throw new InputError(
            `${ds.root}: features are ${ds.featureDim}-d, the checkpoint expects ${meta.inDim}-d`,
          );
        }
      },
    );
    const classes = meta.classes;
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
    const fps = numberFlag("predict", values, "fps");
    const plan = await featurePlan(files, fps, shard, settings);
    shardMeta = plan.meta;
    for await (const { meta: vm, features } of featureVideos(plan.items, plan.grid, meta.inDim)) {
      dets.push(...await predictVideo(params, meta.config, features, vm, meta.classes));
      videos++;
    }
  }
  return await finish(dets, videos, shardMeta, "[Student] tridet-ema");

  /** Class fusion, the result file, the summary line (and `--json` line); the exit code. */
  async function finish(
    found: Detection[],
    n: number,
    sm: ShardMeta | null,
    method: string,
  ): Promise<number> {
    if (classScores) found = keepVideoClasses(found, videoClasses(classScores));
    await atomicWriteJson(out!, withShard(toResultsFile(found, method, { official: true }), sm));
    logErr(
      `predict: ${found.length} detections on ${n} video(s)` +
        `${sm ? ` (shard ${sm.spec} of ${sm.total})` : ""} -> ${out}`,
    );
    if (json) {
      console.log(JSON.stringify({
        videos: n,
        detections: found.length,
        out,
        ...(sm ? { shard: sm.spec } : {}),
      }));
    }
    return 0;
  }
}

/**
 * The student a checkpoint names: `tridet-ema` for the built-in format, else the `student`
 * field of a JSON checkpoint (a plugin student's, see `PredictContext`).
 */
export async function checkpointStudent(file: string): Promise<string> {
  const bytes = await readBytes(file);
  const magic = new TextDecoder().decode(bytes.subarray(0, CHECKPOINT_MAGIC.length));
  if (magic === CHECKPOINT_MAGIC) return DEFAULT_PLUGINS.student;
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    doc = undefined;
  }
  const name = (doc as { student?: unknown } | undefined)?.student;
  if (typeof doc !== "object" || doc === null || typeof name !== "string" || name === "") {
    throw new InputError(
      `${file}: not a student checkpoint (neither the built-in format nor a JSON file whose ` +
        `"student" field names its student plugin)`,
    );
  }
  return name;
}

/** The registered student plugin `name`, which must have a `predict` method. */
async function predictingStudent(name: string): Promise<StudentPlugin> {
  let plugin: StudentPlugin;
  try {
    plugin = await getPlugin("student", name);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    throw new InputError(
      `predict: the checkpoint's student "${name}" is not registered (load its module with ` +
        `--plugin PATH_OR_URL): ${e.message}`,
    );
  }
  if (typeof plugin.predict !== "function") {
    throw new InputError(`predict: ${describePlugin(plugin)} cannot predict (no predict method)`);
  }
  return plugin;
}

/** The feature files of `--features` as planned videos (one shard of them with `shard`). */
async function featurePlan(
  files: string[],
  fps: number | undefined,
  shard: ShardSpec | null,
  settings: Record<string, unknown>,
) {
  const f = fps ?? 30;
  if (!(f > 0)) throw new InputError(`predict: --fps must be > 0, got ${f}`);
  const grid = actionFormerGrid(f);
  const items = [];
  for (const file of files) {
    const id = path.basename(file).replace(/(\.npy\.gz|\.npy|\.npz)$/i, "");
    items.push({ id, rows: shard ? await fileRows(file) : 0, file });
  }
  const plan = shard
    ? planShard("predict", { ...settings, fps: f }, items, shard)
    : { items, meta: null };
  return { ...plan, grid };
}

/**
 * The videos of feature files, read one at a time: T x D arrays (`dim` when given), finite,
 * on `grid`, without annotations.
 */
async function* featureVideos(
  items: { id: string; file: string }[],
  grid: FeatureGrid,
  dim?: number,
): AsyncGenerator<{ meta: VideoMeta; features: VideoFeatures }> {
  for (const { file: f, id } of items) {
    const arr = await decodeFeatureBytes(await readBytes(f), f);
    if (arr.shape.length !== 2 || (dim !== undefined && arr.shape[1] !== dim)) {
      throw new InputError(
        `${f}: expected a T x ${dim ?? "D"} feature array, got shape (${arr.shape.join(", ")})`,
      );
    }
    for (const x of arr.data) {
      if (!Number.isFinite(x)) throw new InputError(`${f}: features contain NaN or Inf`);
    }
    const t = arr.shape[0];
    if (t < 1) throw new InputError(`${f}: no feature rows`);
    // Frames covered by the rows: the last window ends at (T-1)*stride + window.
    const duration = gridToSeconds(grid, t - 1) + (grid.window - grid.offset) / grid.fps;
    yield {
      meta: {
        id,
        split: "test",
        subset: "test",
        duration,
        fps: grid.fps,
        grid,
        length: t,
        annotations: [],
        labels: [],
      },
      features: { data: arr.data, length: t, dim: arr.shape[1] },
    };
  }
}

/**
 * The videos of `--root` to predict: the dataset (checked by `check` as soon as it is open), the
 * `--split` (test by default; train, or all) and this shard's part of it.
 */
async function rootPlan(
  root: string,
  layout: string | undefined,
  split: string | undefined,
  settings: Record<string, unknown>,
  shard: ShardSpec | null,
  check?: (ds: Dataset) => void,
) {
  const { openDataset } = await import("../datasets.ts");
  const ds = await openDataset(root, layout ? { layout } : {});
  check?.(ds);
  const s = split ?? "test";
  if (!["test", "train", "all"].includes(s)) {
    throw new InputError(`predict: --split must be test, train or all, got "${s}"`);
  }
  const plan = planShard(
    "predict",
    { ...settings, layout: ds.layout, split: s },
    ds.list(s === "all" ? undefined : s as "test").map((m) => ({
      id: m.id,
      rows: metaRows(m),
      meta: m,
    })),
    shard,
  );
  return { ds, plan };
}

/**
 * `predict` with a student plugin's own `predict`: the videos of `--root` (its split) or of the
 * feature files go to the plugin one at a time; what it returns is checked like every plugin's
 * detections (known videos, segments within them).
 */
async function pluginPredict(
  plugin: StudentPlugin,
  ckpt: string,
  o: {
    root?: string;
    layout?: string;
    split?: string;
    files: string[];
    fps?: number;
    shard: ShardSpec | null;
    json: boolean;
    backend: BackendInfo;
  },
): Promise<{ dets: Detection[]; videos: number; shardMeta: ShardMeta | null }> {
  const settings = o.shard ? { checkpoint: await fileHash(ckpt), student: plugin.name } : {};
  const spans = new Map<string, { duration: number }>();
  let source: AsyncIterable<{ meta: VideoMeta; features: VideoFeatures }>;
  let total: number;
  let shardMeta: ShardMeta | null;
  if (o.root) {
    const { ds, plan } = await rootPlan(o.root, o.layout, o.split, settings, o.shard);
    shardMeta = plan.meta;
    total = plan.items.length;
    source = (async function* () {
      for (const { meta } of plan.items) yield { meta, features: await ds.load(meta.id) };
    })();
  } else {
    const plan = await featurePlan(o.files, o.fps, o.shard, settings);
    shardMeta = plan.meta;
    total = plan.items.length;
    source = featureVideos(plan.items, plan.grid);
  }
  let videos = 0;
  const counted = (async function* () {
    for await (const v of source) {
      spans.set(v.meta.id, { duration: v.meta.duration });
      videos++;
      yield v;
    }
  })();
  const ctx = {
    backend: o.backend,
    log: logErr,
    progress: (label: string, n: number) => new Progress(label, n, isInteractive(o.json)),
  };
  logErr(`predict: ${total} video(s) with student plugin "${plugin.name}"`);
  const dets = await callPlugin(plugin, "predict", () => plugin.predict!(ckpt, counted, ctx), {
    videos: spans,
  });
  return { dets, videos, shardMeta };
}
