/**
 * Datasets benchmark: read throughput per feature format (and per inflater), the raw inflate
 * speed of node:zlib vs fflate in Deno and Bun, the synth default-run time, and the peak RSS
 * while iterating 40 and 412 THUMOS'14 videos of 2048-d features. Writes
 * bench/BENCH-datasets.md.
 *
 * ```sh
 * deno run -A bench/datasets_bench.ts            # several GB of temp files, a few minutes
 * ```
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { openDataset } from "../datasets.ts";
import { deflateRaw, gzip, setInflater } from "../datasets/inflate.ts";
import { encodeNpy } from "../datasets/npy.ts";
import { synthesize } from "../datasets/synth.ts";
import { peakRssMB } from "./peak_rss.ts";

async function dirBytes(p: string): Promise<number> {
  const st = await fs.stat(p);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const e of await fs.readdir(p)) n += await dirBytes(path.join(p, e));
  return n;
}

/** Iterates a layout once; returns decoded MB, seconds, checksum and peak RSS. */
async function iterate(root: string, layout: string) {
  const t = performance.now();
  const ds = await openDataset(root, { layout });
  let bytes = 0;
  let sum = 0;
  let videos = 0;
  for await (const { features } of ds.videos()) {
    bytes += features.data.byteLength;
    const d = features.data;
    for (let i = 0; i < d.length; i++) sum += d[i];
    videos++;
  }
  await ds.close?.();
  return {
    videos,
    mb: bytes / 1e6,
    seconds: (performance.now() - t) / 1000,
    sum,
    rssMB: peakRssMB(),
  };
}

if (Deno.args[0] === "--child") {
  // A fresh process per measurement, so the peak RSS belongs to that iteration alone.
  console.log(JSON.stringify(await iterate(Deno.args[1], Deno.args[2])));
  Deno.exit(0);
}

