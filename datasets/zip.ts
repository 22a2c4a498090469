/**
 * Zip archives read lazily through their central directory (the container of `.npz` files and
 * of a whole features folder packed as one `.zip`), and a streaming zip writer.
 *
 * Reading: only the end-of-central-directory record and the directory are read on open;
 * each member is read (one `pread` of its local header and data) and inflated when asked
 * for, so a multi-gigabyte features zip costs memory for one member at a time. Methods:
 * stored (0) and deflated (8); Zip64 sizes and offsets are understood. Every member's
 * CRC-32 and size are checked. Damage is an {@linkcode InputError} naming the archive and
 * the member.
 *
 * Writing: members are appended one at a time with sizes known up front (no data
 * descriptors), fixed timestamps (same input, same bytes), and Zip64 records only when an
 * offset or count needs them.
 *
 * @module
 */
import * as fs from "node:fs/promises";
import { InputError } from "../lib/errors.ts";
import { crc32, deflateRaw, inflatePrefix, inflateRaw } from "./inflate.ts";

/** Random-access bytes: a file or an in-memory array. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Reads `length` bytes at `offset` (fewer only at the end). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the source. */
  close(): Promise<void>;
}

/** A {@linkcode ByteSource} over an in-memory array. */
export function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read: (o, n) => Promise.resolve(bytes.subarray(o, Math.min(bytes.length, o + n))),
    close: () => Promise.resolve(),
  };
}

/** A {@linkcode ByteSource} over a file, read with positioned reads (never whole). */
export async function fileSource(file: string): Promise<ByteSource> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, "r");
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new InputError(`${file}: ${code === "ENOENT" ? "file not found" : "cannot open"}`);
  }
  const size = (await fh.stat()).size;
  return {
    size,
    async read(offset, length) {
      const n = Math.max(0, Math.min(length, size - offset));
      const buf = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const r = await fh.read(buf, got, n - got, offset + got);
        if (r.bytesRead === 0) break;
        got += r.bytesRead;
      }
      return got === n ? buf : buf.subarray(0, got);
    },
    close: () => fh.close(),
  };
}

