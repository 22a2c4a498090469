// The student's worker pool (stages/training/pool.ts): micro-batch gradients computed by
// workers and summed in order are bit-identical to the main thread's accumulation, the EMA
// teacher's labels from workers equal the main thread's, a pooled detection pass equals the
// sequential one, and a short training run with two threads writes
// the same weights and detections as with one.
import assert from "node:assert/strict";
import * as path from "node:path";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { blasActive, capBlasThreads, MULTI_THREAD_WORK } from "../lib/blas.ts";
import { Rng } from "../lib/rng.ts";
import { InputError } from "../lib/errors.ts";
import { MAX_DEFAULT_WORKERS, parseWorkers, setWorkers, workerCount } from "../lib/workers.ts";
import {
  type Crops,
  type LabelCount,
  localTeacherPass,
  teacherRelabel,
  teacherSegments,
} from "../stages/training/batch.ts";
import { loadCheckpoint } from "../stages/training/checkpoint.ts";
import { initValues, makeLayout, paramSpecs } from "../stages/training/model.ts";
import {
  holdPool,
  pooledGrads,
  pooledTeacher,
  poolFor,
  poolStats,
  reviveWorkerError,
} from "../stages/training/pool.ts";
import type { StudentConfig } from "../stages/training/presets.ts";
import {
  accumulatedGrads,
  CHECKPOINT_FILE,
  detectSplit,
  heapExhaustedError,
  type StepBatch,
  type StepGrads,
  trainStudent,
} from "../stages/training/train.ts";
import { WasmHeapExhausted } from "../lib/wasm_heap.ts";
import { assertDeepClose } from "./float_close.ts";
import { run as predictCommand } from "../cli/predict.ts";
import {
  jitteredLabels,
  targetsOf,
  TINY_STUDENT,
  tinyDataset,
  writeActionFormer,
} from "./training_fixtures.ts";

await initBackend("wasm");

const CFG: StudentConfig = {
  ...TINY_STUDENT,
  sgpBranches: true,
  sgpInitStd: 0.1,
  dropPath: 0.1,
  batch: 4,
  microBatch: 1,
};

/** A batch of 4 items of different lengths, drop-path draws and targets. */
function batchOf(cfg: StudentConfig, D: number, K: number): StepBatch {
  const B = cfg.batch, t0 = cfg.maxSeqLen;
  const rng = new Rng(5);
  const lens = [t0, 37, 50, t0];
  const segs = lens.map((len, i) => {
    const a = rng.int(0, len - 12);
    return i === 2 ? [] : [{ a, b: a + rng.int(4, 11), c: i % K }];
  });
  const targets = targetsOf(cfg, K, lens, segs);
  const keep = () => Float32Array.from({ length: B }, () => (rng.next() < 0.3 ? 0 : 1 / 0.9));
  return {
    x: Float32Array.from({ length: B * t0 * D }, () => rng.next()),
    lens,
    dropPath: Array.from({ length: cfg.levels - 1 }, () => [keep(), keep()]),
    milKeep: Float32Array.from({ length: B * t0 * K }, () => (rng.next() < 0.7 ? 0 : 1 / 0.3)),
    ...targets,
    weak: Float32Array.from({ length: B * K }, (_, i) => (i % 4 === 1 ? 1 : 0)),
  };
}

/** The host values of a step's result (and frees it). */
function host(r: StepGrads) {
  const out = {
    terms: [r.total, r.cls, r.reg, r.mil].map((t) => t.dataSync()[0]),
    grads: Object.fromEntries(
      Object.entries(r.grads).map(([k, g]) => [k, Array.from(g.dataSync())]),
    ),
  };
  tf.dispose([r.total, r.cls, r.reg, r.mil, ...Object.values(r.grads)]);
  return out;
}

Deno.test("pool: micro-batch gradients from workers equal the sequential sums bit for bit", async () => {
  const D = 6, K = 3;
  const specs = paramSpecs(CFG, D, K);
  const vals = initValues(specs, new Rng(4));
  const vars = Object.fromEntries(
    specs.map((p) => [p.name, tf.variable(tf.tensor(vals.get(p.name)!, p.shape), true)]),
  );
  const layout = makeLayout(CFG.maxSeqLen, CFG);
  const batch = batchOf(CFG, D, K);
  const seq = host(accumulatedGrads(vars, CFG, layout, D, K, batch));
  assert.ok(seq.terms.every(Number.isFinite) && seq.terms[3] > 0, "every term is active");
  const release = holdPool();
  try {
    // 2 threads: micro-batches 1 and 3 on the worker; 3 threads: 1 and 2 on two workers.
    for (const n of [2, 3]) {
      setWorkers(n);
      const pool = await poolFor(CFG);
      assert.ok(pool, `a pool of ${n} threads starts`);
      const before = poolStats.gradJobs;
      const pooled = host(await pooledGrads(pool, vars, CFG, layout, D, K, batch));
      assert.equal(poolStats.gradJobs - before, n === 2 ? 2 : 2, "workers computed micro-batches");
      assert.deepEqual(pooled.terms, seq.terms, `${n} threads: loss terms`);
      assert.deepEqual(Object.keys(pooled.grads), Object.keys(seq.grads));
      for (const k of Object.keys(seq.grads)) {
        assert.deepEqual(pooled.grads[k], seq.grads[k], `${n} threads: gradient of ${k}`);
      }
    }
  } finally {
    release();
    setWorkers(undefined);
    tf.dispose(Object.values(vars));
  }
});

