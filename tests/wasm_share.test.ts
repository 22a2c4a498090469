// Copy-free Identity / same-type Cast on tfjs-wasm (lib/wasm_share.ts): the values, the
// reference counting (a shared buffer outlives the tensor it came from) and gradients that pass
// through clones and casts.
import assert from "node:assert/strict";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";

await initBackend("wasm");

/** Buffers the wasm backend holds (a shared buffer counts once; tf.memory() counts per tensor). */
const buffers = () => tf.backend().numDataIds();

Deno.test("wasm clone shares the buffer and keeps it alive after the source is disposed", () => {
  const a = tf.tensor1d([1, 2, 3, 4]);
  const before = buffers();
  const b = a.clone();
  assert.equal(buffers(), before, "a clone adds no buffer");
  a.dispose();
  assert.deepEqual([...b.dataSync()], [1, 2, 3, 4]);
  b.dispose();
});

Deno.test("wasm cast: same type shares, another type converts", () => {
  const a = tf.tensor1d([1.5, -2.25, 3]);
  const before = buffers();
  const same = tf.cast(a, "float32");
  assert.equal(buffers(), before);
  const asInt = tf.cast(a, "int32");
  assert.equal(buffers(), before + 1, "an int32 cast is a new buffer");
  a.dispose();
  assert.deepEqual([...same.dataSync()], [1.5, -2.25, 3]);
  assert.deepEqual([...asInt.dataSync()], [1, -2, 3]);
  tf.dispose([same, asInt]);
});

Deno.test("gradients through shared clones and casts match the closed form", () => {
  const start = tf.memory().numTensors;
  const init = tf.tensor1d([0.5, -1, 2]);
  const x = tf.variable(init);
  init.dispose();
  const { value, grads } = tf.variableGrads(() => {
    // mul's gradient casts both inputs; keep and clone go through Identity.
    const y = tf.mul(x, tf.mul(x.clone(), 3)); // 3x²
    return tf.sum(tf.mul(y, tf.cast(x, "float32"))) as tf.Scalar; // Σ 3x³
  }, [x]);
  assert.ok(Math.abs(value.dataSync()[0] - 3 * (0.125 - 1 + 8)) < 1e-6);
  const g = grads[x.name].dataSync();
  [0.5, -1, 2].forEach((v, i) => assert.ok(Math.abs(g[i] - 9 * v * v) < 1e-5));
  tf.dispose([value, grads[x.name], x]);
  assert.equal(tf.memory().numTensors, start, "no tensor leaked");
});
