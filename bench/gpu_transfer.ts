/**
 * Host <-> GPU transfer rates in Deno's WebGPU, through tfjs-webgpu and through the raw API:
 * `deno run -A bench/gpu_transfer.ts [MB]`. Part of the GPU check (bench/gpu_check.sh).
 *
 * @module
 */
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";

const mb = Number(Deno.args[0] ?? 100);
const n = (mb * 2 ** 20) / 4;
const host = new Float32Array(n).fill(1);
await initBackend("webgpu");
const rate = (t: number) => `${(mb / ((performance.now() - t) / 1000)).toFixed(0)} MB/s`;
for (let rep = 0; rep < 2; rep++) {
  let t = performance.now();
  const a = tf.tensor1d(host);
  const s = tf.sum(a);
  await s.data();
  console.log(`tfjs upload (tensor1d + sum + read 1 value): ${rate(t)}`);
  t = performance.now();
  const b = tf.add(a, 1);
  await b.data();
  console.log(`tfjs add + readback: ${rate(t)}`);
  tf.dispose([a, s, b]);
}
const adapter = await navigator.gpu.requestAdapter();
const device = await adapter!.requestDevice();
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
for (let rep = 0; rep < 2; rep++) {
  const buf = device.createBuffer({ size: n * 4, usage });
  let t = performance.now();
  device.queue.writeBuffer(buf, 0, host);
  await device.queue.onSubmittedWorkDone();
  console.log(`raw writeBuffer: ${rate(t)}`);
  t = performance.now();
  const st = device.createBuffer({
    size: n * 4,
    usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC,
    mappedAtCreation: true,
  });
  new Float32Array(st.getMappedRange()).set(host);
  st.unmap();
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(st, 0, buf, 0, n * 4);
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  console.log(`raw mappedAtCreation staging + copy: ${rate(t)}`);
  t = performance.now();
  const rd = device.createBuffer({
    size: n * 4,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const e2 = device.createCommandEncoder();
  e2.copyBufferToBuffer(buf, 0, rd, 0, n * 4);
  device.queue.submit([e2.finish()]);
  await rd.mapAsync(GPUMapMode.READ);
  const back = new Float32Array(rd.getMappedRange().slice(0));
  rd.unmap();
  console.log(`raw readback (mapAsync + copy out): ${rate(t)} (${back[n - 1]})`);
  [buf, st, rd].forEach((x) => x.destroy());
}
