/**
 * File helpers shared by every stage: atomic writes (temp file + rename, so a killed run never
 * leaves half a file), JSON reading with one-line errors that name the file, the check of
 * output paths before any work starts ({@linkcode checkOutputs}), and the run-folder lock
 * ({@linkcode lockRunFolder}: one writer per output folder).
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as os from "node:os";
import process from "node:process";
import { fsReason, InputError } from "./errors.ts";

let tmpCounter = 0;

/** Writes `data` to `file` atomically: a temp file in the same folder, then a rename. */
export async function atomicWrite(file: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}-${tmpCounter++}`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** Writes `value` as JSON atomically (compact unless `pretty`). */
export function atomicWriteJson(file: string, value: unknown, pretty = false): Promise<void> {
  return atomicWrite(file, JSON.stringify(value, null, pretty ? 1 : undefined) + "\n");
}

/** Reads a whole file, turning "not found"/"permission" into a one-line {@linkcode InputError}. */
export async function readBytes(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "ENOENT"
      ? "file not found"
      : code === "EISDIR"
      ? "is a directory, expected a file"
      : fsReason(e) ?? `cannot read (${(e as Error).message.split("\n")[0]})`;
    throw new InputError(`${file}: ${why}`);
  }
}

/** Reads and parses a JSON file; unreadable or invalid JSON becomes a one-line error. */
export async function readJson(file: string): Promise<unknown> {
  const text = new TextDecoder().decode(await readBytes(file));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${file}: invalid JSON (${(e as Error).message.split("\n")[0]})`);
  }
}

/** True when `p` exists (file or folder). */
export async function exists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch {
    return false;
  }
}

async function statOrNull(p: string): Promise<import("node:fs").Stats | null> {
  try {
    return await fs.stat(p);
  } catch {
    return null;
  }
}

/** What {@linkcode checkOutputs} checks. */
export interface OutputPaths {
  /** Files the command will write (each must not be an existing folder). */
  files?: readonly string[];
  /** Folders the command will write into (each must not be an existing file). */
  dirs?: readonly string[];
}

/**
 * Checks, before any work starts, that every output can be written: a file must not be an
 * existing folder, a folder (or any folder above a file or folder) must not be an existing
 * file, and the nearest existing folder must accept a new file (a probe is created and
 * removed; this catches read-only and full disks). Fails with an {@linkcode InputError}
 * naming `flag` and the path. Creates nothing that stays.
 */
export async function checkOutputs(flag: string, outputs: OutputPaths): Promise<void> {
  const fail = (p: string, why: string): never => {
    throw new InputError(`${flag} ${p}: ${why}`);
  };
  const probed = new Set<string>();
  const checkDir = async (dir: string, target: string) => {
    // Walk up to the nearest existing ancestor; every existing one must be a folder.
    let d = path.resolve(dir);
    for (;;) {
      const st = await statOrNull(d);
      if (st) {
        if (!st.isDirectory()) {
          fail(
            target,
            d === path.resolve(target)
              ? "is a file, expected a folder"
              : `${d} is a file, expected a folder`,
          );
        }
        break;
      }
      const up = path.dirname(d);
      if (up === d) break;
      d = up;
    }
    if (probed.has(d)) return;
    probed.add(d);
    const probe = path.join(d, `.write-probe-${process.pid}-${tmpCounter++}`);
    try {
      await fs.writeFile(probe, "probe");
    } catch (e) {
      fail(target, `cannot write in ${d} (${fsReason(e) ?? (e as Error).message.split("\n")[0]})`);
    } finally {
      await fs.rm(probe, { force: true });
    }
  };
  for (const f of outputs.files ?? []) {
    const st = await statOrNull(f);
    if (st?.isDirectory()) fail(f, "is a folder, expected a file");
    await checkDir(path.dirname(path.resolve(f)), f);
  }
  for (const d of outputs.dirs ?? []) await checkDir(d, d);
}

/** Name of the lock file inside a run folder. */
export const LOCK_FILE = ".fustal.lock";

