/**
 * tfjs-webgpu matMul throughput alone (no training code), to tell the kernel's speed from the
 * toolkit's: `deno run -A bench/gpu_matmul.ts`. Part of the GPU check (bench/gpu_check.sh).
 *
 * @module
 */
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";

await initBackend("webgpu");
for (const [m, k, n] of [[2048, 2048, 2048], [4096, 4096, 4096], [12000, 6144, 2048]]) {
  const a = tf.randomUniform([m, k]);
  const b = tf.randomUniform([k, n]);
  await tf.matMul(a, b).data();
  const reps = 5;
  // One readback after all reps: the queue, not the readback, is timed.
  const t0 = performance.now();
  let c = tf.matMul(a, b);
  for (let r = 1; r < reps; r++) {
    c.dispose();
    c = tf.matMul(a, b);
  }
  await c.data();
  const s = (performance.now() - t0) / 1000 / reps;
  console.log(
    `matMul ${m}x${k}x${n}: ${(s * 1e3).toFixed(1)} ms, ${
      (2 * m * k * n / s / 1e9).toFixed(0)
    } GFLOP/s`,
  );
  tf.dispose([a, b, c]);
}
// Kernel dispatch overhead: many tiny ops, one readback.
const x = tf.ones([64]);
let y = x.clone();
const t0 = performance.now();
for (let i = 0; i < 2000; i++) {
  const z = tf.add(y, x);
  y.dispose();
  y = z;
}
await y.data();
console.log(`tiny op: ${((performance.now() - t0) / 2000 * 1e3).toFixed(0)} us per dispatch`);
