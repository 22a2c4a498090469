import assert from "node:assert/strict";
import * as path from "node:path";

const ROOT = path.resolve(import.meta.dirname!, "..");

Deno.test("webgpu: uploads go through writeBuffer and keep every value and the command order", async () => {
  // In a child: the test process itself never opens a GPU instance.
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path.join(ROOT, "tests", "webgpu_upload_probe.ts")],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code === 3) {
    console.log("SKIP: this runtime has no WebGPU adapter");
    return;
  }
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  const j = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
  assert.equal(j.patched, true);
  assert.deepEqual(j.roundTrip.float32, j.expected.f);
  assert.deepEqual(j.roundTrip.int32, j.expected.i32);
  assert.deepEqual(j.roundTrip.bool, Array.from({ length: 13 }, (_, i) => (i % 3 === 0 ? 1 : 0)));
  assert.equal(j.roundTrip.sumInt, j.expected.i32.reduce((a: number, b: number) => a + b, 0));
  assert.equal(j.roundTrip.anyTrue, 1);
  assert.deepEqual(j.pooled, Array.from({ length: 20 }, (_, k) => 2 * 64 * 64 * (k + 1)));
});
