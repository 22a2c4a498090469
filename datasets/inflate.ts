/**
 * Decompression used by the feature readers: whole gzip streams (`.npy.gz`), raw deflate
 * members (`.npz`, `.zip`), and cheap partial inflation of a stream's first bytes (to read an
 * `.npy` header without inflating the whole file).
 *
 * Which inflater: the runtime's own zlib (`node:zlib` `gunzipSync` / `inflateRawSync`) is
 * used for whole members because it measured 2-4x faster than fflate in both Deno and Bun
 * (measured by `bench/datasets_bench.ts`, see `bench/BENCH-datasets.md`). fflate stays the fallback (a runtime without `node:zlib`, or
 * {@linkcode setInflater}`("fflate")`) and is used for partial header reads, where its
 * streaming API stops early without inflating the rest. Containers (zip directories, npz)
 * are parsed by our own reader in `datasets/zip.ts`.
 *
 * @module
 */
import * as zlib from "node:zlib";
import { fflate } from "../deps_light.ts";
import { InputError } from "../lib/errors.ts";

/** Which implementation inflates whole members. */
export type Inflater = "zlib" | "fflate";

let inflater: Inflater = typeof zlib.inflateRawSync === "function" ? "zlib" : "fflate";

/** Selects the inflater (benchmarks and tests compare both). */
export function setInflater(which: Inflater): void {
  inflater = which;
}

/** The inflater in use. */
export function getInflater(): Inflater {
  return inflater;
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

/** Inflates a whole gzip byte array; a corrupt or truncated stream is an InputError. */
export function gunzip(bytes: Uint8Array, file: string): Uint8Array {
  if (bytes.length < 18 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    throw new InputError(`${file}: not a gzip file (bad magic bytes or too short)`);
  }
  try {
    if (inflater === "zlib") {
      // One output chunk of the trailer's size (ISIZE, size mod 2^32): measured 2.3x faster
      // than zlib's default 16 KiB chunks, which are grown and concatenated.
      const isize = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4)
        .getUint32(0, true);
      const chunkSize = Math.min(Math.max(isize + 64, 16384), 1 << 30);
      // Inflation stops at the declared size (ISIZE is the size mod 2^32: a stream that
      // could legitimately be larger, at deflate's best ratio of 1032:1, may wrap past it).
      const wraps = Math.floor((bytes.length * 1032) / 2 ** 32);
      const maxOutputLength = Math.max(1, isize + wraps * 2 ** 32);
      let b: Uint8Array;
      try {
        b = zlib.gunzipSync(bytes, { chunkSize, maxOutputLength });
      } catch (e) {
        if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
          throw new InputError(
            `${file}: gzip data inflates past its declared size of ${isize} bytes (corrupt)`,
          );
        }
        throw e;
      }
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }
    const out = fflate.gunzipSync(bytes);
    // fflate does not verify the trailer; check CRC-32 and size ourselves.
    const dv = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 8, 8);
    if (dv.getUint32(4, true) !== (out.length >>> 0) || dv.getUint32(0, true) !== crc32(out)) {
      throw new Error("gzip trailer does not match the data");
    }
    return out;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${file}: corrupt or truncated gzip data (${firstLine(e)})`);
  }
}

/**
 * Inflates a raw deflate member whose uncompressed size and CRC-32 are known (zip/npz). A
 * member that inflates to another size or CRC, or does not inflate, is an InputError.
 */
export function inflateRaw(
  bytes: Uint8Array,
  size: number,
  crc: number,
  file: string,
): Uint8Array {
  let out: Uint8Array;
  const past = () =>
    new InputError(`${file}: deflate data inflates past its declared size of ${size} bytes`);
  try {
    if (inflater === "zlib") {
      // Inflation stops at the declared size: a member whose directory size is a lie cannot
      // make us allocate more than it declared.
      const chunkSize = Math.min(Math.max(size + 64, 16384), 1 << 30);
      const b = zlib.inflateRawSync(bytes, { chunkSize, maxOutputLength: Math.max(1, size) });
      out = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } else {
      out = new Uint8Array(size);
      let got = 0;
      const s = new fflate.Inflate((c: Uint8Array) => {
        if (got + c.length > size) throw past();
        out.set(c, got);
        got += c.length;
      });
      s.push(bytes, true);
      out = out.subarray(0, got);
    }
  } catch (e) {
    if (e instanceof InputError) throw e;
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw past();
    throw new InputError(`${file}: corrupt or truncated deflate data (${firstLine(e)})`);
  }
  if (out.length !== size) {
    throw new InputError(
      `${file}: deflate data inflates to ${out.length} bytes, the directory says ${size}`,
    );
  }
  if (crc32(out) !== crc) throw new InputError(`${file}: CRC-32 mismatch (corrupt data)`);
  return out;
}

/**
 * Inflates only the beginning of a gzip (`kind` "gzip") or raw deflate stream, returning at
 * least `want` bytes when the stream has them (fewer only when it is shorter). Used to read
 * `.npy` headers of compressed files without inflating the rest.
 */
export function inflatePrefix(
  bytes: Uint8Array,
  kind: "gzip" | "raw",
  want: number,
  file: string,
): Uint8Array {
  const chunks: Uint8Array[] = [];
  let got = 0;
  const s = kind === "gzip" ? new fflate.Gunzip() : new fflate.Inflate();
  s.ondata = (c: Uint8Array) => {
    chunks.push(c);
    got += c.length;
  };
  try {
    // Feed growing input slices until enough output appeared.
    let pos = 0;
    let step = 4096;
    while (got < want && pos < bytes.length) {
      const end = Math.min(bytes.length, pos + step);
      s.push(bytes.subarray(pos, end), false);
      pos = end;
      step *= 2;
    }
  } catch (e) {
    throw new InputError(`${file}: corrupt compressed data (${firstLine(e)})`);
  }
  const out = new Uint8Array(got);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** gzip-compresses `bytes` (level 1..9, default 6). */
export function gzip(bytes: Uint8Array, level = 6): Uint8Array {
  if (typeof zlib.gzipSync === "function") {
    const b = zlib.gzipSync(bytes, { level });
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  return fflate.gzipSync(bytes, { level: level as 6 });
}

/** Raw-deflates `bytes` (level 1..9, default 6). */
export function deflateRaw(bytes: Uint8Array, level = 6): Uint8Array {
  if (typeof zlib.deflateRawSync === "function") {
    const b = zlib.deflateRawSync(bytes, { level });
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  return fflate.deflateSync(bytes, { level: level as 6 });
}

let crcTable: Int32Array | null = null;

/** CRC-32 (IEEE) of `bytes`, as an unsigned 32-bit integer. */
export function crc32(bytes: Uint8Array): number {
  const native = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
  if (typeof native === "function") return native(bytes) >>> 0;
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = -1;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
