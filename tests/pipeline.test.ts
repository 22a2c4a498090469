import assert from "node:assert/strict";
import * as path from "node:path";
import {
  formatResultsTable,
  type FuSTALConfig,
  restrictTestVideos,
  runFuSTAL,
} from "../stages/pipeline.ts";
import { openDataset, synthesize } from "../datasets.ts";
import { groundTruthFromVideos } from "../stages/evaluation.ts";
import { loadStudent } from "../stages/training/train.ts";
import { loadCheckpoint } from "../stages/training/checkpoint.ts";
import { tf } from "../deps.ts";
import { formatAblationTable, runAblation } from "../stages/ablation.ts";
import { exists } from "../lib/io.ts";
import { findChromium, renderInChromium } from "../lib/chromium.ts";

import { TINY_GENERATOR, TINY_STUDENT } from "./pipeline_fixtures.ts";

const ROOT = path.resolve(import.meta.dirname!, "..");

/** `--generator-option k=v ...` style CLI flags from an options object. */
function opt(flag: string, o: Record<string, unknown>): string[] {
  return Object.entries(o).flatMap(([k, v]) => [flag, `${k}=${JSON.stringify(v)}`]);
}

function tinyConfig(out: string, logs: string[]): FuSTALConfig {
  return {
    out,
    backend: "wasm",
    seed: 1,
    synth: { dim: 16, videos: 16 },
    generatorOptions: TINY_GENERATOR,
    studentOptions: TINY_STUDENT,
    onLog: (l) => logs.push(l),
  };
}

Deno.test("pipeline: runFuSTAL end to end on tiny synthetic data, then --resume skips every stage", async (t) => {
  const out = await Deno.makeTempDir({ prefix: "fustal-pipeline-" });
  const logs: string[] = [];
  const r = await runFuSTAL(tinyConfig(out, logs));
  assert.equal(r.backend.name, "wasm");
  assert.equal(r.tiou.length, 7);
  for (
    const m of [r.generator.test, r.pseudoLabels.before, r.pseudoLabels.after, r.student.final]
  ) {
    assert.equal(m.mAP.length, 7);
    assert.ok(m.average >= 0 && m.average <= 1);
  }
  assert.ok(r.student.beforeSwitch, "before-switch figures with EMA on");
  assert.ok(r.pseudoLabels.before.proposals >= r.pseudoLabels.after.proposals);
  for (
    const f of ["proposals", "generatorTest", "pseudoLabels", "detections", "metrics", "report"]
  ) {
    const file = (r.files as Record<string, string>)[f];
    assert.ok((await Deno.stat(file)).size > 0, `${f} written`);
  }
  const metrics = JSON.parse(await Deno.readTextFile(path.join(out, "metrics.json")));
  assert.deepEqual(metrics.student.final, r.student.final);
  // no temp files left behind by the atomic writes
  for await (const e of Deno.readDir(out)) assert.ok(!e.name.includes(".tmp-"), e.name);

  await t.step("resume: every stage is loaded, figures identical", async () => {
    const logs2: string[] = [];
    const r2 = await runFuSTAL({ ...tinyConfig(out, logs2), resume: true });
    assert.ok(
      logs2.some((l) => l.startsWith("resume: finished stages data, generation")),
      logs2.join("\n"),
    );
    assert.ok(logs2.some((l) => l.startsWith("generation: loaded")));
    assert.ok(
      !logs2.some((l) => /^epoch \d/.test(l) || l.startsWith("resumed from")),
      "student not retrained",
    );
    assert.deepEqual(r2.generator.test, r.generator.test);
    assert.deepEqual(r2.pseudoLabels, r.pseudoLabels);
    assert.deepEqual(r2.student.final, r.student.final);
  });

  await t.step("class fusion: on by default, off on resume without retraining", async () => {
    // The default preset fuses: the headline is the fused figure, the student's own is kept.
    assert.equal(r.student.classFusion, "generator");
    assert.ok(r.student.unfused);
    const fused = path.join(out, "detections_fused.json");
    assert.ok((await Deno.stat(fused)).isFile);
    const logs2: string[] = [];
    const r2 = await runFuSTAL({ ...tinyConfig(out, logs2), resume: true, classFusion: "none" });
    assert.ok(!logs2.some((l) => /^epoch \d/.test(l)), "fusion is not a training setting");
    assert.equal(r2.student.classFusion, "none");
    assert.equal(r2.student.unfused, undefined);
    assert.deepEqual(r2.student.final, r.student.unfused!.final);
    await assert.rejects(Deno.stat(fused), Deno.errors.NotFound);
  });

  await t.step("resume with another filter redoes selection and training only", async () => {
    const logs3: string[] = [];
    const r3 = await runFuSTAL({ ...tinyConfig(out, logs3), resume: true, filter: "score" });
    assert.ok(logs3.some((l) => l.startsWith("generation: loaded")), logs3.join("\n"));
    assert.ok(logs3.some((l) => l.startsWith("selection (score)")));
    assert.ok(logs3.some((l) => /^epoch \d/.test(l)), "student retrained on the new labels");
    assert.deepEqual(r3.generator.test, r.generator.test);
    assert.equal(r3.pseudoLabels.filter, "score");
  });

  await t.step("same seed, same backend, same result", async () => {
    const again = await runFuSTAL(tinyConfig(await Deno.makeTempDir(), []));
    assert.deepEqual(again.generator.test, r.generator.test);
    assert.deepEqual(again.student.final, r.student.final);
  });

  await t.step("report.html renders in headless Chromium", async () => {
    const chromium = await findChromium();
    if (!chromium) {
      console.log("SKIP: chromium not installed (Debian package `chromium`)");
      return;
    }
    const shot = await renderInChromium(chromium, r.files.report);
    assert.ok(shot.dom.includes("mAP per tIoU"));
    assert.ok((shot.dom.match(/<svg/g) ?? []).length >= 5, "charts and timelines drawn");
    assert.ok(shot.screenshotBytes > 20_000);
  });
});

