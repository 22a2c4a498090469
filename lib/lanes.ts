/**
 * Local lanes: independent jobs run as child processes of this toolkit's own command line
 * (`mod.ts`, same runtime), at most `lanes` at a time, in dependency order. The ablation uses it
 * to keep every core busy with whole cells: on the 2-core machine of `bench/BENCH.md`, two cells
 * side by side on one core each finished in 325 s where one cell on both cores (the student's
 * worker pool) took 244 s, 1.5x the throughput (the pool's threads wait for each other at every
 * step).
 *
 * A job's stderr reaches this process's log line by line, prefixed with the job's label; its
 * stdout is discarded (a job reports through the files it writes). The first job that fails
 * stops the others (SIGTERM) and fails the whole run: exit code 2 becomes an
 * {@linkcode InputError} carrying the job's own one-line message. A SIGINT or SIGTERM to this
 * process stops the jobs before it exits, so no child keeps writing into a run folder whose lock
 * is gone.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { InputError } from "./errors.ts";

/** One job of {@linkcode runLanes}. */
export interface LaneJob {
  /** Unique id (dependencies name it). */
  id: string;
  /** Label prefixed to the job's log lines. */
  label: string;
  /** Ids of the jobs that must have finished before this one starts. */
  after: readonly string[];
  /** Relative cost, for the order: the longest chain of remaining work starts first. */
  weight: number;
  /** Command-line arguments after the entry module (e.g. `["ablation", "task"]`). */
  args: readonly string[];
  /** Written to the job's stdin, which is then closed. */
  input: string;
  /** Extra environment variables of the job. */
  env?: Readonly<Record<string, string>>;
}

/** The program and leading arguments that run this toolkit's CLI in a new process. */
export function cliCommand(): { cmd: string; args: string[] } {
  const entry = new URL("../mod.ts", import.meta.url);
  const script = entry.protocol === "file:" ? fileURLToPath(entry) : entry.href;
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  // Deno: the same binary, every permission (the parent needed them too: -A is the documented
  // way to run the toolkit). Bun: its binary runs the module directly.
  if (deno) return { cmd: deno.execPath(), args: ["run", "-A", script] };
  return { cmd: process.execPath, args: [script] };
}

/** Orders jobs by their longest chain of work to the end (heaviest first), ties as given. */
function priorities(jobs: readonly LaneJob[]): Map<string, number> {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const next = new Map<string, string[]>(jobs.map((j) => [j.id, []]));
  for (const j of jobs) {
    for (const d of j.after) {
      if (!byId.has(d)) throw new Error(`lanes: job ${j.id} waits for unknown job ${d}`);
      next.get(d)!.push(j.id);
    }
  }
  const memo = new Map<string, number>();
  const chain = (id: string, depth = 0): number => {
    if (depth > jobs.length) throw new Error(`lanes: the jobs' dependencies form a cycle`);
    const have = memo.get(id);
    if (have !== undefined) return have;
    const v = byId.get(id)!.weight +
      Math.max(0, ...next.get(id)!.map((n) => chain(n, depth + 1)));
    memo.set(id, v);
    return v;
  };
  for (const j of jobs) chain(j.id);
  return memo;
}

/**
 * Runs `jobs` in child processes of the CLI ({@linkcode cliCommand}), at most `lanes` at once,
 * each after the jobs it names in `after`. Resolves when every job exited with code 0.
 */
export async function runLanes(
  jobs: readonly LaneJob[],
  lanes: number,
  log: (line: string) => void,
  command: { cmd: string; args: string[] } = cliCommand(),
): Promise<void> {
  const prio = priorities(jobs);
  const pending = [...jobs];
  const done = new Set<string>();
  const running = new Map<string, { child: ChildProcess; exit: Promise<void> }>();
  // Set from the children's callbacks (a holder: the compiler does not follow those writes).
  const state: { failure: Error | null } = { failure: null };

  let started = 0;
  const start = (job: LaneJob) => {
    const t0 = performance.now();
    log(`[${job.label}] started (${++started}/${jobs.length})`);
    const child = spawn(command.cmd, [...command.args, ...job.args], {
      stdio: ["pipe", "ignore", "pipe"],
      env: { ...process.env, ...job.env },
    });
    const tail: string[] = [];
    let buf = "";
    const emit = (line: string) => {
      if (line.trim() === "") return;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      log(`[${job.label}] ${line}`);
    };
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      buf += chunk;
      const lines = buf.split(/\r?\n|\r/);
      buf = lines.pop() ?? "";
      lines.forEach(emit);
    });
    child.stdin!.on("error", () => {}); // a job that exits early closes its stdin
    child.stdin!.end(job.input);
    const exit = new Promise<void>((resolve) => {
      child.on("error", (e) => {
        state.failure ??= new Error(`${job.label}: cannot start ${command.cmd} (${e.message})`);
        resolve();
      });
      child.on("close", (code, signal) => {
        emit(buf);
        running.delete(job.id);
        if (code === 0) {
          done.add(job.id);
          log(`[${job.label}] done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        } else if (!state.failure) {
          // A line of the job's own: InputError lines are its last; a crash prints more.
          const last = tail.filter((l) => !/^\s+at /.test(l)).at(-1) ?? "";
          state.failure = code === 2
            ? new InputError(`${job.label}: ${last.replace(/^error: /, "")}`)
            : new Error(
              `${job.label} failed (${
                signal ? `signal ${signal}` : `exit code ${code}`
              }); its log is above${last ? `, last line: ${last}` : ""}`,
            );
        }
        resolve();
      });
    });
    running.set(job.id, { child, exit });
  };

  const stopAll = () => {
    for (const { child } of running.values()) child.kill("SIGTERM");
  };
  const onSignal = (sig: string) => {
    stopAll();
    process.exit(sig === "SIGINT" ? 130 : 143);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    while ((pending.length > 0 || running.size > 0) && !state.failure) {
      const ready = pending
        .filter((j) => j.after.every((d) => done.has(d)))
        .sort((a, b) => prio.get(b.id)! - prio.get(a.id)!);
      for (const j of ready) {
        if (running.size >= lanes) break;
        pending.splice(pending.indexOf(j), 1);
        start(j);
      }
      if (running.size === 0) {
        if (pending.length > 0 && !state.failure) {
          throw new Error(`lanes: no job can start (${pending.map((j) => j.id).join(", ")})`);
        }
        break;
      }
      await Promise.race([...running.values()].map((r) => r.exit));
    }
    if (state.failure) {
      stopAll();
      await Promise.all([...running.values()].map((r) => r.exit));
      throw state.failure;
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
