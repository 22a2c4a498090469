// Run by tests/blas.test.ts under Bun (`bun run tests/blas_bun_probe.ts`): the BLAS kernels
// through bun:ffi against plain wasm. Prints the backend line and one JSON line.
import { tf } from "../deps.ts";
import { describeBackend, initBackend } from "../lib/backend.ts";
import { blasStats, setBlasEnabled } from "../lib/blas.ts";

const info = await initBackend("wasm");
console.log(describeBackend(info));
const a = tf.randomNormal([3, 70, 50]), b = tf.randomNormal([3, 40, 50]);
setBlasEnabled(false);
const w = tf.matMul(a, b, false, true).dataSync();
setBlasEnabled(true);
const c = tf.matMul(a, b, false, true).dataSync();
let diff = 0;
for (let i = 0; i < w.length; i++) diff = Math.max(diff, Math.abs(w[i] - c[i]));
console.log(JSON.stringify({ blas: info.blas != null, diff, sgemmCalls: blasStats.sgemmCalls }));
