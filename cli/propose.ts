/**
 * `propose`: proposal extraction from a trained generator checkpoint (`generator_best.ckpt`
 * of `generate` or of a run folder) without training: eval-mode CAS with uniform sampling,
 * then the proposal sweep, OIC scores and class-wise NMS of CoLA's inference
 * (github zhang-can/CoLA, `test.py` / `utils.py`), one video at a time. The per-video step
 * that scales with the number of videos, so it takes `--shard`.
 *
 * @module
 */
import * as path from "node:path";
import { tf } from "../deps.ts";
import { InputError } from "../lib/errors.ts";
import { atomicWriteJson, exists } from "../lib/io.ts";
import { isInteractive, logErr, parseFlags, Progress, requireFlag } from "../lib/cli_util.ts";
import { type BackendName, describeBackend, initBackend } from "../lib/backend.ts";
import type { Detection } from "../lib/types.ts";
import { planShard, type ShardMeta } from "../lib/shard.ts";
import { type GeneratorParams, inferCas, loadCheckpoint } from "../stages/generation/model.ts";
import { type GeneratorConfig, generatorConfig } from "../stages/generation/presets.ts";
import { extractProposals } from "../stages/generation/proposals.ts";
import { gatherRows, uniformIndices } from "../stages/generation/sampling.ts";
import { videoScores } from "../stages/generation/infer.ts";
import { toResultsFile } from "../stages/evaluation.ts";
import {
  fileHash,
  metaRows,
  SHARD_FLAGS,
  SHARD_USAGE,
  shardFromFlags,
  withShard,
} from "./sharding.ts";

/** Usage text of `propose`. */
export const usage =
  `usage: deno run -A mod.ts propose --checkpoint CKPT --root DIR --out FILE [FLAGS]

Extracts pseudo proposals with a trained generator checkpoint (no training), one video at a
time, into an ActivityNet result file (the format of generate's proposals.json).

flags:
  --checkpoint CKPT   generator checkpoint (generator_best.ckpt)
  --root DIR          dataset folder (a folder with cola/ uses cola/ unless --layout is given)
  --layout NAME       cola | actionformer | activitynet (default: auto-detect)
  --split NAME        train (default) | test | all
  --out FILE          result file
  --backend NAME      auto | webgpu | wasm | cpu (default auto)
${SHARD_USAGE}
  --json              last stdout line: {"videos", "proposals", "out"}`;

/** Proposals of one video with the generator weights (the shard-independent unit). */
async function proposeVideo(
  params: GeneratorParams,
  cfg: GeneratorConfig,
  meta: { id: string; grid: Parameters<typeof extractProposals>[2] },
  features: { data: Float32Array; length: number },
  D: number,
  classes: readonly string[],
): Promise<Detection[]> {
  const idx = uniformIndices(features.length, cfg.snippets);
  const data = new Float32Array(idx.length * D);
  gatherRows(features.data, D, idx, data);
  const [cas] = await inferCas(params, [{ data, T: idx.length }], D);
  const C = classes.length;
  return extractProposals(
    meta.id,
    {
      cas,
      T: idx.length,
      C,
      videoScore: videoScores(cas, idx.length, C, cfg.rEasy),
      L: features.length,
    },
    meta.grid,
    classes,
    cfg.proposal,
  );
}

/** Runs `propose`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("propose", args, {
    checkpoint: { type: "string" },
    root: { type: "string" },
    layout: { type: "string" },
    split: { type: "string" },
    out: { type: "string" },
    backend: { type: "string" },
    json: { type: "boolean" },
    ...SHARD_FLAGS,
  });
  const ckpt = requireFlag("propose", values, "checkpoint");
  const out = requireFlag("propose", values, "out");
  let root = path.resolve(requireFlag("propose", values, "root"));
  const split = (values.split as string | undefined) ?? "train";
  if (!["train", "test", "all"].includes(split)) {
    throw new InputError(`propose: --split must be train, test or all, got "${split}"`);
  }
  const json = Boolean(values.json);
  const shard = shardFromFlags("propose", values);
  let layout = typeof values.layout === "string" ? values.layout : undefined;
  if (!layout && await exists(path.join(root, "cola"))) {
    root = path.join(root, "cola");
    layout = "cola";
  }
  const { header, values: weights } = await loadCheckpoint(ckpt);
  const { openDataset } = await import("../datasets.ts");
  const ds = await openDataset(root, layout ? { layout } : {});
  try {
    if (ds.featureDim !== header.inputDim) {
      throw new InputError(
        `${ds.root}: features are ${ds.featureDim}-d, the checkpoint ${ckpt} expects ${header.inputDim}-d`,
      );
    }
    // Inference uses the training run's snippet count, r_easy and proposal constants.
    const saved = (header.config ?? {}) as Partial<GeneratorConfig>;
    const cfg = generatorConfig("default", {
      snippets: saved.snippets,
      rEasy: saved.rEasy,
      proposal: saved.proposal,
    });
    const info = await initBackend((values.backend as BackendName | undefined) ?? "auto");
    logErr(describeBackend(info));
    const metas = ds.list(split === "all" ? undefined : split as "train");
    const plan = planShard(
      "propose",
      shard
        ? {
          checkpoint: await fileHash(ckpt),
          layout: ds.layout,
          split,
          snippets: cfg.snippets,
          rEasy: cfg.rEasy,
          proposal: cfg.proposal,
        }
        : {},
      metas.map((m) => ({ id: m.id, rows: metaRows(m), meta: m })),
      shard,
    );
    const shardMeta: ShardMeta | null = plan.meta;
    const D = ds.featureDim;
    const params: GeneratorParams = {
      w1: tf.variable(tf.tensor(weights.w1, [3 * D, header.hidden]), false),
      b1: tf.variable(tf.tensor(weights.b1, [header.hidden]), false),
      w2: tf.variable(tf.tensor(weights.w2, [header.hidden, header.classes.length]), false),
    };
    const dets: Detection[] = [];
    const prog = new Progress("propose", plan.items.length, isInteractive(json));
    let done = 0;
    for (const { meta } of plan.items) {
      const f = await ds.load(meta.id);
      dets.push(...await proposeVideo(params, cfg, meta, f, D, header.classes));
      prog.update(++done);
    }
    prog.done();
    for (const v of Object.values(params)) v.dispose();
    await atomicWriteJson(
      out,
      withShard(
        toResultsFile(dets, "[Generator]", { videoIds: plan.items.map((it) => it.id) }),
        shardMeta,
      ),
    );
    logErr(
      `propose: ${dets.length} proposals on ${done} video(s)` +
        `${shardMeta ? ` (shard ${shardMeta.spec} of ${shardMeta.total})` : ""} -> ${out}`,
    );
    if (json) {
      console.log(JSON.stringify({
        videos: done,
        proposals: dets.length,
        out,
        ...(shardMeta ? { shard: shardMeta.spec } : {}),
      }));
    }
    return 0;
  } finally {
    await ds.close?.();
  }
}
