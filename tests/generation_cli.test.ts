import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { main } from "../cli.ts";
import { synthesize } from "../datasets/synth.ts";
import { loadCheckpoint } from "../stages/generation/model.ts";

async function capture(f: () => Promise<number>): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  try {
    return { code: await f(), out };
  } finally {
    console.log = orig;
  }
}

Deno.test("generation: `generate` CLI writes proposals, detections, checkpoint and --json", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "gen-cli-"));
  await synthesize({ out: path.join(dir, "data"), like: "thumos14", dim: 16, videos: 16, seed: 0 });
  const out = path.join(dir, "out");
  const { code, out: lines } = await capture(() =>
    main([
      "generate",
      "--root",
      path.join(dir, "data"),
      "--out",
      out,
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
      "--no-cross-video",
      "--json",
    ])
  );
  assert.equal(code, 0);
  const last = JSON.parse(lines[lines.length - 1]);
  assert.deepEqual(Object.keys(last).slice(0, 4), ["train", "test", "seconds", "backend"]);
  assert.equal(last.backend, "wasm");
  assert.equal(last.test.mAP.length, 7);
  assert.equal(typeof last.train.proposals, "number");
  const props = JSON.parse(await fs.readFile(path.join(out, "proposals.json"), "utf8"));
  assert.equal(props.method, "[Generator]");
  const ids = Object.keys(props.results);
  assert.ok(ids.length > 0 && ids.every((id) => id.startsWith("video_validation")));
  const n = Object.values(props.results as Record<string, unknown[]>).reduce(
    (a, l) => a + l.length,
    0,
  );
  assert.equal(n, last.train.proposals);
  for (
    const l of Object.values(
      props.results as Record<string, { segment: number[]; label: string }[]>,
    )
  ) {
    for (const e of l) assert.ok(e.segment[0] <= e.segment[1] && typeof e.label === "string");
  }
  const test = JSON.parse(await fs.readFile(path.join(out, "generator_test.json"), "utf8"));
  assert.ok(Object.keys(test.results).every((id) => id.startsWith("video_test")));
  const { header } = await loadCheckpoint(path.join(out, "generator_best.ckpt"));
  assert.equal(header.inputDim, 16);
  await fs.rm(dir, { recursive: true });
});

Deno.test("generation: `generate` reports user errors as one line with exit 2", async () => {
  const { code } = await capture(() => main(["generate", "--iterations", "2"]));
  assert.equal(code, 2);
  const { code: c2 } = await capture(() =>
    main(["generate", "--root", "/nonexistent/x", "--batch", "x"])
  );
  assert.equal(c2, 2);
  const { code: c3 } = await capture(() => main(["generate", "--root", "/nonexistent/x"]));
  assert.equal(c3, 2);
  const { code: c4 } = await capture(() => main(["generate", "--root", "/tmp", "--batch", "0"]));
  assert.equal(c4, 2);
});
