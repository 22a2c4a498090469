// leanVariableGrads (lib/grads.ts): the same loss and gradients as tf.variableGrads, bit for
// bit, with less memory held during the backward walk, and no tensor left behind.
import assert from "node:assert/strict";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { leanGradsSupported, leanVariableGrads } from "../lib/grads.ts";
import { shareWasmCopies } from "../lib/wasm_share.ts";
import { Rng } from "../lib/rng.ts";
import { initValues, makeLayout, paramSpecs } from "../stages/training/model.ts";
import type { StudentConfig } from "../stages/training/presets.ts";
import {
  microBatches,
  microBatchGrads,
  microBatchLoss,
  type StepBatch,
} from "../stages/training/step.ts";
import { targetsOf, TINY_STUDENT } from "./training_fixtures.ts";

/** Host copies of a `{ value, grads }` result (then disposed). */
function hostOf(r: { value: tf.Scalar; grads: tf.NamedTensorMap }) {
  const grads: Record<string, Float32Array | null> = {};
  for (const [k, g] of Object.entries(r.grads)) grads[k] = g ? g.dataSync() as Float32Array : null;
  const value = r.value.dataSync()[0];
  tf.dispose([r.value, ...Object.values(r.grads).filter((g) => g)]);
  return { value, grads };
}

/** Asserts `a` and `b` are the same results, every float equal (NaN equal to NaN). */
function assertIdentical(a: ReturnType<typeof hostOf>, b: ReturnType<typeof hostOf>) {
  assert.ok(Object.is(a.value, b.value), `loss ${a.value} vs ${b.value}`);
  assert.deepEqual(Object.keys(a.grads).sort(), Object.keys(b.grads).sort());
  for (const [k, g] of Object.entries(a.grads)) {
    const h = b.grads[k];
    if (g === null || h === null) {
      assert.equal(g, h, k);
      continue;
    }
    assert.equal(g.length, h.length, k);
    for (let i = 0; i < g.length; i++) {
      assert.ok(Object.is(g[i], h[i]), `${k}[${i}]: ${g[i]} vs ${h[i]}`);
    }
  }
}

/**
 * A loss with a custom-gradient op (whose gradient passes `dy` through unchanged for one input
 * and returns one tensor for two), a tensor read by three ops, a variable used twice, a
 * two-output op with one output unused, a variable the loss does not reach and a non-trainable
 * variable.
 */
function smallGraph() {
  const rng = new Rng(3);
  const r = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
  const w = tf.variable(tf.tensor2d(r(12), [3, 4]), true, `lean${Math.random()}/w`);
  const b = tf.variable(tf.tensor1d(r(4)), true, `lean${Math.random()}/b`);
  const unused = tf.variable(tf.tensor1d(r(2)), true, `lean${Math.random()}/unused`);
  const frozen = tf.variable(tf.tensor1d(r(4)), false, `lean${Math.random()}/frozen`);
  const x = tf.tensor2d(r(15), [5, 3]);
  const scaleAdd = tf.customGrad((a, c, save) => {
    (save as tf.GradSaveFunc)([a as tf.Tensor]);
    return {
      value: tf.add(tf.mul(a as tf.Tensor, 1.5), c as tf.Tensor),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const d = dy as tf.Tensor;
        // input a: a new tensor built from a saved one; input c: dy itself, unchanged
        return [tf.mul(d, tf.add(tf.mul(saved[0], 0), 1.5)), d];
      },
    };
  });
  const twin = tf.customGrad((a, save) => {
    (save as tf.GradSaveFunc)([]);
    return {
      value: tf.square(a as tf.Tensor),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.mul(dy as tf.Tensor, 2),
    };
  });
  const loss = () => {
    const h = tf.matMul(x, w); // [5, 4]
    const s = tf.tanh(tf.add(h, b)); // s is read by three ops below
    const [left, right] = tf.split(s, 2, 1); // right unused
    void right;
    const u = scaleAdd(s, tf.mul(s, b)) as tf.Tensor; // b used a second time
    const v = twin(tf.sigmoid(s)) as tf.Tensor;
    return tf.add(tf.add(tf.sum(tf.mul(u, v)), tf.sum(left)), tf.sum(tf.mul(frozen, s)))
      .asScalar();
  };
  return { vars: [w, b, unused, frozen], loss, inputs: [x] };
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`leanVariableGrads on ${backend}: a small graph, bit-identical to tf.variableGrads, no leak`, async () => {
    await initBackend(backend);
    // the lean walk itself runs (tfjs 4.22 has the internals it reads), not the fallback
    assert.ok(leanGradsSupported());
    const g = smallGraph();
    const before = tf.memory().numTensors;
    const stock = hostOf(tf.variableGrads(g.loss, g.vars));
    assert.equal(tf.memory().numTensors, before);
    for (
      const opts of [
        {},
        { tidyNode: false },
        { freeDy: false },
        { freeSaved: false },
        { freeDy: false, tidyNode: false, freeSaved: false },
      ]
    ) {
      const lean = hostOf(leanVariableGrads(g.loss, g.vars, opts));
      assert.equal(tf.memory().numTensors, before, `tensors left by ${JSON.stringify(opts)}`);
      assertIdentical(lean, stock);
    }
    // the variable the loss does not reach has no gradient, the frozen one a null, as tfjs
    assert.ok(!(g.vars[2].name in stock.grads));
    assert.equal(stock.grads[g.vars[3].name], null);
    assert.ok(stock.grads[g.vars[1].name]!.some((v) => v !== 0));
    tf.dispose([...g.vars, ...g.inputs]);
  });
}

