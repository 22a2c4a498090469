/**
 * One container for every binary file of named float32 tensors plus JSON metadata (student
 * checkpoints, generator checkpoints, the generator's resumable training state). Each kind of
 * file keeps its own 8-byte magic and its own name for error messages; the layout is shared.
 *
 * Format (little-endian):
 *
 * | bytes        | content                                                              |
 * | ------------ | -------------------------------------------------------------------- |
 * | 0..8         | magic, 8 ASCII bytes (per kind, e.g. `FSTLCKP1`)                     |
 * | 8..12        | uint32 `n`: byte length of the header, a multiple of 4               |
 * | 12..12+n     | UTF-8 JSON `{"crc32":"xxxxxxxx","meta":…,"tensors":[{group, name,    |
 * |              | shape, offset}]}`, padded with spaces (0x20) to a multiple of 4 bytes |
 * | 12+n..end    | every tensor as float32, row-major, in index order                   |
 *
 * `offset` counts floats from the data start; tensors are stored back to back in the order
 * of the index. Because the data start is a multiple of 4 it can be viewed as a
 * `Float32Array` directly (every supported platform, x86 and arm, is little-endian, the
 * file's byte order).
 *
 * Non-finite numbers in `meta` (a −∞ "best so far" score, a NaN RNG spare, NaN AP) are stored
 * as `{"$num": "NaN" | "Infinity" | "-Infinity"}` by default so they round-trip exactly; plain
 * JSON would turn them into `null`. A file without such numbers is plain JSON in its header.
 *
 * Checksum: `crc32` (8 lowercase hex digits, always the header's first key) is the CRC-32 of
 * the header, with those 8 digits read as `00000000`, followed by the tensor data: every byte
 * after the 12-byte prefix. Loading verifies it, so one flipped byte anywhere in the header
 * or the weights is reported (naming the file) instead of silently changing the results.
 *
 * Files are written atomically (temp file + rename), so a killed run leaves either the
 * previous file or the new one, never half of one. Every decoding problem is an
 * {@linkcode InputError} with a one-line message naming the file.
 *
 * @module
 */
import { EXIT_DIVERGED, InputError } from "./errors.ts";
import { atomicWrite, readBytes } from "./io.ts";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE, as zip and gzip) of `bytes`, continuing from `crc` (0 to start). */
export function crc32Update(crc: number, bytes: Uint8Array): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const CRC_KEY = '{"crc32":"';
const CRC_AT = 12 + CRC_KEY.length; // byte offset of the 8 hex digits in the file
const ZERO_DIGITS = new TextEncoder().encode("00000000");

/** A tensor held in host memory: its shape and its row-major float32 values. */
export interface HostTensor {
  /** Dimensions; the product equals `data.length`. */
  shape: number[];
  /** Row-major values. */
  data: Float32Array;
}

/** Named host tensors of one group (e.g. `adam.m`). */
export type HostTensors = Record<string, HostTensor>;

/** Groups of named host tensors, by group name (e.g. `model`, `ema`, `adam.m`). */
export type TensorGroups = Record<string, HostTensors>;

/** A JSON replacer / reviver as taken by `JSON.stringify` / `JSON.parse`. */
export type JsonHook = (key: string, value: unknown) => unknown;

/** Describes one kind of tensor file. */
export interface TensorFileKind {
  /** Exactly 8 ASCII characters that start every file of this kind. */
  magic: string;
  /** What the file is, for errors: `x.ckpt: not a <name> (bad magic)`. */
  name: string;
  /** JSON replacer for the header; defaults to {@linkcode nonFiniteReplacer}. */
  replacer?: JsonHook;
  /** JSON reviver for the header; defaults to {@linkcode nonFiniteReviver}. */
  reviver?: JsonHook;
  /**
   * Checks the decoded `meta`; returns why it is not acceptable (e.g. "unknown format or
   * version"), or undefined when it is.
   */
  checkMeta?: (meta: unknown) => string | undefined;
  /**
   * Refuse to write tensors holding NaN or ±Infinity (model weights and optimiser state: such
   * values mean the run diverged). Default false: the container itself stores any float.
   */
  finiteOnly?: boolean;
}

/** A decoded tensor file. */
export interface TensorFile<M = unknown> {
  /** The JSON metadata. */
  meta: M;
  /** The tensors; their `data` are views of one aligned buffer independent of the input. */
  groups: TensorGroups;
}

/** Replacer that stores NaN / ±Infinity as `{"$num": "NaN" | "Infinity" | "-Infinity"}`. */
export function nonFiniteReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) return { $num: String(value) };
  return value;
}

/** Reviver that undoes {@linkcode nonFiniteReplacer}. */
export function nonFiniteReviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === "$num" && typeof o.$num === "string") {
      return Number(o.$num);
    }
  }
  return value;
}

/**
 * A {@linkcode TensorFileKind.checkMeta} that accepts only a `meta` object whose `format` and
 * `version` fields equal the given ones ("unknown format or version" otherwise).
 */
export function requireFormat(
  format: string,
  version: number,
): (meta: unknown) => string | undefined {
  return (meta) => {
    const m = meta as { format?: unknown; version?: unknown } | null;
    return m?.format === format && m.version === version ? undefined : "unknown format or version";
  };
}

interface IndexEntry {
  group: string;
  name: string;
  shape: number[];
  offset: number;
}

const PREFIX = 12; // magic (8) + header length (4)

function magicBytes(kind: TensorFileKind): Uint8Array {
  const m = new TextEncoder().encode(kind.magic);
  if (m.length !== 8) throw new Error(`tensor file magic must be 8 ASCII bytes: ${kind.magic}`);
  return m;
}

