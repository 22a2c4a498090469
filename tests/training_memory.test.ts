// Student memory features: gradient accumulation over micro-batches equals the whole batch,
// and an exhausted wasm heap is a one-line error naming the setting to lower.
import assert from "node:assert/strict";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { InputError } from "../lib/errors.ts";
import { Rng } from "../lib/rng.ts";
import { isHeapExhausted, WasmHeapExhausted } from "../lib/wasm_heap.ts";
import { initValues, makeLayout, paramSpecs } from "../stages/training/model.ts";
import { DEFAULT, type StudentConfig } from "../stages/training/presets.ts";
import { configFromOptions } from "../stages/training/plugin.ts";
import { targetsOf, TINY_STUDENT } from "./training_fixtures.ts";
import { accumulatedGrads, heapExhaustedError, type StepBatch } from "../stages/training/train.ts";

await initBackend("wasm");

const TINY: StudentConfig = {
  ...TINY_STUDENT,
  sgpBranches: true,
  sgpInitStd: 0.1,
  dropPath: 0.1,
  batch: 4,
};

function batchOf(cfg: StudentConfig, D: number, K: number): StepBatch {
  const B = cfg.batch, t0 = cfg.maxSeqLen;
  const rng = new Rng(21);
  const lens = [t0, 40, 52, t0];
  const segs = [
    [{ a: 5, b: 20, c: 1 }],
    [{ a: 10, b: 14, c: 2 }, { a: 25, b: 38, c: 0 }],
    [],
    [{ a: 30, b: 60, c: 1 }],
  ];
  return {
    ...targetsOf(cfg, K, lens, segs),
    x: Float32Array.from({ length: B * t0 * D }, () => rng.next()),
    lens,
    // drop-path varies per item, so a wrong slice of it would change the gradients
    dropPath: Array.from(
      { length: cfg.levels - 1 },
      () =>
        [
          Float32Array.from({ length: B }, (_, i) => (i % 3 === 1 ? 0 : 1 / 0.9)),
          Float32Array.from({ length: B }, (_, i) => (i % 2 === 0 ? 1 / 0.9 : 0)),
        ] as [Float32Array, Float32Array],
    ),
    milKeep: Float32Array.from({ length: B * t0 * K }, () => (rng.next() < 0.7 ? 0 : 1 / 0.3)),
    // item 2 has no weak label: the MIL normaliser must count the whole batch's items
    weak: Float32Array.from([0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1]),
  };
}

Deno.test("student: gradients accumulated over micro-batches equal the whole batch", () => {
  const D = 6, K = 3;
  const specs = paramSpecs(TINY, D, K);
  const vals = initValues(specs, new Rng(4));
  const vars = Object.fromEntries(
    specs.map((p) => [p.name, tf.variable(tf.tensor(vals.get(p.name)!, p.shape), true)]),
  );
  const layout = makeLayout(TINY.maxSeqLen, TINY);
  const batch = batchOf(TINY, D, K);
  const run = (micro: number) => {
    const r = accumulatedGrads(vars, { ...TINY, microBatch: micro }, layout, D, K, batch);
    const out = {
      terms: [r.total, r.cls, r.reg, r.mil].map((t) => t.dataSync()[0]),
      grads: Object.fromEntries(
        Object.entries(r.grads).map(([k, g]) => [k, g.dataSync() as Float32Array]),
      ),
    };
    tf.dispose([r.total, r.cls, r.reg, r.mil, ...Object.values(r.grads)]);
    return out;
  };
  const full = run(0);
  assert.ok(full.terms.every(Number.isFinite));
  assert.ok(full.terms[3] > 0, "the MIL term is active");
  for (const micro of [1, 3]) {
    const acc = run(micro);
    full.terms.forEach((v, i) => {
      assert.ok(Math.abs(acc.terms[i] - v) <= 1e-5 * Math.max(1, Math.abs(v)), `term ${i}`);
    });
    let nonzero = 0;
    for (const [k, g] of Object.entries(full.grads)) {
      const a = acc.grads[k];
      let scale = 1e-6, err = 0;
      for (let i = 0; i < g.length; i++) {
        scale = Math.max(scale, Math.abs(g[i]));
        err = Math.max(err, Math.abs(a[i] - g[i]));
      }
      if (scale > 1e-6) nonzero++;
      assert.ok(err <= 1e-4 * scale, `micro ${micro}, ${k}: error ${err} vs scale ${scale}`);
    }
    assert.ok(nonzero > Object.keys(full.grads).length / 2, "most gradients are non-zero");
  }
  tf.dispose(Object.values(vars));
});

