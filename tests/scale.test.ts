// Sharding and merging (lib/shard.ts, `merge`, `--shard`), the ablation as array cells, and the
// recipes of docs/SCALE.md run as local processes with the environment each runner sets.
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import process from "node:process";
import { main } from "../cli.ts";
import { synthesize } from "../datasets/synth.ts";
import {
  assignShards,
  mergeShardObjects,
  parseShardSpec,
  planShard,
  resolveShard,
} from "../lib/shard.ts";
import { cellOfIndex, meanSd, mergeAblationCells } from "../stages/ablation.ts";
import { ablationSelection } from "../cli/run.ts";
import { TINY_GENERATOR, TINY_STUDENT } from "./pipeline_fixtures.ts";
import { assertDeepClose } from "./float_close.ts";

const ROOT = path.resolve(import.meta.dirname!, "..");
const MOD = path.join(ROOT, "mod.ts");

async function capture(
  f: () => Promise<number>,
): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, write] = [console.log, process.stderr.write];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  // The CLI logs through process.stderr (lib/cli_util.ts).
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err.push(...String(chunk).split("\n").filter((l) => l !== ""));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await f(), out, err };
  } finally {
    console.log = log;
    process.stderr.write = write;
  }
}

async function cli(args: string[]): Promise<void> {
  const code = await main(args);
  assert.equal(code, 0, args.join(" "));
}

const STUDENT_OPTS = [
  "dim=16",
  "mlpDim=24",
  "levels=3",
  "regressionRanges=[[0,4],[4,8],[8,10000]]",
  "gnGroups=4",
  "numBins=4",
  "maxSeqLen=128",
].flatMap((o) => ["--option", o]);

interface Fixture {
  dir: string;
  /** synth output: cola/ + actionformer/ (16 videos, 16-d). */
  data: string;
  student: string;
  generator: string;
}

let fixture: Promise<Fixture> | null = null;

/** `predict` of the fixture's student over every video of its ActionFormer package. */
function predictArgs(fx: Fixture): string[] {
  return [
    "predict",
    "--checkpoint",
    fx.student,
    "--root",
    path.join(fx.data, "actionformer"),
    "--split",
    "all",
    "--backend",
    "wasm",
  ];
}

/** A tiny synthetic set, a 3-iteration generator and a 2-epoch student (built once). */
function getFixture(): Promise<Fixture> {
  fixture ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "fustal-scale-" });
    const data = path.join(dir, "thumos14");
    await synthesize({ out: data, like: "thumos14", dim: 16, videos: 16, seed: 0 });
    const gen = path.join(dir, "gen");
    await cli([
      "generate",
      "--root",
      data,
      "--out",
      gen,
      "--iterations",
      "3",
      "--batch",
      "4",
      "--snippets",
      "32",
      "--eval-every",
      "2",
      "--backend",
      "wasm",
    ]);
    const stu = path.join(dir, "stu");
    await cli([
      "train",
      "--pseudo-labels",
      path.join(gen, "proposals.json"),
      "--root",
      path.join(data, "actionformer"),
      "--out",
      stu,
      "--backend",
      "wasm",
      "--epochs",
      "2",
      "--switch-epoch",
      "1",
      "--batch",
      "4",
      ...STUDENT_OPTS,
    ]);
    return {
      dir,
      data,
      student: path.join(stu, "student.ckpt"),
      generator: path.join(gen, "generator_best.ckpt"),
    };
  })();
  return fixture;
}

