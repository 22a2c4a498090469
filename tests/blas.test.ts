// Native BLAS kernels (lib/blas.ts) against tfjs-wasm's own kernels: random shapes, transposes,
// broadcast batches, fused bias/activation, gradients. Skipped with a message when no BLAS
// library is installed (apt-get install libopenblas0-pthread).
import assert from "node:assert/strict";
import { tf } from "../deps.ts";
import { applyBlasFlags, describeBackend, initBackend, setBlasOptions } from "../lib/backend.ts";
import { blasActive, blasInfo, blasStats, matMulT, setBlasEnabled } from "../lib/blas.ts";
import { InputError } from "../lib/errors.ts";
import { Rng } from "../lib/rng.ts";
import { conv1d, matMul as opsMatMul } from "../stages/training/ops.ts";
import {
  createParams,
  disposeParams,
  forwardCols,
  forwardPadded,
  hostIm2col,
  inferCas,
  matMulExplicit,
  padRows,
} from "../stages/generation/model.ts";
import { convRows, convRowsFilter } from "../lib/blas_conv.ts";

setBlasOptions({});
const info = await initBackend("wasm");
const haveBlas = info.blas != null;
if (!haveBlas) {
  console.log(
    `blas tests skipped: ${info.blasNote ?? "no native BLAS"}`,
  );
}

/** Runs `f` on plain wasm and on BLAS; returns both results as host arrays. */
function both(f: () => tf.Tensor | tf.Tensor[]): [Float32Array[], Float32Array[], number] {
  const run = (on: boolean) => {
    setBlasEnabled(on);
    const before = blasStats.sgemmCalls;
    const r = tf.tidy(() => {
      const o = f();
      return Array.isArray(o) ? o : [o];
    });
    const calls = blasStats.sgemmCalls - before;
    const out = r.map((t) => t.dataSync() as Float32Array);
    tf.dispose(r);
    return { out, calls };
  };
  const w = run(false);
  const b = run(true);
  assert.equal(w.calls, 0, "plain wasm must not call sgemm");
  return [w.out, b.out, b.calls];
}

/** Max |x - y| relative to the scale of y (float32 sums over k terms). */
function close(x: Float32Array, y: Float32Array, what: string, tol = 2e-5): void {
  assert.equal(x.length, y.length, `${what}: sizes`);
  let scale = 1e-3, err = 0;
  for (let i = 0; i < y.length; i++) {
    scale = Math.max(scale, Math.abs(y[i]));
    err = Math.max(err, Math.abs(x[i] - y[i]));
  }
  assert.ok(err <= tol * scale, `${what}: max error ${err} vs scale ${scale}`);
}

function rnd(rng: Rng, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.next() * 2 - 1;
  return tf.tensor(v, shape);
}

const opts = { ignore: !haveBlas, sanitizeResources: false, sanitizeOps: false };

Deno.test("blas: backend line names wasm+BLAS, the library and the threads", opts, () => {
  const line = describeBackend(info);
  assert.match(line, /^backend wasm\+BLAS \(/);
  assert.ok(line.includes(blasInfo()!.library), line);
  assert.match(line, /\d+ threads?/);
  assert.ok(blasActive());
});

Deno.test("blas: matMul on random shapes, transposes and batches agrees with wasm", opts, () => {
  const rng = new Rng(11);
  const dim = () => 1 + Math.floor(rng.next() * 70);
  for (let trial = 0; trial < 40; trial++) {
    const m = dim(), k = dim(), n = dim();
    const tA = rng.next() < 0.5, tB = rng.next() < 0.5;
    // batches: none, equal, or one side single (the cases tfjs-wasm handles itself)
    const kind = trial % 4;
    const nb = 1 + Math.floor(rng.next() * 4);
    const ba = kind === 0 ? [] : kind === 1 ? [nb] : kind === 2 ? [nb] : [1, nb];
    const bb = kind === 0 ? [] : kind === 1 ? [nb] : kind === 2 ? [] : [nb];
    const a = rnd(rng, [...ba, ...(tA ? [k, m] : [m, k])]);
    const b = rnd(rng, [...bb, ...(tB ? [n, k] : [k, n])]);
    const [w, bl, calls] = both(() => tf.matMul(a, b, tA, tB));
    assert.ok(calls > 0, "sgemm was called");
    close(bl[0], w[0], `trial ${trial} [${a.shape}]x[${b.shape}] tA=${tA} tB=${tB}`);
    tf.dispose([a, b]);
  }
});

Deno.test("blas: general broadcast batches match a host reference", opts, () => {
  // tfjs-wasm's own kernel cannot broadcast [2,1] against [3]; the BLAS kernel can.
  const rng = new Rng(5);
  const a = rnd(rng, [2, 1, 4, 5]), b = rnd(rng, [3, 6, 5]);
  setBlasEnabled(true);
  const c = tf.matMul(a, b, false, true);
  assert.deepEqual(c.shape, [2, 3, 4, 6]);
  const A = a.arraySync() as number[][][][], B = b.arraySync() as number[][][];
  const C = c.arraySync() as number[][][][];
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) {
      for (let r = 0; r < 4; r++) {
        for (let q = 0; q < 6; q++) {
          let s = 0;
          for (let t = 0; t < 5; t++) s += A[i][0][r][t] * B[j][q][t];
          assert.ok(Math.abs(s - C[i][j][r][q]) < 1e-5, `C[${i}][${j}][${r}][${q}]`);
        }
      }
    }
  }
  tf.dispose([a, b, c]);
});

