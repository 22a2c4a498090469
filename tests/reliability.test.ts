/**
 * Failure behaviour of the shared mechanisms (issue "no stack traces, no silent wrong
 * answers, one writer per run folder"): the run-folder lock, the output check before work,
 * file-system errors as one line, the tIoU cap, evaluation inputs, plugin outputs of every
 * kind, plugin call timeouts, divergence, and the float32 overflow message.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { DivergenceError, EXIT_DIVERGED, InputError, LossWatch, userError } from "../lib/errors.ts";
import { checkOutputs, LOCK_FILE, lockRunFolder } from "../lib/io.ts";
import { saveTensorFile } from "../lib/tensor_file.ts";
import {
  evaluateDetections,
  MAX_TIOUS,
  parseGroundTruth,
  parseResults,
  parseTious,
  segmentIoU,
} from "../stages/evaluation.ts";
import {
  checkDetections,
  checkPluginOutput,
  guardPluginCall,
  registerPlugin,
  setPluginCallTimeout,
} from "../registry.ts";
import { decodeNpy, encodeNpy } from "../datasets/npy.ts";
import type { Plugin } from "../lib/plugin_types.ts";

const tmp = () => fs.mkdtemp(path.join(os.tmpdir(), "fustal-rel-"));

Deno.test("lock: one writer per folder; a live holder fails at once, a stale one is taken over", async () => {
  const dir = await tmp();
  try {
    const out = path.join(dir, "a", "b");
    const lock = await lockRunFolder(out, "generate");
    const held = JSON.parse(await fs.readFile(path.join(out, LOCK_FILE), "utf8"));
    assert.equal(held.pid, process.pid);
    assert.equal(held.host, os.hostname());
    // A second writer (here the same live pid) fails with a line naming folder, pid and host.
    await assert.rejects(
      lockRunFolder(out, "train"),
      (e: unknown) =>
        e instanceof InputError && e.message.includes(out) &&
        e.message.includes(`pid ${process.pid}`) && e.message.includes(os.hostname()),
    );
    await lock.release();
    // The run wrote nothing: the folders the lock created are gone again.
    assert.equal(await fs.stat(path.join(dir, "a")).catch(() => null), null);

    // A stale lock: its pid is dead on this host.
    await fs.mkdir(out, { recursive: true });
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    await fs.writeFile(
      path.join(out, LOCK_FILE),
      JSON.stringify({ pid: dead.pid, host: os.hostname(), command: "run", since: "x" }),
    );
    const warnings: string[] = [];
    const l2 = await lockRunFolder(out, "run", (w) => warnings.push(w));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], new RegExp(`stale lock.*pid ${dead.pid}`));
    await fs.writeFile(path.join(out, "result.json"), "{}");
    await l2.release();
    assert.deepEqual(await fs.readdir(out), ["result.json"]);

    // Another host's lock cannot be checked: treated as held.
    await fs.writeFile(
      path.join(out, LOCK_FILE),
      JSON.stringify({ pid: 1, host: "elsewhere", command: "run", since: "x" }),
    );
    await assert.rejects(lockRunFolder(out, "run"), /in use by another run.*elsewhere/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("outputs are checked before work: folder where a file goes, file where a folder goes", async () => {
  const dir = await tmp();
  try {
    await fs.mkdir(path.join(dir, "x.json"));
    await fs.writeFile(path.join(dir, "afile"), "x");
    await assert.rejects(
      checkOutputs("--out", { files: [path.join(dir, "x.json")] }),
      (e: unknown) =>
        e instanceof InputError && e.message.includes("x.json") && /is a folder/.test(e.message),
    );
    await assert.rejects(
      checkOutputs("--out", { dirs: [path.join(dir, "afile")] }),
      /afile: is a file, expected a folder/,
    );
    await assert.rejects(
      checkOutputs("--out", { files: [path.join(dir, "afile", "sub", "p.json")] }),
      /afile is a file, expected a folder/,
    );
    // A usable set of outputs passes and leaves nothing behind (the write probe is removed).
    await checkOutputs("--out", { files: [path.join(dir, "new", "p.json")], dirs: [dir] });
    assert.deepEqual((await fs.readdir(dir)).sort(), ["afile", "x.json"]);
    // Read-only folders (skipped as root, who writes anyway).
    if (process.getuid?.() !== 0) {
      const ro = path.join(dir, "ro");
      await fs.mkdir(ro);
      await fs.chmod(ro, 0o500);
      await assert.rejects(
        checkOutputs("--out", { files: [path.join(ro, "p.json")] }),
        /cannot write in .*ro \(permission denied\)/,
      );
      await fs.chmod(ro, 0o700);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("file-system errors become one line naming the path (exit 2); divergence exits 3", () => {
  const e = Object.assign(new Error("EISDIR: illegal operation on a directory, read"), {
    code: "EISDIR",
    path: "/x/y.npy",
  });
  const u = userError(e)!;
  assert.equal(u.message, "/x/y.npy: is a folder, expected a file");
  assert.equal(u.exitCode, 2);
  const full = userError(Object.assign(new Error("ENOSPC"), { code: "ENOSPC", path: "/o/a" }))!;
  assert.equal(full.message, "/o/a: no space left on the device");
  assert.equal(userError(new TypeError("x is undefined")), undefined);
  assert.equal(new DivergenceError("student", 3, NaN).exitCode, EXIT_DIVERGED);
});

Deno.test("--tiou: at most MAX_TIOUS thresholds, counted before any list is built", () => {
  assert.equal(parseTious(Array(MAX_TIOUS).fill("0.5").join(",")).length, MAX_TIOUS);
  assert.throws(
    () => parseTious(Array(MAX_TIOUS + 1).fill("0.5").join(",")),
    /--tiou: 101 thresholds, at most 100/,
  );
  assert.throws(() => parseTious("0.000001:1:0.0000001"), /--tiou: \d+ thresholds, at most/);
});

Deno.test("eval: reversed predictions are input errors, zero-length ones score no overlap", () => {
  const gt = parseGroundTruth(
    { database: { v: { subset: "test", annotations: [{ label: "A", segment: [50, 60] }] } } },
    "gt.json",
  );
  assert.throws(
    () => parseResults({ results: { v: [{ label: "A", score: 1, segment: [60, 50] }] } }, "p.json"),
    /p\.json: video v detection 0: segment \[60, 50\] ends before it starts/,
  );
  // A zero-length prediction inside the ground truth: no overlap, AP 0 at every threshold.
  const zero = parseResults(
    { results: { v: [{ label: "A", score: 1, segment: [55, 55] }] } },
    "p.json",
  );
  assert.deepEqual(evaluateDetections(gt, zero, { tiou: [0.1, 0.5] }).mAP, [0, 0]);
  assert.equal(segmentIoU([3, 3], [3, 3]), 0);
  assert.equal(segmentIoU([55, 55], [50, 60]), 0);
  // Zero-length ground truth and non-number scores are input errors.
  assert.throws(
    () =>
      parseGroundTruth(
        { database: { v: { annotations: [{ label: "A", segment: [5, 5] }] } } },
        "g.json",
      ),
    /g\.json: video v annotation 0: ground-truth segment \[5, 5\] has zero length/,
  );
  for (const score of ["", " ", "x", null, [], true]) {
    assert.throws(
      () => parseResults({ results: { v: [{ label: "A", score, segment: [1, 2] }] } }, "p.json"),
      /"score" is not a number/,
    );
  }
  // A numeric string is still a number (CoLA writes some scores as strings).
  assert.equal(
    parseResults({ results: { v: [{ label: "A", score: "0.5", segment: [1, 2] }] } }, "p")[0]
      .score,
    0.5,
  );
});

function plugin(kind: string, name: string, extra: Record<string, unknown>): Plugin {
  return registerPlugin({ kind, name, ...extra } as unknown as Plugin, `test-${name}.ts`);
}

Deno.test("plugin outputs are checked at the registry boundary, for every kind", () => {
  const spans = new Map([["v", { duration: 129 }]]);
  const det = (segment: unknown, extra: Record<string, unknown> = {}) => ({
    videoId: "v",
    label: "A",
    score: 0.5,
    segment,
    ...extra,
  });
  // Detections: reversed, non-finite, far before, after the end, far past the end.
  for (
    const [seg, re] of [
      [[60, 50], /reversed/],
      [[NaN, 5], /finite/],
      [[-50, 5], /starts before the video/],
      [[200, 300], /starts after the video's end/],
      [[120, 10000], /ends far past/],
    ] as const
  ) {
    assert.throws(() => checkDetections([det(seg)], "who", spans), re);
  }
  assert.equal(checkDetections([det([120, 131])], "who", spans).length, 1); // slightly late: fine
  assert.throws(() => checkDetections([det([1, 2], { score: "1" })], "who"), /score "1"/);

  const gen = plugin("generator", "rel-gen", { generate: () => {} });
  assert.throws(
    () => checkPluginOutput(gen, "generate", { train: [det([60, 50])], test: [] }, spans),
    /generator plugin "rel-gen" \(module test-rel-gen\.ts\): generate \(train\) item 0.*reversed/,
  );
  assert.throws(
    () => checkPluginOutput(gen, "generate", { train: [] }, spans),
    /\(test\).*not an array/,
  );
  const stu = plugin("student", "rel-stu", { train: () => {} });
  assert.throws(
    () => checkPluginOutput(stu, "train", { test: [det([-500, 1])] }, spans),
    /student plugin "rel-stu".*train \(test\) item 0.*starts before/,
  );
  const fil = plugin("filter", "rel-fil", { apply: () => {} });
  assert.throws(
    () => checkPluginOutput(fil, "apply", [det([1, 2], { videoId: 3 })], spans),
    /filter plugin "rel-fil".*videoId/,
  );
  const ds = plugin("dataset", "rel-ds", { open: () => {} });
  const dataset = (videos: unknown[]) => ({
    classes: ["A"],
    featureDim: 4,
    list: () => videos,
    load: () => {},
    videos: () => {},
  });
  checkPluginOutput(ds, "open", dataset([{ id: "v", duration: 10, annotations: [] }]));
  assert.throws(
    () => checkPluginOutput(ds, "open", dataset([{ id: "../x", duration: 10, annotations: [] }])),
    /dataset plugin "rel-ds".*video id "\.\.\/x" is not a plain name/,
  );
  assert.throws(
    () =>
      checkPluginOutput(
        ds,
        "open",
        dataset([{ id: "v", duration: 10, annotations: [{ segment: [8, 2] }] }]),
      ),
    /video v annotation 0: segment \[8, 2\] is reversed/,
  );
  assert.throws(() => checkPluginOutput(ds, "open", { classes: [] }), /no "list" method/);
});

Deno.test("plugin calls: a per-call timeout names the plugin and the call", async () => {
  const p = plugin("filter", "rel-slow", { apply: () => new Promise(() => {}) });
  setPluginCallTimeout(0.05);
  try {
    await assert.rejects(
      guardPluginCall(
        p,
        "apply",
        () => (p as unknown as { apply: () => Promise<never> }).apply(),
        "video v",
      ),
      /filter plugin "rel-slow" \(module test-rel-slow\.ts\): apply on video v did not settle within 0\.05 s/,
    );
  } finally {
    setPluginCallTimeout(undefined);
  }
  assert.throws(() => setPluginCallTimeout(-1), /--plugin-timeout/);
});

Deno.test("divergence: LossWatch names stage, step and loss; tensor files refuse non-finite weights", async () => {
  const w = new LossWatch("generator");
  w.check(1, 2.5);
  w.check(2, 1000); // large but below 1e4 x the first loss
  assert.throws(
    () => w.check(3, NaN),
    (e: unknown) =>
      e instanceof DivergenceError &&
      /^generator: training diverged at step 3 \(loss NaN\); try a lower learning rate \(--lr\)/
        .test(e.message),
  );
  assert.throws(() => w.check(4, 1e9), /step 4 \(loss 1000000000\).*exploded from 2\.500/);
  assert.throws(() => new LossWatch("student").check(1, 1, Infinity), /gradient norm Infinity/);
  const dir = await tmp();
  try {
    const f = path.join(dir, "s.ckpt");
    await fs.writeFile(f, "previous");
    const kind = { magic: "FSTLTST1", name: "test file", finiteOnly: true };
    await assert.rejects(
      saveTensorFile(f, {}, { model: { w: { shape: [2], data: Float32Array.of(1, NaN) } } }, kind),
      (e: unknown) =>
        e instanceof InputError && e.exitCode === EXIT_DIVERGED && e.message.includes("model/w"),
    );
    assert.equal(await fs.readFile(f, "utf8"), "previous");
    assert.deepEqual(await fs.readdir(dir), ["s.ckpt"]);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("a finite float64 beyond float32's range is reported as overflowing float32", () => {
  const bytes = encodeNpy(Float64Array.of(1, 2, 1e300, 4), [2, 2], { dtype: "<f8" });
  assert.throws(
    () => decodeNpy(bytes, "f.npy"),
    /f\.npy: float64 value 1e\+300 at flat index 2 overflows float32/,
  );
  // A real infinity stays a non-finite value (reported by the feature checks).
  const inf = encodeNpy(Float64Array.of(1, Infinity), [1, 2], { dtype: "<f8" });
  assert.equal(decodeNpy(inf, "g.npy").data[1], Infinity);
});