Deno.test("shard: specs, runner indices and the balanced plan", () => {
  assert.deepEqual(parseShardSpec("1/3"), { index: 1, count: 3, source: "--shard" });
  for (const bad of ["3/3", "0/0", "x", "1", "-1/2", "1/2/3", ""]) {
    assert.throws(() => parseShardSpec(bad), /--shard: /, bad);
  }
  const none = {};
  assert.equal(resolveShard("t", none, {}), null);
  assert.deepEqual(resolveShard("t", { shard: "0/2" }, { SLURM_ARRAY_TASK_ID: "1" }), {
    index: 0,
    count: 2,
    source: "t: --shard",
  });
  const slurm = resolveShard("t", none, {
    SLURM_ARRAY_TASK_ID: "5",
    SLURM_ARRAY_TASK_MIN: "4",
    SLURM_ARRAY_TASK_COUNT: "3",
  });
  assert.deepEqual([slurm?.index, slurm?.count], [1, 3]);
  const k8s = resolveShard("t", { shardCount: "4" }, { JOB_COMPLETION_INDEX: "3" });
  assert.deepEqual([k8s?.index, k8s?.count], [3, 4]);
  const notes: string[] = [];
  assert.equal(resolveShard("t", none, { JOB_COMPLETION_INDEX: "0" }, (l) => notes.push(l)), null);
  assert.match(notes[0], /--shard-count is not/);
  assert.throws(() => resolveShard("t", { shardCount: "2" }, {}), /needs JOB_COMPLETION_INDEX/);
  assert.throws(
    () => resolveShard("t", { shardCount: "2" }, { JOB_COMPLETION_INDEX: "2" }),
    /out of range/,
  );
  assert.throws(() => resolveShard("t", none, { SLURM_ARRAY_TASK_ID: "0" }), /TASK_COUNT/);

  // Balanced by rows, not count; independent of the input order; every item once.
  const items = [
    { id: "a", rows: 100 },
    { id: "b", rows: 10 },
    { id: "c", rows: 10 },
    { id: "d", rows: 10 },
    { id: "e", rows: 60 },
    { id: "f", rows: 30 },
  ];
  const owner = assignShards(items, 2);
  const load = [0, 0];
  owner.forEach((s, i) => load[s] += items[i].rows);
  assert.deepEqual(load, [110, 110]);
  assert.notEqual(owner.filter((s) => s === 0).length, 3, "not split by count");
  const rev = [...items].reverse();
  const ownerRev = assignShards(rev, 2);
  assert.deepEqual(
    rev.map((it, i) => [it.id, ownerRev[i]]).sort(),
    items.map((it, i) => [it.id, owner[i]]).sort(),
  );
  for (const n of [1, 2, 3, 7]) {
    const parts = Array.from(
      { length: n },
      (_, i) => planShard("t", {}, items, { index: i, count: n, source: "x" }),
    );
    const ids = parts.flatMap((p) => p.items.map((it) => it.id)).sort();
    assert.deepEqual(ids, items.map((it) => it.id));
    const { merged } = mergeShardObjects(
      parts.map((p, i) => ({
        file: `s${i}`,
        value: {
          results: Object.fromEntries(p.items.map((it) => [it.id, it.rows])),
          shard: p.meta,
        },
      })),
      "results",
    );
    assert.deepEqual(Object.keys(merged.results as object), items.map((it) => it.id));
  }
  assert.throws(() => planShard("t", {}, [items[0], items[0]], null), /appears twice/);
});

/** Runs one sharded command for every shard of n (in-process) and merges. */
async function shardedRun(
  base: string[],
  outOf: (tag: string) => string,
  n: number,
): Promise<string> {
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = outOf(`${n}-${i}`);
    await cli([...base, "--out", f, "--shard", `${i}/${n}`]);
    files.push(f);
  }
  const merged = outOf(`${n}-merged`);
  // shards in reverse order: merge does not depend on the order the files are given in
  await cli(["merge", "--out", merged, ...files.reverse()]);
  return merged;
}

