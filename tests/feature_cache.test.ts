// The shared feature cache of the two trainers: byte budget, lookups by id or metadata, and
// one-line errors for features that do not fit the dataset.
import assert from "node:assert/strict";
import { FeatureCache } from "../datasets/feature_cache.ts";
import { InputError } from "../lib/errors.ts";
import type { Dataset, VideoFeatures, VideoMeta } from "../datasets/types.ts";

/** A dataset of fixed feature arrays that counts its loads per video. */
function countingDataset(feats: Record<string, VideoFeatures>, featureDim: number) {
  const loads: Record<string, number> = {};
  const metas = Object.keys(feats).map((id) =>
    ({ id, split: "train", labels: [] }) as unknown as VideoMeta
  );
  const ds: Dataset = {
    layout: "test",
    root: "/mem",
    classes: ["a"],
    featureDim,
    list: () => metas,
    load: (id) => {
      loads[id] = (loads[id] ?? 0) + 1;
      return Promise.resolve(feats[id]);
    },
    async *videos() {},
  };
  return { ds, loads, metas };
}

const rows = (length: number, dim: number): VideoFeatures => ({
  data: new Float32Array(length * dim).fill(length),
  length,
  dim,
});

Deno.test("feature cache: keeps videos while they fit the byte budget, by id or metadata", async () => {
  // 3 rows x 2 dims x 4 bytes = 24 bytes each; a budget of 50 bytes holds two of them.
  const { ds, loads, metas } = countingDataset({ a: rows(3, 2), b: rows(3, 2), c: rows(3, 2) }, 2);
  const cache = new FeatureCache(ds, 50);
  for (let pass = 0; pass < 3; pass++) {
    for (const m of metas) assert.equal((await cache.get(pass % 2 ? m : m.id)).length, 3);
  }
  assert.deepEqual(loads, { a: 1, b: 1, c: 3 });
  const none = countingDataset({ a: rows(3, 2) }, 2);
  const zero = new FeatureCache(none.ds, 0);
  await zero.get("a");
  await zero.get("a");
  assert.equal(none.loads.a, 2);
});

Deno.test("feature cache: wrong feature dim or no rows is an InputError naming the video", async () => {
  const { ds } = countingDataset({ wide: rows(3, 5), empty: rows(0, 2) }, 2);
  const cache = new FeatureCache(ds, 1 << 20);
  await assert.rejects(cache.get("wide"), (e) => {
    assert.ok(e instanceof InputError);
    assert.match(e.message, /^\/mem: video wide has feature dim 5, expected 2$/);
    return true;
  });
  await assert.rejects(cache.get("empty"), /\/mem: video empty has no features/);
});