/** Encodes `meta` and `groups` as a tensor file of the given kind. */
export function encodeTensorFile(
  meta: unknown,
  groups: TensorGroups,
  kind: TensorFileKind,
): Uint8Array {
  const index: IndexEntry[] = [];
  let floats = 0;
  for (const [group, ts] of Object.entries(groups)) {
    for (const [name, t] of Object.entries(ts)) {
      index.push({ group, name, shape: t.shape, offset: floats });
      floats += t.data.length;
    }
  }
  const json = JSON.stringify(
    { crc32: "00000000", meta, tensors: index },
    kind.replacer ?? nonFiniteReplacer,
  );
  const text = new TextEncoder().encode(json);
  const hl = Math.ceil(text.length / 4) * 4;
  const out = new Uint8Array(PREFIX + hl + floats * 4);
  out.set(magicBytes(kind), 0);
  new DataView(out.buffer).setUint32(8, hl, true);
  out.set(text, PREFIX);
  out.fill(0x20, PREFIX + text.length, PREFIX + hl);
  const data = new Float32Array(out.buffer, PREFIX + hl, floats);
  let o = 0;
  for (const ts of Object.values(groups)) {
    for (const t of Object.values(ts)) {
      data.set(t.data, o);
      o += t.data.length;
    }
  }
  const crc = crc32Update(0, out.subarray(PREFIX)).toString(16).padStart(8, "0");
  out.set(new TextEncoder().encode(crc), CRC_AT);
  return out;
}

function isIndexEntry(t: unknown): t is IndexEntry {
  if (t === null || typeof t !== "object") return false;
  const e = t as Record<string, unknown>;
  return typeof e.group === "string" && typeof e.name === "string" &&
    Number.isSafeInteger(e.offset) && (e.offset as number) >= 0 && Array.isArray(e.shape) &&
    e.shape.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Decodes tensor-file bytes of the given kind; `file` names errors. */
export function decodeTensorFile<M = unknown>(
  bytes: Uint8Array,
  file: string,
  kind: TensorFileKind,
): TensorFile<M> {
  const bad = (why: string) => new InputError(`${file}: not a ${kind.name} (${why})`);
  const magic = magicBytes(kind);
  if (bytes.length < PREFIX || magic.some((b, i) => bytes[i] !== b)) throw bad("bad magic");
  const hl = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  if (PREFIX + hl > bytes.length) throw bad("truncated header");
  let header: { meta: M; tensors: unknown };
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(PREFIX, PREFIX + hl),
    );
    header = JSON.parse(text, kind.reviver ?? nonFiniteReviver);
  } catch {
    throw bad("corrupt header");
  }
  if (
    header === null || typeof header !== "object" || !Array.isArray(header.tensors) ||
    !header.tensors.every(isIndexEntry)
  ) {
    throw bad("corrupt header");
  }
  const why = kind.checkMeta?.(header.meta);
  if (why !== undefined) throw bad(why);
  // Copy whole floats only (a truncated file may end mid-float) so the arrays are aligned
  // and independent of `bytes`.
  const start = PREFIX + hl;
  const floats = Math.floor((bytes.length - start) / 4);
  const all = new Float32Array(bytes.slice(start, start + floats * 4).buffer);
  const groups: TensorGroups = {};
  for (const t of header.tensors as IndexEntry[]) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.offset + n > all.length) throw bad(`truncated data (${t.group}/${t.name})`);
    (groups[t.group] ??= {})[t.name] = {
      shape: t.shape,
      data: all.subarray(t.offset, t.offset + n),
    };
  }
  const key = new TextDecoder().decode(bytes.subarray(PREFIX, CRC_AT));
  const stored = new TextDecoder().decode(bytes.subarray(CRC_AT, CRC_AT + 8));
  if (hl < CRC_KEY.length + 8 || key !== CRC_KEY || !/^[0-9a-f]{8}$/.test(stored)) {
    throw bad("no checksum in the header: corrupt, or written by an older version");
  }
  let crc = crc32Update(0, bytes.subarray(PREFIX, CRC_AT));
  crc = crc32Update(crc, ZERO_DIGITS);
  const actual = crc32Update(crc, bytes.subarray(CRC_AT + 8)).toString(16).padStart(8, "0");
  if (actual !== stored) {
    throw bad(`checksum mismatch: stored crc32 ${stored}, computed ${actual}; the file is corrupt`);
  }
  return { meta: header.meta, groups };
}

/**
 * Writes a tensor file of the given kind atomically. For kinds with `finiteOnly` (checkpoints)
 * tensors holding NaN or ±Infinity are not written (the weights of a diverged run): that is an
 * {@linkcode InputError} with exit code {@linkcode EXIT_DIVERGED} naming the file and the
 * tensor, and the previous file is kept.
 */
export function saveTensorFile(
  file: string,
  meta: unknown,
  groups: TensorGroups,
  kind: TensorFileKind,
): Promise<void> {
  for (const [g, ts] of Object.entries(kind.finiteOnly ? groups : {})) {
    for (const [name, t] of Object.entries(ts)) {
      const d = t.data;
      for (let i = 0; i < d.length; i++) {
        if (d[i] - d[i] !== 0) {
          return Promise.reject(
            new InputError(
              `${file}: not written: ${g}/${name} holds ${d[i]} (training diverged; try a ` +
                `lower learning rate, --lr); the previous file is kept`,
              EXIT_DIVERGED,
            ),
          );
        }
      }
    }
  }
  return atomicWrite(file, encodeTensorFile(meta, groups, kind));
}

/** Reads a tensor file of the given kind (one-line {@linkcode InputError}s naming the file). */
export async function loadTensorFile<M = unknown>(
  file: string,
  kind: TensorFileKind,
): Promise<TensorFile<M>> {
  return decodeTensorFile<M>(await readBytes(file), file, kind);
}
