/**
 * The four example modules of docs/PLUGINS.md are complete: each is written to a temp folder
 * outside the project exactly as printed (types imported from a URL that does not exist:
 * type-only imports are erased), loaded with loadPluginModule, and run end to end
 * (dataset -> generator -> prior filter -> student) on a tiny dataset with a clear signal.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../lib/rng.ts";
import type { GroundTruth } from "../lib/types.ts";
import type { StageContext } from "../lib/plugin_types.ts";
import { getPlugin, loadPluginModule } from "../registry.ts";
import { evaluateDetections } from "../stages/evaluation.ts";
import { selectProposals } from "../stages/selection.ts";

const DOC = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "docs", "PLUGINS.md");

function ctx(options: Record<string, unknown> = {}): StageContext {
  return { options, seed: 1, log: () => {}, progress: () => ({ update() {}, done() {} }) };
}

Deno.test("plugins: the docs/PLUGINS.md examples load and run end to end", async () => {
  const md = await Deno.readTextFile(DOC);
  const blocks = [...md.matchAll(/```ts\n(\/\/ (my_\w+\.ts):[\s\S]*?)```/g)];
  assert.deepEqual(blocks.map((b) => b[2]), [
    "my_filter.ts",
    "my_generator.ts",
    "my_dataset.ts",
    "my_student.ts",
  ]);
  const dir = await Deno.makeTempDir({ prefix: "fustal_docplugins_" });
  try {
    for (const b of blocks) {
      await Deno.writeTextFile(path.join(dir, b[2]), b[1]);
      const loaded = await loadPluginModule(path.join(dir, b[2]));
      assert.equal(loaded.length, 1);
    }
    // Tiny dataset: rows inside an action of class c get +3 on dims 3c..3c+2.
    const rng = new Rng(11);
    const classes = ["A", "B"], D = 8, T = 40;
    const videos: Record<string, unknown> = {};
    const gt: GroundTruth = { videos: [], instances: [] };
    for (let i = 0; i < 16; i++) {
      const c = i % 2, s = 5 + rng.int(0, 20), len = 6 + rng.int(0, 6);
      const rows = Array.from(
        { length: T },
        (_, t) =>
          Array.from(
            { length: D },
            (_, d) =>
              rng.normal() * 0.5 + (t >= s && t < s + len && d >= 3 * c && d < 3 * c + 3 ? 3 : 0),
          ),
      );
      const id = `v${i}`;
      const split = i < 10 ? "train" : "test";
      videos[id] = { split, labels: [classes[c]], features: rows };
      if (split === "test") {
        gt.videos.push(id);
        gt.instances.push({
          videoId: id,
          label: classes[c],
          segment: [(s * 16) / 25, ((s + len) * 16) / 25],
        });
      }
    }
    const file = path.join(dir, "data.json");
    await Deno.writeTextFile(file, JSON.stringify({ classes, fps: 25, stride: 16, videos }));

    const ds = await (await getPlugin("dataset", "one-json")).open(file);
    assert.equal(ds.list("train").length, 10);
    const gen = await (await getPlugin("generator", "feature-norm")).generate(ds, ctx({ k: 0.5 }));
    assert.ok(gen.train.length > 0 && gen.test.length > 0);
    const genMap = evaluateDetections(gt, gen.test, { tiou: [0.5] }).mAP[0];
    const longest = await selectProposals(gen.train, await getPlugin("filter", "longest"));
    assert.ok(longest.length <= 10);
    const pseudo = await selectProposals(gen.train, await getPlugin("filter", "prior"), {
      options: { gamma: 0, eta: 0 },
    });
    const student = await (await getPlugin("student", "centroid")).train(ds, pseudo, ctx());
    const studentMap = evaluateDetections(gt, student.test, { tiou: [0.5] }).mAP[0];
    // The generator cannot tell classes apart on test videos (it proposes every class); the
    // student learns class centroids from the pseudo labels and can.
    assert.ok(studentMap > 0.5, `student mAP@0.5 ${studentMap}`);
    assert.ok(studentMap > genMap, `student ${studentMap} vs generator ${genMap}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