Deno.test("student: microBatch option is validated", () => {
  assert.equal(configFromOptions({ microBatch: 2 }).microBatch, 2);
  assert.throws(() => configFromOptions({ microBatch: -1 }), InputError);
  assert.throws(() => configFromOptions({ microBatch: 1.5 }), InputError);
});

Deno.test("wasm heap: a failed allocation is a WasmHeapExhausted, then a one-line error", () => {
  // 4.28 GB beside a live 64 MB tensor cannot fit the 32-bit heap (at most 4.29 GB), and
  // 4.6 GB does not even fit 32 bits: the guarded _malloc throws before anything is written
  // (unguarded, tfjs would write the tensor at a wrapped or null address).
  const live = tf.ones([16 * 1024 * 1024]);
  let caught: unknown = null;
  for (const n of [1020, 1100]) {
    caught = null;
    try {
      tf.zeros([n * 1024 * 1024]);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof WasmHeapExhausted, String(caught));
  }
  assert.ok(isHeapExhausted(caught));
  // the backend still works afterwards
  assert.equal(tf.sum(tf.ones([1000])).dataSync()[0], 1000);
  live.dispose();
  const err = heapExhaustedError(caught, { ...DEFAULT, batch: 8, microBatch: 0 }, 2048);
  assert.ok(err instanceof InputError);
  assert.ok(!err.message.includes("\n"));
  assert.match(err.message, /wasm heap .* exhausted .* microBatch=4/);
  assert.equal(heapExhaustedError(new Error("other"), DEFAULT, 128), null);
  assert.ok(isHeapExhausted(new Error("RuntimeError: memory access out of bounds")));
});

// The chains of tfjs ops the fused ops replace (their gradients come from tfjs's own rules).
const ref = {
  conv1d(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    const [b, t, cin] = x.shape;
    const k = w.shape[0] / cin, p = (k - 1) / 2;
    const xp = tf.pad(x, [[0, 0], [p, p], [0, 0]]);
    const taps = Array.from({ length: k }, (_, j) => tf.slice(xp, [0, j, 0], [b, t, cin]));
    const cols = tf.reshape(tf.concat(taps, 2), [b * t, k * cin]) as tf.Tensor2D;
    return tf.reshape(tf.matMul(cols, w as tf.Tensor2D), [b, t, w.shape[1] as number]);
  },
  depthwise(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    const [b, t, c] = x.shape;
    const k = w.shape[0], p = (k - 1) / 2;
    const xp = tf.pad(x, [[0, 0], [p, p], [0, 0]]);
    let y: tf.Tensor | null = null;
    for (let j = 0; j < k; j++) {
      const tap = tf.mul(tf.slice(xp, [0, j, 0], [b, t, c]), tf.slice(w, [j, 0], [1, c]));
      y = y ? tf.add(y, tap) : tap;
    }
    return y!;
  },
  norm(x: tf.Tensor, view: number[], axes: number[], g: tf.Tensor, b: tf.Tensor): tf.Tensor {
    const xv = tf.reshape(x, view);
    const { mean, variance } = tf.moments(xv, axes, true);
    const xn = tf.reshape(tf.mul(tf.sub(xv, mean), tf.rsqrt(tf.add(variance, 1e-5))), x.shape);
    return tf.add(tf.mul(xn, g), b);
  },
  gelu(x: tf.Tensor): tf.Tensor {
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
  },
};

