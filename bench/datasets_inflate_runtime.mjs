// Inflate micro-benchmark run in BOTH Deno and Bun (plain JS, no npm: specifiers, so Bun can
// load it): node:zlib gunzipSync / inflateRawSync vs fflate, on the bytes in argv[2..3]
// (a .npy.gz file and a raw-deflate file written by bench/datasets_bench.ts).
// argv: GZ_FILE RAW_FILE RAW_SIZE FFLATE_ESM_PATH
import * as zlib from "node:zlib";
import { readFileSync } from "node:fs";
import process from "node:process";

const [gzFile, rawFile, rawSize, fflatePath] = process.argv.slice(2);
const fflate = await import(fflatePath);
const gz = readFileSync(gzFile);
const raw = readFileSync(rawFile);
const size = Number(rawSize);
function time(fn) {
  let best = Infinity;
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const t = performance.now();
    n = fn().length;
    best = Math.min(best, performance.now() - t);
  }
  return Math.round(n / 1e6 / (best / 1000));
}
const out = {
  runtime: globalThis.Bun
    ? `bun ${globalThis.Bun.version}`
    : `deno ${globalThis.Deno.version.deno}`,
  "gunzip zlib": time(() => zlib.gunzipSync(gz)),
  "gunzip fflate": time(() => fflate.gunzipSync(gz)),
  "inflateRaw zlib": time(() => zlib.inflateRawSync(raw)),
  "inflateRaw fflate": time(() => fflate.inflateSync(raw, { out: new Uint8Array(size) })),
};
console.log(JSON.stringify(out));