Deno.test("pool: the EMA teacher's labels from workers equal the main thread's", async () => {
  const ds = tinyDataset({ nTrain: 6, nTest: 0, dim: 8 });
  const K = ds.classes.length;
  const cfg: StudentConfig = { ...TINY_STUDENT, batch: 6, microBatch: 2 };
  const specs = paramSpecs(cfg, 8, K);
  const vals = initValues(specs, new Rng(11));
  const ema = Object.fromEntries(specs.map((p) => [p.name, tf.tensor(vals.get(p.name)!, p.shape)]));
  // Six crops of different lengths (views into the videos' rows, as the feature cache gives).
  const crops = async (): Promise<Crops> => {
    const c: Crops = { wins: [], segs: [], metas: [] };
    for (const [i, m] of ds.list("train").entries()) {
      const f = await ds.load(m.id);
      const len = Math.min(f.length - i, cfg.maxSeqLen - 3 * i);
      c.wins.push({ data: f.data.subarray(i * 8, (i + len) * 8), length: len });
      c.segs.push([{ a: 1, b: 5, c: 0 }]);
      c.metas.push(m);
    }
    return c;
  };
  const relabel = async (pass?: Parameters<typeof teacherRelabel>[6]) => {
    const c = await crops();
    const count: LabelCount = { gen: 0, teacher: 0, crops: 0 };
    await teacherRelabel(ema, cfg, c, 8, K, count, pass);
    return { segs: c.segs, teacher: count.teacher };
  };
  const release = holdPool();
  try {
    const seq = await relabel();
    assert.ok(seq.teacher > 0, "the teacher labels some crops");
    // Three chunks of two crops: the same labels as one pass over the whole batch.
    assert.deepEqual(await relabel(localTeacherPass), seq);
    const whole = await relabel(async (e, c, chunks, D, k) => [
      await teacherSegments(e, c, chunks.flat(), D, k),
    ]);
    // A whole-batch pass multiplies other matrix shapes than the chunks: equal up to rounding
    // (bit for bit on plain wasm). The pooled passes below compute the same chunks: bit for bit.
    assertDeepClose(whole, seq, "chunked and whole-batch passes agree");
    for (const n of [2, 3]) {
      setWorkers(n);
      const pool = await poolFor(cfg);
      assert.ok(pool, `a pool of ${n} threads starts`);
      const before = poolStats.teacherJobs;
      const pooled = await relabel((e, c, chunks, D, k) =>
        pooledTeacher(pool, e, c, chunks, D, k, (items) => teacherSegments(e, c, items, D, k))
      );
      // 2 threads: chunk 1 on the worker; 3 threads: chunks 1 and 2 on two workers.
      assert.equal(poolStats.teacherJobs - before, n - 1, "workers labelled chunks");
      assert.deepEqual(pooled, seq, `${n} threads: teacher labels`);
    }
  } finally {
    release();
    setWorkers(undefined);
    tf.dispose(Object.values(ema));
  }
});

Deno.test("pool: a pooled detection pass equals the sequential one", async () => {
  const ds = tinyDataset({ nTrain: 2, nTest: 12, dim: 8 });
  const specs = paramSpecs(TINY_STUDENT, 8, ds.classes.length);
  const vals = initValues(specs, new Rng(9));
  const params = Object.fromEntries(
    specs.map((p) => [p.name, tf.tensor(vals.get(p.name)!, p.shape)]),
  );
  try {
    setWorkers(1);
    const seq = await detectSplit(ds, params, TINY_STUDENT);
    assert.ok(seq.length > 0, "the untrained student detects something");
    setWorkers(2);
    const before = poolStats.detectJobs;
    const pooled = await detectSplit(ds, params, TINY_STUDENT);
    assert.ok(poolStats.detectJobs > before, "the worker detected some videos");
    assert.deepEqual(pooled, seq);
    // Two passes at once with other weights: the workers take them one after the other.
    const other = Object.fromEntries(Object.entries(params).map(([k, t]) => [k, tf.mul(t, 0.5)]));
    setWorkers(1);
    const seqOther = await detectSplit(ds, other, TINY_STUDENT);
    setWorkers(2);
    const [a, b] = await Promise.all([
      detectSplit(ds, params, TINY_STUDENT),
      detectSplit(ds, other, TINY_STUDENT),
    ]);
    tf.dispose(Object.values(other));
    assert.notDeepEqual(seqOther, seq);
    assert.deepEqual(a, seq);
    assert.deepEqual(b, seqOther);
  } finally {
    setWorkers(undefined);
    tf.dispose(Object.values(params));
  }
});

