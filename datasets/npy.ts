/**
 * NumPy `.npy` reading and writing (format 1.0, 2.0 and 3.0 headers).
 *
 * Read: dtypes `f2`, `f4`, `f8` in either byte order (`<`, `>`; `|`/`=` taken as little
 * endian, the only order this toolkit runs on), C or Fortran order, any rank (features are
 * 2-D; a 1-D array is one column). Everything becomes a row-major `Float32Array`.
 * Write: `<f4` (default), `<f2` or `<f8`, C order, version 1.0 header padded to 64 bytes
 * (2.0 when the header would not fit 65535 bytes).
 *
 * Every problem is an {@linkcode InputError} naming the file: bad magic, unreadable header,
 * unsupported dtype, and a data size that does not match the shape.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";

/** The parsed header of an `.npy` file. */
export interface NpyHeader {
  /** dtype string as stored, e.g. `<f4`. */
  descr: string;
  /** True when the data is column-major. */
  fortranOrder: boolean;
  /** Array shape. */
  shape: number[];
  /** Byte offset of the first data byte. */
  dataOffset: number;
  /** Bytes per element (2, 4 or 8). */
  itemSize: number;
  /** True for big-endian data. */
  bigEndian: boolean;
}

/** A decoded array: row-major float32 values and the shape. */
export interface NpyArray {
  /** Row-major values. */
  data: Float32Array;
  /** Shape as stored (Fortran arrays are transposed to row-major; the shape is unchanged). */
  shape: number[];
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/**
 * Parses the header at the start of `bytes` (only the header bytes need to be present).
 * Returns null when `bytes` is too short to hold the whole header (read more and retry).
 */
export function tryParseNpyHeader(bytes: Uint8Array, file: string): NpyHeader | null {
  if (bytes.length < 10) return null;
  for (let i = 0; i < 6; i++) {
    if (bytes[i] !== MAGIC[i]) throw new InputError(`${file}: not an .npy file (bad magic bytes)`);
  }
  const major = bytes[6];
  // NumPy writes and reads only versions 1.0, 2.0 and 3.0 (`numpy.lib.format`).
  if (bytes[7] !== 0) {
    throw new InputError(`${file}: unsupported .npy format version ${major}.${bytes[7]}`);
  }
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = bytes[8] | (bytes[9] << 8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) return null;
    headerLen = (bytes[8] | (bytes[9] << 8) | (bytes[10] << 16)) + bytes[11] * 16777216;
    start = 12;
  } else {
    throw new InputError(`${file}: unsupported .npy format version ${major}.${bytes[7]}`);
  }
  if (bytes.length < start + headerLen) return null;
  // Version 3.0 allows UTF-8 in the header; the fields we read are ASCII either way.
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(start, start + headerLen),
  );
  return parseHeaderDict(text, file, start + headerLen);
}

/** Parses the header of a complete `.npy` byte array. */
export function parseNpyHeader(bytes: Uint8Array, file: string): NpyHeader {
  const h = tryParseNpyHeader(bytes, file);
  if (!h) throw new InputError(`${file}: truncated .npy header`);
  return h;
}

function parseHeaderDict(text: string, file: string, dataOffset: number): NpyHeader {
  const bad = (why: string) => new InputError(`${file}: bad .npy header (${why})`);
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fo = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined) throw bad("no descr");
  if (fo === undefined) throw bad("no fortran_order");
  if (shapeText === undefined) throw bad("no shape");
  const shape: number[] = [];
  for (const part of shapeText.split(",")) {
    const s = part.trim().replace(/L$/, ""); // Python 2 writers append L to longs
    if (s === "") continue;
    if (!/^\d+$/.test(s)) throw bad(`shape entry "${s}"`);
    shape.push(Number(s));
  }
  const m = /^([<>|=])?f([248])$/.exec(descr);
  if (!m) {
    throw new InputError(
      `${file}: unsupported .npy dtype "${descr}" (expected float16/32/64, e.g. '<f4')`,
    );
  }
  return {
    descr,
    fortranOrder: fo === "True",
    shape,
    dataOffset,
    itemSize: Number(m[2]),
    bigEndian: m[1] === ">",
  };
}

/** Number of elements of a shape (1 for a scalar). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

let halfTable: Float32Array | null = null;

/** float16 bit pattern -> float32 value, for every one of the 65536 patterns (built once). */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return (halfTable = t);
}

/**
 * Decodes a complete `.npy` byte array into row-major float32. The data must be exactly
 * `prod(shape) * itemSize` bytes (a trailing excess or a shortfall is an error).
 */
