import assert from "node:assert/strict";
import type { Detection } from "../lib/types.ts";
import { unionLabelIndices } from "../stages/training/unions.ts";

const lab = (videoId: string, label: string, a: number, b: number): Detection => ({
  videoId,
  label,
  score: 0.5,
  segment: [a, b],
});

Deno.test("union labels: a label holding two disjoint shorter labels of its class is a union", () => {
  const labels = [
    lab("v", "A", 10, 30), // 0: holds 1 and 2 -> union
    lab("v", "A", 11, 15), // 1
    lab("v", "A", 20, 29), // 2
    lab("v", "A", 12, 14), // 3: inside 1 (not disjoint from it: 1 still counts once)
    lab("v", "B", 10, 30), // 4: class B holds only B labels: none
    lab("v", "A", 40, 50), // 5: holds two overlapping labels only
    lab("v", "A", 41, 46), // 6
    lab("v", "A", 44, 49), // 7
    lab("w", "A", 12, 28), // 8: other video: 1 and 2 do not count
    lab("v", "A", 30, 40), // 9: holds 10 and 11 (touching) -> union
    lab("v", "A", 29.9995, 35), // 10: in 9 within the 1 ms tolerance
    lab("v", "A", 35, 40.0005), // 11: likewise
  ];
  assert.deepEqual([...unionLabelIndices(labels)].sort((a, b) => a - b), [0, 9]);
  // A lone label, or one whose inner labels are as long as itself, is no union.
  assert.equal(unionLabelIndices([lab("v", "A", 0, 5)]).size, 0);
  assert.equal(
    unionLabelIndices([lab("v", "A", 0, 5), lab("v", "A", 0, 5), lab("v", "A", 0, 5)]).size,
    0,
  );
});