/** The fused product written as separate ops (the reference for `tf.fused.matMul`). */
function unfused(
  a: tf.Tensor,
  b: tf.Tensor,
  tA: boolean,
  tB: boolean,
  bias: tf.Tensor,
  act: string,
  w?: tf.Tensor,
): tf.Tensor {
  const y = tf.add(tf.matMul(a, b, tA, tB), bias);
  switch (act) {
    case "relu":
      return tf.relu(y);
    case "relu6":
      return tf.clipByValue(y, 0, 6);
    case "leakyrelu":
      return tf.leakyRelu(y, 0.1);
    case "elu":
      return tf.elu(y);
    case "sigmoid":
      return tf.sigmoid(y);
    case "prelu":
      return tf.prelu(y, w!);
    default:
      return y;
  }
}

Deno.test("blas: fused matMul with bias and every activation agrees with wasm ops", opts, () => {
  // Reference: the same product as separate ops on plain wasm. (tfjs-wasm's own fused kernel
  // adds the bias wrongly when there is more than one batch, so it is not the reference.)
  const rng = new Rng(3);
  const acts = ["linear", "relu", "relu6", "leakyrelu", "elu", "sigmoid", "prelu"] as const;
  for (const act of acts) {
    for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]]) {
      const m = 17, k = 33, n = 23;
      const a = rnd(rng, [2, ...(tA ? [k, m] : [m, k])]);
      const b = rnd(rng, [2, ...(tB ? [n, k] : [k, n])]);
      const bias = tf.mul(rnd(rng, [n]), 3);
      const alpha = act === "prelu" ? rnd(rng, [n]) : undefined;
      setBlasEnabled(false);
      const ref = tf.tidy(() => unfused(a, b, tA, tB, bias, act, alpha));
      setBlasEnabled(true);
      const before = blasStats.sgemmCalls;
      const got = tf.fused.matMul({
        a,
        b,
        transposeA: tA,
        transposeB: tB,
        bias,
        activation: act,
        preluActivationWeights: alpha,
        leakyreluAlpha: 0.1,
      });
      assert.ok(blasStats.sgemmCalls > before);
      close(
        got.dataSync() as Float32Array,
        ref.dataSync() as Float32Array,
        `fused ${act} tA=${tA} tB=${tB}`,
      );
      tf.dispose([a, b, bias, ref, got, ...(alpha ? [alpha] : [])]);
    }
  }
});

