// The three presets: one list of names for every stage and command, and the reduced
// `reference` configuration with the values it promises (the rest as published).
import assert from "node:assert/strict";
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { PRESET_NAMES } from "../lib/presets.ts";
import { generatorConfig, PAPER_PRESET } from "../stages/generation/presets.ts";
import { PAPER, PRESETS } from "../stages/training/presets.ts";
import { configFromOptions } from "../stages/training/plugin.ts";

Deno.test("presets: every stage defines every preset name", () => {
  assert.deepEqual(Object.keys(PRESETS).sort(), [...PRESET_NAMES].sort());
  for (const name of PRESET_NAMES) {
    assert.ok(generatorConfig(name).iterations >= 1);
    assert.ok(configFromOptions({ preset: name }).epochs >= 1);
  }
});

Deno.test("presets: reference = the published method at the reduced size", () => {
  const g = generatorConfig("reference");
  assert.deepEqual(
    [g.snippets, g.iterations, g.batch, g.hidden, g.lr],
    [256, 600, 16, 2048, 1e-4],
  );
  // Everything else of the generator as published.
  for (const k of ["weightDecay", "rEasy", "rHard", "m", "M", "dropEmbed", "tau"] as const) {
    assert.equal(g[k], PAPER_PRESET[k], k);
  }
  const s = configFromOptions({ preset: "reference" });
  assert.deepEqual(
    [s.dim, s.mlpDim, s.maxSeqLen, s.batch, s.lr, s.switchEpoch, s.epochs - s.switchEpoch],
    [128, 256, 2304, 8, 1e-4, 19, 12],
  );
  assert.equal(s.emaDecay, 0.997);
  // Its one measured departure from the published student (shared with `default`).
  assert.equal(s.dropUnionLabels, true);
  assert.equal(PAPER.dropUnionLabels, false);
  // The published teacher rule and network shape.
  for (const k of ["teacherThresh", "teacherWeakLabels", "levels", "headLayers", "sgpK"] as const) {
    assert.deepEqual(s[k], PAPER[k], k);
  }
});

Deno.test("presets: an unknown name is one error listing the names", () => {
  assert.throws(
    () => generatorConfig("tiny" as never),
    (e) => e instanceof InputError && /default, reference, paper/.test(e.message),
  );
  assert.throws(
    () => configFromOptions({ preset: "tiny" }),
    (e) => e instanceof InputError && /student: preset: unknown preset "tiny"/.test(e.message),
  );
});

Deno.test("presets: run --preset with an unknown name exits 2 with one line", async () => {
  const root = path.resolve(import.meta.dirname!, "..");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "mod.ts", "run", "--preset", "tiny", "--out", await Deno.makeTempDir()],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr).trim().split("\n");
  assert.equal(out.code, 2);
  assert.equal(err.length, 1, err.join("\n"));
  assert.match(err[0], /--preset: unknown preset "tiny" \(use default, reference, paper\)/);
});
