/**
 * The fuzz suite: seeded bad inputs against every command (see `cases.ts` for the classes).
 *
 * In-process part: two runner processes (one per CI core) run the 200+ cases through the
 * CLI's `main`; per case it asserts exit code 2, exactly one `error:` line (the last stderr
 * line) naming the file or flag, no `at ` stack frames, nothing written or left half written
 * in the case's folder, a wall time under {@linkcode CASE_MS} and an RSS growth under
 * {@linkcode CASE_RSS} (the bounds are hang and bomb guards, not speed measurements: the cases
 * take milliseconds, a zip member inflating past its declared size would add 64 MiB).
 *
 * Subprocess part: real `deno run` processes for what only a process shows: the exit code, a
 * run-folder lock held by a live process, a stale lock, a plugin whose promise never settles,
 * a diverging run, and a plugin loaded from a URL leaving `deno.lock` untouched.
 *
 * Seed: `FUZZ_SEED` (default 13).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type { CaseResult } from "./runner.ts";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 13);
/** Wall-time bound of one in-process case (ms). */
const CASE_MS = 20_000;
/** RSS growth bound of one in-process case (bytes). */
const CASE_RSS = 32 << 20;
/** Peak RSS bound of a runner process (bytes). */
const RUNNER_RSS = 1 << 30;
const SHARDS = 2;

function deno(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdout: "piped",
    stderr: "piped",
  });
}

function lines(b: Uint8Array): string[] {
  return new TextDecoder().decode(b).split("\n").filter((l) => l.trim() !== "");
}

function assertOneLine(stderr: string[], names: string, where: string): void {
  const errors = stderr.filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, `${where}: one error line expected, got:\n${stderr.join("\n")}`);
  assert.equal(stderr[stderr.length - 1], errors[0], `${where}: the error must be the last line`);
  assert.ok(errors[0].includes(names), `${where}: "${errors[0]}" does not name ${names}`);
  const frames = stderr.filter((l) => /^\s*at\s/.test(l));
  assert.equal(frames.length, 0, `${where}: stack frames on stderr:\n${stderr.join("\n")}`);
}

