/**
 * Sharding of per-video work for job arrays (Slurm array jobs, Kubernetes Indexed Jobs): the
 * shard spec (`--shard i/n`, or the index the runner puts in the environment), a
 * deterministic assignment of videos to shards balanced by feature rows, the metadata (with a
 * fingerprint of the checkpoint and settings) each shard output carries, and the exact merge
 * of shard outputs back into the file one process would have written.
 *
 * The toolkit schedules nothing itself: every shard is an ordinary process that a runner
 * starts with its own index.
 *
 * @module
 */
import { createHash } from "node:crypto";
import process from "node:process";
import { InputError } from "./errors.ts";

/** One shard of a job: index `index` (0-based) of `count`. */
export interface ShardSpec {
  /** 0-based shard index, `0 <= index < count`. */
  index: number;
  /** Number of shards, at least 1. */
  count: number;
  /** Where the spec came from (`--shard`, `SLURM_ARRAY_TASK_ID`, `JOB_COMPLETION_INDEX`). */
  source: string;
}

/** The spec written as `i/n`. */
export function formatShard(s: { index: number; count: number }): string {
  return `${s.index}/${s.count}`;
}

function nonNegInt(s: string): number | null {
  return /^\d{1,9}$/.test(s.trim()) ? Number(s.trim()) : null;
}

/**
 * Parses `i/n` (0-based index `i`, `n` shards). Anything else, `n = 0` or `i >= n` is an
 * {@linkcode InputError} naming `source`.
 */
export function parseShardSpec(text: string, source = "--shard"): ShardSpec {
  const m = /^\s*(\d{1,9})\s*\/\s*(\d{1,9})\s*$/.exec(text);
  if (!m) {
    throw new InputError(
      `${source}: cannot read "${text}" (expected i/n with 0 <= i < n, e.g. 0/4)`,
    );
  }
  const index = Number(m[1]), count = Number(m[2]);
  if (count < 1) throw new InputError(`${source}: "${text}" has no shards (n must be >= 1)`);
  if (index >= count) {
    throw new InputError(
      `${source}: "${text}" is out of range (shards are numbered 0..${count - 1})`,
    );
  }
  return { index, count, source };
}

/**
 * The shard this process works on: `--shard i/n` when given; else
 * `JOB_COMPLETION_INDEX` (Kubernetes Indexed Job) with `--shard-count N`; else
 * `SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN` (0 when unset) of
 * `SLURM_ARRAY_TASK_COUNT` (or `--shard-count`); else null (all the work). A
 * `JOB_COMPLETION_INDEX` without `--shard-count` is ignored with a note through `log`
 * (Kubernetes does not tell a pod how many completions its job has).
 */
export function resolveShard(
  command: string,
  flags: { shard?: string; shardCount?: string },
  env: Record<string, string | undefined> = process.env,
  log: (line: string) => void = () => {},
): ShardSpec | null {
  if (flags.shard !== undefined) {
    if (flags.shardCount !== undefined) {
      throw new InputError(`${command}: give --shard i/n or --shard-count N, not both`);
    }
    return parseShardSpec(flags.shard, `${command}: --shard`);
  }
  let count: number | null = null;
  if (flags.shardCount !== undefined) {
    count = nonNegInt(flags.shardCount);
    if (count === null || count < 1) {
      throw new InputError(
        `${command}: --shard-count must be a whole number >= 1, got "${flags.shardCount}"`,
      );
    }
  }
  const jci = env.JOB_COMPLETION_INDEX;
  if (jci !== undefined && jci !== "") {
    if (count === null) {
      log(
        `${command}: JOB_COMPLETION_INDEX=${jci} is set but --shard-count is not; ` +
          `working on every video`,
      );
      return null;
    }
    return parseShardSpec(`${jci}/${count}`, `${command}: JOB_COMPLETION_INDEX`);
  }
  const sid = env.SLURM_ARRAY_TASK_ID;
  if (sid !== undefined && sid !== "") {
    const id = nonNegInt(sid);
    const min = nonNegInt(env.SLURM_ARRAY_TASK_MIN ?? "0");
    if (id === null || min === null) {
      throw new InputError(
        `${command}: SLURM_ARRAY_TASK_ID="${sid}" / SLURM_ARRAY_TASK_MIN="${
          env.SLURM_ARRAY_TASK_MIN ?? ""
        }" are not whole numbers`,
      );
    }
    const n = count ?? nonNegInt(env.SLURM_ARRAY_TASK_COUNT ?? "");
    if (n === null) {
      throw new InputError(
        `${command}: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (give --shard-count N)`,
      );
    }
    return parseShardSpec(`${id - min}/${n}`, `${command}: SLURM_ARRAY_TASK_ID`);
  }
  if (count !== null) {
    throw new InputError(
      `${command}: --shard-count needs JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the ` +
        `environment (or use --shard i/n)`,
    );
  }
  return null;
}

