/**
 * File helpers shared by every stage: atomic writes (temp file + rename, so a killed run never
 * leaves half a file) and JSON reading with one-line errors that name the file.
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import process from "node:process";
import { InputError } from "./errors.ts";

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
      : code === "EACCES"
      ? "permission denied"
      : `cannot read (${(e as Error).message})`;
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
