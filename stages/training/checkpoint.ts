/**
 * One-file student checkpoints, written atomically (temp file + rename): a killed run leaves
 * either the previous checkpoint or the new one, never half of one.
 *
 * Format (little-endian): 8 bytes magic `FSTLCKP1`, uint32 header byte length, UTF-8 JSON
 * header `{meta, tensors: [{group, name, shape, offset}]}` padded with spaces to a multiple
 * of 4 bytes, then all tensors as float32 (offsets in floats from the data start). Groups:
 * `model` (student weights), `ema`, `adam.m`, `adam.v`.
 *
 * @module
 */
import { InputError } from "../../lib/errors.ts";
import { atomicWrite, readBytes } from "../../lib/io.ts";

const MAGIC = "FSTLCKP1";

/** A host tensor. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** Groups of named host tensors. */
export type TensorGroups = Record<string, Record<string, HostTensor>>;

/** Encodes a checkpoint to bytes. */
export function encodeCheckpoint(meta: unknown, groups: TensorGroups): Uint8Array {
  const index: { group: string; name: string; shape: number[]; offset: number }[] = [];
  let floats = 0;
  for (const [group, ts] of Object.entries(groups)) {
    for (const [name, t] of Object.entries(ts)) {
      index.push({ group, name, shape: t.shape, offset: floats });
      floats += t.data.length;
    }
  }
  let header = new TextEncoder().encode(JSON.stringify({ meta, tensors: index }));
  const pad = (4 - (header.length % 4)) % 4;
  if (pad) {
    const h2 = new Uint8Array(header.length + pad).fill(0x20);
    h2.set(header);
    header = h2;
  }
  const out = new Uint8Array(12 + header.length + floats * 4);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, 12);
  const data = new Float32Array(out.buffer, 12 + header.length, floats);
  let o = 0;
  for (const ts of Object.values(groups)) {
    for (const t of Object.values(ts)) {
      data.set(t.data, o);
      o += t.data.length;
    }
  }
  return out;
}

/** Decodes checkpoint bytes; `file` names errors. */
export function decodeCheckpoint(
  bytes: Uint8Array,
  file: string,
): { meta: unknown; groups: TensorGroups } {
  const bad = (why: string) => new InputError(`${file}: not a student checkpoint (${why})`);
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw bad("bad magic");
  }
  const hl = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  if (12 + hl > bytes.length) throw bad("truncated header");
  let header: {
    meta: unknown;
    tensors: { group: string; name: string; shape: number[]; offset: number }[];
  };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + hl)));
  } catch {
    throw bad("corrupt header");
  }
  const start = 12 + hl;
  // Copy so the result is aligned and independent of `bytes`.
  const all = new Float32Array(bytes.slice(start).buffer);
  const groups: TensorGroups = {};
  for (const t of header.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.offset + n > all.length) throw bad(`truncated data (${t.group}/${t.name})`);
    (groups[t.group] ??= {})[t.name] = {
      shape: t.shape,
      data: all.subarray(t.offset, t.offset + n),
    };
  }
  return { meta: header.meta, groups };
}

/** Writes a checkpoint atomically. */
export function saveCheckpoint(file: string, meta: unknown, groups: TensorGroups): Promise<void> {
  return atomicWrite(file, encodeCheckpoint(meta, groups));
}

/** Reads a checkpoint (one-line errors naming the file). */
export async function loadCheckpoint(
  file: string,
): Promise<{ meta: unknown; groups: TensorGroups }> {
  return decodeCheckpoint(await readBytes(file), file);
}
