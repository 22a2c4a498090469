/**
 * `merge`: joins the outputs of the shards of one job (`predict`, `propose` or
 * `inspect --checksum` run with `--shard i/n` or a runner's array index) into the file a single
 * process would have written, byte for byte.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";
import { atomicWriteJson, readJson } from "../lib/io.ts";
import { logErr, parseFlags, requireFlag } from "../lib/cli_util.ts";
import { mergeShardObjects, type ShardInput } from "../lib/shard.ts";
import { checksumTotal, type VideoChecksum } from "./inspect.ts";

/** Usage text of `merge`. */
export const usage = `usage: deno run -A mod.ts merge --out FILE SHARD.json...

Joins the shard outputs of one job into the unsharded output:
  ActivityNet result files of predict / propose (keyed by video id), and
  checksum listings of inspect --checksum (their total is recomputed).
Checks that every shard carries the same fingerprint (checkpoint hash and settings) and that
every video of the job appears in exactly one shard; the result equals, byte for byte, what
one process without --shard writes.

flags:
  --out FILE   merged file (written atomically)
  --json       last stdout line: {"shards", "videos", "out"}`;

/** Merges parsed shard outputs (see the module doc); returns the merged document. */
export function mergeShardOutputs(shards: readonly ShardInput[]): {
  merged: Record<string, unknown>;
  videos: number;
} {
  const first = shards[0]?.value as Record<string, unknown> | undefined;
  const kind = first?.format === "fustal-checksums" ? "videos" : "results";
  for (const s of shards) {
    const v = s.value as Record<string, unknown> | null;
    const k = v && typeof v === "object" && v.format === "fustal-checksums" ? "videos" : "results";
    if (k !== kind) {
      throw new InputError(`${s.file}: a different kind of output than ${shards[0].file}`);
    }
  }
  const { merged, meta } = mergeShardObjects(shards, kind);
  if (kind === "videos") {
    merged.total = checksumTotal(merged.videos as Record<string, VideoChecksum>);
  }
  return { merged, videos: meta.total };
}

/** Runs `merge`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("merge", args, {
    out: { type: "string" },
    json: { type: "boolean" },
  }, true);
  const out = requireFlag("merge", values, "out");
  if (positionals.length === 0) throw new InputError("merge: give the shard files to merge");
  const shards: ShardInput[] = [];
  for (const file of positionals) shards.push({ file, value: await readJson(file) });
  const { merged, videos } = mergeShardOutputs(shards);
  await atomicWriteJson(out, merged);
  logErr(`merge: ${shards.length} shard(s), ${videos} videos -> ${out}`);
  if (values.json) console.log(JSON.stringify({ shards: shards.length, videos, out }));
  return 0;
}