Deno.test(
  "blas: gradients of matMul, fused matMul and the im2col convs agree with wasm",
  opts,
  () => {
    const rng = new Rng(9);
    for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]]) {
      const a = rnd(rng, [3, ...(tA ? [19, 13] : [13, 19])]);
      // same batch count on both sides: tfjs-core's BatchMatMul gradient does not sum a
      // broadcast batch back (a limitation of the gradient, on every backend)
      const b = rnd(rng, [3, ...(tB ? [11, 19] : [19, 11])]);
      const r = rnd(rng, [3, 13, 11]);
      const [w, bl] = both(() =>
        tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, tA, tB), r)))([
          a,
          b,
        ])
      );
      close(bl[0], w[0], `dA tA=${tA} tB=${tB}`);
      close(bl[1], w[1], `dB tA=${tA} tB=${tB}`);
      const bias = rnd(rng, [11]);
      const [fw, fb] = both(() =>
        tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
          tf.sum(tf.mul(
            tf.fused.matMul({
              a: x,
              b: y,
              bias: z,
              transposeA: tA,
              transposeB: tB,
              activation: "relu",
            }),
            r,
          ))
        )([a, b, bias])
      );
      for (let i = 0; i < 3; i++) close(fb[i], fw[i], `fused grad ${i} tA=${tA} tB=${tB}`);
      tf.dispose([a, b, r, bias]);
    }
    // the custom-gradient matMuls of the generator and the student, and the student's conv
    const x = rnd(rng, [2, 24, 8]), wc = rnd(rng, [3 * 8, 6]), bc = rnd(rng, [6]);
    const r2 = rnd(rng, [2, 24, 6]);
    const [cw, cb] = both(() =>
      tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(conv1d(xx, ww, bb), r2))
      )([x, wc, bc])
    );
    for (let i = 0; i < 3; i++) close(cb[i], cw[i], `conv1d grad ${i}`);
    const p = rnd(rng, [30, 12]), q = rnd(rng, [12, 7]), r3 = rnd(rng, [30, 7]);
    for (const f of [opsMatMul, matMulExplicit]) {
      const [mw, mb] = both(() =>
        tf.grads((u: tf.Tensor, v: tf.Tensor) =>
          tf.sum(tf.mul(f(u as tf.Tensor2D, v as tf.Tensor2D), r3))
        )([p, q])
      );
      close(mb[0], mw[0], "custom matMul dA");
      close(mb[1], mw[1], "custom matMul dB");
    }
    // matMulT: flags under BLAS, explicit transposes on wasm
    const [tw, tb] = both(() => matMulT(p, r3, true, false));
    close(tb[0], tw[0], "matMulT");
    tf.dispose([x, wc, bc, r2, p, q, r3]);
  },
);

Deno.test("blas: sums over leading axes (a product with ones) agree with wasm", opts, () => {
  const rng = new Rng(4);
  // [shape, axis, keepDims, runs on BLAS]
  const cases: [number[], number | number[], boolean, boolean][] = [
    [[7, 5], 0, false, true],
    [[3, 4, 6], [0, 1], false, true],
    [[3, 4, 6], [1, 0], true, true],
    [[2, 3, 4, 5], [0, 1, 2], false, true],
    [[2, 3, 4], -3, true, true],
    [[5, 6], 1, false, false], // innermost: the original kernel
    [[3, 4, 6], [0, 2], false, false], // not leading
    [[1, 9], 0, false, false], // a single row
    [[3, 4], [0, 1], false, false], // every axis
  ];
  for (const [shape, axis, keepDims, onBlas] of cases) {
    const x = rnd(rng, shape);
    const [w, b, calls] = both(() => tf.sum(x, axis, keepDims));
    const what = `sum ${JSON.stringify(shape)} axis ${JSON.stringify(axis)}`;
    close(b[0], w[0], what);
    assert.equal(calls > 0, onBlas, `${what}: on BLAS`);
    x.dispose();
  }
  const shape = tf.tidy(() => tf.sum(tf.ones([2, 3, 4]), [0, 1], true).shape);
  assert.deepEqual(shape, [1, 1, 4]);
  // sums of more rows than the ones buffer held before: it grows
  const big = tf.ones([40000, 3]);
  assert.deepEqual([...tf.sum(big, 0).dataSync()], [40000, 40000, 40000]);
  big.dispose();
});

