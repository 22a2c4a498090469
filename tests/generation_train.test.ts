import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import {
  Adam,
  createParams,
  disposeParams,
  forwardCols,
  hostIm2col,
  im2col3,
  inferCas,
  loadCheckpoint,
  restoreParams,
  saveCheckpoint,
  snapshotParams,
} from "../stages/generation/model.ts";
import { trainGenerator } from "../stages/generation/train.ts";
import { tiousFor } from "../stages/generation/infer.ts";
import { trainStep } from "../stages/generation/step.ts";
import { generatorConfig } from "../stages/generation/presets.ts";
import { configFromOptions, generatorPlugin } from "../stages/generation/plugin.ts";
import { toResultsFile } from "../stages/evaluation.ts";
import { toyDataset } from "./generation_fixtures.ts";

const close = (a: number, b: number, eps = 1e-4) =>
  assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`generation: 3 training steps on ${backend} give finite losses and gradients`, async () => {
    await initBackend(backend);
    const B = 4, T = 24, D = 8, H = 8, C = 3;
    const rng = new Rng(7);
    const params = createParams(D, H, C, rng);
    const cfg = generatorConfig("default", { batch: B, snippets: T, lr: 1e-3 });
    const opt = new Adam(cfg);
    const x = Float32Array.from({ length: B * T * D }, () => Math.max(0, rng.normal()));
    // items 0 and 2 share a label vector → one cross-video pair
    const labels = [[0], [1], [0], [1, 2]];
    const before = await snapshotParams(params);
    for (let i = 0; i < 3; i++) {
      const l = await trainStep(params, opt, { x, B, T, D, labels }, cfg, C, rng);
      assert.ok(Number.isFinite(l.total) && Number.isFinite(l.gradNorm), JSON.stringify(l));
      assert.ok(l.gradNorm > 0);
      assert.equal(l.pairs, 1);
      assert.ok(l.cross > 0 && l.inVideo > 0 && l.cls > 0);
      close(l.total, l.cls + 0.01 * (l.inVideo + l.cross), 1e-5);
    }
    const after = await snapshotParams(params);
    assert.ok(after.w1.some((v, i) => v !== before.w1[i]), "weights must change");
    disposeParams(params);
    opt.dispose();
  });
}

Deno.test("generation: host im2col and the batched eval forward equal the tfjs conv", async () => {
  await initBackend("wasm");
  const rng = new Rng(2);
  const D = 3, H = 4, C = 2;
  const p = createParams(D, H, C, rng);
  const lens = [5, 2, 7];
  const seqs = lens.map((T) => ({
    data: Float32Array.from({ length: T * D }, () => rng.normal()),
    T,
  }));
  // reference: tf.conv1d with PyTorch's layout converted from w1 [3D, H]
  const w1 = p.w1.arraySync() as number[][];
  const kernel = tf.tensor3d(
    [0, 1, 2].map((k) => Array.from({ length: D }, (_, d) => w1[k * D + d])),
  ); // [3, D, H]
  const got = await inferCas(p, seqs, D, 8); // small chunks: several videos per chunk and alone
  seqs.forEach((s, i) => {
    const x = tf.tensor3d(s.data, [1, s.T, D]);
    const emb = tf.relu(tf.add(tf.conv1d(x, kernel, 1, "same"), p.b1));
    const cas = tf.relu(tf.matMul(tf.reshape(emb, [s.T, H]), p.w2)).dataSync();
    assert.equal(got[i].length, s.T * C);
    got[i].forEach((v, j) => close(v, cas[j], 1e-5));
  });
  // host im2col equals tfjs im2col, and colsT is its transpose
  const x = Float32Array.from({ length: 2 * 4 * D }, () => rng.normal());
  const { cols, colsT } = hostIm2col(x, 2, 4, D);
  const ref = im2col3(tf.tensor3d(x, [2, 4, D])).dataSync();
  assert.deepEqual(Array.from(cols), Array.from(ref));
  assert.deepEqual(
    Array.from(colsT!),
    Array.from(tf.transpose(tf.tensor2d(cols, [8, 3 * D])).dataSync()),
  );
  const f = forwardCols(p, tf.tensor2d(cols, [8, 3 * D]), null).cas.dataSync();
  assert.equal(f.length, 8 * C);
});

Deno.test("generation: checkpoint round trip restores the weights", async () => {
  await initBackend("wasm");
  const p = createParams(4, 5, 3, new Rng(3));
  const vals = await snapshotParams(p);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "gen-ckpt-"));
  const file = path.join(dir, "g.ckpt");
  await saveCheckpoint(file, vals, { w1: [12, 5], b1: [5], w2: [5, 3] }, {
    inputDim: 4,
    hidden: 5,
    classes: ["a", "b", "c"],
    step: 7,
    score: 0.5,
  });
  const { header, values } = await loadCheckpoint(file);
  assert.equal(header.step, 7);
  assert.deepEqual(header.classes, ["a", "b", "c"]);
  assert.deepEqual(Array.from(values.w1), Array.from(vals.w1));
  const q = createParams(4, 5, 3, new Rng(99));
  restoreParams(q, values);
  assert.deepEqual(Array.from(q.w2.dataSync()), Array.from(vals.w2));
  await fs.writeFile(file, new Uint8Array([1, 2, 3]));
  await assert.rejects(loadCheckpoint(file), /not a generator checkpoint/);
  await fs.rm(dir, { recursive: true });
});