Deno.test("fuzz: 200+ seeded bad inputs, each exit 2 with one line naming the file or flag, nothing written", async () => {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), "fustal-fuzz-"));
  try {
    const runs = Array.from({ length: SHARDS }, (_, s) =>
      deno([
        "run",
        "-A",
        "tests/fuzz/runner.ts",
        String(SEED),
        String(s),
        String(SHARDS),
        path.join(work, `shard-${s}`),
        path.join(work, `results-${s}.json`),
      ]).output());
    const outs = await Promise.all(runs);
    outs.forEach((o, s) => {
      assert.equal(o.code, 0, `runner ${s} failed:\n${new TextDecoder().decode(o.stderr)}`);
    });
    const results: CaseResult[] = [];
    let total = 0;
    for (let s = 0; s < SHARDS; s++) {
      const r = JSON.parse(await fs.readFile(path.join(work, `results-${s}.json`), "utf8"));
      total = r.total;
      assert.ok(r.peakRss < RUNNER_RSS, `runner ${s} peak RSS ${r.peakRss} bytes`);
      results.push(...r.results);
    }
    assert.equal(results.length, total);
    const bad = results.filter((r) => r.expectExit !== 0);
    const classes = new Set(bad.map((r) => r.cls));
    assert.ok(bad.length >= 200, `only ${bad.length} bad-input cases`);
    assert.ok(classes.size >= 12, `only ${classes.size} classes`);
    const failures: string[] = [];
    for (const r of results) {
      const where = `${r.id} (${r.what})`;
      try {
        assert.equal(r.exit, r.expectExit, `${where}: exit ${r.exit}\n${r.stderr.join("\n")}`);
        if (r.expectExit !== 0) {
          assertOneLine(r.stderr, r.names, where);
          // Only commands that report their backend or dataset before failing log more.
          if (!["predict", "generate"].includes(r.command)) {
            assert.equal(r.stderr.length, 1, `${where}: extra stderr:\n${r.stderr.join("\n")}`);
          }
          assert.deepEqual(r.changed, [], `${where}: wrote ${r.changed.join(", ")}`);
        }
        assert.ok(r.ms < CASE_MS, `${where}: ${r.ms.toFixed(0)} ms`);
        assert.ok(r.rssGrowth < CASE_RSS, `${where}: RSS grew ${r.rssGrowth} bytes`);
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    assert.deepEqual(failures, [], `${failures.length} fuzz case(s) failed`);
    const ms = results.map((r) => r.ms).sort((a, b) => a - b);
    console.log(
      `fuzz seed ${SEED}: ${bad.length} bad inputs in ${classes.size} classes + ` +
        `${results.length - bad.length} controls; slowest case ${
          ms[ms.length - 1].toFixed(0)
        } ms, ` +
        `largest RSS growth ${
          (Math.max(...results.map((r) => r.rssGrowth)) / 2 ** 20).toFixed(1)
        } MiB`,
    );
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
});

Deno.test("fuzz (processes): exit codes, the run-folder lock, a never-settling plugin, divergence", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "fustal-fuzz-proc-"));
  try {
    // 1. A real process: exit 2, one line, no stack trace.
    let o = await deno(["run", "-A", "mod.ts", "eval", "--gt", `${dir}/none.json`, "--pred", "x"])
      .output();
    assert.equal(o.code, 2);
    assert.deepEqual(lines(o.stderr).length, 1);
    assertOneLine(lines(o.stderr), "none.json", "eval of a missing file");

    // 2. A lock held by a live process (this test's own pid, this host): fails at once.
    const out = path.join(dir, "run");
    await fs.mkdir(out);
    const lock = path.join(out, ".fustal.lock");
    await fs.writeFile(
      lock,
      JSON.stringify({ pid: Deno.pid, host: os.hostname(), command: "generate", since: "now" }),
    );
    o = await deno(["run", "-A", "mod.ts", "synth", "--out", out, "--videos", "2", "--dim", "4"])
      .output();
    assert.equal(o.code, 2);
    assertOneLine(lines(o.stderr), `pid ${Deno.pid}`, "second writer");
    assert.deepEqual(await fs.readdir(out), [".fustal.lock"]);

    // 3. A stale lock (its pid is gone) is taken over with a warning; released at the end.
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    await fs.writeFile(
      lock,
      JSON.stringify({ pid: gone.pid, host: os.hostname(), command: "synth", since: "then" }),
    );
    o = await deno(["run", "-A", "mod.ts", "synth", "--out", out, "--videos", "2", "--dim", "4"])
      .output();
    assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    assert.ok(lines(o.stderr).some((l) => l.includes("stale lock") && l.includes(`${gone.pid}`)));
    assert.ok(!(await fs.readdir(out)).includes(".fustal.lock"));

    // 4. A plugin whose promise never settles, no timeout: named, exit 2, no trace.
    await fs.writeFile(
      path.join(dir, "p.json"),
      JSON.stringify({ results: { v1: [{ label: "A", score: 1, segment: [0, 1] }] } }),
    );
    await fs.writeFile(
      path.join(dir, "hang.ts"),
      `export default { kind: "filter", name: "hangs", apply: () => new Promise(() => {}) };\n`,
    );
    o = await deno([
      "run",
      "-A",
      "mod.ts",
      "select",
      "--proposals",
      `${dir}/p.json`,
      "--out",
      `${dir}/sel.json`,
      "--filter",
      "hangs",
      "--plugin",
      `${dir}/hang.ts`,
    ]).output();
    assert.equal(o.code, 2, new TextDecoder().decode(o.stderr));
    assertOneLine(lines(o.stderr), 'filter plugin "hangs"', "never-settling plugin");
    assert.ok(lines(o.stderr)[0].includes("never settled"));
    assert.ok(!(await fs.readdir(dir)).includes("sel.json"));

    // 5. Divergence: the stage, the step and the loss, a lower --lr, exit 3, no outputs.
    o = await deno(["run", "-A", "mod.ts", "synth", "--out", `${dir}/data`, "--videos", "4"])
      .output();
    assert.equal(o.code, 0);
    o = await deno([
      "run",
      "-A",
      "mod.ts",
      "generate",
      "--root",
      `${dir}/data`,
      "--out",
      `${dir}/gen`,
      "--iterations",
      "4",
      "--eval-every",
      "4",
      "--lr",
      "1e30",
      "--backend",
      "cpu",
    ]).output();
    assert.equal(o.code, 3, new TextDecoder().decode(o.stderr));
    const err = lines(o.stderr);
    assertOneLine(err, "generator: training diverged at step", "divergence");
    assert.match(
      err[err.length - 1],
      /loss (NaN|-?Infinity|[0-9.e+-]+).*lower learning rate \(--lr\)/,
    );
    const left = await fs.readdir(`${dir}/gen`).catch(() => [] as string[]);
    assert.deepEqual(left.filter((f) => !f.endsWith(".ckpt")), [], `left ${left}`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

Deno.test("fuzz (processes): a plugin loaded from a URL does not edit the project's deno.lock", async () => {
  const proj = await fs.mkdtemp(path.join(os.tmpdir(), "fustal-lock-"));
  const ac = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: ac.signal, onListen() {} },
    () =>
      new Response(
        `export default { kind: "filter", name: "from-url", apply: (p) => p.slice(0, 1) };\n`,
        { headers: { "content-type": "application/typescript" } },
      ),
  );
  const realLock = await fs.readFile(path.join(ROOT, "deno.lock"));
  try {
    // A copy of the project: `deno run FILE` takes its config (and lock file) from the folder
    // of FILE, so the copy's deno.lock is the one in effect and this repository's stays clean.
    await fs.cp(ROOT, proj, {
      recursive: true,
      filter: (src) =>
        !/[\/](node_modules|\.git|runs|\.cache)([\/]|$)/.test(
          path.relative(path.dirname(ROOT), src),
        ),
    });
    const props = path.join(proj, "p.json");
    await fs.writeFile(
      props,
      JSON.stringify({
        results: {
          v1: [{ label: "A", score: 1, segment: [0, 1] }, {
            label: "A",
            score: 0.5,
            segment: [2, 3],
          }],
        },
      }),
    );
    const select = (extra: string[]) =>
      deno([
        "run",
        "-A",
        path.join(proj, "mod.ts"),
        "select",
        "--proposals",
        props,
        "--out",
        path.join(proj, "sel.json"),
        ...extra,
      ], { cwd: proj }).output();
    // Once without a plugin: whatever the runtime itself records happens here.
    let o = await select(["--filter", "none"]);
    assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    const before = await fs.readFile(path.join(proj, "deno.lock"));
    const url = `http://127.0.0.1:${server.addr.port}/plugin.ts`;
    o = await select(["--filter", "from-url", "--plugin", url]);
    assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    // The plugin ran (it keeps one proposal) ...
    const sel = JSON.parse(await fs.readFile(path.join(proj, "sel.json"), "utf8"));
    assert.equal(sel.results.v1.length, 1);
    // ... and the lock file is byte for byte what it was, without the plugin's URL.
    const after = await fs.readFile(path.join(proj, "deno.lock"));
    assert.ok(!after.toString().includes("127.0.0.1"), "the plugin URL was recorded");
    assert.deepEqual(after, before);
    // This repository's own lock file was not in play either.
    assert.deepEqual(await fs.readFile(path.join(ROOT, "deno.lock")), realLock);
  } finally {
    ac.abort();
    await server.finished;
    await fs.rm(proj, { recursive: true, force: true });
    // Whatever happened, leave this repository's lock file as it was.
    const now = await fs.readFile(path.join(ROOT, "deno.lock"));
    if (!now.equals(realLock)) await fs.writeFile(path.join(ROOT, "deno.lock"), realLock);
  }
});