Deno.test("blas: the shifted-product conv equals im2col + matMul, forward and filter", opts, () => {
  const rng = new Rng(21);
  for (
    const [B, T, D, H, taps] of [[1, 1, 1, 1, 1], [2, 9, 5, 7, 3], [3, 17, 4, 6, 5], [
      1,
      40,
      33,
      2,
      3,
    ]]
  ) {
    const half = (taps - 1) / 2;
    const x = rnd(rng, [B, T, D]) as tf.Tensor3D;
    const xp = tf.pad(x, [[0, 0], [half, half], [0, 0]]) as tf.Tensor3D;
    const w = rnd(rng, [taps * D, H]) as tf.Tensor2D, dy = rnd(rng, [B * T, H]) as tf.Tensor2D;
    // im2col reference on plain wasm: columns j·D + d hold feature d of row t + j
    setBlasEnabled(false);
    const cols = tf.reshape(
      tf.concat(Array.from({ length: taps }, (_, j) => tf.slice(xp, [0, j, 0], [B, T, D])), 2),
      [B * T, taps * D],
    ) as tf.Tensor2D;
    const refOut = tf.matMul(cols, w).dataSync() as Float32Array;
    const refFilter = tf.matMul(tf.transpose(cols), dy).dataSync() as Float32Array;
    setBlasEnabled(true);
    const what = `B${B} T${T} D${D} H${H} k${taps}`;
    close(convRows(xp, w, taps).dataSync() as Float32Array, refOut, `convRows ${what}`);
    close(convRowsFilter(xp, dy, taps).dataSync() as Float32Array, refFilter, `filter ${what}`);
  }
  setBlasEnabled(false);
  assert.throws(() => convRows(tf.zeros([1, 4, 2]) as tf.Tensor3D, tf.zeros([6, 1]), 3), /BLAS/);
  setBlasEnabled(true);
  assert.throws(() => convRows(tf.zeros([1, 4, 2]) as tf.Tensor3D, tf.zeros([5, 1]), 2.5), /taps/);
  setBlasEnabled(true);
});

Deno.test(
  "blas: the generator's padded forward matches its im2col forward, with gradients",
  opts,
  () => {
    const rng = new Rng(5);
    const B = 3, T = 11, D = 6, H = 5;
    const p = createParams(D, H, 4, rng);
    const xs = new Float32Array(B * T * D).map(() => rng.next() - 0.3);
    const drop = tf.tensor2d(
      new Float32Array(B * T * H).map(() => (rng.next() < 0.7 ? 1 / 0.7 : 0)),
      [
        B * T,
        H,
      ],
    );
    const r = rnd(rng, [B * T, 4]), re = rnd(rng, [B * T, H]);
    const run = (padded: boolean) => {
      setBlasEnabled(padded);
      const cols = tf.tensor2d(hostIm2col(xs, B, T, D).cols, [B * T, 3 * D]);
      const xp = tf.tensor3d(padRows(xs, B, T, D), [B, T + 2, D]);
      const { value, grads } = tf.variableGrads(() => {
        const o = padded ? forwardPadded(p, xp, drop) : forwardCols(p, cols, drop);
        return tf.add(tf.sum(tf.mul(o.cas, r)), tf.sum(tf.mul(o.emb, re))) as tf.Scalar;
      }, [p.w1, p.b1, p.w2]);
      const out = [value, grads[p.w1.name], grads[p.b1.name], grads[p.w2.name]].map((t) =>
        t.dataSync() as Float32Array
      );
      tf.dispose([value, ...Object.values(grads), cols, xp]);
      return out;
    };
    const ref = run(false), got = run(true);
    ["loss", "dw1", "db1", "dw2"].forEach((n, i) => close(got[i], ref[i], n));
    const cas = inferCas(p, [{ data: xs.subarray(0, T * D), T }, {
      data: xs.subarray(T * D),
      T: 2 * T,
    }], D);
    return cas.then(async (viaConv) => {
      setBlasEnabled(false);
      const viaCols = await inferCas(p, [{ data: xs.subarray(0, T * D), T }, {
        data: xs.subarray(T * D),
        T: 2 * T,
      }], D);
      setBlasEnabled(true);
      viaConv.forEach((c, i) => close(c, viaCols[i], `inferCas video ${i}`));
      disposeParams(p);
      tf.dispose([drop, r, re]);
    });
  },
);

Deno.test("blas: memory growth between products keeps results right", opts, () => {
  // Allocate enough to grow the wasm heap between products: the kernel must take the heap's
  // address after allocating its output.
  const rng = new Rng(1);
  const a = rnd(rng, [64, 64]);
  setBlasEnabled(true);
  const ref = (tf.matMul(a, a).dataSync() as Float32Array).slice();
  const big: tf.Tensor[] = [];
  for (let i = 0; i < 4; i++) {
    big.push(tf.zeros([8 * 1024 * 1024]));
    const c = tf.matMul(a, a);
    close(c.dataSync() as Float32Array, ref, `after growth ${i}`, 0);
    c.dispose();
  }
  tf.dispose([a, ...big]);
});

Deno.test("blas: --threads must be a positive integer", () => {
  assert.throws(() => applyBlasFlags("run", { threads: "0" }), InputError);
  assert.throws(() => applyBlasFlags("run", { threads: "two" }), InputError);
  applyBlasFlags("run", { threads: "1", blas: "off" });
  setBlasOptions({});
});

