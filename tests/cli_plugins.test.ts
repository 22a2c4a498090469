// The `plugins` command lists plugins with kind, source, description and options, and every
// command accepts `--plugin`.
import assert from "node:assert/strict";
import * as path from "node:path";

const ROOT = path.resolve(import.meta.dirname!, "..");
const EXAMPLE = path.join(ROOT, "plugins/topk_filter.ts");

async function cli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path.join(ROOT, "mod.ts"), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli plugins: lists kind, source, description and options", async () => {
  const r = await cli(["plugins", "--kind", "filter", "--plugin", EXAMPLE, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
    kind: string;
    name: string;
    source: string;
    description?: string;
    options?: Record<string, string>;
  }[];
  assert.deepEqual(list.map((p) => p.name), ["prior", "score", "topk", "none", "topk-video"]);
  assert.ok(list.every((p) => p.kind === "filter" && p.description));
  const prior = list.find((p) => p.name === "prior")!;
  assert.equal(prior.source, "built-in");
  assert.match(prior.options!.gamma, /0\.2/);
  assert.equal(list.at(-1)!.source, EXAMPLE);
  const text = await cli(["plugins", "--kind", "generator"]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /cola-xv +\(built-in\)/);
  assert.match(text.stdout, /iterations +default 400, reference 600, paper 6000/);
  const bad = await cli(["plugins", "--kind", "nope"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--kind must be one of dataset, generator, filter, student/);
});

