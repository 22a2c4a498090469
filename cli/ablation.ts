/**
 * `ablation`: the ablation's cells as independent array tasks. `ablation merge DIR...` joins
 * the cells written by `run --ablate --row K --seed S` (or by array tasks) into the table a
 * local `run --ablate` prints; `ablation cells` lists the array index of every cell.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";
import { parseFlags } from "../lib/cli_util.ts";
import {
  ABLATION_ROWS,
  cellOfIndex,
  DEFAULT_ABLATION_SEEDS,
  formatAblationTable,
  mergeAblationCells,
  readAblationCells,
  runAblationTask,
} from "../stages/ablation.ts";
import process from "node:process";
import { text } from "node:stream/consumers";
import { ablationJson } from "./run.ts";

/** Usage text of `ablation`. */
export const usage = `usage: deno run -A mod.ts ablation merge DIR... [--json]
       deno run -A mod.ts ablation cells [--seeds LIST]
       deno run -A mod.ts ablation task < TASK.json

  merge   reads every cell (cell.json) in or under the folders (run folders of
          run --ablate, whole or one cell each), checks they share one settings
          fingerprint, that no (row, seed) is given twice and that every row has every
          seed, and prints the table of a local run --ablate (mean ± sd over seeds).
          --json: last stdout line {"cells", "rows"} as run --ablate --json.
  cells   prints "INDEX ROW SEED" for every array index (rows vary fastest); an array of
          4 x seeds tasks runs the whole ablation with run --ablate [--seeds LIST].
  task    runs one cell described by the JSON object on stdin: what run --ablate
          --parallel N hands to each of its child processes.`;

/** Runs `ablation`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "merge") {
    const { values, positionals } = parseFlags("ablation merge", rest, {
      json: { type: "boolean" },
    }, true);
    if (positionals.length === 0) {
      throw new InputError("ablation merge: give the ablation folders (or cell folders)");
    }
    const cells = mergeAblationCells(await readAblationCells(positionals));
    if (values.json) console.log(JSON.stringify(ablationJson(cells)));
    else console.log(formatAblationTable(cells));
    return 0;
  }
  if (sub === "cells") {
    const { values } = parseFlags("ablation cells", rest, { seeds: { type: "string" } });
    const seeds = typeof values.seeds === "string"
      ? values.seeds.split(",").map((x) => {
        if (!/^\d{1,9}$/.test(x.trim())) {
          throw new InputError(`ablation cells: --seeds must list whole numbers, got "${x}"`);
        }
        return Number(x);
      })
      : [...DEFAULT_ABLATION_SEEDS];
    const n = ABLATION_ROWS.length * seeds.length;
    for (let i = 0; i < n; i++) {
      const c = cellOfIndex(i, seeds);
      console.log(`${i} ${c.row} ${c.seed}`);
    }
    return 0;
  }
  if (sub === "task") {
    parseFlags("ablation task", rest, {});
    let task: unknown;
    try {
      task = JSON.parse(await text(process.stdin));
    } catch (e) {
      throw new InputError(`ablation task: stdin is not JSON (${(e as Error).message})`);
    }
    await runAblationTask(task);
    return 0;
  }
  throw new InputError(
    `ablation: unknown subcommand "${sub ?? ""}" (use merge, cells or task; see --help)`,
  );
}
