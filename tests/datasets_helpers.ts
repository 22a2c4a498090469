// Assertion helpers shared by the datasets tests (node:assert/strict underneath).
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";

/** Deep equality. */
export function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg ?? "values differ");
}

/** Asserts `fn` throws an instance of `cls`; returns the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  cls: new (...a: never[]) => E,
): E {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`expected ${cls.name}, got ${e}`);
  }
  throw new Error(`expected ${cls.name}, nothing was thrown`);
}

/** Asserts the promise rejects with `cls` whose message matches `re` and is one line. */
export async function assertRejects<E extends Error>(
  p: Promise<unknown>,
  cls: new (...a: never[]) => E,
  re: RegExp,
): Promise<E> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof cls)) throw new Error(`expected ${cls.name}, got ${(e as Error).stack}`);
    if (!re.test(e.message)) throw new Error(`message "${e.message}" does not match ${re}`);
    if (e.message.includes("\n")) throw new Error(`message is not one line: ${e.message}`);
    return e;
  }
  throw new Error(`expected ${cls.name} matching ${re}, nothing was thrown`);
}

/** A fresh temporary folder. */
export function tempDir(prefix = "fustal-ds-"): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}
