import assert from "node:assert/strict";
import * as path from "node:path";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { studentLosses } from "../stages/training/losses.ts";
import { forward, initValues, makeLayout, paramSpecs } from "../stages/training/model.ts";
import type { StudentConfig } from "../stages/training/presets.ts";
import { configFromOptions } from "../stages/training/plugin.ts";
import { groundTruthOf, SWITCH_FILE, trainStudent } from "../stages/training/train.ts";
import { evaluateDetections, THUMOS_TIOUS } from "../stages/evaluation.ts";
import { assignTargets } from "../stages/training/assign.ts";
import { jitteredLabels, TINY_STUDENT, tinyDataset } from "./training_fixtures.ts";

const TINY: StudentConfig = TINY_STUDENT;

/** One forward/backward pass; returns the loss and every gradient as host arrays. */
function gradients(cfg: StudentConfig) {
  const D = 6, K = 3, B = 2, t0 = cfg.maxSeqLen;
  const specs = paramSpecs(cfg, D, K);
  const vals = initValues(specs, new Rng(4));
  const vars = Object.fromEntries(
    specs.map((
      p,
    ) => [
      p.name,
      tf.variable(tf.tensor(vals.get(p.name)!, p.shape), true, `g${Math.random()}/${p.name}`),
    ]),
  );
  const rng = new Rng(5);
  const x = Float32Array.from({ length: B * t0 * D }, () => rng.next());
  const lens = [t0, 40];
  const layout = makeLayout(t0, cfg);
  const cls = new Float32Array(B * layout.total * K);
  const reg = new Float32Array(B * layout.total * 2);
  [[{ a: 5, b: 20, c: 1 }], [{ a: 10, b: 14, c: 2 }, { a: 25, b: 38, c: 0 }]].forEach((segs, i) => {
    const t = assignTargets(segs, layout, lens[i], K, cfg.regressionRanges, cfg.centerRadius);
    cls.set(t.cls, i * layout.total * K);
    reg.set(t.reg, i * layout.total * 2);
  });
  const milKeep = Float32Array.from({ length: B * t0 * K }, () => (rng.next() < 0.7 ? 0 : 1 / 0.3));
  const weak = Float32Array.from([0, 1, 0, 1, 0, 1]);
  const dropPath = Array.from(
    { length: cfg.levels - 1 },
    () =>
      [Float32Array.from([1 / 0.9, 0]), Float32Array.from([0, 1 / 0.9])] as [
        Float32Array,
        Float32Array,
      ],
  );
  const { value, grads } = tf.variableGrads(() => {
    const o = forward(vars, cfg, { x, lens, t0, dim: D, dropPath }, true);
    return studentLosses(o, layout, { cls, reg, norm: 10, weak, milKeep, lens }, cfg).total;
  }, Object.values(vars));
  const loss = value.dataSync()[0];
  const host: Record<string, Float32Array> = {};
  for (const [k, g] of Object.entries(grads)) {
    host[k.slice(k.indexOf("/") + 1)] = g.dataSync() as Float32Array;
  }
  tf.dispose([value, ...Object.values(grads), ...Object.values(vars)]);
  return { loss, grads: host, specs };
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`training: forward/backward on ${backend} gives finite, non-zero gradients`, async () => {
    await initBackend(backend);
    // The default preset has no head trunk layer; the paper's has two: test both forms.
    for (const headLayers of [0, 1]) {
      const { loss, grads, specs } = gradients({ ...TINY, headLayers });
      assert.ok(Number.isFinite(loss) && loss > 0);
      for (const p of specs) {
        const g = grads[p.name];
        assert.ok(g, `gradient of ${p.name}`);
        assert.ok(g.every(Number.isFinite), `finite gradient of ${p.name}`);
      }
      // gradients reach the embedding, the boundary heads and the level scales
      const names = ["embed.0.w", "head.start.out.w", "head.end.out.w", "head.reg.scale"];
      names.push("head.cls.out.b", ...(headLayers ? ["head.cls.0.w", "head.start.0.w"] : []));
      for (const n of names) {
        assert.ok(grads[n].some((v) => v !== 0), `non-zero gradient of ${n} (${headLayers})`);
      }
    }
  });
}

Deno.test("training: faithful SGP branches are zero-initialised and get zero gradients (TriDet SGPBlock.reset_params)", async () => {
  await initBackend("wasm");
  const faithful = gradients({ ...TINY, sgpBranches: true });
  const short = gradients({ ...TINY, sgpBranches: false });
  const branchParams = faithful.specs.filter((p) => /\.(fc|gfc|psi|convw|convkw)\./.test(p.name));
  assert.equal(branchParams.length, 10 * (TINY.stemBlocks + TINY.levels - 1));
  for (const p of branchParams) assert.ok(faithful.grads[p.name].every((v) => v === 0), p.name);
  // ... so the loss and every shared gradient equal the short-circuited network's
  assert.ok(Math.abs(faithful.loss - short.loss) < 1e-6 * Math.max(1, short.loss));
  for (const p of short.specs) {
    const a = faithful.grads[p.name];
    const b = short.grads[p.name];
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 + 1e-4 * Math.abs(b[i]), p.name);
    }
  }
});