Deno.test("leanVariableGrads: bad losses fail as tf.variableGrads does, leaving no tensor", async () => {
  await initBackend("wasm");
  const v = tf.variable(tf.tensor1d([1, 2, 3]), true, `lean${Math.random()}/v`);
  const c = tf.tensor1d([4, 5, 6]);
  const frozen = tf.variable(tf.tensor1d([1]), false, `lean${Math.random()}/f`);
  const before = tf.memory().numTensors;
  assert.throws(() => leanVariableGrads(() => tf.mul(v, 2) as unknown as tf.Scalar, [v]), /scalar/);
  assert.throws(() => leanVariableGrads(() => tf.sum(c), [v]), /connection/);
  assert.throws(() => leanVariableGrads(() => tf.sum(frozen), [frozen]), /trainable/);
  assert.equal(tf.memory().numTensors, before);
  // inside another gradient computation it defers to tfjs (higher-order gradients)
  const d2 = tf.grad((x: tf.Tensor) => {
    const name = `lean${Math.random()}/inner`;
    const w = tf.variable(tf.tensor1d([0.5, -1, 2]), true, name);
    const { value, grads } = leanVariableGrads(() => tf.sum(tf.mul(tf.square(w), x)), [w]);
    const out = tf.add(value, tf.sum(grads[name]));
    w.dispose();
    return out;
  })(tf.tensor1d([1, 1, 1]));
  assert.deepEqual(Array.from(d2.dataSync()), [0.25 + 1, 1 - 2, 4 + 4]);
  tf.dispose([v, c, frozen, d2]);
});

/** A TINY student batch of 4 items with targets, dropouts and weak labels. */
function tinyBatch(cfg: StudentConfig, D: number, K: number): StepBatch {
  const B = cfg.batch, t0 = cfg.maxSeqLen;
  const rng = new Rng(8);
  const lens = [t0, 40, 52, t0].slice(0, B);
  const segs = [[{ a: 5, b: 20, c: 1 }], [{ a: 10, b: 14, c: 2 }, { a: 25, b: 38, c: 0 }], [], [
    { a: 30, b: 60, c: 1 },
  ]].slice(0, B);
  const { cls, reg } = targetsOf(cfg, K, lens, segs);
  return {
    x: Float32Array.from({ length: B * t0 * D }, () => rng.next()),
    lens,
    dropPath: Array.from(
      { length: cfg.levels - 1 },
      () =>
        [
          Float32Array.from({ length: B }, (_, i) => (i % 3 === 1 ? 0 : 1 / 0.9)),
          Float32Array.from({ length: B }, (_, i) => (i % 2 === 0 ? 1 / 0.9 : 0)),
        ] as [Float32Array, Float32Array],
    ),
    milKeep: Float32Array.from({ length: B * t0 * K }, () => (rng.next() < 0.7 ? 0 : 1 / 0.3)),
    cls,
    reg,
    weak: Float32Array.from({ length: B * K }, (_, i) => (i % 4 === 1 ? 1 : 0)),
    norm: 7,
  };
}

