import assert from "node:assert/strict";
import * as path from "node:path";
import { SHARED_DATA, skipWithoutSharedData } from "./shared_data.ts";

const ROOT = path.resolve(import.meta.dirname!, "..");
const DATA = SHARED_DATA;

async function cli(args: string[], cwd = ROOT) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path.join(ROOT, "mod.ts"), ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

const GT = `${DATA}/thumos14_autoloc/autoloc_th14_test_gt.json`;
const PRED = `${DATA}/thumos14_autoloc/autoloc_th14_test_results.json`;

Deno.test("cli eval: --json last line and table", {
  ignore: skipWithoutSharedData("cli eval --json"),
}, async () => {
  const r = await cli(["eval", "--gt", GT, "--pred", PRED, "--subset", "test", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const last = r.stdout.trim().split("\n").at(-1)!;
  const j = JSON.parse(last);
  assert.deepEqual(j.tiou, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  assert.equal(j.mAP[0].toFixed(3), "0.467");
  assert.equal(Object.keys(j.perClass).length, 20);
  const t = await cli(["eval", "--gt", GT, "--pred", PRED, "--dataset", "activitynet"]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /0\.95/);
});

Deno.test("cli eval: bad input gives one line naming the file, exit 2", {
  ignore: skipWithoutSharedData("cli eval bad input"),
}, async () => {
  const dir = await Deno.makeTempDir();
  const bad = path.join(dir, "bad.json");
  await Deno.writeTextFile(bad, "{not json");
  const noResults = path.join(dir, "nores.json");
  await Deno.writeTextFile(noResults, JSON.stringify({ database: {} }));
  const badSeg = path.join(dir, "seg.json");
  await Deno.writeTextFile(
    badSeg,
    JSON.stringify({ results: { v: [{ label: "a", score: 1, segment: [1] }] } }),
  );
  const cases: [string[], RegExp][] = [
    [
      ["eval", "--gt", path.join(dir, "missing.json"), "--pred", PRED],
      /missing\.json: file not found/,
    ],
    [["eval", "--gt", bad, "--pred", PRED], /bad\.json: invalid JSON/],
    [["eval", "--gt", GT, "--pred", noResults], /nores\.json: missing "results"/],
    [["eval", "--gt", noResults, "--pred", PRED], /nores\.json: no ground-truth annotations/],
    [["eval", "--gt", PRED, "--pred", PRED], /missing "database"/],
    [["eval", "--gt", GT, "--pred", badSeg], /seg\.json: video v detection 0: segment/],
    [["eval", "--gt", GT, "--pred", PRED, "--subset", "nope"], /unknown subset "nope"/],
    [["eval", "--gt", GT], /missing required flag --pred/],
    [["eval", "--gt", GT, "--pred", PRED, "--tiou", "x"], /--tiou/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
  }
});

Deno.test("mod.ts imported by file URL from a folder without deno.json", {
  ignore: skipWithoutSharedData("mod.ts by file URL"),
}, async () => {
  const dir = await Deno.makeTempDir();
  const script = path.join(dir, "user.ts");
  const url = new URL(`file://${path.join(ROOT, "mod.ts")}`).href;
  await Deno.writeTextFile(
    script,
    `import { evaluateFiles } from "${url}";\n` +
      `const r = await evaluateFiles(${JSON.stringify(GT)}, ${
        JSON.stringify(PRED)
      }, { subset: "test" });\n` +
      `console.log(r.average.toFixed(3));\n`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", script],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  // 0.1:0.7 average of AutoLoc against its own GT
  assert.equal(stdout.trim(), "0.277");
});
