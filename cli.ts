/**
 * The command-line front end: `deno run -A mod.ts [COMMAND] [FLAGS]`. Each command lives in
 * `cli/<name>.ts` and is imported only when used, so `eval` never loads tfjs.
 *
 * @module
 */
import process from "node:process";
import { isInputError } from "./lib/errors.ts";

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
 * Runs the CLI with `args` (without the program name) and returns the exit code: 0 on
 * success, 2 for a user error (one line on stderr), 1 for an internal error.
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
    if (isInputError(e)) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
