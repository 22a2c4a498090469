import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import {
  crc32Update,
  decodeTensorFile,
  encodeTensorFile,
  loadTensorFile,
  requireFormat,
  saveTensorFile,
  type TensorFileKind,
} from "../lib/tensor_file.ts";

const KIND: TensorFileKind = { magic: "FSTLTST1", name: "test tensor file" };

const groups = () => ({
  params: {
    w: { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 1e-30, NaN, -Infinity]) },
    b: { shape: [0], data: new Float32Array(0) },
  },
  "adam.m": { w: { shape: [1], data: Float32Array.from([0.25]) } },
});

/** One-line InputError whose message names `file` and matches `re`. */
function isLineError(file: string, re: RegExp) {
  return (e: unknown) =>
    e instanceof InputError && e.message.startsWith(`${file}: not a test tensor file (`) &&
    !e.message.includes("\n") && re.test(e.message);
}

Deno.test("tensor_file: save/load round trip keeps tensors and non-finite meta exactly", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tensor-file-"));
  try {
    const file = path.join(dir, "t.ckpt");
    const meta = { best: -Infinity, spare: NaN, up: Infinity, list: [1, NaN], s: "x" };
    await saveTensorFile(file, meta, groups(), KIND);
    const back = await loadTensorFile<typeof meta>(file, KIND);
    assert.deepEqual(back.meta, meta); // deepEqual treats NaN as equal to NaN
    assert.ok(Object.is(back.meta.best, -Infinity) && Number.isNaN(back.meta.list[1]));
    assert.deepEqual(Object.keys(back.groups), ["params", "adam.m"]);
    assert.deepEqual(back.groups.params.w.shape, [2, 3]);
    assert.deepEqual([...back.groups.params.w.data], [...groups().params.w.data]);
    assert.equal(back.groups.params.b.data.length, 0);
    assert.deepEqual([...back.groups["adam.m"].w.data], [0.25]);
    // No temp file is left next to the output.
    assert.deepEqual(await fs.readdir(dir), ["t.ckpt"]);
  } finally {
    await fs.rm(dir, { recursive: true });
  }
});

Deno.test("tensor_file: byte layout is magic, uint32 length, space-padded JSON, float32", () => {
  const bytes = encodeTensorFile({ a: 1 }, {
    g: { t: { shape: [2], data: Float32Array.from([1.5, -2]) } },
  }, KIND);
  const json =
    '{"crc32":"00000000","meta":{"a":1},"tensors":[{"group":"g","name":"t","shape":[2],"offset":0}]}';
  const hl = Math.ceil(json.length / 4) * 4;
  const expected = new Uint8Array(12 + hl + 8);
  expected.set(new TextEncoder().encode("FSTLTST1"));
  const dv = new DataView(expected.buffer);
  dv.setUint32(8, hl, true);
  expected.set(new TextEncoder().encode(json.padEnd(hl, " ")), 12);
  dv.setFloat32(12 + hl, 1.5, true);
  dv.setFloat32(12 + hl + 4, -2, true);
  // The checksum covers every byte after the prefix, its own digits read as zeros.
  const crc = crc32Update(0, expected.subarray(12)).toString(16).padStart(8, "0");
  expected.set(new TextEncoder().encode(crc), 12 + '{"crc32":"'.length);
  assert.deepEqual(bytes, expected);
  // Finite meta stays plain JSON; only non-finite numbers are tagged.
  const tagged = new TextDecoder().decode(encodeTensorFile({ x: NaN }, {}, KIND));
  assert.match(tagged, /"x":\{"\$num":"NaN"\}/);
});

