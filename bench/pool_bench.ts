/**
 * Worker-pool benchmark (`stages/training/pool.ts`): in one run, the same student epoch and the
 * same detection pass over the test videos with 1 thread (no workers) and with N threads (the
 * main thread + N-1 workers), on the synthetic THUMOS'14-shaped default set (128-d), at the
 * default student preset with `microBatch` set to half the batch (the presets keep 0: one
 * micro-batch, which the pool leaves on the main thread). Prints seconds, the ratio, and
 * whether the weights and detections are identical (they must be).
 *
 * With `--teacher` it measures the EMA teacher's relabel pass instead: a two-epoch run whose
 * second epoch learns from the EMA teacher, with 1 and N threads; it prints the teacher's
 * seconds of that epoch (the `teacher X s` of the epoch log line), the epoch's seconds, and
 * whether the final weights and EMA weights are identical (they must be).
 *
 * ```
 * deno run -A bench/pool_bench.ts [--root DIR] [--workers N] [--micro-batch M] [--teacher] [--json]
 * ```
 *
 * @module
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { benchStudentRoot } from "./training_bench.ts";
import { tf } from "../deps.ts";
import { describeBackend, initBackend } from "../lib/backend.ts";
import { setWorkers } from "../lib/workers.ts";
import type { Detection } from "../lib/types.ts";
import { openDataset } from "../datasets.ts";
import { loadCheckpoint } from "../stages/training/checkpoint.ts";
import { DEFAULT, type StudentConfig } from "../stages/training/presets.ts";
import { poolStats } from "../stages/training/pool.ts";
import {
  CHECKPOINT_FILE,
  detectSplit,
  loadStudent,
  trainStudent,
} from "../stages/training/train.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    root: { type: "string" },
    workers: { type: "string", default: "2" },
    "micro-batch": { type: "string" },
    teacher: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const N = Number(values.workers);
/** The 1-minute load average (Linux), to show how busy the machine was. */
async function load(): Promise<number | null> {
  try {
    return Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
  } catch {
    return null;
  }
}
const loadBefore = await load();
/** CPU seconds of this process so far, every thread (Linux), or NaN. */
async function cpuSeconds(): Promise<number> {
  try {
    const f = (await Deno.readTextFile("/proc/self/stat")).split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks of 1/100 s
  } catch {
    return NaN;
  }
}
const info = await initBackend("wasm");
console.error(describeBackend(info));

const ds = await openDataset(await benchStudentRoot(values.root));
const labels: Detection[] = ds.list("train").flatMap((m) =>
  m.annotations.map((a) => ({ videoId: m.id, label: a.label, score: 1, segment: a.segment }))
);
const micro = values["micro-batch"] ? Number(values["micro-batch"]) : DEFAULT.batch / 2;
const cfg: StudentConfig = { ...DEFAULT, microBatch: micro, epochs: 1, switchEpoch: 1 };
const dir = await Deno.makeTempDir({ prefix: "fustal-pool-bench-" });

/**
 * The machine's ceiling now: two equal CPU-bound JS loops (no tfjs) on the main thread one after
 * the other vs on the main thread and a worker at once. On a free 2-core machine this is ~2x; a
 * loaded machine (the kernel shares the CPU per session) gives this process less.
 */
async function spinCeiling(): Promise<number> {
  const n = 2e8;
  const body = `let x = 0; for (let i = 0; i < n; i++) x += Math.sqrt(i); return x;`;
  const spin = new Function("n", body) as (n: number) => number;
  const code = `const spin = new Function("n", ${JSON.stringify(body)});
self.onmessage = (e) => self.postMessage(spin(e.data));`;
  const w = new Worker(`data:application/javascript,${encodeURIComponent(code)}`, {
    type: "module",
  });
  const ask = (k: number) =>
    new Promise((r) => {
      w.onmessage = r;
      w.postMessage(k);
    });
  await ask(1000);
  let t = performance.now();
  spin(n);
  spin(n);
  const one = performance.now() - t;
  t = performance.now();
  const p = ask(n);
  spin(n);
  await p;
  const two = performance.now() - t;
  w.terminate();
  return one / two;
}