Deno.test("cli run: --json last line, user filter plugin from a folder outside the project", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal-run-cli-" });
  const pluginFile = path.join(dir, "keep_best.ts");
  // A plugin module that imports nothing from the project.
  await Deno.writeTextFile(
    pluginFile,
    `export default {
  kind: "filter",
  name: "keep-best",
  apply(proposals) {
    return proposals.length ? [proposals.reduce((a, b) => (b.score > a.score ? b : a))] : [];
  },
};
`,
  );
  const out = path.join(dir, "run");
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      path.join(ROOT, "mod.ts"),
      "--out",
      out,
      "--videos",
      "16",
      "--dim",
      "16",
      "--backend",
      "wasm",
      "--plugin",
      new URL(`file://${pluginFile}`).href,
      "--filter",
      "keep-best",
      ...opt("--generator-option", TINY_GENERATOR),
      ...opt("--student-option", TINY_STUDENT),
      "--json",
    ],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  const j = JSON.parse(stdout.trim().split("\n").at(-1)!);
  for (const k of ["tiou", "backend", "generator", "pseudoLabels", "student", "seconds"]) {
    assert.ok(k in j, `--json has ${k}`);
  }
  for (const s of ["data", "generation", "selection", "training", "evaluation"]) {
    assert.equal(typeof j.seconds[s], "number");
  }
  assert.equal(j.pseudoLabels.filter, "keep-best");
  const pseudo = JSON.parse(await Deno.readTextFile(path.join(out, "pseudo_labels.json")));
  for (const list of Object.values(pseudo.results) as unknown[][]) assert.ok(list.length <= 1);
  assert.equal(j.pseudoLabels.after.proposals, Object.values(pseudo.results).flat().length);
});

Deno.test("cli run: bad flags and bad roots exit 2 with one line", async () => {
  for (
    const [args, re] of [
      [["--preset", "huge"], /--preset: unknown preset "huge" \(use default, reference, paper\)/],
      [["--root", "/nonexistent/dir"], /nonexistent/],
      [["--filter", "nope", "--videos", "4", "--dim", "4"], /no filter plugin named "nope"/],
      [["--backend", "tpu"], /unknown backend "tpu"/],
    ] as [string[], RegExp][]
  ) {
    const dir = await Deno.makeTempDir();
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", path.join(ROOT, "mod.ts"), "--out", dir, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(r.stderr).trim().split("\n");
    assert.equal(r.code, 2, `${args.join(" ")}: ${err.join("\n")}`);
    assert.match(err.at(-1)!, re);
  }
});