/** A unit of per-video work: its id and its cost in feature rows. */
export interface ShardItem {
  /** Video id (unique). */
  id: string;
  /** Feature rows (or any cost proportional to the work). */
  rows: number;
}

/**
 * Deterministic balanced assignment: items sorted by rows (descending, ties by id), each
 * given to the shard with the fewest rows so far (ties: the lower index). Returns, for each
 * item in input order, its shard index. Depends only on the ids and rows, never on the order
 * the items are given in.
 */
export function assignShards(items: readonly ShardItem[], count: number): number[] {
  const order = items.map((_, i) => i).sort((a, b) =>
    items[b].rows - items[a].rows ||
    (items[a].id < items[b].id ? -1 : items[a].id > items[b].id ? 1 : 0)
  );
  const load = new Array<number>(count).fill(0);
  const out = new Array<number>(items.length);
  for (const i of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s] < load[best]) best = s;
    out[i] = best;
    load[best] += Math.max(0, items[i].rows);
  }
  return out;
}

/** SHA-256 of bytes or a string, as lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Metadata each shard output carries under the top-level key `shard`. */
export interface ShardMeta {
  /** `i/n`. */
  spec: string;
  /** Shard index (0-based). */
  index: number;
  /** Number of shards. */
  count: number;
  /** SHA-256 of the command, its settings (checkpoint hash included), and the video list. */
  fingerprint: string;
  /** The settings the fingerprint covers (shown when two shards differ). */
  settings: Record<string, unknown>;
  /** Videos of the whole job. */
  total: number;
  /** SHA-256 of the whole job's ordered video id list (newline-joined). */
  listHash: string;
  /** This shard's videos, in job order. */
  videos: string[];
  /** Their positions in the job's ordered list. */
  positions: number[];
}

/** SHA-256 of an ordered id list (ids joined by newlines). */
export function listHash(ids: readonly string[]): string {
  return sha256Hex(ids.join("\n"));
}

/** The fingerprint of a job: command, settings and the ordered video list. */
export function jobFingerprint(
  command: string,
  settings: Record<string, unknown>,
  ids: readonly string[],
): string {
  return sha256Hex(JSON.stringify({ command, settings, total: ids.length, list: listHash(ids) }));
}

/**
 * Plans one shard of a job over `items` (in job order): the items it owns (in job order) and
 * the metadata its output carries. With `shard` null the plan is the whole job and `meta` is
 * null (the output is exactly the unsharded format).
 */
export function planShard<T extends ShardItem>(
  command: string,
  settings: Record<string, unknown>,
  items: readonly T[],
  shard: ShardSpec | null,
): { items: T[]; meta: ShardMeta | null } {
  const seen = new Set<string>();
  for (const it of items) {
    if (seen.has(it.id)) throw new InputError(`${command}: video id "${it.id}" appears twice`);
    seen.add(it.id);
  }
  if (!shard) return { items: [...items], meta: null };
  const ids = items.map((it) => it.id);
  const owner = assignShards(items, shard.count);
  const positions = owner.flatMap((s, i) => (s === shard.index ? [i] : []));
  return {
    items: positions.map((i) => items[i]),
    meta: {
      spec: formatShard(shard),
      index: shard.index,
      count: shard.count,
      fingerprint: jobFingerprint(command, settings, ids),
      settings,
      total: ids.length,
      listHash: listHash(ids),
      videos: positions.map((i) => ids[i]),
      positions,
    },
  };
}

