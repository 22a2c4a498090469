import assert from "node:assert/strict";
import * as path from "node:path";
import * as fs from "node:fs/promises";
import { encodeNpy } from "../datasets/npy.ts";
import { atomicWrite, atomicWriteJson, readJson } from "../lib/io.ts";
import { loadCheckpoint } from "../stages/training/checkpoint.ts";
import { asResults, jitteredLabels, tinyDataset, writeActionFormer } from "./training_fixtures.ts";

const ROOT = path.resolve(import.meta.dirname!, "..");
const MOD = path.join(ROOT, "mod.ts");
const EPOCHS = 8;

function trainArgs(data: string, labels: string, out: string): string[] {
  return [
    "run",
    "-A",
    MOD,
    "train",
    "--pseudo-labels",
    labels,
    "--root",
    data,
    "--out",
    out,
    "--backend",
    "wasm",
    "--seed",
    "3",
    "--epochs",
    String(EPOCHS),
    "--switch-epoch",
    "4",
    "--checkpoint-every",
    "2",
    "--batch",
    "4",
    "--ema-decay",
    "0.8",
    "--lr",
    "0.003",
    "--option",
    "dim=16",
    "--option",
    "mlpDim=24",
    "--option",
    "levels=3",
    "--option",
    "regressionRanges=[[0,4],[4,8],[8,10000]]",
    "--option",
    "gnGroups=4",
    "--option",
    "numBins=4",
    "--option",
    "maxSeqLen=128",
    "--json",
  ];
}

async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  return {
    code: r.code,
    stdout: new TextDecoder().decode(r.stdout),
    stderr: new TextDecoder().decode(r.stderr),
  };
}

Deno.test("training: a run killed with SIGKILL and resumed matches the uninterrupted run; predict on one .npy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal-train-resume-" });
  try {
    const ds = tinyDataset({ nTrain: 12, nTest: 4, rows: 128, dim: 12, k: 3, seed: 11 });
    const data = path.join(dir, "data");
    await writeActionFormer(ds, data);
    const labels = path.join(dir, "pseudo.json");
    await atomicWriteJson(labels, asResults(jitteredLabels(ds, 2)));

    // Uninterrupted run.
    const outA = path.join(dir, "a");
    const a = await runCli(trainArgs(data, labels, outA));
    assert.equal(a.code, 0, a.stderr);
    const metricsA = JSON.parse(a.stdout.trim().split("\n").at(-1)!);
    assert.ok(metricsA.test.average > 0, "the tiny run learns something");
    assert.ok(metricsA.testBeforeSwitch, "before-switch detections are reported");

    // Same run, killed right after its first checkpoint, then resumed.
    const outB = path.join(dir, "b");
    const child = new Deno.Command(Deno.execPath(), {
      args: trainArgs(data, labels, outB),
      stdout: "null",
      stderr: "null",
    }).spawn();
    const ckpt = path.join(outB, "student.ckpt");
    let seen = false;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      try {
        await fs.stat(ckpt);
        seen = true;
        break;
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill("SIGKILL");
    const st = await child.status;
    assert.ok(seen, "a checkpoint appeared");
    assert.equal(st.signal, "SIGKILL", "the run was killed, not finished");
    const meta = (await loadCheckpoint(ckpt)).meta as { epoch: number };
    assert.ok(meta.epoch < EPOCHS, `killed mid-training (checkpoint at epoch ${meta.epoch})`);
    await assert.rejects(fs.stat(path.join(outB, "detections.json")));

    const b = await runCli(["run", "-A", MOD, "train", "--resume", outB, "--json"]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /resumed from/);
    const metricsB = JSON.parse(b.stdout.trim().split("\n").at(-1)!);
    assert.deepEqual(metricsB.test, metricsA.test);
    assert.deepEqual(metricsB.testBeforeSwitch, metricsA.testBeforeSwitch);
    const detA = await readJson(path.join(outA, "detections.json"));
    const detB = await readJson(path.join(outB, "detections.json"));
    assert.deepEqual(detB, detA);

    // predict: one feature file of a video the model never saw, no annotations.
    const unseen = tinyDataset({ nTrain: 0, nTest: 1, rows: 100, dim: 12, k: 3, seed: 99 });
    const vid = unseen.list()[0];
    const f = await unseen.load(vid.id);
    const npy = path.join(dir, "my_clip.npy");
    await atomicWrite(npy, encodeNpy(f.data, [f.length, f.dim]));
    const outR = path.join(dir, "pred.json");
    const predictArgs = (out: string, ...extra: string[]) => [
      "run",
      "-A",
      MOD,
      "predict",
      "--checkpoint",
      path.join(outA, "student.ckpt"),
      "--features",
      npy,
      "--out",
      out,
      "--backend",
      "wasm",
      ...extra,
    ];
    const p = await runCli(predictArgs(outR, "--json"));
    assert.equal(p.code, 0, p.stderr);
    const res = (await readJson(outR)) as {
      results: Record<string, { segment: number[]; label: string }[]>;
    };
    const dets = res.results["my_clip"];
    assert.ok(dets && dets.length > 0, "detections for the single file");
    const duration = (4 * (f.length - 1) + 16) / 30;
    for (const d of dets) {
      assert.ok(
        d.segment[0] >= 0 && d.segment[1] <= duration + 1e-9 && d.segment[0] <= d.segment[1],
      );
      assert.ok(ds.classes.includes(d.label) || d.label.length > 0);
    }
    // --option reruns the post-processing only: a per-video cap keeps the best-scored prefix.
    const capped = path.join(dir, "capped.json");
    const pc = await runCli(predictArgs(capped, "--option", "maxSegNum=3"));
    assert.equal(pc.code, 0, pc.stderr);
    const cappedDets = ((await readJson(capped)) as typeof res).results["my_clip"];
    assert.ok(dets.length > 3, "the uncapped run has more than the cap");
    assert.deepEqual(cappedDets, dets.slice(0, 3));
    // a training setting is not an inference option: one line, exit 2, before any work
    const notInference = await runCli(predictArgs(capped, "--option", "dim=8"));
    assert.equal(notInference.code, 2);
    assert.match(notInference.stderr, /^error: predict: option "dim" is not an inference option/);
    assert.equal(notInference.stderr.trim().split("\n").length, 1, "one line, no stack trace");
    // a wrong type is the same kind of error
    const wrongType = await runCli(predictArgs(capped, "--option", "maxSegNum=lots"));
    assert.equal(wrongType.code, 2);
    assert.match(
      wrongType.stderr,
      /^error: predict: option "maxSegNum" must be a number, got "lots"/,
    );
    // a wrong-dimension file is a one-line user error (exit 2)
    await atomicWrite(npy, encodeNpy(new Float32Array(30), [10, 3]));
    const bad = await runCli(predictArgs(outR));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /my_clip\.npy: expected a T x 12 feature array/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
