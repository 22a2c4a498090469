// The real annotation files of the workspace's data folder read through datasets.ts, with
// synthesised features (no real features can be downloaded). Skipped where it is absent.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { assertEquals, assertRejects, tempDir } from "./datasets_helpers.ts";
import { InputError } from "../lib/errors.ts";
import { openDataset } from "../datasets.ts";
import { groundTruthFromVideos } from "../stages/evaluation.ts";
import { runFuSTAL } from "../stages/pipeline.ts";
import { pseudoLabelsToGrid } from "../stages/training/train.ts";
import { encodeNpy } from "../datasets/npy.ts";
import { synthesize } from "../datasets/synth.ts";
import { HAVE_SHARED_DATA, SHARED_DATA, skipWithoutSharedData } from "./shared_data.ts";

const DATA = SHARED_DATA;
const have = HAVE_SHARED_DATA;
if (!have) console.log(`SKIP: ${DATA} is absent (the real annotation files are not here)`);

function match(lines: string[], re: RegExp): void {
  if (!lines.some((l) => re.test(l))) {
    throw new Error(`no line matches ${re}:\n${lines.join("\n")}`);
  }
}

Deno.test({
  name: "datasets real: THUMOS'14 ActionFormer and CoLA annotation files",
  ignore: skipWithoutSharedData("THUMOS'14 annotation files"),
  fn: async () => {
    const dir = await tempDir();
    try {
      // synth writes the real geometry: features cover each video's stated duration.
      await synthesize({ out: dir, dim: 2 });
      const afFile = path.join(DATA, "thumos14_actionformer/thumos14.json");
      const warnings: string[] = [];
      const af = await openDataset(path.join(dir, "actionformer"), {
        annotations: afFile,
        onWarning: (l) => warnings.push(l),
      });
      // 30 segments start after their video ends: one line, count and first video.
      assertEquals(warnings.length, 1, warnings.join("\n"));
      match(
        warnings,
        /thumos14\.json: 30 segment\(s\) end after their video \(30 start at or after its end\); first: video video_test_0000270 \[187\.3, 193\.4\]/,
      );
      await assertRejects(
        openDataset(path.join(dir, "actionformer"), { annotations: afFile, strict: true }),
        InputError,
        /30 segment\(s\) end after their video.*--strict/,
      );
      assertEquals(af.list("train").length, 200);
      assertEquals(af.list("test").length, 212);
      // The evaluation ground truth keeps every instance as the file gives it.
      const gt = groundTruthFromVideos(af.list("test"));
      assertEquals(gt.instances.length, 3358);
      const v270 = gt.instances.filter((i) => i.videoId === "video_test_0000270");
      if (!v270.some((i) => i.segment[0] === 706.3 && i.segment[1] === 713.7)) {
        throw new Error("late segment of video_test_0000270 missing from the ground truth");
      }
      // ...while the student's training targets drop the 2 late ones of a training video.
      const v856 = af.list("train").find((m) => m.id === "video_validation_0000856")!;
      const labels = v856.annotations.map((a) => ({
        videoId: v856.id,
        label: a.label,
        score: 1,
        segment: a.segment,
      }));
      const grid = pseudoLabelsToGrid(af, labels).get(v856.id)!;
      assertEquals(grid.length, v856.annotations.length - 2);
      if (!grid.every((g) => g.a >= 0 && g.b <= v856.length - 1 && g.b > g.a)) {
        throw new Error("targets not clipped to the feature grid");
      }
      const v4 = af.list().find((m) => m.id === "video_test_0000004")!;
      assertEquals([v4.fps, v4.duration, v4.labels], [30, 33.83, [5, 6]]);
      // CliffDiving videos carry both labels (4 and 7).
      const cliff = af.list().filter((m) => m.labels.includes(4));
      if (!cliff.length || !cliff.every((m) => m.labels.includes(7))) throw new Error("cliff");

      const root = path.join(dir, "cola");
      for (const f of ["split_train.txt", "split_test.txt"]) {
        await fs.copyFile(path.join(DATA, "thumos14_cola", f), path.join(root, f));
      }
      const coWarnings: string[] = [];
      const co = await openDataset(root, {
        annotations: path.join(DATA, "thumos14_cola/gt.json"),
        onWarning: (l) => coWarnings.push(l),
      });
      // No durations in gt.json: the features' span decides; at most one line.
      if (coWarnings.length > 1) throw new Error(coWarnings.join("\n"));
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
      await assertRejects(
        openDataset(dir, { strict: true }),
        InputError,
        /video v_.* has no feature file: expected .*--strict/,
      );
      const listed = Object.keys(ann).filter((id) => subset.get(id) !== "testing").length;
      const warnings: string[] = [];
      const ds = await openDataset(dir, { onWarning: (l) => warnings.push(l) });
      match(
        warnings,
        new RegExp(
          `anet_anno_action\\.json: ${listed - 20} annotated video\\(s\\) have no feature ` +
            `file and are skipped; first: v_`,
        ),
      );
      assertEquals(ds.skipped?.length, listed - 20);
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
      // The generator runs on the partial set and finishes with figures.
      const gen = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../mod.ts", import.meta.url).pathname,
          "generate",
          "--root",
          dir,
          "--out",
          path.join(dir, "gen"),
          "--iterations",
          "2",
          "--eval-every",
          "2",
          "--batch",
          "4",
          "--snippets",
          "16",
          "--backend",
          "wasm",
          "--json",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const genErr = new TextDecoder().decode(gen.stderr);
      assertEquals(gen.code, 0, genErr);
      match(genErr.split("\n"), /^warning: .*annotated video\(s\) have no feature file/);
      const figures = JSON.parse(new TextDecoder().decode(gen.stdout).trim().split("\n").at(-1)!);
      if (!figures.test.mAP.every(Number.isFinite)) throw new Error(JSON.stringify(figures));

      // Features for every video: the whole file loads, with its 215 segments past their
      // video's end and 12 of zero length reported on one line each.
      const one = encodeNpy(new Float32Array(4 * 3), [4, 3]);
      const have = new Set(ids);
      for (const id of Object.keys(ann)) {
        if (subset.get(id) !== "testing" && !have.has(id)) {
          await Deno.writeFile(path.join(dir, "features", id + ".npy"), one);
        }
      }
      const all: string[] = [];
      const full = await openDataset(dir, { onWarning: (l) => all.push(l) });
      assertEquals(full.list().length, listed);
      assertEquals(all.length, 2, all.join("\n"));
      match(all, /anet_anno_action\.json: 215 segment\(s\) end after their video/);
      match(all, /anet_anno_action\.json: 12 segment\(s\) have zero length/);
    } finally {
      await fs.rm(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "datasets real: run --root on the real THUMOS'14 files (both layouts) finishes with figures",
  ignore: !have,
  fn: async () => {
    const dir = await tempDir();
    try {
      // Features in both layouts with the real geometry (late segments kept), then the real
      // annotation files copied over the synthetic ones, unmodified.
      await synthesize({ out: dir, dim: 8 });
      await fs.copyFile(
        path.join(DATA, "thumos14_actionformer/thumos14.json"),
        path.join(dir, "actionformer/annotations/thumos14.json"),
      );
      for (const f of ["gt.json", "split_train.txt", "split_test.txt"]) {
        await fs.copyFile(path.join(DATA, "thumos14_cola", f), path.join(dir, "cola", f));
      }
      const logs: string[] = [];
      const r = await runFuSTAL({
        root: dir,
        out: path.join(dir, "run"),
        backend: "wasm",
        seed: 1,
        generatorOptions: { iterations: 2, evalEvery: 2, batch: 4, snippets: 32 },
        studentOptions: {
          epochs: 2,
          switchEpoch: 1,
          batch: 16,
          dim: 16,
          mlpDim: 24,
          levels: 3,
          regressionRanges: [[0, 4], [4, 8], [8, 10000]],
          gnGroups: 4,
          numBins: 4,
          maxSeqLen: 128,
        },
        onLog: (l) => logs.push(l),
      });
      match(logs, /^warning: .*thumos14\.json: 30 segment\(s\) end after their video/);
      match(logs, /^scoring: .*gt\.json, test subset \(210 videos\).*its 2 other test video/);
      assertEquals([r.scoring.student.videos, r.scoring.student.predicted], [210, 210]);
      assertEquals(r.dataset.test, 210);
      for (const m of [r.generator.test, r.pseudoLabels.after, r.student.final]) {
        if (!(m.mAP.length === 7 && m.mAP.every(Number.isFinite))) throw new Error("figures");
      }
      const dets = JSON.parse(await Deno.readTextFile(r.files.detections));
      const test = (await Deno.readTextFile(path.join(DATA, "thumos14_cola/split_test.txt")))
        .split(/\r?\n/).filter((l) => l.trim() !== "");
      if (!Object.keys(dets.results).every((v) => test.includes(v))) throw new Error("extra");
    } finally {
      await fs.rm(dir, { recursive: true });
    }
  },
});
