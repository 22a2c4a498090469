/**
 * `inspect`: opens a dataset folder and summarises it, reading every video's features once
 * (streamed, one video at a time): counts, classes, feature dim, snippet-count statistics,
 * and a checksum (float64 sum of all feature values) that is the same whichever format the
 * features are stored in.
 *
 * @module
 */
import { logErr, parseFlags, requireFlag } from "../lib/cli_util.ts";
import { openDataset } from "../datasets.ts";
import { InputError } from "../lib/errors.ts";
import { atomicWriteJson } from "../lib/io.ts";
import { planShard, sha256Hex, type ShardSpec } from "../lib/shard.ts";
import { metaRows, SHARD_FLAGS, SHARD_USAGE, shardFromFlags, withShard } from "./sharding.ts";
import { loadPluginModule } from "../registry.ts";

/** Usage text of `inspect`. */
export const usage = `usage: deno run -A mod.ts inspect --root DIR [FLAGS]

Summarises a dataset folder (layout auto-detected unless given).

  --root DIR         dataset folder (for a synth output folder, add --layout)
  --layout NAME      actionformer | cola | activitynet
  --npz-key NAME     array to read from .npz files holding several
  --strict           segments past their video's end and annotated videos without a
                     feature file are errors (default: one warning line each)
  --skip-missing     accepted for compatibility (skipping is the default)
  --include-testing  ActivityNet: list the unlabeled testing videos as test videos
  --json             print the summary as one JSON object (last stdout line)
  --checksum         instead of the summary, list every video's checksum (rows, SHA-256 of
                     its float32 values, float64 sum) and their total, as JSON (to --out, or
                     the last stdout line); the same whichever format the features are in
  --out FILE         with --checksum: write the listing to FILE
  --plugin PATH_OR_URL  load a plugin module first (repeatable; see the plugins command)
${SHARD_USAGE}`;

/** The summary `inspect` prints. */
export interface InspectSummary {
  /** Layout read. */
  layout: string;
  /** Videos with features, per split. */
  videos: Record<string, number>;
  /** Annotated videos without a feature file (left out). */
  skipped: number;
  /** The warning lines of the annotation file (late segments, skipped videos). */
  warnings: string[];
  /** Number of classes. */
  classes: number;
  /** Annotated instances of the videos with features, per split. */
  instances: Record<string, number>;
  /** Feature dimension. */
  featureDim: number;
  /** Feature rows per video. */
  snippets: { min: number; median: number; max: number };
  /** Float64 sum of every feature value. */
  checksum: number;
}

/** Opens and summarises the dataset at `root` (reads every feature value once). */
export async function inspectDataset(
  root: string,
  opts: {
    layout?: string;
    npzKey?: string;
    skipMissing?: boolean;
    includeTesting?: boolean;
    strict?: boolean;
  } = {},
): Promise<InspectSummary> {
  const ds = await openDataset(root, { ...opts, onWarning: (l) => logErr(`warning: ${l}`) });
  try {
    const videos: Record<string, number> = {};
    const instances: Record<string, number> = {};
    const lengths: number[] = [];
    let checksum = 0;
    for (const split of ["train", "test"] as const) {
      videos[split] = 0;
      instances[split] = 0;
      for await (const { meta, features } of ds.videos(split)) {
        videos[split]++;
        instances[split] += meta.annotations.length;
        lengths.push(features.length);
        const d = features.data;
        for (let i = 0; i < d.length; i++) checksum += d[i];
      }
    }
    lengths.sort((a, b) => a - b);
    const n = lengths.length;
    const median = n === 0
      ? 0
      : n % 2
      ? lengths[(n - 1) / 2]
      : (lengths[n / 2 - 1] + lengths[n / 2]) / 2;
    return {
      layout: ds.layout,
      videos,
      skipped: ds.skipped?.length ?? 0,
      warnings: ds.warnings ?? [],
      classes: ds.classes.length,
      instances,
      featureDim: ds.featureDim,
      snippets: { min: lengths[0] ?? 0, median, max: lengths[n - 1] ?? 0 },
      checksum,
    };
  } finally {
    await ds.close?.();
  }
}

/** Checksum of one video in the `inspect --checksum` listing. */
export interface VideoChecksum {
  /** train or test. */
  split: string;
  /** Feature rows. */
  rows: number;
  /** SHA-256 of the row-major float32 values (little-endian). */
  sha256: string;
  /** float64 sum of the values. */
  sum: number;
}

/** The `inspect --checksum` listing (one shard's videos, or all of them). */
export interface ChecksumListing {
  /** Always `fustal-checksums`. */
  format: "fustal-checksums";
  /** Layout read. */
  layout: string;
  /** Feature dim. */
  featureDim: number;
  /** Per video, train videos then test videos, each in the dataset's order. */
  videos: Record<string, VideoChecksum>;
  /** Over the listed videos in order: count, rows, SHA-256 of their hashes, sum of sums. */
  total: { videos: number; rows: number; sha256: string; sum: number };
}