Deno.test("pool: a training run with 2 threads gives the weights and detections of 1", async () => {
  const ds = tinyDataset({ nTrain: 8, nTest: 12, dim: 8 });
  const labels = jitteredLabels(ds);
  const config: StudentConfig = {
    ...TINY_STUDENT,
    epochs: 2,
    switchEpoch: 1,
    warmupEpochs: 1,
    microBatch: 1,
  };
  const dir = await Deno.makeTempDir({ prefix: "fustal-pool-" });
  try {
    const runWith = async (n: number) => {
      setWorkers(n);
      const outDir = path.join(dir, `w${n}`);
      const r = await trainStudent(ds, labels, { config, seed: 3, outDir });
      const ck = await loadCheckpoint(path.join(outDir, CHECKPOINT_FILE));
      return { r, groups: ck.groups };
    };
    const one = await runWith(1);
    const jobs = poolStats.gradJobs, dets = poolStats.detectJobs;
    const teach = poolStats.teacherJobs;
    const two = await runWith(2);
    assert.ok(poolStats.gradJobs > jobs, "the worker computed micro-batches");
    assert.ok(poolStats.teacherJobs > teach, "the worker labelled crops as the EMA teacher");
    assert.ok(poolStats.detectJobs > dets, "the worker detected videos");
    assert.ok(one.r.test.length > 0);
    assert.deepEqual(two.r.test, one.r.test, "final detections");
    assert.deepEqual(two.r.testBeforeSwitch, one.r.testBeforeSwitch, "detections at the switch");
    assert.deepEqual(two.r.curves, one.r.curves, "loss curves");
    for (const g of ["model", "ema", "adam.m", "adam.v"]) {
      const a = one.groups[g], b = two.groups[g];
      assert.deepEqual(Object.keys(b), Object.keys(a));
      for (const k of Object.keys(a)) {
        assert.deepEqual(Array.from(b[k].data), Array.from(a[k].data), `${g}/${k}`);
      }
    }
    // `predict --root` spreads the videos over the workers too, with the same output.
    const data = path.join(dir, "data");
    await writeActionFormer(ds, data);
    const predict = async (n: number) => {
      const out = path.join(dir, `pred${n}.json`);
      const ckpt = path.join(dir, "w1", CHECKPOINT_FILE);
      const args = ["--checkpoint", ckpt, "--root", data, "--out", out, "--workers", String(n)];
      assert.equal(await predictCommand([...args, "--backend", "wasm"]), 0);
      return await Deno.readTextFile(out);
    };
    const p1 = await predict(1);
    const before = poolStats.detectJobs;
    assert.equal(await predict(2), p1);
    assert.ok(poolStats.detectJobs > before, "predict used the worker");
  } finally {
    setWorkers(undefined);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pool: an error inside a worker is the main path's error", async () => {
  const ds = tinyDataset({ nTrain: 2, nTest: 12, dim: 8 });
  // Video 1 (always a worker's, see below) has 7-d features: the input projection cannot take them.
  const bad = ds.list("test")[1].id;
  const broken = {
    ...ds,
    async *videos(s?: "train" | "test") {
      for await (const v of ds.videos(s)) {
        if (v.meta.id !== bad) yield v;
        else {
          const n = v.features.length * 7;
          yield {
            meta: v.meta,
            features: { data: v.features.data.slice(0, n), length: v.features.length, dim: 7 },
          };
        }
      }
    },
  };
  const specs = paramSpecs(TINY_STUDENT, 8, ds.classes.length);
  const vals = initValues(specs, new Rng(9));
  const params = Object.fromEntries(
    specs.map((p) => [p.name, tf.tensor(vals.get(p.name)!, p.shape)]),
  );
  const failure = async (n: number) => {
    setWorkers(n);
    try {
      await detectSplit(broken, params, TINY_STUDENT);
    } catch (e) {
      return e as Error;
    }
    throw new Error("no error");
  };
  try {
    const seq = await failure(1);
    // The main thread takes video 0 and the worker's two queues videos 1 and 2, so the bad
    // video is always detected by the worker.
    const errors = poolStats.workerErrors;
    const pooled = await failure(2);
    assert.equal(pooled.constructor, seq.constructor);
    assert.equal(pooled.message, seq.message);
    assert.ok(poolStats.workerErrors > errors, "thrown inside the worker");
  } finally {
    setWorkers(undefined);
    tf.dispose(Object.values(params));
  }
});

Deno.test("pool: worker counts from --workers and FUSTAL_WORKERS", () => {
  assert.equal(parseWorkers("--workers", "3"), 3);
  assert.equal(parseWorkers("--workers", "0"), 1);
  assert.throws(() => parseWorkers("train: --workers", "two"), /train: --workers: must be/);
  assert.throws(() => parseWorkers("FUSTAL_WORKERS", "-1"), InputError);
  setWorkers(3);
  assert.equal(workerCount(), 3);
  setWorkers(0);
  assert.equal(workerCount(), 1);
  setWorkers(undefined);
  const env = Deno.env.get("FUSTAL_WORKERS");
  try {
    Deno.env.set("FUSTAL_WORKERS", "5");
    assert.equal(workerCount(), 5);
    Deno.env.set("FUSTAL_WORKERS", "x");
    assert.throws(() => workerCount(), /FUSTAL_WORKERS: must be/);
    Deno.env.delete("FUSTAL_WORKERS");
    const cores = navigator.hardwareConcurrency;
    assert.equal(workerCount(), Math.max(1, Math.min(MAX_DEFAULT_WORKERS, cores)));
  } finally {
    if (env === undefined) Deno.env.delete("FUSTAL_WORKERS");
    else Deno.env.set("FUSTAL_WORKERS", env);
  }
});

Deno.test("pool: a worker's exhausted heap and input errors come back as the same errors", () => {
  const heap = reviveWorkerError({ name: "WasmHeapExhausted", message: "x", bytes: 2 ** 31 });
  assert.ok(heap instanceof WasmHeapExhausted);
  const line = heapExhaustedError(heap, { ...CFG, batch: 8, microBatch: 2 }, 64);
  assert.ok(line instanceof InputError);
  assert.match(line.message, /wasm heap .* exhausted .* microBatch=1/);
  assert.ok(!line.message.includes("\n"));
  const input = reviveWorkerError({ name: "InputError", message: "bad thing", exitCode: 2 });
  assert.ok(input instanceof InputError);
  assert.equal(input.exitCode, 2);
  assert.equal(input.message, "bad thing");
  const raw = reviveWorkerError({ name: "RuntimeError", message: "memory access out of bounds" });
  assert.equal(raw.name, "RuntimeError");
  assert.ok(heapExhaustedError(raw, CFG, 64) instanceof InputError);
});

Deno.test("pool: one BLAS thread (the cap while workers compute) gives the same products", () => {
  if (!blasActive()) {
    console.log("SKIP: no native BLAS (the cap only concerns it)");
    return;
  }
  // Products above MULTI_THREAD_WORK run on every BLAS thread unless the pool caps them.
  for (const [m, k, n] of [[1024, 384, 512], [4097, 1536, 128]]) {
    assert.ok(m * k * n >= MULTI_THREAD_WORK);
    const a = tf.randomNormal([m, k], 0, 1, "float32", 1);
    const b = tf.randomNormal([k, n], 0, 1, "float32", 2);
    const all = tf.matMul(a, b).dataSync();
    const prev = capBlasThreads(1);
    const one = tf.matMul(a, b).dataSync();
    capBlasThreads(prev);
    tf.dispose([a, b]);
    // Bit for bit where OpenBLAS's products do not depend on its thread count (so the pool's
    // cap changes no figure); on some CPUs they do in the last bits (seen on an AMD EPYC with
    // OpenBLAS's Haswell kernels: 3-10 % of the elements, by at most 1e-4 on sums of 384-1,536
    // products of unit normals), and there runs with other --workers or --threads agree only to
    // rounding (README, "Native BLAS"). The bound: 1e-6 per term of the sum.
    let differ = 0;
    for (let i = 0; i < all.length; i++) {
      if (one[i] === all[i]) continue;
      differ++;
      assert.ok(
        Math.abs(one[i] - all[i]) <= 1e-6 * k,
        `${m}x${k}x${n} [${i}]: ${one[i]} vs ${all[i]}`,
      );
    }
    if (differ) {
      console.log(`note: ${m}x${k}x${n}: ${differ} of ${all.length} elements differ in rounding`);
    }
  }
});