Deno.test("student ops: fused convs, norms and GELU match the op chains, values and gradients", async () => {
  const ops = await import("../stages/training/ops.ts");
  const rng = new Rng(8);
  const r = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
      shape,
    );
  const B = 2, T = 13, C = 8;
  const x = r([B, T, C]);
  const cases: [
    string,
    (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor,
    (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor,
    tf.Tensor[],
  ][] = [];
  for (const k of [1, 3, 5]) {
    cases.push([`conv1d k${k}`, (a, w) => ops.conv1d(a, w), (a, w) => ref.conv1d(a, w), [
      x,
      r([k * C, 6]),
      r([1]),
    ]]);
  }
  for (const k of [3, 11]) {
    cases.push([
      `depthwise k${k}`,
      (a, w) => ops.depthwiseConv1d(a, w),
      (a, w) => ref.depthwise(a, w),
      [x, r([k, C]), r([1])],
    ]);
  }
  cases.push([
    "layerNorm",
    (a, g, b) => ops.layerNorm(a, g, b),
    (a, g, b) => ref.norm(a, a.shape, [2], g, b),
    [x, r([C]), r([C])],
  ]);
  cases.push([
    "groupNorm",
    (a, g, b) => ops.groupNorm(a, 4, g, b),
    (a, g, b) => ref.norm(a, [B, T, 4, 2], [1, 3], g, b),
    [x, r([C]), r([C])],
  ]);
  cases.push(["gelu", (a) => ops.gelu(a), (a) => ref.gelu(a), [x, r([1]), r([1])]]);
  for (const [name, f, g, all] of cases) {
    const inputs = name.startsWith("gelu")
      ? all.slice(0, 1)
      : name.includes("Norm")
      ? all
      : all.slice(0, 2);
    const call = (fn: typeof f, a: tf.Tensor[]) => fn(a[0], a[1] ?? a[0], a[2] ?? a[0]);
    const probe = r(call(f, inputs).shape);
    const loss = (fn: typeof f) => (...a: tf.Tensor[]) => tf.sum(tf.mul(call(fn, a), probe));
    const yf = call(f, inputs).dataSync();
    const yr = call(g, inputs).dataSync();
    for (let i = 0; i < yr.length; i++) {
      assert.ok(Math.abs(yf[i] - yr[i]) < 1e-4, `${name} value ${i}`);
    }
    const gf = tf.grads(loss(f))(inputs).map((t) => t.dataSync());
    const gr = tf.grads(loss(g))(inputs).map((t) => t.dataSync());
    gr.forEach((want, j) => {
      for (let i = 0; i < want.length; i++) {
        assert.ok(
          Math.abs(gf[j][i] - want[i]) < 1e-3 * Math.max(1, Math.abs(want[i])),
          `${name} grad ${j}[${i}]: ${gf[j][i]} vs ${want[i]}`,
        );
      }
    });
  }
});

Deno.test("generator loss: logSumExpLast matches tf.logSumExp, value and gradient", async () => {
  const { logSumExpLast } = await import("../stages/generation/losses.ts");
  const rng = new Rng(12);
  const x = tf.tensor(Float32Array.from({ length: 2 * 3 * 17 }, () => 4 * rng.normal()), [
    2,
    3,
    17,
  ]);
  const probe = tf.tensor(Float32Array.from({ length: 6 }, () => rng.normal()), [2, 3]);
  const a = logSumExpLast(x).dataSync(), b = tf.logSumExp(x, -1).dataSync();
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5);
  const ga = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(logSumExpLast(t), probe)))(x).dataSync();
  const gb = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.logSumExp(t, -1), probe)))(x).dataSync();
  for (let i = 0; i < gb.length; i++) assert.ok(Math.abs(ga[i] - gb[i]) < 1e-5, `grad ${i}`);
});
