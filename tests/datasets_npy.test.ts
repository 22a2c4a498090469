// .npy reader/writer: numpy-written byte vectors (format 1.0/2.0/3.0, f2/f4/f8, big endian,
// Fortran order), round trips, and every bad-header case.
import { assertEquals, assertThrows } from "./datasets_helpers.ts";
import { decodeNpy, encodeNpy, floatToHalf, parseNpyHeader } from "../datasets/npy.ts";
import { InputError } from "../lib/errors.ts";
import { SHARED_DATA, skipWithoutSharedData } from "./shared_data.ts";

const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((b) => parseInt(b, 16)));
// Written by numpy 2.4 (np.lib.format.write_array) for a = arange(6).reshape(2, 3) / 4.
const WANT = [0, 0.25, 0.5, 0.75, 1, 1.25];
const NUMPY_FILES: Record<string, string> = {
  "f2 Fortran v1":
    "934e554d5059010076007b276465736372273a20273c6632272c2027666f727472616e5f6f72646572273a20547275652c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000003a0034003c0038003d",
  ">f8 v1":
    "934e554d5059010076007b276465736372273a20273e6638272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a00000000000000003fd00000000000003fe00000000000003fe80000000000003ff00000000000003ff4000000000000",
  "f4 v2":
    "934e554d50590200740000007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000803e0000003f0000403f0000803f0000a03f",
  "f4 Fortran v3":
    "934e554d50590300740000007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a20547275652c20277368617065273a2028322c2033292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000403f0000803e0000803f0000003f0000a03f",
};

Deno.test("datasets npy: numpy-written files decode to row-major float32", () => {
  for (const [name, h] of Object.entries(NUMPY_FILES)) {
    const a = decodeNpy(hex(h), name);
    assertEquals(a.shape, [2, 3], name);
    assertEquals([...a.data], WANT, name);
  }
});

Deno.test("datasets npy: writer round trips f2/f4/f8, v1/v2/v3, C and Fortran", () => {
  const data = new Float32Array([1.5, -2, 3.25, 0, 65504, 1e-3, 7, 8]);
  for (const dtype of ["<f2", "<f4", "<f8"] as const) {
    for (const version of [1, 2, 3] as const) {
      for (const fortranOrder of [false, true]) {
        const bytes = encodeNpy(data, [4, 2], { dtype, version, fortranOrder });
        const h = parseNpyHeader(bytes, "x.npy");
        assertEquals(h.dataOffset % 64, 0);
        const a = decodeNpy(bytes, "x.npy");
        assertEquals(a.shape, [4, 2]);
        const tol = dtype === "<f2" ? 1e-3 : 0;
        for (let i = 0; i < data.length; i++) {
          const rel = Math.abs(a.data[i] - data[i]) / Math.max(1, Math.abs(data[i]));
          if (rel > tol) throw new Error(`${dtype} v${version} F=${fortranOrder}: ${a.data[i]}`);
        }
      }
    }
  }
  assertEquals(floatToHalf(1), 0x3c00);
  assertEquals(floatToHalf(-2), 0xc000);
  assertEquals(floatToHalf(Infinity), 0x7c00);
});

Deno.test("datasets npy: bad magic, bad header, bad dtype, size mismatch are one-line errors", () => {
  const good = encodeNpy(new Float32Array(6), [2, 3]);
  const bad = (b: Uint8Array, re: RegExp) => {
    const e = assertThrows(() => decodeNpy(b, "f.npy"), InputError);
    if (!re.test(e.message) || !e.message.startsWith("f.npy: ") || e.message.includes("\n")) {
      throw new Error(`unexpected message: ${e.message}`);
    }
  };
  const magic = good.slice();
  magic[1] = 0x58;
  bad(magic, /bad magic/);
  const version = good.slice();
  version[6] = 9;
  bad(version, /unsupported .npy format version 9/);
  bad(good.subarray(0, 40), /truncated .npy header/);
  bad(good.subarray(0, good.length - 4), /needs 24 \(file truncated\?\)/);
  const extra = new Uint8Array(good.length + 4);
  extra.set(good);
  bad(extra, /is 28 bytes but shape \(2, 3\)/);
  const text = String.fromCharCode(...good);
  const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  bad(enc(text.replace("'<f4'", "'<i4'")), /unsupported .npy dtype "<i4"/);
  bad(enc(text.replace("'shape'", "'shap_'")), /bad .npy header \(no shape\)/);
  bad(enc(text.replace("(2, 3)", "(2, x)")), /bad .npy header/);
});

Deno.test("datasets npy: a real I3D feature file from the shared data decodes", {
  ignore: skipWithoutSharedData("real I3D .npy"),
}, async () => {
  const file = `${SHARED_DATA}/nonbenchmark_i3d_bbformer/highjump.npy`;
  const bytes = await Deno.readFile(file);
  const a = decodeNpy(bytes, file);
  assertEquals(a.shape.length, 2);
  assertEquals(a.data.length, a.shape[0] * a.shape[1]);
  if (!a.data.every(Number.isFinite)) throw new Error("non-finite values in a real file");
});
