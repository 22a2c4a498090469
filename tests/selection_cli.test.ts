/** `select` on small files: every built-in filter, flags, output format and user errors. */
import assert from "node:assert/strict";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path.join(ROOT, "mod.ts"), "select", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const lastJson = (s: string) => JSON.parse(s.trim().split("\n").pop()!);

// Video "v": worked example 4 of docs/METHOD.md. Video "w": two classes overlapping each other.
const PROPOSALS = {
  method: "[Generator]",
  results: {
    v: [
      { label: "A", score: 0.5, segment: [10, 20] },
      { label: "A", score: 0.45, segment: [11, 19] },
      { label: "A", score: 0.3, segment: [12, 22] },
      { label: "A", score: 0.9, segment: [50, 52] },
      { label: "A", score: 0.41, segment: [51, 60] },
    ],
    w: [
      { label: "A", score: 0.7, segment: [0, 10] },
      { label: "B", score: 0.6, segment: [1, 10] },
      { label: "B", score: 0.2, segment: [30, 31] },
    ],
  },
};

Deno.test("selection: select CLI runs each built-in filter on a small file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal_select_" });
  try {
    const props = path.join(dir, "p.json");
    await Deno.writeTextFile(props, JSON.stringify(PROPOSALS));
    const out = path.join(dir, "o.json");
    const run = async (extra: string[]) => {
      const r = await cli(["--proposals", props, "--out", out, "--json", ...extra]);
      assert.equal(r.code, 0, r.stderr);
      const written = JSON.parse(await Deno.readTextFile(out));
      assert.equal(written.method, "[Generator]");
      return { summary: lastJson(r.stdout), results: written.results };
    };
    const segs = (l: { segment: number[] }[]) => l.map((d) => d.segment);

    // prior (default): example 4 keeps its first two; in w the A/B pair overlaps across
    // classes (IoU 0.9 each), the isolated B fails both tests.
    let r = await run([]);
    assert.deepEqual(r.summary, {
      ...r.summary,
      before: 8,
      after: 4,
      videos: 2,
      filter: "prior",
    });
    assert.deepEqual(segs(r.results.v), [[10, 20], [11, 19]]);
    assert.deepEqual(segs(r.results.w), [[0, 10], [1, 10]]);

    r = await run(["--gamma", "0", "--eta", "0.45"]); // only scores > 0.45 count now
    assert.deepEqual(segs(r.results.v), [[10, 20], [50, 52]]);
    assert.deepEqual(r.summary.options, { gamma: 0, eta: 0.45 });

    r = await run(["--filter", "score"]);
    assert.equal(r.summary.after, 6);
    assert.deepEqual(segs(r.results.v), [[10, 20], [11, 19], [50, 52], [51, 60]]);

    r = await run(["--filter", "topk", "--k", "1"]);
    assert.deepEqual(segs(r.results.v), [[50, 52]]);
    assert.deepEqual(segs(r.results.w), [[0, 10], [1, 10]]);

    r = await run(["--filter", "none"]);
    assert.deepEqual(r.results, PROPOSALS.results);

    // A video left empty keeps its key with an empty list.
    r = await run(["--eta", "0.95"]);
    assert.deepEqual(r.results, { v: [], w: [] });
    assert.equal(r.summary.emptyVideos, 2);

    // Text mode.
    const t = await cli(["--proposals", props, "--out", out]);
    assert.equal(t.code, 0);
    assert.match(t.stdout, /filter prior: 8 -> 4 proposals on 2 videos/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("selection: select CLI reports user errors in one line, exit 2, no output", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal_select_" });
  try {
    const props = path.join(dir, "p.json");
    await Deno.writeTextFile(props, JSON.stringify(PROPOSALS));
    const out = path.join(dir, "o.json");
    const cases: [string[], RegExp][] = [
      [["--proposals", props], /missing required flag --out/],
      [
        ["--proposals", props, "--out", out, "--k", "1.5", "--filter", "topk"],
        /--k must be a non-negative integer/,
      ],
      [["--proposals", props, "--out", out, "--gamma", "x"], /--gamma must be a number/],
      [["--proposals", path.join(dir, "nope.json"), "--out", out], /nope\.json: file not found/],
      [["--proposals", props, "--out", out, "--subset", "train"], /--subset and --tiou need --gt/],
      [
        ["--proposals", props, "--out", out, "--gt", props],
        /p\.json: missing "database" object/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split("\n").length, 1);
    }
    await Deno.writeTextFile(path.join(dir, "bad.json"), `{"results": {"v": [{"label": "A"}]}}`);
    const r = await cli(["--proposals", path.join(dir, "bad.json"), "--out", out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.json: video v detection 0: "score" is not a number/);
    await assert.rejects(() => Deno.stat(out));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