/** One member of a zip archive, as listed by its central directory. */
export interface ZipEntry {
  /** Path inside the archive (forward slashes). */
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  /** CRC-32 of the uncompressed data. */
  crc: number;
  /** Compressed size in bytes. */
  compressedSize: number;
  /** Uncompressed size in bytes. */
  size: number;
  /** Offset of the member's local header. */
  localOffset: number;
  /** General-purpose flags (bit 0 = encrypted). */
  flags: number;
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) =>
  (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 16777216;
const u64 = (b: Uint8Array, o: number) => u32(b, o) + u32(b, o + 4) * 4294967296;

/** A zip archive opened through its central directory. */
export class ZipReader {
  /** Members in directory order. */
  readonly entries: ZipEntry[];
  /** Name used in error messages. */
  readonly file: string;
  #src: ByteSource;

  private constructor(file: string, src: ByteSource, entries: ZipEntry[]) {
    this.file = file;
    this.#src = src;
    this.entries = entries;
  }

  /** Opens an archive (`file` names it in errors); reads only the directory. */
  static async open(file: string, src: ByteSource): Promise<ZipReader> {
    const bad = (why: string) => new InputError(`${file}: ${why}`);
    const tailLen = Math.min(src.size, 65535 + 22 + 20);
    const tail = await src.read(src.size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (u32(tail, i) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) {
      throw bad("not a zip archive or truncated (no end-of-central-directory record)");
    }
    let count = u16(tail, eocd + 10);
    let cdSize = u32(tail, eocd + 12);
    let cdOffset = u32(tail, eocd + 16);
    const locAt = eocd - 20;
    if (locAt >= 0 && u32(tail, locAt) === 0x07064b50) {
      const recOff = u64(tail, locAt + 8);
      const rec = await src.read(recOff, 56);
      if (rec.length < 56 || u32(rec, 0) !== 0x06064b50) throw bad("bad Zip64 directory record");
      count = u64(rec, 32);
      cdSize = u64(rec, 40);
      cdOffset = u64(rec, 48);
    }
    if (cdOffset + cdSize > src.size) {
      throw bad("truncated zip archive (central directory lies past the end of the file)");
    }
    const cd = await src.read(cdOffset, cdSize);
    const entries: ZipEntry[] = [];
    let p = 0;
    const dec = new TextDecoder();
    for (let k = 0; k < count; k++) {
      if (p + 46 > cd.length || u32(cd, p) !== 0x02014b50) {
        throw bad(`corrupt zip central directory (entry ${k})`);
      }
      const nameLen = u16(cd, p + 28);
      const extraLen = u16(cd, p + 30);
      const commentLen = u16(cd, p + 32);
      const e: ZipEntry = {
        name: dec.decode(cd.subarray(p + 46, p + 46 + nameLen)),
        flags: u16(cd, p + 8),
        method: u16(cd, p + 10),
        crc: u32(cd, p + 16),
        compressedSize: u32(cd, p + 20),
        size: u32(cd, p + 24),
        localOffset: u32(cd, p + 42),
      };
      // Zip64 extended information: the 0xffffffff fields, in this order.
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = u16(cd, x);
        const len = u16(cd, x + 2);
        if (id === 0x0001) {
          let q = x + 4;
          if (e.size === 0xffffffff) (e.size = u64(cd, q)), (q += 8);
          if (e.compressedSize === 0xffffffff) (e.compressedSize = u64(cd, q)), (q += 8);
          if (e.localOffset === 0xffffffff) e.localOffset = u64(cd, q);
        }
        x += 4 + len;
      }
      entries.push(e);
      p = xEnd + commentLen;
    }
    return new ZipReader(file, src, entries);
  }

  /** Reads and (if deflated) inflates one member; checks its size and CRC-32. */
  async read(entry: ZipEntry): Promise<Uint8Array> {
    const where = `${this.file}: member ${entry.name}`;
    const data = await this.readRaw(entry);
    if (entry.method === 0) {
      if (data.length !== entry.size) {
        throw new InputError(`${where}: stored size ${data.length} != ${entry.size}`);
      }
      if (crc32(data) !== entry.crc) throw new InputError(`${where}: CRC-32 mismatch (corrupt)`);
      return data;
    }
    return inflateRaw(data, entry.size, entry.crc, where);
  }

  /** Reads a member's compressed bytes (no inflation, no checks beyond bounds). */
  async readRaw(entry: ZipEntry): Promise<Uint8Array> {
    const where = `${this.file}: member ${entry.name}`;
    if (entry.flags & 1) throw new InputError(`${where}: encrypted members are not supported`);
    if (entry.method !== 0 && entry.method !== 8) {
      throw new InputError(`${where}: unsupported compression method ${entry.method}`);
    }
    const lh = await this.#src.read(entry.localOffset, 30);
    if (lh.length < 30 || u32(lh, 0) !== 0x04034b50) {
      throw new InputError(`${where}: bad local header (corrupt or truncated archive)`);
    }
    const start = entry.localOffset + 30 + u16(lh, 26) + u16(lh, 28);
    const data = await this.#src.read(start, entry.compressedSize);
    if (data.length < entry.compressedSize) {
      throw new InputError(`${where}: truncated (data ends before the member does)`);
    }
    return data;
  }

  /**
   * Returns at least the first `n` uncompressed bytes of a member when it has them (for
   * header reads): stored members are read directly, deflated ones partly inflated.
   */
  async readPrefix(entry: ZipEntry, n: number): Promise<Uint8Array> {
    const where = `${this.file}: member ${entry.name}`;
    if (entry.method === 0) {
      const lh = await this.#src.read(entry.localOffset, 30);
      if (lh.length < 30 || u32(lh, 0) !== 0x04034b50) {
        throw new InputError(`${where}: bad local header (corrupt or truncated archive)`);
      }
      const start = entry.localOffset + 30 + u16(lh, 26) + u16(lh, 28);
      return await this.#src.read(start, Math.min(n, entry.compressedSize));
    }
    if (entry.method !== 8) return this.read(entry);
    // Deflate rarely expands headers by more than a few times; read a bounded prefix.
    const raw = await this.readRawPrefix(entry, Math.max(4096, n * 4));
    return inflatePrefix(raw, "raw", n, where);
  }

  /** The first `n` compressed bytes of a member. */
  async readRawPrefix(entry: ZipEntry, n: number): Promise<Uint8Array> {
    const lh = await this.#src.read(entry.localOffset, 30);
    if (lh.length < 30 || u32(lh, 0) !== 0x04034b50) {
      throw new InputError(
        `${this.file}: member ${entry.name}: bad local header (corrupt or truncated archive)`,
      );
    }
    const start = entry.localOffset + 30 + u16(lh, 26) + u16(lh, 28);
    return await this.#src.read(start, Math.min(n, entry.compressedSize));
  }

  /** Closes the underlying source. */
  close(): Promise<void> {
    return this.#src.close();
  }
}

/** Where a {@linkcode ZipWriter} puts its bytes. */
export interface ByteSink {
  /** Appends bytes. */
  write(bytes: Uint8Array): Promise<void>;
}

/** Writes a zip archive member by member (sizes known up front, fixed timestamps). */
export class ZipWriter {
  #sink: ByteSink;
  #offset = 0;
  #central: Uint8Array[] = [];
  #count = 0;

  /** A writer that appends the archive's bytes to `sink`. */
  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  /** Appends a member; `deflate` compresses it (raw deflate at `level`). */
  async add(name: string, data: Uint8Array, deflate = false, level = 6): Promise<void> {
    const nameBytes = new TextEncoder().encode(name);
    const crc = crc32(data);
    const body = deflate ? deflateRaw(data, level) : data;
    const method = deflate ? 8 : 0;
    if (body.length >= 0xffffffff || data.length >= 0xffffffff) {
      throw new Error(`zip: member ${name} is too large (over 4 GiB)`);
    }
    const lh = new Uint8Array(30 + nameBytes.length);
    const l = new DataView(lh.buffer);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, 20, true);
    l.setUint16(6, 0x0800, true); // UTF-8 names
    l.setUint16(8, method, true);
    l.setUint16(10, 0, true); // 00:00:00
    l.setUint16(12, 0x21, true); // 1980-01-01
    l.setUint32(14, crc, true);
    l.setUint32(18, body.length, true);
    l.setUint32(22, data.length, true);
    l.setUint16(26, nameBytes.length, true);
    lh.set(nameBytes, 30);
    const offset = this.#offset;
    await this.#sink.write(lh);
    await this.#sink.write(body);
    this.#offset += lh.length + body.length;

    const big = offset >= 0xffffffff;
    const ch = new Uint8Array(46 + nameBytes.length + (big ? 12 : 0));
    const c = new DataView(ch.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 45, true);
    c.setUint16(6, big ? 45 : 20, true);
    c.setUint16(8, 0x0800, true);
    c.setUint16(10, method, true);
    c.setUint16(14, 0x21, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, body.length, true);
    c.setUint32(24, data.length, true);
    c.setUint16(28, nameBytes.length, true);
    c.setUint16(30, big ? 12 : 0, true);
    c.setUint32(42, big ? 0xffffffff : offset, true);
    ch.set(nameBytes, 46);
    if (big) {
      const x = 46 + nameBytes.length;
      c.setUint16(x, 0x0001, true);
      c.setUint16(x + 2, 8, true);
      c.setBigUint64(x + 4, BigInt(offset), true);
    }
    this.#central.push(ch);
    this.#count++;
  }

  /** Writes the central directory (and Zip64 records when needed). */
  async finish(): Promise<void> {
    const cdOffset = this.#offset;
    let cdSize = 0;
    for (const ch of this.#central) {
      await this.#sink.write(ch);
      cdSize += ch.length;
    }
    const need64 = cdOffset >= 0xffffffff || this.#count >= 0xffff;
    if (need64) {
      const rec = new Uint8Array(56 + 20);
      const r = new DataView(rec.buffer);
      r.setUint32(0, 0x06064b50, true);
      r.setBigUint64(4, 44n, true);
      r.setUint16(12, 45, true);
      r.setUint16(14, 45, true);
      r.setBigUint64(24, BigInt(this.#count), true);
      r.setBigUint64(32, BigInt(this.#count), true);
      r.setBigUint64(40, BigInt(cdSize), true);
      r.setBigUint64(48, BigInt(cdOffset), true);
      r.setUint32(56, 0x07064b50, true);
      r.setBigUint64(64, BigInt(cdOffset + cdSize), true);
      r.setUint32(72, 1, true);
      await this.#sink.write(rec);
    }
    const e = new Uint8Array(22);
    const d = new DataView(e.buffer);
    d.setUint32(0, 0x06054b50, true);
    d.setUint16(8, Math.min(this.#count, 0xffff), true);
    d.setUint16(10, Math.min(this.#count, 0xffff), true);
    d.setUint32(12, Math.min(cdSize, 0xffffffff), true);
    d.setUint32(16, Math.min(cdOffset, 0xffffffff), true);
    await this.#sink.write(e);
  }
}

/** Builds a whole zip archive in memory (small archives: `.npz` files). */
export async function zipBytes(
  members: { name: string; data: Uint8Array }[],
  deflate = false,
  level = 6,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const w = new ZipWriter({
    write: (b) => {
      parts.push(b);
      return Promise.resolve();
    },
  });
  for (const m of members) await w.add(m.name, m.data, deflate, level);
  await w.finish();
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A {@linkcode ByteSink} appending to a file handle (buffered in ~8 MiB writes). */
export function fileSink(fh: fs.FileHandle): ByteSink & { flush(): Promise<void> } {
  let buf: Uint8Array[] = [];
  let held = 0;
  const flush = async () => {
    for (const b of buf) await fh.write(b);
    buf = [];
    held = 0;
  };
  return {
    async write(b) {
      buf.push(b);
      held += b.length;
      if (held >= 8 << 20) await flush();
    },
    flush,
  };
}