Deno.test("shard: predict, propose and inspect --checksum merged from 1, 2, 3 shards equal the unsharded output byte for byte", async () => {
  const fx = await getFixture();
  const out = path.join(fx.dir, "exact");
  const at = (name: string) => (tag: string) => path.join(out, `${name}-${tag}.json`);
  const jobs: [string, string[]][] = [
    ["predict", predictArgs(fx)],
    ["propose", [
      "propose",
      "--checkpoint",
      fx.generator,
      "--root",
      fx.data,
      "--backend",
      "wasm",
    ]],
    ["checksum", ["inspect", "--root", path.join(fx.data, "cola"), "--checksum"]],
  ];
  for (const [name, base] of jobs) {
    const single = at(name)("single");
    await cli([...base, "--out", single]);
    const bytes = await fs.readFile(single);
    const doc = JSON.parse(bytes.toString());
    assert.equal(doc.shard, undefined, "the unsharded output has no shard metadata");
    for (const n of [1, 2, 3]) {
      const merged = await shardedRun(base, at(name), n);
      assert.ok(bytes.equals(await fs.readFile(merged)), `${name}: ${n} shards`);
    }
    const shard0 = JSON.parse(await fs.readFile(at(name)("3-0"), "utf8"));
    assert.equal(shard0.shard.spec, "0/3");
    assert.ok(shard0.shard.videos.length > 0 && shard0.shard.videos.length < 16);
  }
  // The propose output of the generator checkpoint equals the training run's proposals, up to
  // rounding: training scored the videos in other products (float_close.ts).
  assertDeepClose(
    JSON.parse(await fs.readFile(at("propose")("single"), "utf8")),
    JSON.parse(await fs.readFile(path.join(fx.dir, "gen", "proposals.json"), "utf8")),
    "propose equals the training run's proposals",
  );
  // The extra "shard" key does not disturb eval.
  const { code, out: lines } = await capture(() =>
    main([
      "eval",
      "--gt",
      path.join(fx.data, "actionformer", "annotations", "thumos14.json"),
      "--pred",
      at("predict")("3-1"),
      "--json",
    ])
  );
  assert.equal(code, 0);
  assert.equal(JSON.parse(lines.at(-1)!).mAP.length, 7);
});

async function runErr(args: string[], env: Record<string, string> = {}): Promise<string[]> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, ...args],
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr).trim().split("\n").filter((l) =>
    !l.startsWith("backend ")
  );
  assert.equal(r.code, 2, `${args.join(" ")}: ${err.join("\n")}`);
  return err;
}

Deno.test("predict --class-scores keeps the classes the file lists per video, the rest as they are", async () => {
  const fx = await getFixture();
  const out = path.join(fx.dir, "fusion");
  await fs.mkdir(out, { recursive: true });
  const plain = path.join(out, "plain.json");
  await cli([...predictArgs(fx), "--out", plain]);
  const all = JSON.parse(await Deno.readTextFile(plain)).results as Record<
    string,
    { label: string }[]
  >;
  const vids = Object.keys(all).filter((v) => all[v].length > 0);
  assert.ok(vids.length >= 2);
  // The first video: one class allowed; the second: a class the student never predicts there.
  const keepLabel = all[vids[0]][0].label;
  const scores = path.join(out, "classes.json");
  await Deno.writeTextFile(
    scores,
    JSON.stringify({
      results: {
        [vids[0]]: [{ label: keepLabel, score: 0.9, segment: [0, 1] }],
        [vids[1]]: [{ label: "no such class here", score: 0.9, segment: [0, 1] }],
      },
    }),
  );
  const fused = path.join(out, "fused.json");
  await cli([...predictArgs(fx), "--class-scores", scores, "--out", fused]);
  const got = JSON.parse(await Deno.readTextFile(fused)).results as typeof all;
  assert.deepEqual(got[vids[0]], all[vids[0]].filter((d) => d.label === keepLabel));
  assert.deepEqual(got[vids[1]] ?? [], []);
  for (const v of vids.slice(2)) assert.deepEqual(got[v], all[v]);
  // A missing class-scores file fails before any work.
  const { code } = await capture(() =>
    main([...predictArgs(fx), "--class-scores", path.join(out, "missing.json"), "--out", fused])
  );
  assert.equal(code, 2);
});

