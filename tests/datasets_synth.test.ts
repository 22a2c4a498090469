// synth writes small datasets in every format; inspect reads them back with equal checksums.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { assertEquals, tempDir } from "./datasets_helpers.ts";
import { run as synthRun } from "../cli/synth.ts";
import { inspectDataset } from "../cli/inspect.ts";
import { gridToSeconds, openDataset } from "../datasets.ts";
import { COLA_EXCLUDED, synthesize, thumos14Geometry } from "../datasets/synth.ts";
import { THUMOS14_CLASSES } from "../datasets/common.ts";
import { SHARED_DATA, skipWithoutSharedData } from "./shared_data.ts";

Deno.test("datasets synth: every format reads back through inspect with one checksum", async () => {
  const dir = await tempDir();
  try {
    const sums: Record<string, number[]> = { actionformer: [], cola: [] };
    for (const format of ["npy", "npy.gz", "npz", "zip"]) {
      const out = path.join(dir, format);
      assertEquals(
        await synthRun(["--out", out, "--videos", "12", "--dim", "8", "--format", format]),
        0,
      );
      for (const layout of ["actionformer", "cola"] as const) {
        const s = await inspectDataset(out, { layout });
        assertEquals(s.layout, layout);
        assertEquals(s.videos, { train: 6, test: 6 });
        assertEquals(s.featureDim, 8);
        assertEquals(s.classes, 20);
        if (!(s.snippets.min > 0 && s.snippets.min <= s.snippets.median)) {
          throw new Error("snippets");
        }
        if (!(s.checksum > 0)) throw new Error(`checksum ${s.checksum}`);
        sums[layout].push(s.checksum);
      }
      if (format === "zip") {
        // One archive per layout, no feature folder.
        await fs.stat(path.join(out, "actionformer", "i3d_features.zip"));
        await fs.stat(path.join(out, "cola", "features.zip"));
      }
    }
    for (const l of ["actionformer", "cola"]) {
      if (new Set(sums[l]).size !== 1) throw new Error(`${l} checksums differ: ${sums[l]}`);
    }
  } finally {
    await fs.rm(dir, { recursive: true });
  }
});

Deno.test("datasets synth: both layouts share videos, labels and timing; deterministic", async () => {
  const dir = await tempDir();
  try {
    await synthesize({ out: path.join(dir, "a"), videos: 6, dim: 4, seed: 3 });
    await synthesize({ out: path.join(dir, "b"), videos: 6, dim: 4, seed: 3 });
    await synthesize({ out: path.join(dir, "c"), videos: 6, dim: 4, seed: 4 });
    const af = await openDataset(path.join(dir, "a"), { layout: "actionformer" });
    const co = await openDataset(path.join(dir, "a"), { layout: "cola" });
    assertEquals(af.list().map((m) => m.id).sort(), co.list().map((m) => m.id).sort());
    for (const m of af.list()) {
      const c = co.list().find((x) => x.id === m.id)!;
      assertEquals(c.labels, m.labels);
      assertEquals(c.split, m.split);
      // Same video, two grids covering the same time (the annotated duration, or past the
      // last segment where the real file's duration is short).
      const afSpan = gridToSeconds(m.grid, m.length);
      if (Math.abs(c.duration - afSpan) > 1) throw new Error(`${m.id}: ${c.duration} vs ${afSpan}`);
      if (afSpan < m.duration - 1) throw new Error(`${m.id}: features shorter than the video`);
      const ratio = (m.fps / 4) / (25 / 16); // rows per second, ActionFormer over CoLA
      if (Math.abs(m.length / c.length - ratio) > 0.1 * ratio) throw new Error(`${m.id}: rows`);
    }
    const a = await Deno.readFile(
      path.join(dir, "a/cola/features/train/rgb", af.list("train")[0].id + ".npy"),
    );
    const b = await Deno.readFile(
      path.join(dir, "b/cola/features/train/rgb", af.list("train")[0].id + ".npy"),
    );
    const c = await Deno.readFile(
      path.join(dir, "c/cola/features/train/rgb", af.list("train")[0].id + ".npy"),
    );
    assertEquals(a, b);
    if (a.every((v, i) => v === c[i])) throw new Error("a different seed gave the same features");
    // Features are non-negative and not constant.
    const f = await af.load(af.list()[0].id);
    if (f.data.some((v) => v < 0)) throw new Error("negative feature values");
    if (new Set(f.data).size < 10) throw new Error("features are (nearly) constant");
  } finally {
    await fs.rm(dir, { recursive: true });
  }
});

Deno.test("datasets synth: the embedded geometry is the real THUMOS'14 file", async () => {
  const g = thumos14Geometry();
  assertEquals(g.length, 412);
  assertEquals(g.filter((v) => v.split === "train").length, 200);
  const segs = g.filter((v) => v.split === "test" && !COLA_EXCLUDED.includes(v.id))
    .reduce((n, v) => n + v.segments.length, 0);
  assertEquals(segs, 3311);
  if (skipWithoutSharedData("synth geometry vs the real THUMOS'14 file (last part)")) return;
  const real: {
    database: Record<
      string,
      { duration: number; fps: number; annotations: { label: string; segment: number[] }[] }
    >;
  } = JSON.parse(
    await Deno.readTextFile(`${SHARED_DATA}/thumos14_actionformer/thumos14.json`),
  );
  for (const v of g) {
    const r = real.database[v.id];
    assertEquals([v.duration, v.fps], [r.duration, r.fps], v.id);
    assertEquals(
      v.segments.map((s) => [THUMOS14_CLASSES[s.classId], s.start, s.end]),
      r.annotations.map((a) => [a.label, a.segment[0], a.segment[1]]),
      v.id,
    );
  }
});

Deno.test("datasets synth: ActivityNet-like set reads back", async () => {
  const dir = await tempDir();
  try {
    const r = await synthesize({
      out: dir,
      like: "activitynet",
      videos: 15,
      dim: 6,
      format: "npz",
    });
    assertEquals(r.layouts, ["activitynet"]);
    const s = await inspectDataset(dir, {});
    assertEquals(s.layout, "activitynet");
    assertEquals(s.videos, { train: 10, test: 5 });
    assertEquals(s.featureDim, 6);
    const ds = await openDataset(dir);
    for (const m of ds.list()) {
      if (m.annotations.length < 1 || m.annotations.length > 3) throw new Error("instances");
      const last = m.grid.offset / m.grid.fps * m.grid.stride;
      if (!(last > 0)) throw new Error("grid");
    }
  } finally {
    await fs.rm(dir, { recursive: true });
  }
});
