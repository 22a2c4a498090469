/**
 * Sharding: wall time of `predict` over the 412-video default set with 1 process and with 2
 * processes (`--shard 0/2`, `--shard 1/2` at once), and of `merge` for an ActivityNet-sized
 * result (5,000 videos x 100 detections, 4 shards).
 *
 * `deno run -A bench/shard_bench.ts [--dir runs/bench-shard] [--epochs 1] [--backend wasm]`
 *
 * The student checkpoint is the default preset trained for `--epochs` on the training videos'
 * ground truth (inference cost depends on the architecture, not on how well it is trained);
 * data and checkpoint are kept in `--dir` and reused. Prints a Markdown table and the machine's
 * load average (other processes on the machine slow the 2-process run).
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { atomicWriteJson, exists } from "../lib/io.ts";
import { planShard } from "../lib/shard.ts";
import { Rng } from "../lib/rng.ts";
import { writeDefaultDataset } from "../stages/pipeline.ts";
import { toResultsFile } from "../stages/evaluation.ts";
import { mergeShardOutputs } from "../cli/merge.ts";

const ROOT = path.resolve(import.meta.dirname!, "..");
const MOD = path.join(ROOT, "mod.ts");
const { values } = parseArgs({
  args: Deno.args,
  options: {
    dir: { type: "string", default: "runs/bench-shard" },
    epochs: { type: "string", default: "1" },
    backend: { type: "string", default: "wasm" },
  },
});
const dir = path.resolve(values.dir!);
const data = path.join(dir, "data");

/** Runs the CLI; returns its CPU seconds (user + sys, from /usr/bin/time when present). */
async function deno(args: string[]): Promise<number> {
  const timeFile = await Deno.makeTempFile();
  const timed = await exists("/usr/bin/time");
  const cmd = timed ? "/usr/bin/time" : Deno.execPath();
  const pre = timed ? ["-f", "%U %S", "-o", timeFile, Deno.execPath()] : [];
  const r = await new Deno.Command(cmd, {
    args: [...pre, "run", "-A", MOD, ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  const cpu = timed
    ? (await Deno.readTextFile(timeFile)).trim().split("\n").at(-1)!.split(" ").map(Number)
    : [NaN, 0];
  await Deno.remove(timeFile);
  return cpu[0] + cpu[1];
}

const load0 = os.loadavg();
if (!await exists(path.join(data, "actionformer"))) await writeDefaultDataset(data, { seed: 0 });
const ckpt = path.join(dir, "student", "student.ckpt");
if (!await exists(ckpt)) {
  // Ground truth of the training videos as the labels.
  const gt = JSON.parse(await fs.readFile(path.join(data, "cola", "gt.json"), "utf8")).database;
  const dets = Object.entries(gt as Record<string, { subset: string; annotations: unknown[] }>)
    .filter(([, v]) => /val/i.test(v.subset))
    .flatMap(([id, v]) =>
      (v.annotations as { label: string; segment: [number, number] }[]).map((a) => ({
        videoId: id,
        label: a.label,
        score: 1,
        segment: a.segment,
      }))
    );
  const labels = path.join(dir, "labels.json");
  await atomicWriteJson(labels, toResultsFile(dets, "gt"));
  const e = values.epochs!;
  await deno([
    "train",
    "--pseudo-labels",
    labels,
    "--root",
    path.join(data, "actionformer"),
    "--out",
    path.join(dir, "student"),
    "--epochs",
    e,
    "--switch-epoch",
    e,
    "--no-ema",
    "--backend",
    values.backend!,
  ]);
}

const base = [
  "predict",
  "--checkpoint",
  ckpt,
  "--root",
  path.join(data, "actionformer"),
  "--split",
  "all",
  "--backend",
  values.backend!,
];
const out = path.join(dir, "out");
await fs.mkdir(out, { recursive: true });
// The 2-process run first, then the single process (the reverse order of a previous run).
let t = performance.now();
const cpuShards = await Promise.all(
  [0, 1].map((i) =>
    deno([...base, "--out", path.join(out, `shard-${i}.json`), "--shard", `${i}/2`])
  ),
);
const two = (performance.now() - t) / 1000;
t = performance.now();
const cpuOne = await deno([...base, "--out", path.join(out, "single.json")]);
const one = (performance.now() - t) / 1000;
t = performance.now();
await deno([
  "merge",
  "--out",
  path.join(out, "merged.json"),
  ...[0, 1].map((i) => path.join(out, `shard-${i}.json`)),
]);
const mergeSmall = (performance.now() - t) / 1000;
const same = (await fs.readFile(path.join(out, "single.json"))).equals(
  await fs.readFile(path.join(out, "merged.json")),
);

// ActivityNet-sized merge: 5,000 videos x 100 detections in 4 shards.
const rng = new Rng(1);
const items = Array.from({ length: 5000 }, (_, i) => ({
  id: `v_${i.toString(36).padStart(11, "0")}`,
  rows: 50 + Math.floor(rng.next() * 700),
}));
const dets = items.flatMap((it) =>
  Array.from({ length: 100 }, () => {
    const s = rng.next() * 100;
    return {
      videoId: it.id,
      label: `activity_${Math.floor(rng.next() * 200)}`,
      score: rng.next(),
      segment: [s, s + rng.next() * 50] as [number, number],
    };
  })
);
const anetDir = path.join(dir, "anet");
const shardFiles: string[] = [];
for (let i = 0; i < 4; i++) {
  const p = planShard("bench", { x: 1 }, items, { index: i, count: 4, source: "bench" });
  const own = new Set(p.items.map((it) => it.id));
  const f = path.join(anetDir, `shard-${i}.json`);
  await atomicWriteJson(f, {
    ...toResultsFile(dets.filter((d) => own.has(d.videoId)), "bench", { official: true }),
    shard: p.meta,
  });
  shardFiles.push(f);
}
const bytes = (await Promise.all(shardFiles.map((f) => fs.stat(f)))).reduce(
  (a, s) => a + s.size,
  0,
);
t = performance.now();
await deno(["merge", "--out", path.join(anetDir, "merged.json"), ...shardFiles]);
const mergeCli = (performance.now() - t) / 1000;
// In-process: parse + merge + stringify, without process start-up.
t = performance.now();
const parsed = await Promise.all(
  shardFiles.map(async (f) => ({ file: f, value: JSON.parse(await fs.readFile(f, "utf8")) })),
);
const tParse = performance.now();
const { merged } = mergeShardOutputs(parsed);
const tMerge = performance.now();
const text = JSON.stringify(merged);
const tStr = performance.now();
const load1 = os.loadavg();

console.log(`| measurement | seconds |
| --- | ---: |
| predict, 412 videos, 1 process | ${one.toFixed(1)} |
| predict, 412 videos, 2 processes (\`--shard 0/2\`, \`1/2\` at once) | ${two.toFixed(1)} |
| speed-up 1 -> 2 processes (wall) | ${(one / two).toFixed(2)}x |
| CPU seconds: 1 process / shard 0 / shard 1 | ${cpuOne.toFixed(1)} / ${
  cpuShards[0].toFixed(1)
} / ${cpuShards[1].toFixed(1)} |
| speed-up on 2 idle cores (CPU s of 1 process / CPU s of the larger shard) | ${
  (cpuOne / Math.max(...cpuShards)).toFixed(2)
}x |
| merge of the 2 predict shards (CLI, with start-up) | ${mergeSmall.toFixed(2)} |
| merge, 5,000 videos x 100 detections, 4 shards (${(bytes / 1e6).toFixed(0)} MB), CLI | ${
  mergeCli.toFixed(2)
} |
| same, in-process: parse / merge / stringify | ${((tParse - t) / 1000).toFixed(2)} / ${
  ((tMerge - tParse) / 1000).toFixed(2)
} / ${((tStr - tMerge) / 1000).toFixed(2)} |

merged predict output byte-identical to the single process: ${same}; merged ActivityNet-sized
file ${(text.length / 1e6).toFixed(0)} MB. Load average (1, 5, 15 min) before: ${
  load0.map((x) => x.toFixed(1)).join(", ")
}; after: ${load1.map((x) => x.toFixed(1)).join(", ")}; ${os.cpus().length} cores.`);