async function child(root: string, layout: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", root, layout],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "fustal-dsbench-"));
const md: string[] = [];
const log = (s: string) => {
  console.error(s);
  md.push(s);
};
try {
  log(`# Datasets benchmark\n`);
  log(
    `Machine: ${os.cpus()[0]?.model ?? "?"} x${os.cpus().length}, Deno ${Deno.version.deno}. ` +
      `Run: \`deno run -A bench/datasets_bench.ts\` (${new Date().toISOString().slice(0, 10)}).\n`,
  );

  // 1. The default run's synth.
  const t0 = performance.now();
  const dflt = await synthesize({ out: path.join(tmp, "default") });
  log(`## synth default run (412 videos, D = 128, npy)\n`);
  log(
    `${dflt.videos.train} + ${dflt.videos.test} videos, ${dflt.rows} rows over both layouts, ` +
      `${(dflt.bytes / 1e6).toFixed(0)} MB written in ${
        ((performance.now() - t0) / 1000).toFixed(2)
      } s.\n`,
  );
  await fs.rm(path.join(tmp, "default"), { recursive: true });

  // 2. Read throughput per format, ActionFormer layout, 40 videos x 2048-d.
  log(`## Read throughput per format (ActionFormer layout, 40 videos, D = 2048)\n`);
  log(
    `Decoded MB/s = float32 feature bytes delivered per second by \`Dataset.videos()\` ` +
      `(open + header scan + read + inflate + decode + finite check + a checksum pass). ` +
      `Same checksum in every row (checked).\n`,
  );
  log(`| format | on disk MB | inflater | decoded MB | s | decoded MB/s |`);
  log(`|---|---|---|---|---|---|`);
  let ref: number | null = null;
  for (const format of ["npy", "npy.gz", "npz", "zip"] as const) {
    const out = path.join(tmp, format);
    await synthesize({ out, videos: 40, dim: 2048, format });
    await fs.rm(path.join(out, "cola"), { recursive: true });
    const disk = await dirBytes(path.join(out, "actionformer"));
    for (const inf of format === "npy" ? ["-"] : ["zlib", "fflate"]) {
      if (inf !== "-") setInflater(inf as "zlib" | "fflate");
      const r = await iterate(out, "actionformer");
      ref ??= r.sum;
      if (r.sum !== ref) throw new Error(`checksum differs for ${format}/${inf}`);
      log(
        `| ${format} | ${(disk / 1e6).toFixed(0)} | ${inf} | ${r.mb.toFixed(0)} | ` +
          `${r.seconds.toFixed(2)} | ${(r.mb / r.seconds).toFixed(0)} |`,
      );
    }
    setInflater("zlib");
    if (format !== "npy") await fs.rm(out, { recursive: true });
  }

  // 3. Raw inflate, Deno and Bun.
  const ds40 = await openDataset(path.join(tmp, "npy"), { layout: "actionformer" });
  const big = ds40.list().reduce((a, b) => (b.length > a.length ? b : a));
  const f = await ds40.load(big.id);
  const npy = encodeNpy(f.data, [f.length, f.dim]);
  const gzFile = path.join(tmp, "one.npy.gz");
  const rawFile = path.join(tmp, "one.deflate");
  await Deno.writeFile(gzFile, gzip(npy, 6));
  await Deno.writeFile(rawFile, deflateRaw(npy, 6));
  const fflatePath = path.join(
    os.homedir(),
    ".cache/deno/npm/registry.npmjs.org/fflate/0.8.2/esm/index.mjs",
  );
  const script = new URL("./datasets_inflate_runtime.mjs", import.meta.url).pathname;
  const args = [gzFile, rawFile, String(npy.length), fflatePath];
  log(`\n## Raw inflate, MB/s of output (${(npy.length / 1e6).toFixed(1)} MB .npy, level 6)\n`);
  log(`| runtime | gunzip zlib | gunzip fflate | inflateRaw zlib | inflateRaw fflate |`);
  log(`|---|---|---|---|---|`);
  const runs: [string, string[]][] = [
    [Deno.execPath(), ["run", "-A", script, ...args]],
    ["npx", ["-y", "bun@1.4.4", script, ...args]],
  ];
  for (const [cmd, a] of runs) {
    try {
      const o = await new Deno.Command(cmd, { args: a, stdout: "piped", stderr: "null" }).output();
      const r = JSON.parse(new TextDecoder().decode(o.stdout).trim().split("\n").pop()!);
      log(
        `| ${r.runtime} | ${r["gunzip zlib"]} | ${r["gunzip fflate"]} | ` +
          `${r["inflateRaw zlib"]} | ${r["inflateRaw fflate"]} |`,
      );
    } catch (e) {
      log(`| ${cmd} | not run: ${(e as Error).message.split("\n")[0]} | | | |`);
    }
  }
  log(
    `\nnode:zlib is the default inflater for whole members in both runtimes ` +
      `(datasets/inflate.ts); fflate remains the portable fallback and does partial header reads.\n`,
  );

  // 4. Peak RSS: 40 vs 412 videos, 2048-d, fresh process each.
  await fs.rm(path.join(tmp, "npy"), { recursive: true });
  log(`## Peak RSS while iterating (ActionFormer layout, D = 2048, npy, fresh process)\n`);
  log(`| videos | decoded MB | s | decoded MB/s | peak RSS MB (VmHWM) |`);
  log(`|---|---|---|---|---|`);
  for (const n of [40, 412]) {
    const out = path.join(tmp, `rss${n}`);
    await synthesize({ out, videos: n, dim: 2048 });
    await fs.rm(path.join(out, "cola"), { recursive: true });
    const r = await child(out, "actionformer");
    log(
      `| ${r.videos} | ${r.mb.toFixed(0)} | ${r.seconds.toFixed(1)} | ` +
        `${(r.mb / r.seconds).toFixed(0)} | ${r.rssMB.toFixed(0)} |`,
    );
    await fs.rm(out, { recursive: true });
  }
  log(
    `\nThe peak is set by the longest video (one video's features are held at a time), ` +
      `not by the count.`,
  );
  await Deno.writeTextFile(new URL("./BENCH-datasets.md", import.meta.url), md.join("\n") + "\n");
} finally {
  await fs.rm(tmp, { recursive: true, force: true });
  process.exitCode = 0;
}