Deno.test("cli plugins: --plugin is accepted by every command", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal_cliplug_" });
  try {
    const gt = path.join(dir, "gt.json"), pred = path.join(dir, "pred.json");
    await Deno.writeTextFile(
      gt,
      JSON.stringify({
        database: { v: { subset: "test", annotations: [{ label: "a", segment: [0, 5] }] } },
      }),
    );
    await Deno.writeTextFile(
      pred,
      JSON.stringify({ results: { v: [{ label: "a", score: 1, segment: [0, 5] }] } }),
    );
    const r = await cli(["eval", "--plugin", EXAMPLE, "--gt", gt, "--pred", pred, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.trim().split("\n").at(-1)!).average, 1);
    // A module that cannot be imported is reported by every command alike (before any work).
    for (const cmd of ["eval", "synth", "inspect", "generate", "train", "predict", "select"]) {
      const b = await cli([cmd, "--plugin", path.join(dir, "missing.ts")]);
      assert.equal(b.code, 2, `${cmd}: ${b.stderr}`);
      assert.match(b.stderr, /plugin module .*missing\.ts: cannot import it/, cmd);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli plugins: generate --generator runs a registered generator plugin", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal_cligen_" });
  try {
    const data = path.join(dir, "data"), out = path.join(dir, "gen");
    const s = await cli(["synth", "--out", data, "--videos", "24", "--dim", "16"]);
    assert.equal(s.code, 0, s.stderr);
    const r = await cli([
      "generate",
      "--root",
      data,
      "--out",
      out,
      "--plugin",
      path.join(ROOT, "plugins/cas_threshold_generator.ts"),
      "--generator",
      "cas-threshold",
      "--option",
      "epochs=3",
      "--backend",
      "wasm",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.equal(summary.tiou.length, 7);
    const props = JSON.parse(await Deno.readTextFile(path.join(out, "proposals.json")));
    let n = 0;
    for (const list of Object.values(props.results) as unknown[][]) n += list.length;
    assert.equal(n, summary.train.proposals);
    const unknown = await cli(["generate", "--root", data, "--out", out, "--generator", "nope"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no generator plugin named "nope"/);

    // train --student NAME: a student plugin that detects class 0 over [0, 1] s per test video;
    // its checkpoint (a JSON file naming it) lets \`predict\` do the same on any video.
    const echo = path.join(dir, "echo_student.ts");
    await Deno.writeTextFile(
      echo,
      `export default { kind: "student", name: "echo", options: { score: "detection score" },
  train: async (ds, pseudo, ctx) => {
    const score = ctx.options.score ?? 1;
    await Deno.writeTextFile(ctx.outDir + "/echo.json",
      JSON.stringify({ student: "echo", label: ds.classes[0], score }));
    return {
      test: ds.list("test").map((m) => ({
        videoId: m.id, label: ds.classes[0], score, segment: [0, 1],
      })),
      info: { pseudo: pseudo.length, seed: ctx.seed },
    };
  },
  predict: async (checkpoint, videos, ctx) => {
    const c = JSON.parse(await Deno.readTextFile(checkpoint));
    const out = [];
    for await (const { meta, features } of videos) {
      if (!(features.length > 0)) throw new Error("no features for " + meta.id);
      const late = c.label === "late" ? meta.duration + 5 : 0;
      out.push({ videoId: meta.id, label: c.label, score: c.score, segment: [late, late + 1] });
    }
    ctx.log("echo: " + out.length + " video(s)");
    return out;
  },
};
`,
    );
    const stu = path.join(dir, "stu");
    const trainEcho = (to: string, score: string) =>
      cli([
        "train",
        "--pseudo-labels",
        path.join(out, "proposals.json"),
        "--root",
        data,
        "--out",
        to,
        "--plugin",
        echo,
        "--student",
        "echo",
        "--option",
        `score=${score}`,
        "--seed",
        "7",
        "--backend",
        "wasm",
        "--json",
      ]);
    const t = await trainEcho(stu, "0.5");
    assert.equal(t.code, 0, t.stderr);
    const m = JSON.parse(t.stdout.trim().split("\n").at(-1)!);
    assert.equal(m.info.pseudo, summary.train.proposals);
    assert.equal(m.info.seed, 7);
    const det = JSON.parse(await Deno.readTextFile(path.join(stu, "detections.json")));
    assert.equal(det.method, "[Student] echo");
    const dets = Object.values(det.results).flat() as { score: number }[];
    assert.equal(dets.length, 12);
    assert.ok(dets.every((d) => d.score === 0.5));
    // What the student plugin returns is checked at the registry boundary, as in `run`.
    const bad = await trainEcho(path.join(dir, "stu-bad"), '"high"');
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(
      bad.stderr,
      /student plugin "echo" .*: train \(test\) item 0 \(video .*\): score "high" is not a finite number/,
    );

    // predict --plugin: the checkpoint names its student; the plugin's predict detects.
    const ckpt = path.join(stu, "echo.json");
    const predict = (extra: string[]) =>
      cli(["predict", "--checkpoint", ckpt, "--backend", "wasm", ...extra]);
    const pred = path.join(dir, "pred.json");
    const af = path.join(data, "actionformer");
    const p = await predict(["--plugin", echo, "--root", af, "--out", pred, "--json"]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stderr, /echo: 12 video\(s\)/);
    assert.deepEqual(JSON.parse(p.stdout.trim().split("\n").at(-1)!), {
      videos: 12,
      detections: 12,
      out: pred,
    });
    const pd = JSON.parse(await Deno.readTextFile(pred));
    assert.equal(pd.method, "[Student] echo");
    assert.deepEqual(pd.results, det.results, "predict gives what training detected");
    // Feature files of the user's own videos go to the plugin too.
    const npy = [];
    for await (const e of Deno.readDir(path.join(af, "i3d_features"))) {
      if (e.name.endsWith(".npy")) {
        npy.push(path.join(data, "actionformer", "i3d_features", e.name));
      }
    }
    npy.sort();
    const pf = await predict(["--plugin", echo, "--features", npy[0], "--out", pred]);
    assert.equal(pf.code, 0, pf.stderr);
    const fd = JSON.parse(await Deno.readTextFile(pred));
    assert.deepEqual(Object.keys(fd.results), [path.basename(npy[0], ".npy")]);
    // Without the plugin, or with a student that cannot predict: one line, exit 2.
    const lines = (t: string) =>
      t.trim().split("\n").filter((l) => l.trim() && !/^backend |Warning|│|╭|╰/.test(l));
    const missing = await predict(["--root", af, "--out", pred]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.equal(lines(missing.stderr).length, 1, missing.stderr);
    assert.match(
      missing.stderr,
      /predict: the checkpoint's student "echo" is not registered \(load its module with --plugin/,
    );
    const notCkpt = path.join(dir, "not_ckpt.json");
    await Deno.writeTextFile(notCkpt, JSON.stringify({ results: {} }));
    const nc = await cli(["predict", "--checkpoint", notCkpt, "--root", af, "--out", pred]);
    assert.equal(nc.code, 2, nc.stderr);
    assert.match(nc.stderr, /not_ckpt\.json: not a student checkpoint/);
    // What the plugin's predict returns is checked like every plugin's detections.
    const late = path.join(dir, "late.json");
    await Deno.writeTextFile(late, JSON.stringify({ student: "echo", label: "late", score: 1 }));
    const lp = await cli([
      "predict",
      "--plugin",
      echo,
      "--checkpoint",
      late,
      "--root",
      af,
      "--out",
      pred,
    ]);
    assert.equal(lp.code, 2, lp.stderr);
    assert.match(
      lp.stderr,
      /student plugin "echo" .*: predict .*segment \[\S+, \S+\] starts after the video's end/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