Deno.test("tensor_file: truncated, corrupt or foreign bytes give one-line InputErrors naming the file", async () => {
  const bytes = encodeTensorFile({ n: 1 }, groups(), KIND);
  const f = "dir/t.ckpt";
  // Truncation at every kind of boundary, including mid-float.
  for (const cut of [0, 5, 11, 12, 20, bytes.length - 13, bytes.length - 4, bytes.length - 1]) {
    assert.throws(() => decodeTensorFile(bytes.subarray(0, cut), f, KIND), isLineError(f, /\(/));
  }
  assert.throws(
    () => decodeTensorFile(bytes.subarray(0, bytes.length - 1), f, KIND),
    isLineError(f, /truncated data/),
  );
  assert.throws(
    () => decodeTensorFile(bytes.subarray(0, 30), f, KIND),
    isLineError(f, /truncated header/),
  );
  const other = encodeTensorFile({}, {}, { magic: "FSTLXXX1", name: "x" });
  assert.throws(() => decodeTensorFile(other, f, KIND), isLineError(f, /bad magic/));
  const corrupt = bytes.slice();
  corrupt[12] = 0x78; // "x" in place of the opening brace
  assert.throws(() => decodeTensorFile(corrupt, f, KIND), isLineError(f, /corrupt header/));
  // Valid JSON but not an index of tensors.
  const noIndex = encodeTensorFile({}, {}, KIND);
  const text = new TextEncoder().encode(
    '{"meta":{},"tensors":[{"group":1}]}'.padEnd(
      new DataView(noIndex.buffer).getUint32(8, true) + 4,
      " ",
    ),
  );
  const wrong = new Uint8Array(12 + text.length);
  wrong.set(noIndex.subarray(0, 8));
  new DataView(wrong.buffer).setUint32(8, text.length, true);
  wrong.set(text, 12);
  assert.throws(() => decodeTensorFile(wrong, f, KIND), isLineError(f, /corrupt header/));
  // A kind's own meta check reports through the same message.
  const strict = {
    ...KIND,
    checkMeta: (m: unknown) => (m as { n?: number }).n === 2 ? undefined : "unknown version",
  };
  assert.throws(() => decodeTensorFile(bytes, f, strict), isLineError(f, /unknown version/));
  // Through the file API: a missing file and a cut file both name the path.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tensor-file-"));
  try {
    const file = path.join(dir, "cut.ckpt");
    await fs.writeFile(file, bytes.subarray(0, bytes.length - 6));
    await assert.rejects(
      loadTensorFile(file, KIND),
      isLineError(file, /truncated data \(params\/w\)/),
    );
    await assert.rejects(
      loadTensorFile(path.join(dir, "none.ckpt"), KIND),
      (e: unknown) => e instanceof InputError && e.message.includes("none.ckpt"),
    );
  } finally {
    await fs.rm(dir, { recursive: true });
  }
});

Deno.test("tensor_file: one flipped byte anywhere after the prefix is a checksum error naming the file", () => {
  const bytes = encodeTensorFile({ n: 1, step: 100 }, groups(), KIND);
  const f = "dir/t.ckpt";
  assert.doesNotThrow(() => decodeTensorFile(bytes, f, KIND));
  const hl = new DataView(bytes.buffer).getUint32(8, true);
  // A digit of the header's meta ("100" -> "108") and one bit of every float's bytes.
  const text = new TextDecoder().decode(bytes.subarray(12, 12 + hl));
  const positions = [12 + text.indexOf("100") + 2];
  for (let p = 12 + hl; p < bytes.length; p += 3) positions.push(p);
  for (const p of positions) {
    const bad = bytes.slice();
    bad[p] ^= p < 12 + hl ? 0x08 : 0x01;
    assert.throws(() => decodeTensorFile(bad, f, KIND), isLineError(f, /checksum mismatch/));
  }
  // A file without the checksum key (an older layout) is refused, not trusted.
  const old = bytes.slice();
  old.set(new TextEncoder().encode('{"crc33'), 12);
  assert.throws(() => decodeTensorFile(old, f, KIND), isLineError(f, /no checksum|corrupt header/));
});

Deno.test("tensor_file: requireFormat accepts only the given format and version", () => {
  const check = requireFormat("fmt", 2);
  assert.equal(check({ format: "fmt", version: 2, x: 1 }), undefined);
  for (const m of [{ format: "fmt", version: 1 }, { format: "other", version: 2 }, null, 3]) {
    assert.equal(check(m), "unknown format or version");
  }
});
