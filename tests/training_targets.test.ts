// The student's training targets are clipped to the feature grid (segments past a video's
// end, as real annotation files have, are dropped when nothing is left), and the EMA
// snapshot schedule of each preset.
import assert from "node:assert/strict";
import { tinyDataset } from "./training_fixtures.ts";
import { gridExtent, gridToSeconds, secondsToGrid } from "../datasets/time.ts";
import { pseudoLabelsToGrid, snapshotEpochs } from "../stages/training/train.ts";
import { DEFAULT, PAPER } from "../stages/training/presets.ts";

Deno.test("student targets: clipped to the feature grid, empty ones dropped", () => {
  const ds = tinyDataset({ nTrain: 2, nTest: 1 });
  const m = ds.list("train")[0];
  const [lo, hi] = gridExtent(m.grid, m.length);
  assert.deepEqual([lo, hi], [0, m.length - 1], "centred grid: row centres 0..L-1");
  const end = gridToSeconds(m.grid, hi);
  const label = ds.classes[1];
  const det = (s: number, e: number) => ({
    videoId: m.id,
    label,
    score: 1,
    segment: [s, e] as [number, number],
  });
  const logs: string[] = [];
  const out = pseudoLabelsToGrid(ds, [
    det(1, 2), // inside: unchanged
    det(0, 1), // starts before row 0's centre: clipped to 0
    det(end - 1, end + 30), // runs past the last row: clipped to L-1
    det(end + 5, end + 9), // starts after the video ends: dropped
    det(3, 3), // zero length: dropped
  ], (l) => logs.push(l)).get(m.id)!;
  assert.equal(out.length, 3);
  assert.deepEqual(out[0], { a: secondsToGrid(m.grid, 1), b: secondsToGrid(m.grid, 2), c: 1 });
  assert.deepEqual(out[1], { a: 0, b: secondsToGrid(m.grid, 1), c: 1 });
  assert.deepEqual(out[2], { a: secondsToGrid(m.grid, end - 1), b: hi, c: 1 });
  assert.ok(out.every((g) => g.a >= lo && g.b <= hi && g.b > g.a));
  assert.deepEqual(logs, [
    "pseudo labels: clipped 2 label(s) to their video's features, dropped 2 left empty",
  ]);
  // Snippet grids (CoLA: positions are snippet boundaries) extend to L.
  assert.deepEqual(gridExtent({ fps: 25, stride: 16, window: 16, offset: 0 }, 10), [0, 10]);
});

Deno.test("student snapshots: every 10 epochs of the paper's teacher stage, spread over the default's", () => {
  assert.deepEqual(snapshotEpochs(PAPER), [71, 81, 91, 101]);
  assert.equal(PAPER.epochs - PAPER.switchEpoch, 40);
  assert.deepEqual(snapshotEpochs({ ...DEFAULT, snapshots: 2 }), [10, 11]);
  assert.deepEqual(snapshotEpochs({ ...DEFAULT, ema: false, snapshots: 2 }), [DEFAULT.epochs]);
  assert.deepEqual(snapshotEpochs(DEFAULT), [DEFAULT.epochs]);
  assert.deepEqual(snapshotEpochs({ epochs: 3, switchEpoch: 2, ema: true, snapshots: 4 }), [3]);
});