export function decodeNpy(bytes: Uint8Array, file: string): NpyArray {
  const h = parseNpyHeader(bytes, file);
  const n = shapeSize(h.shape);
  const have = bytes.length - h.dataOffset;
  if (have !== n * h.itemSize) {
    throw new InputError(
      `${file}: .npy data is ${have} bytes but shape (${h.shape.join(", ")}) of ${h.descr} ` +
        `needs ${n * h.itemSize}${have < n * h.itemSize ? " (file truncated?)" : ""}`,
    );
  }
  let out: Float32Array = new Float32Array(n);
  const off = bytes.byteOffset + h.dataOffset;
  const le = !h.bigEndian;
  if (h.itemSize === 4 && le && off % 4 === 0) {
    out.set(new Float32Array(bytes.buffer, off, n));
  } else if (h.itemSize === 4 && le) {
    out.set(new Float32Array(bytes.slice(h.dataOffset).buffer, 0, n));
  } else if (h.itemSize === 8 && le && off % 8 === 0) {
    out.set(new Float64Array(bytes.buffer, off, n));
  } else if (h.itemSize === 2 && le && off % 2 === 0) {
    const t = halfToFloatTable();
    const src = new Uint16Array(bytes.buffer, off, n);
    for (let i = 0; i < n; i++) out[i] = t[src[i]];
  } else {
    // Unaligned or big-endian: go through a DataView (slower, rare).
    const dv = new DataView(bytes.buffer, off, n * h.itemSize);
    if (h.itemSize === 4) { for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, le); }
    else if (h.itemSize === 8) { for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, le); }
    else {
      const t = halfToFloatTable();
      for (let i = 0; i < n; i++) out[i] = t[dv.getUint16(i * 2, le)];
    }
  }
  if (h.itemSize === 8) checkFloat32Range(bytes, h.dataOffset, le, out, file);
  if (h.fortranOrder && h.shape.length > 1) out = fortranToC(out, h.shape);
  return { data: out, shape: h.shape };
}

/**
 * A finite float64 beyond float32's range becomes ±Infinity when narrowed: report it as
 * overflowing float32 (naming the file, the flat index and the value), not as non-finite.
 */
function checkFloat32Range(
  bytes: Uint8Array,
  dataOffset: number,
  le: boolean,
  out: Float32Array,
  file: string,
): void {
  for (let i = 0; i < out.length; i++) {
    const x = out[i];
    if (x === Infinity || x === -Infinity) {
      const v = new DataView(bytes.buffer, bytes.byteOffset + dataOffset + i * 8, 8)
        .getFloat64(0, le);
      if (Number.isFinite(v)) {
        throw new InputError(
          `${file}: float64 value ${v} at flat index ${i} overflows float32 ` +
            `(largest float32 is 3.4028235e38)`,
        );
      }
    }
  }
}

/** Reorders column-major values of `shape` into row-major order. */
function fortranToC(src: Float32Array, shape: number[]): Float32Array {
  const out = new Float32Array(src.length);
  if (shape.length === 2) {
    const [r, c] = shape;
    for (let j = 0; j < c; j++) {
      const base = j * r;
      for (let i = 0; i < r; i++) out[i * c + j] = src[base + i];
    }
    return out;
  }
  // General rank: walk row-major indices, compute the column-major offset.
  const rank = shape.length;
  const fStride = new Array<number>(rank);
  fStride[0] = 1;
  for (let k = 1; k < rank; k++) fStride[k] = fStride[k - 1] * shape[k - 1];
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let f = 0;
    for (let k = 0; k < rank; k++) f += idx[k] * fStride[k];
    out[o] = src[f];
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** dtypes the writer can produce. */
export type NpyWriteDtype = "<f2" | "<f4" | "<f8";

/** Options of {@linkcode encodeNpy}. */
export interface EncodeNpyOptions {
  /** Stored dtype (default `<f4`). */
  dtype?: NpyWriteDtype;
  /** Write a Fortran-order file (data transposed; for tests of the reader). */
  fortranOrder?: boolean;
  /** Header version 1, 2 or 3 (default 1, or 2 when the header is too long for 1). */
  version?: 1 | 2 | 3;
}

/** Encodes row-major `data` of `shape` as a complete `.npy` file. */
export function encodeNpy(
  data: Float32Array | Float64Array,
  shape: readonly number[],
  opts: EncodeNpyOptions = {},
): Uint8Array {
  const dtype = opts.dtype ?? "<f4";
  const n = shapeSize(shape);
  if (n !== data.length) throw new Error(`encodeNpy: ${data.length} values for shape ${shape}`);
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '${dtype}', 'fortran_order': ${
    opts.fortranOrder ? "True" : "False"
  }, 'shape': ${shapeStr}, }`;
  let version = opts.version ?? 1;
  let pre = version === 1 ? 10 : 12;
  let total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  if (version === 1 && total - pre > 65535) {
    version = 2;
    pre = 12;
    total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  }
  const headerLen = total - pre;
  const item = dtype === "<f2" ? 2 : dtype === "<f4" ? 4 : 8;
  const out = new Uint8Array(total + n * item);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  if (version === 1) {
    out[8] = headerLen & 0xff;
    out[9] = headerLen >> 8;
  } else new DataView(out.buffer).setUint32(8, headerLen, true);
  const text = dict + " ".repeat(headerLen - dict.length - 1) + "\n";
  for (let i = 0; i < text.length; i++) out[pre + i] = text.charCodeAt(i);
  let src: Float32Array | Float64Array = data;
  if (opts.fortranOrder && shape.length === 2) {
    const [r, c] = shape;
    const t = new Float64Array(n);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = data[i * c + j];
    src = t;
  }
  if (item === 4) new Float32Array(out.buffer, total, n).set(src);
  else if (item === 8) new Float64Array(out.buffer, total, n).set(src);
  else {
    const dst = new Uint16Array(out.buffer, total, n);
    for (let i = 0; i < n; i++) dst[i] = floatToHalf(src[i]);
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> float16 bit pattern, round to nearest even. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}
