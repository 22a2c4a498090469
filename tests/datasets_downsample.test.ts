// The coarser feature view of the student (`downsample`): averaged rows, a grid whose positions
// map to the same seconds as the rows they average, and a dataset view that applies both.
import assert from "node:assert/strict";
import {
  averageRows,
  downsampleDataset,
  downsampledLength,
  downsampleGrid,
} from "../datasets/downsample.ts";
import { actionFormerGrid, COLA_GRID, gridToSeconds, secondsToGrid } from "../datasets/time.ts";
import { tinyDataset } from "./training_fixtures.ts";

Deno.test("downsample: rows are averaged in groups, the short last group over its own rows", () => {
  const f = { data: Float32Array.from([1, 10, 3, 30, 5, 50, 7, 70, 9, 90]), length: 5, dim: 2 };
  const d = averageRows(f, 2);
  assert.equal(d.length, 3);
  assert.deepEqual([...d.data], [2, 20, 6, 60, 9, 90]);
  assert.equal(averageRows(f, 1), f);
  assert.equal(downsampledLength(9, 4), 3);
  assert.equal(downsampledLength(-1, 4), -1); // length not known yet stays unknown
});

Deno.test("downsample: a coarse row maps to the mean time of the rows it averages", () => {
  for (const grid of [actionFormerGrid(30), actionFormerGrid(25), COLA_GRID]) {
    for (const s of [2, 3, 4]) {
      const g = downsampleGrid(grid, s);
      for (const r of [0, 1, 7]) {
        let mean = 0;
        for (let i = r * s; i < (r + 1) * s; i++) mean += gridToSeconds(grid, i) / s;
        if (grid.offset === 0) {
          // Snippet grid: positions are boundaries, so coarse boundary r is fine boundary r*s.
          assert.ok(Math.abs(gridToSeconds(g, r) - gridToSeconds(grid, r * s)) < 1e-9);
        } else {
          assert.ok(Math.abs(gridToSeconds(g, r) - mean) < 1e-9, `${s} ${r}`);
        }
        // The two conversions stay inverse to each other on the coarse grid.
        assert.ok(Math.abs(secondsToGrid(g, gridToSeconds(g, r + 0.3)) - (r + 0.3)) < 1e-9);
      }
    }
  }
  assert.equal(downsampleGrid(COLA_GRID, 1), COLA_GRID);
});

Deno.test("downsample: the dataset view shortens metadata and features alike", async () => {
  const ds = tinyDataset({ nTrain: 2, nTest: 1 });
  const coarse = downsampleDataset(ds, 4);
  const [m] = ds.list("train");
  const [c] = coarse.list("train");
  assert.equal(c.length, Math.ceil(m.length / 4));
  assert.equal(c.grid.stride, m.grid.stride * 4);
  assert.deepEqual(c.annotations, m.annotations); // seconds do not change
  const f = await coarse.load(m.id);
  assert.equal(f.length, c.length);
  const raw = await ds.load(m.id);
  assert.deepEqual(f, averageRows(raw, 4));
  let n = 0;
  for await (const { meta, features } of coarse.videos("test")) {
    assert.equal(features.length, meta.length);
    n++;
  }
  assert.equal(n, 1);
  assert.equal(downsampleDataset(ds, 1), ds);
});
