// Run by tests/bun.test.ts under Bun (`bun run tests/pool_bun_probe.ts`): a detection pass
// with one thread and with two (one Bun worker). Prints one JSON line.
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { setWorkers } from "../lib/workers.ts";
import { initValues, paramSpecs } from "../stages/training/model.ts";
import { poolStats } from "../stages/training/pool.ts";
import { detectSplit } from "../stages/training/infer.ts";
import { TINY_STUDENT, tinyDataset } from "./training_fixtures.ts";

await initBackend("wasm");
const ds = tinyDataset({ nTrain: 2, nTest: 12, dim: 8 });
const specs = paramSpecs(TINY_STUDENT, 8, ds.classes.length);
const vals = initValues(specs, new Rng(9));
const params = Object.fromEntries(
  specs.map((p) => [p.name, tf.tensor(vals.get(p.name)!, p.shape)]),
);
setWorkers(1);
const one = await detectSplit(ds, params, TINY_STUDENT);
setWorkers(2);
const two = await detectSplit(ds, params, TINY_STUDENT);
console.log(JSON.stringify({
  detections: one.length,
  identical: JSON.stringify(one) === JSON.stringify(two),
  workerVideos: poolStats.detectJobs,
}));
