// gzip / zip / npz containers: interop with archives fflate writes, both inflaters, lazy
// member reads, and corrupt / truncated input.
import { fflate } from "../deps.ts";
import { assertEquals, assertRejects, assertThrows } from "./datasets_helpers.ts";
import { InputError } from "../lib/errors.ts";
import { encodeNpy } from "../datasets/npy.ts";
import { encodeNpz, readNpz } from "../datasets/npz.ts";
import { bytesSource, zipBytes, ZipReader } from "../datasets/zip.ts";
import { decodeFeatureBytes } from "../datasets/features.ts";
import { getInflater, gunzip, gzip, setInflater } from "../datasets/inflate.ts";

const arr = new Float32Array(Array.from({ length: 300 }, (_, i) => Math.sin(i) * 3));
const npy = encodeNpy(arr, [100, 3]);

Deno.test("datasets containers: gzip and zip decode alike with zlib and fflate", async () => {
  const before = getInflater();
  try {
    for (const which of ["zlib", "fflate"] as const) {
      setInflater(which);
      const gz = await decodeFeatureBytes(gzip(npy), "a.npy.gz");
      assertEquals([...gz.data], [...arr]);
      // Archives written by an independent implementation (fflate), stored and deflated.
      for (const level of [0, 6] as const) {
        const z = fflate.zipSync({ "arr_0.npy": [npy, { level }] });
        const a = await readNpz(z, `a-${level}.npz`);
        assertEquals(a.shape, [100, 3]);
        assertEquals([...a.data], [...arr]);
      }
      const ours = await encodeNpz({
        feats: { data: arr, shape: [100, 3] },
        other: { data: arr, shape: [300] },
      });
      assertEquals([...(await readNpz(ours, "b.npz", "feats")).data], [...arr]);
      await assertRejects(readNpz(ours, "b.npz"), InputError, /holds 2 arrays \(feats, other\)/);
      await assertRejects(readNpz(ours, "b.npz", "x"), InputError, /no array "x"/);
    }
  } finally {
    setInflater(before);
  }
});

Deno.test("datasets containers: our zip reads back in fflate, members lazily", async () => {
  const members = [
    { name: "i3d_features/a.npy", data: npy },
    { name: "i3d_features/b.npy", data: encodeNpy(arr.subarray(0, 30), [10, 3]) },
  ];
  for (const deflate of [false, true]) {
    const z = await zipBytes(members, deflate);
    const back = fflate.unzipSync(z);
    assertEquals(Object.keys(back), members.map((m) => m.name));
    assertEquals(back["i3d_features/a.npy"], npy);
    const r = await ZipReader.open("f.zip", bytesSource(z));
    assertEquals(r.entries.map((e) => e.method), deflate ? [8, 8] : [0, 0]);
    assertEquals(await r.read(r.entries[1]), members[1].data);
    const head = await r.readPrefix(r.entries[0], 64);
    assertEquals(head.subarray(0, 64), npy.subarray(0, 64));
  }
});

Deno.test("datasets containers: corrupt and truncated gzip / npz / zip are one-line errors", async () => {
  const gz = gzip(npy);
  assertThrows(() => gunzip(gz.subarray(0, gz.length - 20), "t.npy.gz"), InputError);
  const flipped = gz.slice();
  flipped[40] ^= 0xff;
  const e = assertThrows(() => gunzip(flipped, "c.npy.gz"), InputError);
  if (!/^c\.npy\.gz: corrupt or truncated gzip data/.test(e.message)) throw new Error(e.message);
  assertThrows(() => gunzip(npy, "n.npy.gz"), InputError); // not gzip at all

  const npz = await encodeNpz({ arr_0: { data: arr, shape: [100, 3] } });
  await assertRejects(
    readNpz(npz.subarray(0, npz.length - 30), "t.npz"),
    InputError,
    /^t\.npz: not a zip archive or truncated/,
  );
  const cut = npz.subarray(0, 200); // keeps no directory either
  await assertRejects(readNpz(cut, "u.npz"), InputError, /^u\.npz: /);
  // Damage inside the deflated member: inflate error or CRC mismatch.
  const bad = npz.slice();
  for (let i = 60; i < 90; i++) bad[i] ^= 0x5a;
  await assertRejects(readNpz(bad, "c.npz"), InputError, /^c\.npz: member arr_0\.npy: /);
  // Stored member with a flipped data byte: CRC mismatch.
  const stored = await zipBytes([{ name: "x.npy", data: npy }], false);
  const s2 = stored.slice();
  s2[200] ^= 1;
  const r = await ZipReader.open("s.zip", bytesSource(s2));
  await assertRejects(r.read(r.entries[0]), InputError, /s\.zip: member x\.npy: CRC-32 mismatch/);
});
