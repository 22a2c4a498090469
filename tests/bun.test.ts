import assert from "node:assert/strict";
import * as path from "node:path";

const ROOT = path.resolve(import.meta.dirname!, "..");
const DATA = path.resolve(ROOT, "../shared/data");

async function bunAvailable(): Promise<boolean> {
  try {
    await Deno.stat(path.join(ROOT, "node_modules/@tensorflow/tfjs"));
    const r = await new Deno.Command("npx", {
      args: ["-y", "bun@1.4.5", "--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.code === 0;
  } catch {
    return false;
  }
}

Deno.test("bun: `bun run mod.ts eval` gives the same figures as Deno", async (t) => {
  if (!(await bunAvailable())) {
    console.log("SKIP: bun or node_modules missing (run `npm install`; bun comes from npm)");
    return;
  }
  const out = await new Deno.Command("npx", {
    args: [
      "-y",
      "bun@1.4.5",
      "run",
      "mod.ts",
      "eval",
      "--gt",
      `${DATA}/thumos14_autoloc/autoloc_th14_test_gt.json`,
      "--pred",
      `${DATA}/thumos14_autoloc/autoloc_th14_test_results.json`,
      "--subset",
      "test",
      "--tiou",
      "0.1:0.9:0.1",
      "--json",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const j = JSON.parse(stdout.trim().split("\n").at(-1)!);
  assert.equal(j.average.toFixed(3), "0.217");
  await t.step("bad input exits 2 under bun too", async () => {
    const r = await new Deno.Command("npx", {
      args: [
        "-y",
        "bun@1.4.5",
        "run",
        "mod.ts",
        "eval",
        "--gt",
        "/nonexistent.json",
        "--pred",
        "x",
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 2);
    assert.match(new TextDecoder().decode(r.stderr), /nonexistent\.json: file not found/);
  });
});
