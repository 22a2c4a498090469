/**
 * Child process of `webgpu_upload.test.ts`: uploads tensors on the WebGPU backend through
 * `lib/webgpu_upload.ts` and prints what came back as JSON. Exits 3 without an adapter.
 */
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";

if (!(await navigator.gpu?.requestAdapter())) Deno.exit(3);
await initBackend("webgpu");
const proto = Object.getPrototypeOf(tf.backend()) as Record<symbol, unknown>;
const patched = proto[Symbol.for("fustal.webgpuQueueUploads")] === true;

// Round trips of each dtype, an odd length among them.
const f = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i) * 1e3);
const i32 = Int32Array.from({ length: 37 }, (_, i) => (i * 7919) % 1000 - 500);
const bools = Uint8Array.from({ length: 13 }, (_, i) => i % 3 === 0 ? 1 : 0);
const ft = tf.tensor1d(f);
const it = tf.tensor1d(i32, "int32");
const bt = tf.tensor1d(bools, "bool");
const roundTrip = {
  float32: Array.from(await ft.data()),
  int32: Array.from(await it.data()),
  bool: Array.from(await bt.data()),
  sumInt: (await tf.sum(it).data())[0],
  anyTrue: (await tf.cast(tf.any(bt), "int32").data())[0],
};

// Buffers from the pool: each tensor is read by a recorded (not yet submitted) kernel, then
// disposed, and the next upload of the same size may take its buffer. Every sum must still see
// its own values.
const sums: tf.Tensor[] = [];
for (let k = 0; k < 20; k++) {
  const a = tf.tensor2d(new Float32Array(64 * 64).fill(k + 1), [64, 64]);
  sums.push(tf.sum(tf.mul(a, 2)));
  a.dispose();
}
const pooled = await Promise.all(sums.map(async (s) => (await s.data())[0]));
console.log(
  JSON.stringify({
    patched,
    expected: { f: Array.from(f), i32: Array.from(i32) },
    roundTrip,
    pooled,
  }),
);
