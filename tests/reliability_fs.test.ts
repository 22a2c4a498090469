// Unusable output places that a permission test cannot show as root (CI runs as root, who
// writes into mode-0500 folders anyway): a read-only file system and a full one, made as
// small tmpfs mounts. Skipped, with a line saying why, where mounting is not permitted.
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { checkOutputs } from "../lib/io.ts";
import { InputError } from "../lib/errors.ts";

const ROOT = path.resolve(import.meta.dirname!, "..");

async function sh(cmd: string, ...args: string[]): Promise<boolean> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    return r.success;
  } catch {
    return false;
  }
}

/** A tmpfs of 64 KiB mounted at a new folder (`ro`: read-only), or null when not permitted. */
async function tmpfs(ro: boolean): Promise<string | null> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "fustal-fs-"));
  const opts = `${ro ? "ro," : ""}size=64k`;
  if (await sh("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir)) return dir;
  await fs.rm(dir, { recursive: true, force: true });
  return null;
}

async function unmount(dir: string): Promise<void> {
  await sh("umount", dir);
  await fs.rm(dir, { recursive: true, force: true });
}

const canMount = await (async () => {
  const d = await tmpfs(false);
  if (d) await unmount(d);
  else console.log("SKIP reliability_fs: tmpfs mounts are not permitted here (needs root)");
  return d !== null;
})();

Deno.test({
  name: "outputs on a read-only or a full file system fail before any work, naming the path",
  ignore: !canMount,
  fn: async () => {
    const ro = (await tmpfs(true))!;
    const full = (await tmpfs(false))!;
    try {
      // Fill the small file system to the last byte.
      await fs.writeFile(path.join(full, "filler"), new Uint8Array(64 * 1024)).catch(() => {});
      const roOut = path.join(ro, "run", "p.json");
      await assert.rejects(
        checkOutputs("--out", { files: [roOut] }),
        (e) => e instanceof InputError && e.message.includes(roOut) && /read-only/.test(e.message),
      );
      const fullOut = path.join(full, "p.json");
      await assert.rejects(
        checkOutputs("--out", { files: [fullOut] }),
        (e) => e instanceof InputError && e.message.includes(fullOut) && /no space/.test(e.message),
      );
      // Through the CLI: one line, exit 2, and nothing written.
      const before = await fs.readdir(full);
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "mod.ts", "select", "--proposals", "none.json", "--out", fullOut],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(r.stderr).trim().split("\n");
      assert.equal(r.code, 2);
      assert.equal(err.length, 1, err.join("\n"));
      assert.match(err[0], /p\.json.*no space left/);
      assert.doesNotMatch(err[0], /^\s+at /);
      assert.deepEqual(await fs.readdir(full), before);
    } finally {
      await unmount(ro);
      await unmount(full);
    }
  },
});
