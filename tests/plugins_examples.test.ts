/**
 * The worked plugin examples in plugins/, used the way a user would: loaded by path through
 * the registry, on a tiny npy-folder dataset written here (real .npy files, real training).
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { encodeNpy } from "../datasets/npy.ts";
import { Rng } from "../lib/rng.ts";
import type { Detection, GroundTruth } from "../lib/types.ts";
import type { StageContext } from "../lib/plugin_types.ts";
import { getPlugin, loadPluginModule } from "../registry.ts";
import { evaluateDetections } from "../stages/evaluation.ts";
import { selectProposals } from "../stages/selection.ts";

const PLUGINS = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "plugins");
const CLASSES = ["Jump", "Throw"];
const D = 16, T = 48, FPS = 25, STRIDE = 16;

/**
 * Writes a folder of .npy files: background rows N(0, 1); rows inside an action of class c
 * get +2 on feature dims 4c..4c+3. Each video holds two instances of one class.
 */
async function writeDataset(dir: string, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const videos: Record<string, unknown> = {};
  for (let i = 0; i < 18; i++) {
    const id = `clip_${String(i).padStart(3, "0")}`;
    const c = i % 2;
    const data = new Float32Array(T * D).map(() => rng.normal());
    const anns = [];
    for (const base of [4, 26]) {
      const s = base + rng.int(0, 8), len = 6 + rng.int(0, 6);
      for (let t = s; t < s + len; t++) {
        for (let d = 4 * c; d < 4 * c + 4; d++) data[t * D + d] += 2;
      }
      anns.push({ label: CLASSES[c], segment: [(s * STRIDE) / FPS, ((s + len) * STRIDE) / FPS] });
    }
    await Deno.writeFile(path.join(dir, `${id}.npy`), encodeNpy(data, [T, D]));
    videos[id] = i < 12
      ? { split: "train", labels: [CLASSES[c]], annotations: anns }
      : { split: "test", annotations: anns };
  }
  await Deno.writeTextFile(
    path.join(dir, "labels.json"),
    JSON.stringify({ classes: CLASSES, fps: FPS, stride: STRIDE, videos }),
  );
}

function context(options: Record<string, unknown>): StageContext {
  return {
    options,
    seed: 7,
    log: () => {},
    progress: () => ({ update: () => {}, done: () => {} }),
  };
}

Deno.test("plugins: npy-folder dataset + cas-threshold generator + topk-video filter", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal_plugins_" });
  try {
    await writeDataset(dir, 3);
    const loaded = [
      ...await loadPluginModule(path.join(PLUGINS, "npy_folder_dataset.ts")),
      ...await loadPluginModule(path.join(PLUGINS, "cas_threshold_generator.ts")),
      ...await loadPluginModule(path.join(PLUGINS, "topk_filter.ts")),
    ];
    assert.deepEqual(loaded.map((p) => `${p.kind}:${p.name}`), [
      "dataset:npy-folder",
      "generator:cas-threshold",
      "filter:topk-video",
    ]);

    const dsPlugin = await getPlugin("dataset", "npy-folder");
    assert.equal(await dsPlugin.detect!(dir), true);
    assert.equal(await dsPlugin.detect!(PLUGINS), false);
    const ds = await dsPlugin.open(dir);
    assert.equal(ds.featureDim, D);
    assert.equal(ds.list("train").length, 12);
    assert.equal(ds.list("test").length, 6);
    const m0 = ds.list("train")[0];
    assert.equal(m0.length, T);
    assert.deepEqual(m0.labels, [0]);
    assert.ok(Math.abs(m0.duration - (T * STRIDE) / FPS) < 1e-9);
    const f0 = await ds.load(m0.id);
    assert.equal(f0.data.length, T * D);

    const gen = await getPlugin("generator", "cas-threshold");
    const gt: GroundTruth = {
      videos: ds.list("test").map((m) => m.id),
      instances: ds.list("test").flatMap((m) =>
        m.annotations.map((a) => ({ videoId: m.id, label: a.label, segment: a.segment }))
      ),
    };
    const trained = await gen.generate(ds, context({ epochs: 15, lr: 0.05 }));
    const untrained = await gen.generate(ds, context({ epochs: 0 }));
    const mapTrained = evaluateDetections(gt, trained.test, { tiou: [0.5] }).mAP[0];
    const mapUntrained = evaluateDetections(gt, untrained.test, { tiou: [0.5] }).mAP[0];
    assert.ok(mapTrained > 0.6, `trained test mAP@0.5 ${mapTrained}`);
    assert.ok(mapTrained > mapUntrained + 0.3, `${mapTrained} vs untrained ${mapUntrained}`);
    const loss = trained.curves!.loss;
    assert.ok(loss[loss.length - 1].value < loss[0].value);
    // Training proposals use the video labels only.
    const trainLabels = new Map(ds.list("train").map((m) => [m.id, CLASSES[m.labels[0]]]));
    assert.ok(trained.train.length > 0);
    assert.ok(trained.train.every((d: Detection) => d.label === trainLabels.get(d.videoId)));
    // Same seed, same result.
    const again = await gen.generate(ds, context({ epochs: 15, lr: 0.05 }));
    assert.deepEqual(again.test, trained.test);

    const filter = await getPlugin("filter", "topk-video");
    const kept = await selectProposals(trained.train, filter, { options: { k: 2 } });
    const perVideo = new Map<string, Detection[]>();
    for (const d of kept) perVideo.set(d.videoId, [...(perVideo.get(d.videoId) ?? []), d]);
    assert.ok([...perVideo.values()].every((l) => l.length <= 2));
    for (const [vid, l] of perVideo) {
      const all = trained.train.filter((d) => d.videoId === vid).map((d) => d.score);
      const top2 = all.sort((a, b) => b - a).slice(0, 2);
      assert.deepEqual(l.map((d) => d.score).sort((a, b) => b - a), top2);
    }
    await assert.rejects(
      () => selectProposals(trained.train, filter, { options: { k: "many" } }),
      /filter plugin "topk-video" \(module .*topk_filter\.ts\).*option k must be a number/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plugins: npy-folder reports bad files naming them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal_plugins_" });
  try {
    const ds = (await loadPluginModule(path.join(PLUGINS, "npy_folder_dataset.ts")))[0];
    assert.equal(ds.kind, "dataset");
    if (ds.kind !== "dataset") return;
    await Deno.writeTextFile(
      path.join(dir, "labels.json"),
      JSON.stringify({ classes: ["A"], videos: { v1: { split: "train", labels: ["A"] } } }),
    );
    await Deno.writeTextFile(path.join(dir, "v1.npy"), "not numpy");
    await assert.rejects(() => ds.open(dir), /v1\.npy: not a \.npy file/);
    await Deno.writeFile(path.join(dir, "v1.npy"), encodeNpy(new Float32Array(6), [3, 2]));
    const opened = await ds.open(dir);
    assert.deepEqual((await opened.load("v1")).data, new Float32Array(6));
    await Deno.writeTextFile(
      path.join(dir, "labels.json"),
      JSON.stringify({ classes: ["A"], videos: { v1: { split: "train", labels: ["B"] } } }),
    );
    await assert.rejects(() => ds.open(dir), /video v1: unknown class "B"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
