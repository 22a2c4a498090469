// The real annotation files of the workspace's data folder read through datasets.ts, with
// synthesised features (no real features can be downloaded). Skipped where it is absent.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { assertEquals, assertRejects, tempDir } from "./datasets_helpers.ts";
import { InputError } from "../lib/errors.ts";
import { openDataset } from "../datasets.ts";
import { encodeNpy } from "../datasets/npy.ts";
import { synthesize } from "../datasets/synth.ts";
import { SHARED_DATA, skipWithoutSharedData } from "./shared_data.ts";

const DATA = SHARED_DATA;

Deno.test({
  name: "datasets real: THUMOS'14 ActionFormer and CoLA annotation files",
  ignore: skipWithoutSharedData("THUMOS'14 annotation files"),
  fn: async () => {
    const dir = await tempDir();
    try {
      await synthesize({ out: dir, dim: 2 });
      const af = await openDataset(path.join(dir, "actionformer"), {
        annotations: path.join(DATA, "thumos14_actionformer/thumos14.json"),
      });
      assertEquals(af.list("train").length, 200);
      assertEquals(af.list("test").length, 212);
      assertEquals(af.list("test").reduce((n, m) => n + m.annotations.length, 0), 3358);
      const v4 = af.list().find((m) => m.id === "video_test_0000004")!;
      assertEquals([v4.fps, v4.duration, v4.labels], [30, 33.83, [5, 6]]);
      // CliffDiving videos carry both labels (4 and 7).
      const cliff = af.list().filter((m) => m.labels.includes(4));
      if (!cliff.length || !cliff.every((m) => m.labels.includes(7))) throw new Error("cliff");

      const root = path.join(dir, "cola");
      for (const f of ["split_train.txt", "split_test.txt"]) {
        await fs.copyFile(path.join(DATA, "thumos14_cola", f), path.join(root, f));
      }
      const co = await openDataset(root, { annotations: path.join(DATA, "thumos14_cola/gt.json") });
      assertEquals(co.list("train").length, 200);
      assertEquals(co.list("test").length, 210);
      assertEquals(co.list("test").reduce((n, m) => n + m.annotations.length, 0), 3311);
      assertEquals(co.list("train").reduce((n, m) => n + m.annotations.length, 0), 3007);
      assertEquals(co.featureDim, 2);
      const f = await co.load(co.list("test")[0].id);
      assertEquals(f.dim, 2);
    } finally {
      await fs.rm(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "datasets real: ActivityNet v1.3 BSN annotations",
  ignore: skipWithoutSharedData("ActivityNet BSN annotation files"),
  fn: async () => {
    const dir = await tempDir();
    try {
      const src = path.join(DATA, "anet13_bsn");
      for (const f of ["anet_anno_action.json", "video_info_new.csv"]) {
        await fs.copyFile(path.join(src, f), path.join(dir, f));
      }
      const ann = JSON.parse(await Deno.readTextFile(path.join(src, "anet_anno_action.json")));
      const csv = (await Deno.readTextFile(path.join(src, "video_info_new.csv"))).split("\n");
      const subset = new Map(csv.slice(1).map((l) => l.split(",")).map((c) => [c[0], c[5]]));
      const ids = Object.keys(ann).filter((id) => subset.get(id) !== "testing").slice(0, 20);
      await fs.mkdir(path.join(dir, "features"));
      for (const [i, id] of ids.entries()) {
        // Half named v_<id>.npy, half <id>.npy (both conventions exist).
        const name = i % 2 ? id : id.slice(2);
        await Deno.writeFile(
          path.join(dir, "features", name + ".npy"),
          encodeNpy(new Float32Array(16 * 3).fill(i), [16, 3]),
        );
      }
      await assertRejects(openDataset(dir), InputError, /video v_.* has no feature file: expected/);
      const ds = await openDataset(dir, { skipMissing: true });
      assertEquals(ds.layout, "activitynet");
      assertEquals(ds.classes.length, 200);
      assertEquals(ds.list().length, 20);
      for (const m of ds.list()) {
        assertEquals(m.split, subset.get(m.id) === "training" ? "train" : "test");
        assertEquals(m.length, 16);
        // Uniform grid: 16 rows spread over the duration.
        if (Math.abs(m.grid.stride / m.grid.fps * 16 - m.duration) > 1e-6) throw new Error("grid");
      }
      const f = await ds.load(ids[3]);
      assertEquals([f.length, f.dim, f.data[0]], [16, 3, 3]);
    } finally {
      await fs.rm(dir, { recursive: true });
    }
  },
});