/** One shard output to merge: its file name (for messages) and parsed JSON. */
export interface ShardInput {
  /** File the object came from. */
  file: string;
  /** The parsed JSON object. */
  value: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readMeta(s: ShardInput): ShardMeta {
  const v = s.value;
  if (!isRecord(v) || !isRecord(v.shard)) {
    throw new InputError(
      `${s.file}: no "shard" metadata (not written with --shard or a runner's array index)`,
    );
  }
  const m = v.shard as Record<string, unknown>;
  const ok = typeof m.fingerprint === "string" && typeof m.index === "number" &&
    typeof m.count === "number" && typeof m.total === "number" &&
    typeof m.listHash === "string" && Array.isArray(m.videos) && Array.isArray(m.positions) &&
    m.videos.length === m.positions.length && isRecord(m.settings) &&
    m.videos.every((x) => typeof x === "string") &&
    m.positions.every((x) => Number.isInteger(x) && (x as number) >= 0 && x < (m.total as number));
  if (!ok) throw new InputError(`${s.file}: malformed "shard" metadata`);
  return m as unknown as ShardMeta;
}

function settingsDiff(a: Record<string, unknown>, b: Record<string, unknown>): string {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  const diff = keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  return diff.length
    ? diff.map((k) => `${k} ${JSON.stringify(b[k])} vs ${JSON.stringify(a[k])}`).join(", ")
    : "same settings, different video list";
}

/**
 * Merges shard outputs whose per-video entries live in the object under `key` (`results` for
 * ActivityNet result files, `videos` for checksum listings). Checks that every shard has the
 * same fingerprint and shard count, that every video of the job appears in exactly one shard,
 * and that each shard's entries belong to its own videos. Returns the object one process
 * would have written: the first shard's top-level keys in their order without `shard`, with
 * `key` holding the entries in job order.
 */
export function mergeShardObjects(shards: readonly ShardInput[], key: string): {
  merged: Record<string, unknown>;
  meta: ShardMeta;
} {
  if (shards.length === 0) throw new InputError("merge: no shard files given");
  const metas = shards.map(readMeta);
  const first = metas[0];
  for (const [i, m] of metas.entries()) {
    if (m.fingerprint !== first.fingerprint) {
      throw new InputError(
        `${shards[i].file}: fingerprint ${m.fingerprint.slice(0, 12)} differs from ${
          shards[0].file
        }'s ${first.fingerprint.slice(0, 12)} (${settingsDiff(first.settings, m.settings)})`,
      );
    }
    if (m.count !== first.count || m.total !== first.total) {
      throw new InputError(
        `${shards[i].file}: shard ${m.spec} of a ${m.count}-shard job, ${shards[0].file} is ` +
          `${first.spec}`,
      );
    }
  }
  const byIndex = new Map<number, string>();
  for (const [i, m] of metas.entries()) {
    const other = byIndex.get(m.index);
    if (other !== undefined) {
      throw new InputError(
        `${shards[i].file}: shard ${m.spec} given twice (also ${other}); its videos, e.g. "${
          m.videos[0] ?? "(none)"
        }", would be duplicated`,
      );
    }
    byIndex.set(m.index, shards[i].file);
  }
  const ids = new Array<string | undefined>(first.total).fill(undefined);
  const from = new Array<number>(first.total).fill(-1);
  for (const [i, m] of metas.entries()) {
    m.positions.forEach((p, j) => {
      if (ids[p] !== undefined) {
        throw new InputError(
          `${shards[i].file}: video "${m.videos[j]}" is also in ${shards[from[p]].file} ` +
            `(duplicated video)`,
        );
      }
      ids[p] = m.videos[j];
      from[p] = i;
    });
  }
  const missingShards = Array.from({ length: first.count }, (_, i) => i).filter((i) =>
    !byIndex.has(i)
  );
  const missing = ids.filter((id) => id === undefined).length;
  if (missing > 0) {
    throw new InputError(
      `merge: ${missing} of ${first.total} videos missing` +
        (missingShards.length
          ? ` (no file for shard ${missingShards.map((i) => `${i}/${first.count}`).join(", ")})`
          : ` (first at position ${ids.findIndex((x) => x === undefined)})`),
    );
  }
  if (missingShards.length) {
    throw new InputError(
      `merge: no file for shard ${missingShards.map((i) => `${i}/${first.count}`).join(", ")}`,
    );
  }
  const order = ids as string[];
  if (listHash(order) !== first.listHash) {
    throw new InputError(
      `merge: the shards' video lists do not add up to the job's list (fingerprint ${
        first.fingerprint.slice(0, 12)
      })`,
    );
  }
  const entries: Record<string, unknown>[] = shards.map((s, i) => {
    const v = (s.value as Record<string, unknown>)[key];
    if (!isRecord(v)) throw new InputError(`${s.file}: missing "${key}" object`);
    const own = new Set(metas[i].videos);
    for (const id of Object.keys(v)) {
      if (!own.has(id)) {
        throw new InputError(
          `${s.file}: "${key}" has video "${id}", which the shard's metadata does not list`,
        );
      }
    }
    return v;
  });
  const joined: Record<string, unknown> = {};
  for (const [p, id] of order.entries()) {
    const e = entries[from[p]];
    if (Object.hasOwn(e, id)) joined[id] = e[id];
  }
  const merged: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(shards[0].value as Record<string, unknown>)) {
    if (k === "shard") continue;
    merged[k] = k === key ? joined : v;
  }
  return { merged, meta: first };
}