/** The `total` of a listing, from its videos in order (`merge` recomputes it this way). */
export function checksumTotal(videos: Record<string, VideoChecksum>): ChecksumListing["total"] {
  const list = Object.values(videos);
  let rows = 0, sum = 0;
  for (const v of list) {
    rows += v.rows;
    sum += v.sum;
  }
  return {
    videos: list.length,
    rows,
    sha256: sha256Hex(Object.entries(videos).map(([id, v]) => `${id} ${v.sha256}`).join("\n")),
    sum,
  };
}

/** Per-video checksums of a dataset (of one shard of its videos when `shard` is given). */
export async function checksumDataset(
  root: string,
  opts: {
    layout?: string;
    npzKey?: string;
    skipMissing?: boolean;
    includeTesting?: boolean;
    shard?: ShardSpec | null;
  } = {},
): Promise<{ listing: ChecksumListing; shard: ReturnType<typeof planShard>["meta"] }> {
  const ds = await openDataset(root, { ...opts, onWarning: (l) => logErr(`warning: ${l}`) });
  try {
    const metas = [...ds.list("train"), ...ds.list("test")];
    const plan = planShard(
      "inspect --checksum",
      opts.shard
        ? { layout: ds.layout, featureDim: ds.featureDim, npzKey: opts.npzKey ?? null }
        : {},
      metas.map((m) => ({ id: m.id, rows: metaRows(m), split: m.split })),
      opts.shard ?? null,
    );
    const videos: Record<string, VideoChecksum> = {};
    for (const { id, split } of plan.items) {
      const f = await ds.load(id);
      const d = f.data;
      let sum = 0;
      for (let i = 0; i < d.length; i++) sum += d[i];
      const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      videos[id] = { split, rows: f.length, sha256: sha256Hex(bytes), sum };
    }
    return {
      listing: {
        format: "fustal-checksums",
        layout: ds.layout,
        featureDim: ds.featureDim,
        videos,
        total: checksumTotal(videos),
      },
      shard: plan.meta,
    };
  } finally {
    await ds.close?.();
  }
}

/** Runs `inspect`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("inspect", args, {
    root: { type: "string" },
    layout: { type: "string" },
    "npz-key": { type: "string" },
    "skip-missing": { type: "boolean" },
    "include-testing": { type: "boolean" },
    strict: { type: "boolean" },
    json: { type: "boolean" },
    checksum: { type: "boolean" },
    out: { type: "string" },
    ...SHARD_FLAGS,
    plugin: { type: "string", multiple: true },
  });
  for (const m of (values.plugin as string[] | undefined) ?? []) await loadPluginModule(m);
  const root = requireFlag("inspect", values, "root");
  if (values.checksum) {
    const { listing, shard } = await checksumDataset(root, {
      layout: values.layout as string | undefined,
      npzKey: values["npz-key"] as string | undefined,
      skipMissing: Boolean(values["skip-missing"]),
      includeTesting: Boolean(values["include-testing"]),
      shard: shardFromFlags("inspect", values),
    });
    const doc = withShard(listing, shard);
    if (typeof values.out === "string") {
      await atomicWriteJson(values.out, doc);
      logErr(
        `inspect: checksums of ${listing.total.videos} video(s)` +
          `${shard ? ` (shard ${shard.spec} of ${shard.total})` : ""} -> ${values.out}`,
      );
    } else console.log(JSON.stringify(doc));
    return 0;
  }
  for (const f of ["out", "shard", "shard-count"]) {
    if (values[f] !== undefined) throw new InputError(`inspect: --${f} needs --checksum`);
  }
  const s = await inspectDataset(root, {
    layout: values.layout as string | undefined,
    npzKey: values["npz-key"] as string | undefined,
    skipMissing: Boolean(values["skip-missing"]),
    includeTesting: Boolean(values["include-testing"]),
    strict: Boolean(values.strict),
  });
  if (values.json) {
    console.log(JSON.stringify(s));
    return 0;
  }
  const kv = (o: Record<string, number>) =>
    Object.entries(o).map(([k, v]) => `${k} ${v}`).join(", ");
  console.log(`layout     ${s.layout}`);
  console.log(`videos     ${kv(s.videos)} (with features; ${s.skipped} skipped without)`);
  console.log(`instances  ${kv(s.instances)}`);
  console.log(`classes    ${s.classes}`);
  console.log(`featureDim ${s.featureDim}`);
  console.log(
    `snippets   min ${s.snippets.min}, median ${s.snippets.median}, max ${s.snippets.max}`,
  );
  console.log(`checksum   ${s.checksum}`);
  return 0;
}
