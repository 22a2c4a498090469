// Local lanes (lib/lanes.ts): jobs in child processes, at most N at once, in dependency order;
// a failing job stops the others and fails the run with its own line.
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { cliCommand, type LaneJob, runLanes } from "../lib/lanes.ts";
import { InputError } from "../lib/errors.ts";

// Each job is `deno eval CODE`: the command's leading args are ["eval"], the job's args the code.
const DENO = { cmd: Deno.execPath(), args: ["eval"] };

function job(id: string, code: string, after: string[] = [], weight = 1): LaneJob {
  return { id, label: `job ${id}`, after, weight, args: [code], input: `input of ${id}` };
}

/** Code that appends "start ID" / "end ID" lines (with times) to `log`, sleeping `ms` between. */
function marks(log: string, id: string, ms: number): string {
  const w = (what: string) =>
    `Deno.writeTextFileSync(${
      JSON.stringify(log)
    }, "${what} ${id} " + (performance.timeOrigin + performance.now()) + "\\n", { append: true });`;
  return `${w("start")} await new Promise((r) => setTimeout(r, ${ms})); ${w("end")}`;
}

Deno.test("lanes: dependencies first, at most N at once, stdin and stderr relayed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal-lanes-" });
  const log = path.join(dir, "log.txt");
  const lines: string[] = [];
  await runLanes(
    [
      job("a", marks(log, "a", 300)),
      job("b", marks(log, "b", 50), ["a"]),
      job("c", marks(log, "c", 50)),
      job("d", marks(log, "d", 50), ["b", "c"]),
      job("e", `console.error("read: " + await new Response(Deno.stdin.readable).text());`),
    ],
    2,
    (l) => lines.push(l),
    DENO,
  );
  const events = (await fs.readFile(log, "utf8")).trim().split("\n").map((l) => {
    const [what, id, t] = l.split(" ");
    return { what, id, t: Number(t) };
  });
  const at = (what: string, id: string) => events.find((e) => e.what === what && e.id === id)!.t;
  assert.ok(at("start", "b") >= at("end", "a"), "b waits for a");
  assert.ok(at("start", "d") >= Math.max(at("end", "b"), at("end", "c")), "d waits for b and c");
  // Never more than two jobs between their start and end marks.
  const sorted = [...events].sort((x, y) => x.t - y.t);
  let live = 0;
  for (const e of sorted) {
    live += e.what === "start" ? 1 : -1;
    assert.ok(live <= 2, `at most 2 at once: ${JSON.stringify(sorted)}`);
  }
  assert.ok(lines.includes("[job e] read: input of e"), lines.join("\n"));
  assert.ok(lines.some((l) => /^\[job a\] started \(1\/5\)$/.test(l)), lines.join("\n"));
  assert.ok(lines.some((l) => /^\[job d\] done in \d+ s$/.test(l)), lines.join("\n"));
  await fs.rm(dir, { recursive: true });
});

Deno.test("lanes: a job's exit code 2 is its own one-line error; the others are stopped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fustal-lanes-" });
  const log = path.join(dir, "log.txt");
  const t0 = performance.now();
  const err = await runLanes(
    [
      job("slow", marks(log, "slow", 60_000)),
      job("bad", `console.error("error: data/x.json: not JSON"); Deno.exit(2);`),
      job("never", marks(log, "never", 10), ["bad"]),
    ],
    2,
    () => {},
    DENO,
  ).then(() => null, (e) => e);
  assert.ok(err instanceof InputError, String(err));
  assert.equal(err.message, "job bad: data/x.json: not JSON");
  assert.ok(performance.now() - t0 < 30_000, "the slow job was stopped, not waited for");
  const seen = await fs.readFile(log, "utf8").catch(() => "");
  assert.doesNotMatch(seen, /end slow|never/);

  // Another exit code is a failure that points to the log.
  const crash = await runLanes(
    [job("x", `console.error("boom"); Deno.exit(3);`)],
    1,
    () => {},
    DENO,
  )
    .then(() => null, (e) => e);
  assert.ok(crash instanceof Error && !(crash instanceof InputError));
  assert.match(crash.message, /^job x failed \(exit code 3\); its log is above, last line: boom$/);
  await fs.rm(dir, { recursive: true });
});

Deno.test("lanes: unknown dependencies and cycles are refused; the CLI command runs mod.ts", async () => {
  await assert.rejects(runLanes([job("a", "", ["z"])], 1, () => {}, DENO), /unknown job z/);
  await assert.rejects(
    runLanes([job("a", "", ["b"]), job("b", "", ["a"])], 1, () => {}, DENO),
    /cycle/,
  );
  const { cmd, args } = cliCommand();
  assert.equal(cmd, Deno.execPath());
  assert.deepEqual(args.slice(0, 2), ["run", "-A"]);
  assert.match(args[2], /mod\.ts$/);
});