/** One epoch with `n` threads (`micro` items per micro-batch): seconds, the weights written. */
async function epoch(n: number, config = cfg) {
  setWorkers(n);
  const outDir = path.join(dir, `w${n}-m${config.microBatch}`);
  const c = await cpuSeconds();
  const t = performance.now();
  await trainStudent(ds, labels, { config, seed: 0, outDir, evalTest: false });
  const seconds = (performance.now() - t) / 1000;
  const cpu = (await cpuSeconds()) - c;
  const ck = await loadCheckpoint(path.join(outDir, CHECKPOINT_FILE));
  return { seconds, cpu, model: ck.groups.model, file: path.join(outDir, CHECKPOINT_FILE) };
}

/** One detection pass over the test videos with `n` threads. */
async function detect(n: number, params: Record<string, tf.Tensor>) {
  setWorkers(n);
  const c = await cpuSeconds();
  const t = performance.now();
  const dets = await detectSplit(ds, params, cfg);
  return { seconds: (performance.now() - t) / 1000, cpu: (await cpuSeconds()) - c, dets };
}

/**
 * A two-epoch run (the second on the EMA teacher's labels) with `n` threads: the teacher's and
 * the teacher epoch's seconds from its log line, and the final weights and EMA weights.
 */
async function teacherRun(n: number) {
  setWorkers(n);
  const config: StudentConfig = { ...cfg, epochs: 2, switchEpoch: 1, snapshots: 0 };
  const outDir = path.join(dir, `teacher-w${n}`);
  const lines: string[] = [];
  await trainStudent(ds, labels, {
    config,
    seed: 0,
    outDir,
    evalTest: false,
    evalBeforeSwitch: false,
    log: (l) => lines.push(l),
  });
  const line = lines.find((l) => l.startsWith("epoch 1 (EMA teacher)"));
  const m = line?.match(/ ([\d.]+) s \(host [\d.]+, teacher ([\d.]+), step ([\d.]+)\)/);
  if (!m) throw new Error(`no teacher epoch line in the log: ${lines.join(" | ")}`);
  const ck = await loadCheckpoint(path.join(outDir, CHECKPOINT_FILE));
  return { epoch: Number(m[1]), teacher: Number(m[2]), step: Number(m[3]), groups: ck.groups };
}

/** Whether two checkpoints' groups `names` hold the same values bit for bit. */
function sameGroups(
  a: Awaited<ReturnType<typeof teacherRun>>["groups"],
  b: typeof a,
  names: string[],
): boolean {
  return names.every((g) =>
    Object.keys(a[g]).every((k) => a[g][k].data.every((v, i) => Object.is(v, b[g][k].data[i])))
  );
}

if (values.teacher) {
  try {
    const ceilingBefore = await spinCeiling();
    const t1 = await teacherRun(1);
    const jobs = poolStats.teacherJobs;
    const tN = await teacherRun(N);
    const row = {
      /** Speed-up of two independent CPU loops on 2 threads, before and after (the ceiling). */
      spinCeiling: [ceilingBefore, await spinCeiling()],
      backend: describeBackend(info),
      loadAverage: [loadBefore, await load()],
      workers: N,
      microBatch: micro,
      teacherSeconds1: t1.teacher,
      teacherSecondsN: tN.teacher,
      teacherSpeedup: t1.teacher / tN.teacher,
      epochSeconds1: t1.epoch,
      epochSecondsN: tN.epoch,
      workerChunks: poolStats.teacherJobs - jobs,
      identicalWeightsAndEma: sameGroups(t1.groups, tN.groups, ["model", "ema"]),
    };
    if (values.json) console.log(JSON.stringify(row));
    else {
      const f = (x: number) => x.toFixed(1);
      console.log(`1-min load average before / after: ${row.loadAverage.join(" / ")}`);
      console.log(
        `ceiling (two CPU loops, 1 vs 2 threads) before / after: ` +
          row.spinCeiling.map((x) => `${x.toFixed(2)}x`).join(" / "),
      );
      console.log(`| teacher epoch | 1 thread | ${N} threads | speedup | identical weights, EMA |`);
      console.log(`| --- | --- | --- | --- | --- |`);
      console.log(
        `| teacher s (${row.workerChunks} chunks on workers) | ${f(t1.teacher)} | ` +
          `${f(tN.teacher)} | ${row.teacherSpeedup.toFixed(2)}x | ` +
          `${row.identicalWeightsAndEma ? "yes" : "NO"} |`,
      );
      console.log(`| whole epoch s | ${f(t1.epoch)} | ${f(tN.epoch)} | - | - |`);
    }
  } finally {
    setWorkers(undefined);
    await Deno.remove(dir, { recursive: true });
  }
  Deno.exit(0);
}