/** What a run folder's lock file holds. */
export interface LockInfo {
  /** Process id of the writer. */
  pid: number;
  /** Host name of the writer. */
  host: string;
  /** The command that holds the lock. */
  command: string;
  /** When it was taken (ISO time). */
  since: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/** A held run-folder lock; `release` removes the lock file (idempotent). */
export interface RunLock {
  /** The lock file. */
  file: string;
  /** Removes the lock file if this process still owns it. */
  release(): Promise<void>;
  /** Same as `release`, for `await using lock = await lockRunFolder(...)`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Makes this process the only writer of `dir` (created when missing, and removed again on
 * release when the run left it empty): writes `dir/.fustal.lock`
 * with the pid and host, exclusively. A lock held by a live process fails at once with an
 * {@linkcode InputError} naming the folder, pid and host; a stale lock (its pid is dead on
 * this host) is taken over with a warning through `warn`. A lock from another host cannot be
 * checked and is treated as held (remove the file by hand when that run is gone).
 */
export async function lockRunFolder(
  dir: string,
  command: string,
  warn: (line: string) => void = () => {},
): Promise<RunLock> {
  const file = path.join(dir, LOCK_FILE);
  // The first folder mkdir creates (undefined when `dir` existed): a run that fails leaves
  // no empty folders behind once the lock is released.
  let created: string | undefined;
  try {
    created = await fs.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new InputError(
      `--out ${dir}: cannot create the folder (${
        fsReason(e) ?? (e as Error).message.split("\n")[0]
      })`,
    );
  }
  const me: LockInfo = {
    pid: process.pid,
    host: os.hostname(),
    command,
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, JSON.stringify(me) + "\n", { flag: "wx" });
      let released = false;
      const lock: RunLock = {
        file,
        async release() {
          if (released) return;
          released = true;
          try {
            const now = JSON.parse(await fs.readFile(file, "utf8")) as LockInfo;
            if (now.pid === me.pid && now.host === me.host && now.since === me.since) {
              await fs.rm(file, { force: true });
            }
          } catch {
            // Already gone.
          }
          if (created !== undefined) {
            // Remove the folders this lock created, deepest first, while they are empty.
            const top = path.resolve(created);
            for (let d = path.resolve(dir); d.startsWith(top); d = path.dirname(d)) {
              try {
                await fs.rmdir(d);
              } catch {
                break; // not empty: the run wrote something
              }
              if (d === top) break;
            }
          }
        },
        [Symbol.asyncDispose]() {
          return lock.release();
        },
      };
      return lock;
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") {
        throw new InputError(
          `--out ${dir}: cannot write the lock file (${
            fsReason(e) ?? (e as Error).message.split("\n")[0]
          })`,
        );
      }
    }
    let held: Partial<LockInfo> = {};
    try {
      held = JSON.parse(await fs.readFile(file, "utf8"));
    } catch {
      // Unreadable or half written: look again (the writer may be mid-write).
      await new Promise((r) => setTimeout(r, 50));
      try {
        held = JSON.parse(await fs.readFile(file, "utf8"));
      } catch {
        held = {};
      }
    }
    const sameHost = held.host === me.host;
    if (typeof held.pid === "number" && (!sameHost || pidAlive(held.pid))) {
      throw new InputError(
        `--out ${dir}: in use by another run (${held.command ?? "a command"}, pid ${held.pid} ` +
          `on ${held.host}, since ${held.since}); one writer per run folder (lock ${file})`,
      );
    }
    warn(
      `warning: taking over the stale lock ${file}` +
        (typeof held.pid === "number"
          ? ` (pid ${held.pid} on ${held.host} is gone)`
          : " (unreadable)"),
    );
    await fs.rm(file, { force: true });
  }
  throw new InputError(
    `--out ${dir}: could not take the lock ${file} (another run keeps taking it)`,
  );
}

/**
 * Runs `body` while holding the lock of `dir` ({@linkcode lockRunFolder}); the lock is released
 * when `body` settles, also on error.
 */
export async function withRunLock<T>(
  dir: string,
  command: string,
  warn: (line: string) => void,
  body: () => Promise<T>,
): Promise<T> {
  const lock = await lockRunFolder(dir, command, warn);
  try {
    return await body();
  } finally {
    await lock.release();
  }
}
