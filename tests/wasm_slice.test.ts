// fastWasmSlices (lib/wasm_slice.ts): tfjs-wasm's Slice and SplitV without copying the whole
// input give the same values as tfjs-wasm's own kernels, bit for bit, for ranks 1-5, every dtype
// and axis, including empty slices and slices that grow the heap.
import assert from "node:assert/strict";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { fastWasmSlices } from "../lib/wasm_slice.ts";

interface Case {
  shape: number[];
  dtype: "float32" | "int32" | "bool";
  begin: number[];
  size: number[];
  splitAxis: number;
  splits: number[];
}

/** Random shapes of rank 1..5, random blocks (size -1 = to the end) and random splits. */
function cases(rng: Rng, n: number): Case[] {
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const rank = 1 + (i % 5);
    const shape = Array.from({ length: rank }, () => 1 + Math.floor(rng.next() * 5));
    const begin = shape.map((s) => Math.floor(rng.next() * s));
    const size = shape.map((s, d) => {
      const r = rng.next();
      return r < 0.25 ? -1 : r < 0.35 ? 0 : 1 + Math.floor(rng.next() * (s - begin[d]));
    });
    const splitAxis = Math.floor(rng.next() * rank);
    const splits: number[] = [];
    for (let left = shape[splitAxis]; left > 0;) {
      const s = Math.min(left, Math.floor(rng.next() * 3));
      splits.push(s);
      left -= s;
    }
    const dtype = (["float32", "int32", "bool"] as const)[i % 3];
    out.push({ shape, dtype, begin, size, splitAxis, splits });
  }
  return out;
}

/** Every slice and split of `cs` as [shape, values] pairs, disposing the tensors. */
function results(cs: Case[], rng: Rng): [number[], number[]][] {
  const res: [number[], number[]][] = [];
  for (const c of cs) {
    const n = c.shape.reduce((a, b) => a * b, 1);
    const vals = Array.from({ length: n }, () => rng.normal());
    const x = c.dtype === "bool" ? tf.tensor(vals.map((v) => v > 0), c.shape, "bool") : tf.tensor(
      c.dtype === "int32" ? vals.map((v) => Math.round(v * 100)) : vals,
      c.shape,
      c.dtype,
    );
    const pieces = [tf.slice(x, c.begin, c.size), ...tf.split(x, c.splits, c.splitAxis)];
    for (const p of pieces) res.push([p.shape, Array.from(p.dataSync() as ArrayLike<number>)]);
    tf.dispose([x, ...pieces]);
  }
  return res;
}

Deno.test("fastWasmSlices: Slice and SplitV equal tfjs-wasm's own kernels, bit for bit", async () => {
  await initBackend("wasm");
  assert.equal(tf.getBackend(), "wasm");
  const cs = cases(new Rng(11), 300);
  const fast = results(cs, new Rng(12));
  const mine = tf.getKernel("SplitV", "wasm")!.kernelFunc;
  fastWasmSlices(false);
  assert.notEqual(tf.getKernel("SplitV", "wasm")!.kernelFunc, mine, "tfjs's own kernel is back");
  let orig: [number[], number[]][];
  try {
    orig = results(cs, new Rng(12));
  } finally {
    fastWasmSlices();
  }
  assert.equal(fast.length, orig.length);
  for (let i = 0; i < fast.length; i++) {
    assert.deepEqual(fast[i][0], orig[i][0], `shape of result ${i}`);
    // bit for bit: compare as float32 bytes (NaN-free inputs, so deepEqual on numbers suffices)
    assert.deepEqual(fast[i][1], orig[i][1], `values of result ${i}`);
  }
});

Deno.test("fastWasmSlices: the split of a large tensor survives heap growth; strings still slice", async () => {
  await initBackend("wasm");
  // 48 MB input split into pieces whose allocation may grow (and so replace) the heap's buffer
  const B = 6, T = 1000, C = 2000;
  const x = tf.tidy(() => tf.reshape(tf.range(0, B * T * C, 1, "float32"), [B, T, C]));
  const [a, b] = tf.split(x, [333, 667], 1);
  const av = a.dataSync(), bv = b.dataSync();
  for (const [bb, t, c] of [[0, 0, 0], [5, 332, 1999], [3, 100, 7]]) {
    assert.equal(av[(bb * 333 + t) * C + c], (bb * T + t) * C + c);
  }
  for (const [bb, t, c] of [[0, 0, 0], [5, 666, 1999], [2, 400, 3]]) {
    assert.equal(bv[(bb * 667 + t) * C + c], (bb * T + 333 + t) * C + c);
  }
  const s = tf.slice(tf.tensor1d(["a", "b", "c"], "string"), [1], [2]);
  assert.deepEqual(s.dataSync(), ["b", "c"]);
  tf.dispose([x, a, b, s]);
});