try {
  const ceilingBefore = await spinCeiling();
  const e1 = await epoch(1);
  const jobs = poolStats.gradJobs;
  const eN = await epoch(N);
  // The presets' numerics (one micro-batch per step: the main thread alone), for reference.
  const e0 = await epoch(1, { ...cfg, microBatch: 0 });
  const sameWeights = Object.keys(e1.model).every((k) =>
    e1.model[k].data.every((v, i) => Object.is(v, eN.model[k].data[i]))
  );
  const { params } = await loadStudent(e1.file, "raw");
  const d1 = await detect(1, params);
  const dets = poolStats.detectJobs;
  const dN = await detect(N, params);
  tf.dispose(Object.values(params));
  const sameDets = JSON.stringify(d1.dets) === JSON.stringify(dN.dets);
  const steps = Math.floor(ds.list("train").length / cfg.batch);
  const ceilingAfter = await spinCeiling();
  const row = {
    /** Speed-up of two independent CPU loops on 2 threads, before and after (the ceiling). */
    spinCeiling: [ceilingBefore, ceilingAfter],
    backend: describeBackend(info),
    loadAverage: [loadBefore, await load()],
    cores: navigator.hardwareConcurrency,
    workers: N,
    microBatch: micro,
    epoch: {
      steps,
      seconds1: e1.seconds,
      secondsN: eN.seconds,
      speedup: e1.seconds / eN.seconds,
      cpuSeconds1: e1.cpu,
      cpuSecondsN: eN.cpu,
      workerMicroBatches: poolStats.gradJobs - jobs,
      identicalWeights: sameWeights,
      secondsWholeBatch: e0.seconds,
    },
    detection: {
      videos: ds.list("test").length,
      seconds1: d1.seconds,
      secondsN: dN.seconds,
      speedup: d1.seconds / dN.seconds,
      cpuSeconds1: d1.cpu,
      cpuSecondsN: dN.cpu,
      workerVideos: poolStats.detectJobs - dets,
      identicalDetections: sameDets,
    },
  };
  if (values.json) console.log(JSON.stringify(row));
  else {
    const f = (x: number) => x.toFixed(2);
    console.log(`1-min load average before / after: ${row.loadAverage.join(" / ")}`);
    console.log(
      `ceiling (two CPU loops, 1 vs 2 threads) before / after: ` +
        row.spinCeiling.map((x) => `${f(x)}x`).join(" / "),
    );
    console.log(
      `| work | 1 thread (s) | ${N} threads (s) | speedup | CPU s, 1 / ${N} threads | identical |`,
    );
    console.log(`| --- | --- | --- | --- | --- | --- |`);
    console.log(
      `| student epoch (${steps} steps, batch ${cfg.batch}, microBatch ${micro}; ` +
        `${row.epoch.workerMicroBatches} micro-batches on workers) | ${f(e1.seconds)} | ` +
        `${f(eN.seconds)} | ${f(row.epoch.speedup)}x | ${f(e1.cpu)} / ${f(eN.cpu)} | ` +
        `${sameWeights ? "yes" : "NO"} |`,
    );
    console.log(
      `| reference: the same epoch with microBatch 0 (the presets' one pass per step) | ` +
        `${f(e0.seconds)} | - | - | ${f(e0.cpu)} | - |`,
    );
    console.log(
      `| detection pass (${row.detection.videos} test videos; ${row.detection.workerVideos} ` +
        `on workers) | ${f(d1.seconds)} | ${f(dN.seconds)} | ${f(row.detection.speedup)}x | ` +
        `${f(d1.cpu)} / ${f(dN.cpu)} | ${sameDets ? "yes" : "NO"} |`,
    );
  }
} finally {
  setWorkers(undefined);
  await Deno.remove(dir, { recursive: true });
}
