/**
 * The command-line front end: `deno run -A mod.ts [COMMAND] [FLAGS]`. Each command lives in
 * `cli/<name>.ts` and is imported only when used, so `eval` never loads tfjs.
 *
 * @module
 */
import process from "node:process";
import { userError } from "./lib/errors.ts";
import { pendingPluginCalls } from "./registry.ts";

/** What a command module (`cli/<name>.ts`) provides. */
export interface CommandModule {
  /** The command's `--help` text. */
  usage: string;
  /** Runs the command with its flags; resolves to the exit code. */
  run(args: string[]): Promise<number>;
}

/** Every command, by name, with its module loader. `run` is the default. */
export const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  run: { summary: "the whole FuSTAL pipeline (default)", load: () => import("./cli/run.ts") },
  eval: { summary: "detection mAP of a result file", load: () => import("./cli/eval.ts") },
  synth: { summary: "write the synthetic dataset", load: () => import("./cli/synth.ts") },
  inspect: { summary: "summarise a dataset folder", load: () => import("./cli/inspect.ts") },
  generate: {
    summary: "train the generator, write proposals",
    load: () => import("./cli/generate.ts"),
  },
  select: { summary: "filter proposals into pseudo labels", load: () => import("./cli/select.ts") },
  train: { summary: "train the student on pseudo labels", load: () => import("./cli/train.ts") },
  predict: {
    summary: "run a student checkpoint on features",
    load: () => import("./cli/predict.ts"),
  },
  propose: {
    summary: "proposals from a generator checkpoint",
    load: () => import("./cli/propose.ts"),
  },
  merge: { summary: "join the outputs of --shard runs", load: () => import("./cli/merge.ts") },
  ablation: {
    summary: "ablation cells: merge their tables",
    load: () => import("./cli/ablation.ts"),
  },
  plugins: {
    summary: "list plugins: kind, description, options",
    load: () => import("./cli/plugins.ts"),
  },
};

function help(): string {
  const rows = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(9)} ${v.summary}`);
  return `FuSTAL-TS: weakly-supervised temporal action localization\n\n` +
    `usage: deno run -A mod.ts [COMMAND] [FLAGS]   (COMMAND defaults to run)\n\n` +
    `commands:\n${rows.join("\n")}\n\n` +
    `deno run -A mod.ts COMMAND --help shows a command's flags.`;
}

/**
 * Runs the CLI as the program: sets the exit code when {@linkcode main} settles. When the
 * event loop runs dry while `main` is still pending, a promise can never settle (a plugin that
 * never resolves): that is reported on one line naming the pending plugin call, exit code 2.
 */
export function runProgram(args: string[]): void {
  let done = false;
  process.on("beforeExit", () => {
    if (done) return;
    done = true;
    const calls = pendingPluginCalls();
    process.stderr.write(
      calls.length
        ? `error: ${calls[calls.length - 1]} never settled (its promise cannot resolve: ` +
          `nothing is left to run); fix the plugin, or bound calls with --plugin-timeout\n`
        : `error: the command stopped with work pending (a promise that never settles)\n`,
    );
    process.exit(calls.length ? 2 : 1);
  });
  main(args).then((code) => {
    done = true;
    process.exitCode = code;
  }, (e) => {
    done = true;
    throw e; // a bug: the runtime prints it with its stack trace, exit code 1
  });
}

/**
 * Runs the CLI with `args` (without the program name) and returns the exit code: 0 on
 * success, 2 for a user error (one line on stderr), 3 for a diverged training run (one line),
 * 1 for an internal error.
 */
export async function main(args: string[]): Promise<number> {
  let [cmd, ...rest] = args;
  if (cmd === undefined || cmd.startsWith("-")) {
    if (cmd === "--help" || cmd === "-h") {
      console.log(help());
      return 0;
    }
    rest = args;
    cmd = "run";
  }
  if (cmd === "help") {
    console.log(help());
    return 0;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    process.stderr.write(`error: unknown command "${cmd}" (see --help)\n`);
    return 2;
  }
  try {
    const mod = await entry.load();
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(mod.usage);
      return 0;
    }
    return await mod.run(rest);
  } catch (e) {
    // One line for anything the user can fix (bad input, an unusable path, a full disk, a
    // diverged run); a bug keeps its stack trace.
    const u = userError(e);
    if (u) {
      process.stderr.write(`error: ${u.message.split("\n")[0]}\n`);
      return u.exitCode;
    }
    throw e;
  }
}
