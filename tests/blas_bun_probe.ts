// Run by tests/blas.test.ts under Bun (`bun run tests/blas_bun_probe.ts`): the BLAS kernels
// through bun:ffi against plain wasm. Prints the backend line and one JSON line.
import { tf } from "../deps.ts";
import { describeBackend, initBackend } from "../lib/backend.ts";
import { blasStats, setBlasEnabled } from "../lib/blas.ts";
import { convRows } from "../lib/blas_conv.ts";

const info = await initBackend("wasm");
console.log(describeBackend(info));
const a = tf.randomNormal([3, 70, 50]), b = tf.randomNormal([3, 40, 50]);
setBlasEnabled(false);
const w = tf.matMul(a, b, false, true).dataSync();
setBlasEnabled(true);
const c = tf.matMul(a, b, false, true).dataSync();
let diff = 0;
const track = (p: ArrayLike<number>, q: ArrayLike<number>) => {
  for (let i = 0; i < p.length; i++) diff = Math.max(diff, Math.abs(p[i] - q[i]));
};
track(w, c);
// the column sums and the shifted-product conv (lib/blas_conv.ts) against plain wasm
const x = tf.randomNormal([2, 9, 5]), wc = tf.randomNormal([15, 4]);
setBlasEnabled(false);
const sw = tf.sum(a, [0, 1]).dataSync();
const xp = tf.pad(x, [[0, 0], [1, 1], [0, 0]]) as tf.Tensor3D;
const cols = tf.reshape(tf.concat([0, 1, 2].map((j) => tf.slice(xp, [0, j, 0], [2, 9, 5])), 2), [
  18,
  15,
]);
const cw = tf.matMul(cols as tf.Tensor2D, wc as tf.Tensor2D).dataSync();
setBlasEnabled(true);
track(sw, tf.sum(a, [0, 1]).dataSync());
track(cw, convRows(xp, wc as tf.Tensor2D, 3).dataSync());
console.log(JSON.stringify({ blas: info.blas != null, diff, sgemmCalls: blasStats.sgemmCalls }));