Deno.test("pipeline: --ablate runs the four rows on one dataset, sharing the cross-video generator", async () => {
  const out = await Deno.makeTempDir({ prefix: "fustal-ablate-" });
  const logs: string[] = [];
  const rows = await runAblation({ ...tinyConfig(out, logs), out });
  assert.deepEqual(rows.map((r) => [r.crossVideo, r.filter, r.ema]), [
    [false, "score", false],
    [true, "score", false],
    [true, "prior", false],
    [true, "prior", true],
  ]);
  // rows 2-4 use the same generator; row 1 trains its own without cross-video
  assert.deepEqual(rows[2].result.generator.test, rows[1].result.generator.test);
  assert.deepEqual(rows[3].result.generator.test, rows[1].result.generator.test);
  // Row 4 ran first and left its switch checkpoint; row 3 continued from it (its last epoch).
  const sw = path.join(out, "ablation", "seed-1", "4-ema", "student", "switch.ckpt");
  assert.ok((await Deno.stat(sw)).size > 0, "row 4 has the EMA phase");
  assert.ok(logs.some((l) => l.startsWith(`started from ${sw}`)), logs.join("\n"));
  assert.ok(
    !(await exists(path.join(out, "ablation", "seed-1", "1-baseline", "student", "switch.ckpt"))),
  );
  const table = formatAblationTable(rows).split("\n");
  assert.equal(table.length, 6);
  assert.match(table[5], /^\+ EMA distillation/);
  const saved = JSON.parse(await Deno.readTextFile(path.join(out, "ablation.json")));
  assert.equal(saved.length, 4);
});

Deno.test("pipeline: the whole method runs on Deno's WebGPU (async reads only)", async () => {
  // Probe in a child too: the test process itself never opens a GPU instance.
  const probe = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "Deno.exit((await navigator.gpu?.requestAdapter()) ? 0 : 3)"],
    stdout: "null",
    stderr: "null",
  }).output();
  if (probe.code !== 0) {
    console.log("SKIP: this runtime has no WebGPU adapter");
    return;
  }
  // In a subprocess, as a user runs it: the GPU device lives and dies with that process.
  // batch 2 of 128-row windows keeps the MIL top-k path (k < T0) in play, which needs the
  // mask from an asynchronous read on WebGPU.
  const out = await Deno.makeTempDir({ prefix: "fustal-webgpu-" });
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      path.join(ROOT, "mod.ts"),
      "--out",
      out,
      "--videos",
      "16",
      "--dim",
      "16",
      "--seed",
      "1",
      "--backend",
      "webgpu",
      ...opt("--generator-option", TINY_GENERATOR),
      ...opt("--student-option", { ...TINY_STUDENT, batch: 2, epochs: 2, switchEpoch: 1 }),
      "--json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, stderr);
  const j = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
  assert.equal(j.backend.name, "webgpu");
  assert.ok(j.student.final.mAP.every(Number.isFinite));
  const dets = JSON.parse(await Deno.readTextFile(path.join(out, "detections.json")));
  assert.ok(Object.values(dets.results).flat().length > 0, "detections on the test videos");
});

