// The wasm heap max-pool (lib/wasm_maxpool.ts, used by ops.maxPool3s2 on wasm) gives the values
// and gradients of the portable chain of maximums (ops.maxPool3s2Chain) bit for bit, ties
// included, and rejects inputs it cannot pool.
import assert from "node:assert/strict";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { maxPool3s2Heap, maxPool3s2HeapGrad } from "../lib/wasm_maxpool.ts";
import { maxPool3s2, maxPool3s2Chain } from "../stages/training/ops.ts";

/** Bitwise equality of two float arrays (NaN-free), with the index of the first difference. */
function assertSameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const ai = new Int32Array(a.buffer, a.byteOffset, a.length);
  const bi = new Int32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ai[i] !== bi[i]) assert.fail(`${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

Deno.test("wasm max-pool: values and gradients equal the portable chain bit for bit", async () => {
  await initBackend("wasm");
  const rng = new Rng(7);
  for (
    const [b, t, c, ties] of [[1, 2, 1, false], [2, 6, 3, true], [3, 10, 5, true], [
      2,
      64,
      33,
      false,
    ], [1, 8, 128, true]] as const
  ) {
    // ties: small integers, so that many windows hold equal values (and zeros of both signs)
    const draw =
      () => (ties ? Math.round(rng.normal() * 1.5) * (rng.next() < 0.5 ? -1 : 1) : rng.normal());
    const x = tf.tensor3d(Float32Array.from({ length: b * t * c }, draw), [b, t, c]);
    const probe = tf.tensor3d(
      Float32Array.from({ length: b * (t / 2) * c }, () => (rng.next() < 0.2 ? 0 : rng.normal())),
      [b, t / 2, c],
    );
    const what = `[${b},${t},${c}]${ties ? " with ties" : ""}`;
    assertSameBits(
      maxPool3s2(x).dataSync() as Float32Array,
      maxPool3s2Chain(x).dataSync() as Float32Array,
      `${what} value`,
    );
    const grad = (f: (v: tf.Tensor) => tf.Tensor) =>
      tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v), probe)))(x).dataSync() as Float32Array;
    assertSameBits(grad(maxPool3s2), grad(maxPool3s2Chain), `${what} gradient`);
    tf.dispose([x, probe]);
  }
});

Deno.test("wasm max-pool: odd lengths and mismatched gradients are refused", async () => {
  await initBackend("wasm");
  const x = tf.zeros([1, 5, 2]) as tf.Tensor3D;
  assert.throws(() => maxPool3s2(x), /length 5 is odd/);
  assert.throws(() => maxPool3s2Heap(x), /bad input \[1,5,2\]/);
  const y = tf.zeros([1, 4, 2]) as tf.Tensor3D;
  assert.throws(() => maxPool3s2HeapGrad(y, tf.zeros([1, 3, 2])), /gradient \[1,3,2\]/);
  tf.dispose([x, y]);
});
