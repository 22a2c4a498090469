import assert from "node:assert/strict";
import * as path from "node:path";
import { SHARED_DATA, skipWithoutSharedData } from "./shared_data.ts";

const ROOT = path.resolve(import.meta.dirname!, "..");
const DATA = SHARED_DATA;

async function bunAvailable(): Promise<boolean> {
  try {
    await Deno.stat(path.join(ROOT, "node_modules/@tensorflow/tfjs"));
    const r = await new Deno.Command("npx", {
      args: ["-y", "bun@1.4.5", "--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.code === 0;
  } catch {
    return false;
  }
}

Deno.test("bun: `bun run mod.ts eval` gives the same figures as Deno", {
  ignore: skipWithoutSharedData("bun eval"),
}, async (t) => {
  if (!(await bunAvailable())) {
    console.log("SKIP: bun or node_modules missing (run `npm install`; bun comes from npm)");
    return;
  }
  const out = await new Deno.Command("npx", {
    args: [
      "-y",
      "bun@1.4.5",
      "run",
      "mod.ts",
      "eval",
      "--gt",
      `${DATA}/thumos14_autoloc/autoloc_th14_test_gt.json`,
      "--pred",
      `${DATA}/thumos14_autoloc/autoloc_th14_test_results.json`,
      "--subset",
      "test",
      "--tiou",
      "0.1:0.9:0.1",
      "--json",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const j = JSON.parse(stdout.trim().split("\n").at(-1)!);
  assert.equal(j.average.toFixed(3), "0.217");
  await t.step("bad input exits 2 under bun too", async () => {
    const r = await new Deno.Command("npx", {
      args: [
        "-y",
        "bun@1.4.5",
        "run",
        "mod.ts",
        "eval",
        "--gt",
        "/nonexistent.json",
        "--pred",
        "x",
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 2);
    assert.match(new TextDecoder().decode(r.stderr), /nonexistent\.json: file not found/);
  });
});

Deno.test("bun: `bun run mod.ts --backend wasm` runs the pipeline (tiny)", async () => {
  if (!(await bunAvailable())) {
    console.log("SKIP: bun or node_modules missing (run `npm install`; bun comes from npm)");
    return;
  }
  const out = await Deno.makeTempDir({ prefix: "fustal-bun-run-" });
  const r = await new Deno.Command("npx", {
    args: [
      "-y",
      "bun@1.4.5",
      "run",
      "mod.ts",
      "--backend",
      "wasm",
      "--videos",
      "16",
      "--dim",
      "16",
      "--out",
      out,
      "--generator-option",
      "iterations=4",
      "--generator-option",
      "evalEvery=2",
      "--student-option",
      "epochs=2",
      "--student-option",
      "switchEpoch=1",
      "--student-option",
      "maxSeqLen=128",
      "--json",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  const j = JSON.parse(stdout.trim().split("\n").at(-1)!);
  assert.equal(j.backend.name, "wasm");
  assert.equal(j.student.final.mAP.length, 7);
  assert.ok((await Deno.stat(`${out}/report.html`)).size > 0);
});

Deno.test("bun: a detection pass on a Bun worker equals the main thread's", async () => {
  if (!(await bunAvailable())) {
    console.log("SKIP: bun or node_modules missing (run `npm install`; bun comes from npm)");
    return;
  }
  const r = await new Deno.Command("npx", {
    args: ["-y", "bun@1.4.5", "run", "tests/pool_bun_probe.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  const j = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
  assert.ok(j.detections > 0);
  assert.ok(j.workerVideos > 0, "the worker detected some videos");
  assert.equal(j.identical, true);
});