Deno.test("blas: off, a bad path, and the hint line (child processes)", async () => {
  const code = `import { describeBackend, initBackend, setBlasOptions } from "${
    new URL("../lib/backend.ts", import.meta.url).href
  }";
  const p = Deno.args[0];
  if (p) setBlasOptions({ path: p });
  try { console.log(describeBackend(await initBackend("wasm"))); }
  catch (e) { console.log("ERR " + e.constructor.name + " " + e.message); }`;
  const run = async (arg: string, env: Record<string, string> = {}) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code, arg],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
  };
  const off = await run("off");
  assert.match(off, /^backend wasm \(.*BLAS off/);
  const bad = await run("/nonexistent/libnothing.so");
  assert.match(bad, /^ERR InputError --blas: cannot use "\/nonexistent\/libnothing.so"/);
  const envBad = await run("", { FUSTAL_BLAS: "/nonexistent/libnothing.so" });
  assert.match(envBad, /^ERR InputError FUSTAL_BLAS: cannot use/);
  if (haveBlas) {
    const envOk = await run("", { FUSTAL_BLAS: blasInfo()!.library });
    assert.match(envOk, /^backend wasm\+BLAS/);
  }
});

Deno.test(
  "blas: small generator and student trainings reach the same mAP as plain wasm",
  opts,
  async () => {
    const { toyDataset } = await import("./generation_fixtures.ts");
    const { trainGenerator } = await import("../stages/generation/train.ts");
    const { generatorConfig } = await import("../stages/generation/presets.ts");
    const { tinyDataset, jitteredLabels, TINY_STUDENT } = await import("./training_fixtures.ts");
    const { trainStudent, groundTruthOf } = await import("../stages/training/train.ts");
    const { evaluateDetections } = await import("../stages/evaluation.ts");
    const ds = toyDataset({ train: 32, test: 24 });
    const cfg = generatorConfig("default", {
      snippets: 64,
      batch: 8,
      evalEvery: 40,
      lr: 1e-3,
      seed: 5,
      iterations: 80,
    });
    const gen: Record<string, number> = {};
    for (const on of [false, true]) {
      setBlasEnabled(on);
      const calls = blasStats.sgemmCalls;
      gen[on ? "blas" : "wasm"] = (await trainGenerator(ds, cfg)).testEval.average;
      assert.equal(blasStats.sgemmCalls > calls, on);
    }
    console.log(`generator test mAP: wasm ${gen.wasm}, wasm+BLAS ${gen.blas}`);
    assert.ok(gen.wasm > 0.3, "the generator learned");
    assert.ok(Math.abs(gen.wasm - gen.blas) <= 0.005, JSON.stringify(gen));

    const tds = tinyDataset({ nTrain: 12, nTest: 4, rows: 64, dim: 8, k: 3, seed: 21 });
    const scfg = {
      ...TINY_STUDENT,
      batch: 4,
      epochs: 6,
      ema: false,
      lr: 3e-3,
    };
    const stu: Record<string, number> = {};
    for (const on of [false, true]) {
      setBlasEnabled(on);
      const r = await trainStudent(tds, jitteredLabels(tds, 3), { config: scfg, seed: 1 });
      stu[on ? "blas" : "wasm"] = evaluateDetections(groundTruthOf(tds, "test"), r.test).average;
    }
    console.log(`student test mAP: wasm ${stu.wasm}, wasm+BLAS ${stu.blas}`);
    assert.ok(Math.abs(stu.wasm - stu.blas) <= 0.005, JSON.stringify(stu));
    setBlasEnabled(true);
  },
);

Deno.test("blas: the same kernels through bun:ffi under Bun", opts, async () => {
  let ok = false;
  try {
    await Deno.stat(new URL("../node_modules/@tensorflow", import.meta.url));
    ok = (await new Deno.Command("npx", { args: ["-y", "bun@1.4.5", "--version"] }).output())
      .success;
  } catch {
    ok = false;
  }
  if (!ok) {
    console.log("SKIP: bun or node_modules missing (run `npm install`; bun comes from npm)");
    return;
  }
  const out = await new Deno.Command("npx", {
    args: ["-y", "bun@1.4.5", "run", "tests/blas_bun_probe.ts"],
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n");
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  assert.match(text[0], /^backend wasm\+BLAS/);
  const j = JSON.parse(text.at(-1)!);
  assert.ok(j.blas && j.sgemmCalls > 0 && j.diff < 1e-4, JSON.stringify(j));
});