Deno.test("generation: training raises test mAP well above the untrained model", async () => {
  await initBackend("wasm");
  const ds = toyDataset({ train: 32, test: 24 });
  const base = { snippets: 64, batch: 8, evalEvery: 40, lr: 1e-3, seed: 5 };
  const untrained = await trainGenerator(
    ds,
    generatorConfig("default", { ...base, iterations: 0 }),
  );
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "gen-train-"));
  const trained = await trainGenerator(
    ds,
    generatorConfig("default", { ...base, iterations: 200 }),
    {
      outDir: dir,
    },
  );
  assert.ok(untrained.testEval.average < 0.2, `untrained ${untrained.testEval.average}`);
  assert.ok(trained.testEval.average > 0.6, `trained ${trained.testEval.average}`);
  assert.ok(trained.trainEval.average > untrained.trainEval.average + 0.3);
  assert.ok(trained.bestStep > 0 && trained.bestStep % 40 === 0);
  // the best checkpoint on disk is the selected iteration
  const { header } = await loadCheckpoint(path.join(dir, "generator_best.ckpt"));
  assert.equal(header.step, trained.bestStep);
  close(header.score, trained.testEval.average, 1e-12);
  // pseudo proposals cover training videos only, test detections test videos only
  assert.ok(trained.train.every((d) => d.videoId.startsWith("train_")));
  assert.ok(trained.test.every((d) => d.videoId.startsWith("test_")));
  assert.ok(trained.train.every((d) => d.segment[0] < d.segment[1]));
  await fs.rm(dir, { recursive: true });
});

Deno.test("generation: same seed gives the same run", async () => {
  await initBackend("wasm");
  const ds = toyDataset({ train: 8, test: 4, seed: 3 });
  const cfg = generatorConfig("default", {
    snippets: 32,
    batch: 4,
    iterations: 4,
    evalEvery: 2,
    seed: 11,
  });
  const a = await trainGenerator(ds, cfg), b = await trainGenerator(ds, cfg);
  assert.deepEqual(a.curves.loss, b.curves.loss);
  assert.deepEqual(a.train, b.train);
});

Deno.test("generation: plugin options, result JSON, and unknown options", async () => {
  await initBackend("wasm");
  const cfg = configFromOptions({ preset: "paper", crossVideo: false }, 42);
  assert.equal(cfg.snippets, 750);
  assert.equal(cfg.iterations, 6000);
  assert.equal(cfg.seed, 42);
  assert.equal(cfg.crossVideo, false);
  assert.throws(() => configFromOptions({ bogus: 1 }), /unknown/);
  assert.throws(
    () => configFromOptions({ preset: "huge" }),
    /generator option preset: unknown preset "huge" \(use default, reference, paper\)/,
  );
  // every preset of the run's --preset is a generator preset too (`run --preset reference`)
  const ref = configFromOptions({ preset: "reference" });
  assert.deepEqual([ref.snippets, ref.iterations, ref.hidden, ref.lr], [256, 600, 2048, 1e-4]);
  const j = toResultsFile(
    [{ videoId: "v1", label: "a", score: 0.5, segment: [1, 2] }],
    "[Generator]",
    { videoIds: ["v1", "v2"] },
  );
  assert.deepEqual(j, {
    method: "[Generator]",
    results: { v1: [{ label: "a", score: 0.5, segment: [1, 2] }], v2: [] },
  });
  const ds = toyDataset({ train: 6, test: 3, seed: 4 });
  const logs: string[] = [];
  const r = await generatorPlugin.generate(ds, {
    options: { snippets: 32, batch: 3, iterations: 2, evalEvery: 1 },
    seed: 1,
    log: (l) => logs.push(l),
    progress: () => ({ update() {}, done() {} }),
  });
  assert.equal(r.info?.bestIteration !== undefined, true);
  assert.ok(r.curves?.loss.length === 2);
  assert.ok(logs.some((l) => l.includes("test mAP")));
});

Deno.test("generation: without test videos the last weights are kept; tIoUs follow the dataset", async () => {
  await initBackend("wasm");
  const ds = toyDataset({ train: 6, test: 0, seed: 8 });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "gen-notest-"));
  const r = await trainGenerator(
    ds,
    generatorConfig("default", { snippets: 32, batch: 3, iterations: 3, evalEvery: 1 }),
    { outDir: dir },
  );
  assert.equal(r.bestStep, 3);
  assert.equal(r.test.length, 0);
  assert.ok(r.train.length > 0);
  assert.equal((await loadCheckpoint(path.join(dir, "generator_best.ckpt"))).header.step, 3);
  await fs.rm(dir, { recursive: true });
  const cfg = generatorConfig("default");
  assert.deepEqual(tiousFor(ds, cfg), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  assert.equal(tiousFor({ ...ds, layout: "activitynet" }, cfg)[0], 0.5);
  assert.deepEqual(tiousFor(ds, { ...cfg, tiou: [0.3] }), [0.3]);
});