Deno.test("leanVariableGrads: the student's micro-batch step is bit-identical to tf.variableGrads", async () => {
  await initBackend("wasm");
  const cfg: StudentConfig = {
    ...TINY_STUDENT,
    sgpBranches: true,
    sgpInitStd: 0.1,
    headLayers: 1,
    batch: 4,
    microBatch: 2,
  };
  const D = 6, K = 3;
  const specs = paramSpecs(cfg, D, K);
  const vals = initValues(specs, new Rng(4));
  const vars = Object.fromEntries(
    specs.map((p) => [
      p.name,
      tf.variable(tf.tensor(vals.get(p.name)!, p.shape), true, `lean${Math.random()}/${p.name}`),
    ]),
  );
  const layout = makeLayout(cfg.maxSeqLen, cfg);
  const before = tf.memory().numTensors;
  for (const m of microBatches(cfg, layout, D, K, tinyBatch(cfg, D, K))) {
    // the training step's own path (stages/training/step.ts, also run by the worker pool)
    const step = microBatchGrads(vars, cfg, layout, D, m);
    tf.dispose([step.cls, step.reg, step.mil]);
    const lean = hostOf({ value: step.total, grads: step.grads });
    // the same loss through stock tfjs
    const stock = hostOf(
      tf.variableGrads(() => microBatchLoss(vars, cfg, layout, D, m).total, Object.values(vars)),
    );
    assert.ok(Number.isFinite(lean.value) && lean.value > 0);
    assertIdentical(lean, stock);
    assert.ok(Object.values(lean.grads).some((g) => g!.some((v) => v !== 0)));
  }
  assert.equal(tf.memory().numTensors, before);
  tf.dispose(Object.values(vars));
});

Deno.test("leanVariableGrads: a long chain peaks lower than tf.variableGrads", async () => {
  await initBackend("wasm");
  // 24 elementwise ops on 64k floats (256 KB each): the stock walk holds the gradient of every
  // link until the walk ends (24 x 256 KB on top of the saved tensors); the lean walk a few.
  const n = 1 << 16, links = 24;
  const v = tf.variable(tf.randomUniform([n], -1, 1, "float32", 5), true, `lean${Math.random()}/c`);
  const loss = () => {
    let h: tf.Tensor = v;
    for (let i = 0; i < links; i++) h = i % 2 ? tf.sin(h) : tf.mul(h, h);
    return tf.sum(h) as tf.Scalar;
  };
  const peak = async (grads: () => { value: tf.Scalar; grads: tf.NamedTensorMap }) => {
    const base = tf.memory().numBytes;
    let res: ReturnType<typeof hostOf> | null = null;
    const p = await tf.profile(() => {
      res = hostOf(grads());
    });
    return { bytes: p.peakBytes - base, res: res! };
  };
  const before = tf.memory().numTensors;
  const stock = await peak(() => tf.variableGrads(loss, [v]));
  const lean = await peak(() => leanVariableGrads(loss, [v]));
  assert.equal(tf.memory().numTensors, before);
  assertIdentical(lean.res, stock.res);
  const buf = n * 4;
  assert.ok(
    stock.bytes - lean.bytes >= (links / 2) * buf,
    `peak bytes: stock ${stock.bytes}, lean ${lean.bytes} (one buffer ${buf})`,
  );
  v.dispose();
});

Deno.test("shareWasmCopies: wasm clones share their buffer; values and the student step unchanged", async () => {
  await initBackend("wasm");
  const be = tf.backend() as unknown as { numDataIds(): number };
  const x = tf.tensor2d([1.5, -2, 3, 4.25], [2, 2]);
  const ids = be.numDataIds();
  const c = tf.clone(x);
  assert.equal(be.numDataIds(), ids, "a clone adds no buffer");
  x.dispose();
  assert.deepEqual(Array.from(c.dataSync()), [1.5, -2, 3, 4.25], "the clone outlives its source");
  c.dispose();
  assert.equal(be.numDataIds(), ids - 1, "the last reference frees the buffer");
  const s = tf.clone(tf.tensor1d(["a", "b"], "string"));
  assert.deepEqual(s.dataSync(), ["a", "b"]);
  // the student's micro-batch step gives the same floats with copying clones (tfjs's kernel)
  const cfg: StudentConfig = { ...TINY_STUDENT, sgpBranches: true, sgpInitStd: 0.1, batch: 2 };
  const D = 6, K = 3;
  const specs = paramSpecs(cfg, D, K);
  const vals = initValues(specs, new Rng(6));
  const vars = Object.fromEntries(
    specs.map((p) => [
      p.name,
      tf.variable(tf.tensor(vals.get(p.name)!, p.shape), true, `lean${Math.random()}/${p.name}`),
    ]),
  );
  const layout = makeLayout(cfg.maxSeqLen, cfg);
  const [m] = microBatches(cfg, layout, D, K, tinyBatch(cfg, D, K));
  const run = () => {
    const r = microBatchGrads(vars, cfg, layout, D, m);
    tf.dispose([r.cls, r.reg, r.mil]);
    return hostOf({ value: r.total, grads: r.grads });
  };
  const shared = run();
  shareWasmCopies(false);
  try {
    const y = tf.scalar(1);
    const n0 = be.numDataIds();
    const yc = tf.clone(y);
    assert.equal(be.numDataIds(), n0 + 1, "tfjs's kernel copies");
    tf.dispose([y, yc]);
    assertIdentical(shared, run());
  } finally {
    shareWasmCopies();
  }
  tf.dispose([s, ...Object.values(vars)]);
});