Deno.test("pipeline: the synthetic default's test set is the CoLA ground truth's 210 videos", async () => {
  // The full default geometry (412 videos; 2-d features keep it small): the ActionFormer file
  // lists 212 test videos, the evaluation ground truth (CoLA gt.json) 210.
  const dir = await Deno.makeTempDir({ prefix: "fustal-testset-" });
  try {
    await synthesize({ out: dir, dim: 2 });
    const quiet = { onWarning: () => {} };
    const co = await openDataset(path.join(dir, "cola"), quiet);
    const af = await openDataset(path.join(dir, "actionformer"), quiet);
    const gt = groundTruthFromVideos(co.list("test"));
    assert.equal(gt.videos.length, 210);
    assert.equal(af.list("test").length, 212);
    const view = restrictTestVideos(af, new Set(gt.videos));
    assert.deepEqual(view.list("test").map((m) => m.id).sort(), [...gt.videos].sort());
    assert.equal(view.list("train").length, af.list("train").length);
    assert.equal(view.list().length, 200 + 210);
    let n = 0;
    for await (const { meta } of view.videos("test")) {
      assert.ok(gt.videos.includes(meta.id), `${++n}`);
    }
    assert.equal(n, 210);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pipeline: the student predicts on exactly the ground truth's test videos; EMA snapshots reported", async () => {
  // A tiny synth set whose ActionFormer file lists one test video more than the CoLA
  // ground truth (as the real files do: 212 vs 210).
  const dir = await Deno.makeTempDir({ prefix: "fustal-snap-" });
  await synthesize({ out: path.join(dir, "data"), dim: 16, videos: 16, seed: 1 });
  const af = path.join(dir, "data", "actionformer");
  const annFile = path.join(af, "annotations", "thumos14.json");
  const ann = JSON.parse(await Deno.readTextFile(annFile));
  const [src, v] = Object.entries(ann.database).find(([, x]) =>
    (x as { subset: string }).subset === "Test"
  ) as [string, Record<string, unknown>];
  const extra = "video_test_0009999";
  ann.database[extra] = v;
  await Deno.writeTextFile(annFile, JSON.stringify(ann));
  await Deno.copyFile(
    path.join(af, "i3d_features", `${src}.npy`),
    path.join(af, "i3d_features", `${extra}.npy`),
  );
  const out = path.join(dir, "run");
  const logs: string[] = [];
  const config: FuSTALConfig = {
    ...tinyConfig(out, logs),
    root: path.join(dir, "data"),
    // 2 teacher epochs: snapshots after epochs 2 and 3.
    studentOptions: { ...TINY_STUDENT, switchEpoch: 1, snapshots: 2 },
  };
  const r = await runFuSTAL(config);
  const colaTest = (await Deno.readTextFile(path.join(dir, "data", "cola", "split_test.txt")))
    .split("\n").filter((l) => l !== "").sort();
  assert.deepEqual(r.scoring.student.videos, colaTest.length);
  assert.deepEqual(r.scoring.student.predicted, colaTest.length);
  assert.match(r.scoring.student.gt, /cola\/gt\.json$/);
  assert.equal(r.scoring.pseudoLabels.subset, "train");
  assert.ok(
    logs.some((l) => /^scoring: .*gt\.json, test subset .*its 1 other test video/.test(l)),
    logs.join("\n"),
  );
  const dets = JSON.parse(await Deno.readTextFile(r.files.detections));
  assert.deepEqual(Object.keys(dets.results).sort(), colaTest, "detections cover the GT's test");
  // Snapshots: one checkpoint and one detections file each, every one scored.
  const snaps = r.student.snapshots!;
  assert.deepEqual(snaps.map((k) => k.epoch), [2, 3]);
  assert.equal(r.student.headlineEpoch, 3);
  assert.deepEqual(snaps.at(-1)!.mAP, r.student.final.mAP);
  const best = snaps.reduce((b, k) => (k.average > b.average ? k : b));
  assert.equal(r.student.bestEpoch, best.epoch);
  for (const k of snaps) {
    assert.ok((await Deno.stat(path.join(out, "student", `epoch_${k.epoch}.ckpt`))).size > 0);
    const d = JSON.parse(await Deno.readTextFile(k.detections));
    assert.deepEqual(Object.keys(d.results).sort(), colaTest);
  }
  // A snapshot is an inference checkpoint (weights and EMA, no optimiser state).
  const ck = await loadCheckpoint(path.join(out, "student", "epoch_2.ckpt"));
  assert.deepEqual(Object.keys(ck.groups).sort(), ["ema", "model"]);
  const loaded = await loadStudent(path.join(out, "student", "epoch_2.ckpt"));
  assert.equal(loaded.meta.epoch, 2);
  tf.dispose(Object.values(loaded.params));
  const metrics = JSON.parse(await Deno.readTextFile(r.files.metrics));
  assert.deepEqual(metrics.student.snapshots, snaps);
  assert.equal(metrics.student.bestEpoch, r.student.bestEpoch);
  const table = formatResultsTable(r);
  assert.match(table, /^student EMA epoch 2, test/m);
  assert.match(table, /^student final \(EMA, epoch 3\), test/m);
  assert.match(table, /headline = final EMA weights \(epoch 3\); best snapshot: epoch [23]/);
  const html = await Deno.readTextFile(r.files.report);
  assert.ok(html.includes("student EMA epoch 2 (test)") && html.includes("headline"));
  // Resume: the snapshots come back from their files.
  const again = await runFuSTAL({ ...config, onLog: () => {}, resume: true });
  assert.deepEqual(again.student.snapshots, snaps);
  await Deno.remove(dir, { recursive: true });
});