Deno.test("training: a tiny run learns the tiny set; EMA/no-EMA options; config errors", async () => {
  await initBackend("wasm");
  const ds = tinyDataset({ nTrain: 12, nTest: 4, rows: 64, dim: 8, k: 3, seed: 21 });
  const cfg = { ...TINY, batch: 4, epochs: 8, switchEpoch: 5, emaDecay: 0.8, lr: 3e-3 };
  const r = await trainStudent(ds, jitteredLabels(ds, 3), { config: cfg, seed: 1, evalRaw: true });
  const gt = groundTruthOf(ds, "test");
  const fin = evaluateDetections(gt, r.test).average;
  assert.ok(fin > 0.2, `tiny test mAP ${fin}`);
  assert.ok(r.testBeforeSwitch && r.testRaw && r.testBeforeSwitchRaw);
  assert.equal(r.info?.steps, 8 * 3);
  for (const d of r.test) {
    const m = ds.list("test").find((v) => v.id === d.videoId)!;
    assert.ok(d.segment[0] >= 0 && d.segment[1] <= m.duration && d.segment[0] <= d.segment[1]);
    assert.ok(ds.classes.includes(d.label));
  }
  // no-EMA ablation: no teacher phase, raw weights, nothing before the switch
  const r2 = await trainStudent(ds, jitteredLabels(ds, 3), {
    config: { ...cfg, ema: false, epochs: 2 },
    seed: 1,
  });
  assert.equal(r2.testBeforeSwitch, undefined);
  assert.equal(r2.info?.finalWeights, "raw");
  // the same seed gives the same detections
  const r3 = await trainStudent(ds, jitteredLabels(ds, 3), {
    config: { ...cfg, ema: false, epochs: 2 },
    seed: 1,
  });
  assert.deepEqual(r3.test, r2.test);
  assert.throws(() => configFromOptions({ preset: "nope" }), /unknown preset/);
  assert.throws(() => configFromOptions({ epochs: 0 }), /positive integer/);
  assert.throws(() => configFromOptions({ levels: 3 }), /regressionRanges/);
  // The teacher stage keeps the preset's share: 8 of 11 epochs -> 16 of 22.
  assert.equal(configFromOptions({ epochs: 22 }).switchEpoch, 16);
});

Deno.test("training: a run without EMA started from the switch checkpoint equals one trained alone; mismatches refused", async () => {
  await initBackend("wasm");
  const ds = tinyDataset({ nTrain: 12, nTest: 4, rows: 64, dim: 8, k: 3, seed: 21 });
  const labels = jitteredLabels(ds, 3);
  const cfg = { ...TINY, batch: 4, epochs: 5, switchEpoch: 3, emaDecay: 0.8, lr: 3e-3 };
  const dir = await Deno.makeTempDir({ prefix: "fustal-start-from-" });
  try {
    const withEma = path.join(dir, "ema");
    await trainStudent(ds, labels, { config: cfg, seed: 1, outDir: withEma });
    const sw = path.join(withEma, SWITCH_FILE);
    const alone = await trainStudent(ds, labels, { config: { ...cfg, ema: false }, seed: 1 });
    const started = await trainStudent(ds, labels, {
      config: { ...cfg, ema: false },
      seed: 1,
      startFrom: sw,
      outDir: path.join(dir, "started"),
    });
    assert.ok(alone.test.length > 0);
    assert.deepEqual(started.test, alone.test);
    assert.equal(started.info?.steps, alone.info?.steps);
    // Another seed, another setting, or a missing file: one line each, before any training.
    const refuse = (opts: Partial<Parameters<typeof trainStudent>[2]>, re: RegExp) =>
      assert.rejects(
        trainStudent(ds, labels, { config: { ...cfg, ema: false }, seed: 1, ...opts }),
        re,
      );
    await refuse({ seed: 2, startFrom: sw }, /trained with seed 1, this run uses 2/);
    await refuse(
      { config: { ...cfg, ema: false, lr: 1e-3 }, startFrom: sw },
      /configuration differs in lr/,
    );
    await refuse({ startFrom: path.join(dir, "none.ckpt") }, /no such student checkpoint/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("training: the student overfits a small separable set on clean labels (> 80 % train mAP)", async () => {
  // Sanity check of the whole chain (assignment, losses, decoding, NMS, seconds): with clean
  // labels and separable features the training videos themselves must be found precisely.
  await initBackend("wasm");
  const base = tinyDataset({ nTrain: 8, nTest: 1, rows: 96, dim: 8, k: 3, seed: 11 });
  const train = base.list("train");
  // "test" = the training videos, so the final detection pass runs on them.
  const ds = {
    ...base,
    list: (s?: "train" | "test") => (s === "test" ? train : base.list(s)),
    async *videos(s?: "train" | "test") {
      yield* base.videos(s === "test" ? "train" : s);
    },
  };
  const gt = groundTruthOf(base, "train");
  const labels = gt.instances.map((i) => ({ ...i, score: 1 }));
  const cfg = { ...TINY, batch: 4, epochs: 40, ema: false, lr: 3e-3 };
  const r = await trainStudent(ds, labels, { config: cfg, seed: 2 });
  const ev = evaluateDetections(gt, r.test, { tiou: THUMOS_TIOUS });
  assert.ok(ev.average > 0.8, `train mAP ${ev.average} (${ev.mAP.join(" ")})`);
});
