/**
 * Small helpers every CLI command uses: flag parsing with one-line errors, the `--json`
 * convention (the last stdout line is one JSON object), and progress output that stays
 * quiet when stdout is not a terminal.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import process from "node:process";
import { InputError } from "./errors.ts";

/** Option table in `node:util` parseArgs form. */
export type FlagSpec = NonNullable<ParseArgsConfig["options"]>;

/** Parses `args` strictly; an unknown or malformed flag becomes an {@linkcode InputError}. */
export function parseFlags<T extends FlagSpec>(
  command: string,
  args: string[],
  options: T,
  allowPositionals = false,
): {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
} {
  try {
    const r = parseArgs({ args, options, strict: true, allowPositionals });
    return {
      values: r.values as Record<string, string | boolean | string[] | undefined>,
      positionals: r.positionals,
    };
  } catch (e) {
    throw new InputError(`${command}: ${(e as Error).message.split("\n")[0]}`);
  }
}

/** Reads a required string flag. */
export function requireFlag(
  command: string,
  values: Record<string, unknown>,
  name: string,
): string {
  const v = values[name];
  if (typeof v !== "string" || v === "") {
    throw new InputError(`${command}: missing required flag --${name}`);
  }
  return v;
}

/** Parses a numeric flag (undefined stays undefined). */
export function numberFlag(
  command: string,
  values: Record<string, unknown>,
  name: string,
): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n)) {
    throw new InputError(`${command}: --${name} must be a number, got "${v}"`);
  }
  return n;
}

/** Whether progress should be drawn (stdout is a TTY and not in `--json` mode). */
export function isInteractive(json: boolean): boolean {
  return !json && Boolean(process.stdout.isTTY);
}

/** Writes a line to stderr (progress and warnings never pollute the `--json` stdout). */
export function logErr(line: string): void {
  process.stderr.write(line + "\n");
}

/**
 * A one-line progress bar on stderr, redrawn in place; a no-op when not interactive.
 */
export class Progress {
  #label: string;
  #total: number;
  #on: boolean;
  #last = 0;
  constructor(label: string, total: number, enabled: boolean) {
    this.#label = label;
    this.#total = Math.max(1, total);
    this.#on = enabled;
  }
  /** Redraws at `done` of `total`, with an optional note (e.g. the current loss). */
  update(done: number, note = ""): void {
    if (!this.#on) return;
    const now = performance.now();
    if (done < this.#total && now - this.#last < 100) return;
    this.#last = now;
    const w = 28;
    const f = Math.min(1, done / this.#total);
    const bar = "#".repeat(Math.round(f * w)).padEnd(w, ".");
    process.stderr.write(`\r${this.#label} [${bar}] ${done}/${this.#total} ${note}\x1b[K`);
  }
  /** Ends the bar with a newline. */
  done(note = ""): void {
    if (!this.#on) return;
    this.update(this.#total, note);
    process.stderr.write("\n");
  }
}

/**
 * Parses repeated `KEY=VALUE` flags into an options object; VALUE is read as JSON when it is
 * valid JSON (numbers, booleans, arrays), else kept as a string.
 */
export function keyValueOptions(
  command: string,
  flag: string,
  list: string[] | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new InputError(`${command}: --${flag} must be KEY=VALUE, got "${kv}"`);
    const v = kv.slice(eq + 1);
    try {
      out[kv.slice(0, eq)] = JSON.parse(v);
    } catch {
      out[kv.slice(0, eq)] = v;
    }
  }
  return out;
}