Deno.test("shard: bad specs, missing or duplicated videos and mismatched fingerprints are one-line errors, exit 2", async () => {
  const fx = await getFixture();
  const out = path.join(fx.dir, "errors");
  const base = predictArgs(fx);
  const f = (n: string) => path.join(out, n);
  for (const i of [0, 1, 2]) await cli([...base, "--out", f(`s${i}.json`), "--shard", `${i}/3`]);
  await cli([...base, "--out", f("raw1.json"), "--shard", "1/3", "--weights", "raw"]);
  await cli([...base, "--out", f("cap1.json"), "--shard", "1/3", "--option", "maxSegNum=5"]);
  const doc1 = JSON.parse(await fs.readFile(f("s1.json"), "utf8"));
  // shard 1's file relabelled as shard 2: its videos are then duplicated, shard 1 missing
  await fs.writeFile(
    f("fake2.json"),
    JSON.stringify({ ...doc1, shard: { ...doc1.shard, index: 2, spec: "2/3" } }),
  );
  const cases: [string[], RegExp, Record<string, string>?][] = [
    [[...base, "--out", f("x.json"), "--shard", "3/3"], /--shard: "3\/3" is out of range/],
    [[...base, "--out", f("x.json"), "--shard", "0/0"], /--shard: "0\/0" has no shards/],
    [[...base, "--out", f("x.json"), "--shard", "junk"], /--shard: cannot read "junk"/],
    [[...base, "--out", f("x.json")], /SLURM_ARRAY_TASK_ID="a"/, {
      SLURM_ARRAY_TASK_ID: "a",
      SLURM_ARRAY_TASK_COUNT: "2",
    }],
    [[...base, "--out", f("x.json"), "--shard-count", "2"], /JOB_COMPLETION_INDEX: "2\/2"/, {
      JOB_COMPLETION_INDEX: "2",
    }],
    [
      ["merge", "--out", f("m.json"), f("s0.json"), f("s2.json")],
      /6 of 16 videos missing \(no file for shard 1\/3\)|videos missing/,
    ],
    [
      ["merge", "--out", f("m.json"), f("s0.json"), f("s1.json"), f("s2.json"), f("s1.json")],
      /shard 1\/3 given twice/,
    ],
    [
      ["merge", "--out", f("m.json"), f("s0.json"), f("s1.json"), f("fake2.json")],
      /is also in .*duplicated video/,
    ],
    [
      ["merge", "--out", f("m.json"), f("s0.json"), f("raw1.json"), f("s2.json")],
      /fingerprint .* differs .*weights "raw" vs "ema"/,
    ],
    [
      ["merge", "--out", f("m.json"), f("s0.json"), f("cap1.json"), f("s2.json")],
      /fingerprint .* differs .*maxSegNum/,
    ],
    [
      ["merge", "--out", f("m.json"), path.join(fx.dir, "gen", "proposals.json")],
      /no "shard" metadata/,
    ],
  ];
  for (const [args, re, env] of cases) {
    const err = await runErr(args, env);
    assert.equal(err.length, 1, err.join("\n"));
    assert.match(err[0], /^error: /);
    assert.match(err[0], re);
  }
  await assert.rejects(fs.stat(f("m.json")), "no merged file after an error");
});

/** The code block after `<!-- recipe: NAME -->` in docs/SCALE.md. */
async function recipe(name: string): Promise<string> {
  const doc = await fs.readFile(path.join(ROOT, "docs", "SCALE.md"), "utf8");
  const m = new RegExp(`<!-- recipe: ${name} -->\\s*\\n\`\`\`\\w*\\n([\\s\\S]*?)\\n\`\`\``).exec(
    doc,
  );
  assert.ok(m, `recipe ${name} in docs/SCALE.md`);
  return m[1];
}

