/**
 * The `--shard i/n` / `--shard-count N` flags shared by the per-video commands (`predict`,
 * `propose`, `inspect --checksum`), and how their outputs carry the shard metadata.
 *
 * @module
 */
import * as fs from "node:fs/promises";
import type { VideoMeta } from "../datasets/types.ts";
import { logErr } from "../lib/cli_util.ts";
import { readBytes } from "../lib/io.ts";
import { resolveShard, sha256Hex, type ShardMeta, type ShardSpec } from "../lib/shard.ts";

/** parseArgs options of the shard flags. */
export const SHARD_FLAGS = {
  shard: { type: "string" },
  "shard-count": { type: "string" },
} as const;

/** Usage lines of the shard flags. */
export const SHARD_USAGE =
  `  --shard i/n         work on shard i (0-based) of n: a deterministic subset of the videos,
                      balanced by feature rows; the output carries the shard's metadata and
                      a fingerprint, and \`merge\` joins the n outputs into the unsharded file.
                      Without it: SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN) of
                      SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX of --shard-count N
  --shard-count N     number of shards when the index comes from the environment`;

/** The shard of this process from the flags and the runner's environment (null: all). */
export function shardFromFlags(
  command: string,
  values: Record<string, unknown>,
): ShardSpec | null {
  const s = resolveShard(
    command,
    {
      shard: values.shard as string | undefined,
      shardCount: values["shard-count"] as string | undefined,
    },
    undefined,
    logErr,
  );
  if (s && s.source !== `${command}: --shard`) {
    logErr(`${command}: shard ${s.index}/${s.count} from ${s.source.split(": ")[1]}`);
  }
  return s;
}

/**
 * Work of a video in feature rows: the count when the adapter knows it, else estimated from
 * the duration and the feature grid (deterministic, so every shard computes the same plan).
 */
export function metaRows(m: VideoMeta): number {
  if (m.length >= 0) return m.length;
  return Math.max(1, Math.round((m.duration * m.grid.fps) / m.grid.stride));
}

/** Size of a file in bytes (the work estimate for `--features FILE...`); 0 when unreadable. */
export async function fileRows(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return 0;
  }
}

/** SHA-256 of a checkpoint file (part of a shard's fingerprint). */
export async function fileHash(file: string): Promise<string> {
  return sha256Hex(await readBytes(file));
}

/** `value` with the shard metadata appended as the last top-level key (unchanged when null). */
export function withShard<T extends object>(value: T, meta: ShardMeta | null): T {
  return meta ? { ...value, shard: meta } : value;
}