/** Runs a shell command line as the runner would, with Deno in place of `npx -y deno@2.9.6`. */
async function sh(
  shell: "bash" | "sh",
  script: string,
  cwd: string,
  env: Record<string, string>,
): Promise<string> {
  const r = await new Deno.Command(shell, {
    args: ["-c", script.replaceAll("npx -y deno@2.9.6", `"${Deno.execPath()}"`)],
    cwd,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `${script}\n${err}`);
  return new TextDecoder().decode(r.stdout);
}

Deno.test("scale recipes: the Slurm array and the Kubernetes Indexed Job of docs/SCALE.md, run as local processes, merge to the single-process result", async () => {
  const fx = await getFixture();
  // The shared volume: /shared (Slurm) and /data (Kubernetes) map to one temp folder holding
  // the data, the checkpoint and the code (the repository itself).
  const vol = path.join(fx.dir, "volume");
  await fs.mkdir(path.join(vol, "runs", "thumos", "student"), { recursive: true });
  await fs.symlink(fx.data, path.join(vol, "thumos14"));
  await fs.copyFile(fx.student, path.join(vol, "runs", "thumos", "student", "student.ckpt"));
  await fs.copyFile(fx.student, path.join(vol, "runs", "student.ckpt"));
  const single = path.join(fx.dir, "single.json");
  await cli([...predictArgs(fx), "--out", single]);
  const expected = await fs.readFile(single);
  const local = (text: string, prefix: string) =>
    text.replaceAll(`${prefix}/fustal-ts`, ROOT).replaceAll(`${prefix}/`, `${vol}/`);

  // Slurm: the array size from #SBATCH --array, each task with the variables Slurm sets.
  const slurm = local(await recipe("slurm-predict"), "/shared");
  const [, lo, hi] = /#SBATCH --array=(\d+)-(\d+)/.exec(slurm)!;
  for (let id = Number(lo); id <= Number(hi); id++) {
    await sh("bash", slurm, ROOT, {
      SLURM_ARRAY_JOB_ID: "77",
      SLURM_ARRAY_TASK_ID: String(id),
      SLURM_ARRAY_TASK_MIN: lo,
      SLURM_ARRAY_TASK_MAX: hi,
      SLURM_ARRAY_TASK_COUNT: String(Number(hi) - Number(lo) + 1),
    });
  }
  await sh("bash", local(await recipe("slurm-merge"), "/shared"), ROOT, {});
  const slurmOut = path.join(vol, "runs", "thumos", "predict");
  assert.equal((await fs.readdir(slurmOut)).filter((f) => f.startsWith("shard-")).length, 4);
  assert.ok(expected.equals(await fs.readFile(path.join(slurmOut, "predictions.json"))), "Slurm");

  // Kubernetes: `completions` pods, each with JOB_COMPLETION_INDEX, running the args line.
  const job = local(await recipe("k8s-predict"), "/data");
  const completions = Number(/completions: (\d+)/.exec(job)![1]);
  const argsLine = (y: string) => /args:\n\s*- (.*)\n/.exec(y)![1];
  const workingDir = /workingDir: (.*)/.exec(job)![1].trim();
  assert.equal(workingDir, ROOT);
  await fs.mkdir(path.join(vol, "runs", "predict"), { recursive: true });
  for (let i = 0; i < completions; i++) {
    await sh("sh", argsLine(job), workingDir, { JOB_COMPLETION_INDEX: String(i) });
  }
  await sh("sh", argsLine(local(await recipe("k8s-merge"), "/data")), workingDir, {});
  assert.ok(
    expected.equals(await fs.readFile(path.join(vol, "runs", "predict", "predictions.json"))),
    "Kubernetes",
  );
});

Deno.test("ablation: array indices map to cells; cells run alone merge into the local --ablate table", async () => {
  assert.deepEqual(cellOfIndex(0, [0, 1, 2]), { row: 1, seed: 0 });
  assert.deepEqual(cellOfIndex(5, [0, 1, 2]), { row: 2, seed: 1 });
  assert.deepEqual(cellOfIndex(11, [0, 1, 2]), { row: 4, seed: 2 });
  assert.throws(() => cellOfIndex(12, [0, 1, 2]), /out of range/);
  assert.deepEqual(ablationSelection({}, {}), { rows: [1, 2, 3, 4], seeds: [0, 1, 2] });
  assert.deepEqual(ablationSelection({ row: "3", seed: "7" }, { SLURM_ARRAY_TASK_ID: "4" }), {
    rows: [3],
    seeds: [7],
  });
  assert.deepEqual(ablationSelection({ seeds: "4,5" }, { JOB_COMPLETION_INDEX: "6" }), {
    rows: [3],
    seeds: [5],
  });
  assert.throws(() => ablationSelection({ row: "5" }, {}), /--row must be 1, 2, 3 or 4/);
  const sd = meanSd([0.2, 0.4]);
  assert.ok(Math.abs(sd.mean - 0.3) < 1e-12 && Math.abs(sd.sd - Math.SQRT1_2 * 0.2) < 1e-12);

  const fx = await getFixture();
  const tiny = [
    ...Object.entries(TINY_GENERATOR).flatMap((
      [k, v],
    ) => ["--generator-option", `${k}=${JSON.stringify(v)}`]),
    ...Object.entries(TINY_STUDENT).flatMap((
      [k, v],
    ) => ["--student-option", `${k}=${JSON.stringify(v)}`]),
    // The 4-iteration generator names few right classes: fused, the tiny students score 0.
    "--class-fusion",
    "none",
  ];
  // The local run: 4 rows x seeds 1, 2 in two processes side by side (rows 3-4 reuse row 2's
  // generator, row 3 row 4's first stage: the lanes keep that order).
  const localOut = path.join(fx.dir, "ablation-local");
  const { code, out: lines, err: logLines } = await capture(() =>
    main([
      "run",
      "--ablate",
      "--seeds",
      "1,2",
      "--root",
      fx.data,
      "--backend",
      "wasm",
      "--out",
      localOut,
      "--parallel",
      "2",
      ...tiny,
    ])
  );
  assert.equal(code, 0, logLines.join("\n"));
  assert.ok(
    logLines.some((l) => /^ablation: 8 cells in 2 processes side by side \(each: /.test(l)),
    logLines.join("\n"),
  );
  const table = lines.join("\n");
  assert.equal(table.split("\n").length, 6, table);
  assert.match(table, /mean over seeds 1, 2/);
  assert.match(table.split("\n")[5], /^\+ EMA distillation .* ± /);
  // Row 3 continued from row 4's switch checkpoint; the array cells below train it alone, and
  // every figure must come out the same.
  const started = logLines.filter((l) =>
    /^\[row 3 seed [12]\] started from .*switch\.ckpt at epoch 2/.test(l)
  );
  assert.equal(started.length, 2, logLines.join("\n"));

  // The Slurm recipe's array tasks, one process per cell (seeds 1,2 and tiny options for
  // the test), then its merge step.
  const vol = path.join(fx.dir, "ablation-volume");
  await fs.mkdir(vol, { recursive: true });
  await fs.symlink(fx.data, path.join(vol, "thumos14"));
  const script = (await recipe("slurm-ablation"))
    .replaceAll("/shared/fustal-ts", ROOT).replaceAll("/shared/", `${vol}/`)
    .replace("--seeds 0,1,2", "--seeds 1,2")
    .replace("run --ablate", `run --ablate ${tiny.map((a) => `'${a}'`).join(" ")}`);
  assert.match(script, /#SBATCH --array=0-11/);
  for (let id = 0; id < 8; id++) {
    await sh("bash", script, ROOT, {
      SLURM_ARRAY_TASK_ID: String(id),
      SLURM_ARRAY_TASK_MIN: "0",
      SLURM_ARRAY_TASK_COUNT: "8",
    });
  }
  const merge = (await recipe("slurm-ablation-merge")).replaceAll("/shared/fustal-ts", ROOT)
    .replaceAll("/shared/", `${vol}/`);
  const merged = await sh("bash", merge, ROOT, {});
  assert.equal(merged.trim(), table.trim());
  // Beyond the printed digits: every figure of every cell is the same number.
  let nonzero = 0;
  for (const seed of [1, 2]) {
    for (const dir of ["1-baseline", "2-cross-video", "3-prior-filter", "4-ema"]) {
      const read = async (root: string) =>
        JSON.parse(
          await fs.readFile(path.join(root, "ablation", `seed-${seed}`, dir, "cell.json"), "utf8"),
        ).result;
      const a = await read(localOut), b = await read(path.join(vol, "runs", "ablation"));
      assert.deepEqual(b.student.final, a.student.final, `seed ${seed} ${dir}`);
      assert.deepEqual(b.student.beforeSwitch, a.student.beforeSwitch);
      assert.deepEqual(b.generator.test, a.generator.test);
      assert.deepEqual(b.pseudoLabels, a.pseudoLabels);
      if (a.student.final.average > 0) nonzero++;
    }
  }
  assert.equal(nonzero, 8, "the tiny cells detect something (the comparison is not of zeros)");

  // A missing cell and a duplicated one are one-line errors.
  await fs.rm(path.join(vol, "runs", "ablation", "ablation", "seed-2", "3-prior-filter"), {
    recursive: true,
  });
  let err = await runErr(["ablation", "merge", path.join(vol, "runs", "ablation")]);
  assert.equal(err.length, 1);
  assert.match(err[0], /row 3 has no cell for seed 2/);
  err = await runErr([
    "ablation",
    "merge",
    path.join(vol, "runs", "ablation"),
    path.join(localOut, "ablation", "seed-1", "1-baseline"),
  ]);
  assert.match(err[0], /row 1 seed 1 given twice/);
  assert.throws(() => mergeAblationCells([]), /no cells/);
});
