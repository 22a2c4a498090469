/**
 * Feature files on disk, whatever their container: a folder of `.npy` / `.npy.gz` / `.npz`
 * files (or extension-less `.npy`, as some ActivityNet packages ship), or the same folder
 * packed as one `.zip`. A {@linkcode FeatureStore} finds one video's file by its path
 * relative to the features folder (without extension) and reads it on demand: the header
 * alone (shape, to size the dataset without loading it) or the whole array.
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { InputError } from "../lib/errors.ts";
import { readBytes } from "../lib/io.ts";
import { gunzip, inflatePrefix } from "./inflate.ts";
import { decodeNpy, type NpyArray, shapeSize, tryParseNpyHeader } from "./npy.ts";
import { pickNpzMember, readNpz } from "./npz.ts";
import { fileSource, type ZipEntry, ZipReader } from "./zip.ts";

/** Feature-file extensions, in lookup order (extension-less files are tried last). */
export const FEATURE_EXTS = [".npy", ".npy.gz", ".npz"] as const;

/** Options of feature reading. */
export interface FeatureReadOptions {
  /** Array name inside `.npz` files holding several arrays. */
  npzKey?: string;
}

/** One video's feature file, found but not yet read. */
export interface FeatureRef {
  /** Path for messages (`file` or `archive.zip:member`). */
  path: string;
  /** Reads just enough to know the array's shape. */
  shape(): Promise<number[]>;
  /** Reads and decodes the whole array. */
  load(): Promise<NpyArray>;
}

/** A folder (or zip) of feature files. */
export interface FeatureStore {
  /** The folder or archive path. */
  where: string;
  /** Finds the file of `rel` (e.g. `video_test_0000004`, `train/rgb/<vid>`), or null. */
  find(rel: string): Promise<FeatureRef | null>;
  /** The path a missing file was expected at (for error messages). */
  expected(rel: string): string;
  /** Releases open archives. */
  close(): Promise<void>;
}

type Kind = "npy" | "gz" | "npz";

function kindOf(name: string, head?: Uint8Array): Kind {
  if (name.endsWith(".gz")) return "gz";
  if (name.endsWith(".npz")) return "npz";
  if (name.endsWith(".npy")) return "npy";
  // No extension: sniff the magic bytes.
  if (head && head[0] === 0x1f && head[1] === 0x8b) return "gz";
  if (head && head[0] === 0x50 && head[1] === 0x4b) return "npz";
  return "npy";
}

/** Decodes a complete feature file's bytes (`name` picks the format and names errors). */
export function decodeFeatureBytes(
  bytes: Uint8Array,
  name: string,
  opts: FeatureReadOptions = {},
): Promise<NpyArray> {
  const kind = kindOf(name, bytes);
  if (kind === "gz") return Promise.resolve(decodeNpy(gunzip(bytes, name), name));
  if (kind === "npz") return readNpz(bytes, name, opts.npzKey);
  return Promise.resolve(decodeNpy(bytes, name));
}

/** Shape from the first bytes of an `.npy` stream; checks the total size when known. */
function shapeFromPrefix(head: Uint8Array, name: string, totalSize?: number): number[] {
  const h = tryParseNpyHeader(head, name);
  if (!h) throw new InputError(`${name}: truncated .npy header`);
  if (totalSize !== undefined) {
    const need = h.dataOffset + shapeSize(h.shape) * h.itemSize;
    if (need !== totalSize) {
      throw new InputError(
        `${name}: .npy data is ${totalSize - h.dataOffset} bytes but shape ` +
          `(${h.shape.join(", ")}) of ${h.descr} needs ${need - h.dataOffset}` +
          `${totalSize < need ? " (file truncated?)" : ""}`,
      );
    }
  }
  return h.shape;
}

async function readHead(file: string, n: number): Promise<{ head: Uint8Array; size: number }> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, "r");
  } catch {
    await readBytes(file); // produces the one-line reason
    throw new InputError(`${file}: cannot open`);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new InputError(`${file}: is a folder, expected a feature file`);
    const size = st.size;
    const head = new Uint8Array(Math.min(n, size));
    let got = 0;
    while (got < head.length) {
      const r = await fh.read(head, got, head.length - got, got);
      if (r.bytesRead === 0) break;
      got += r.bytesRead;
    }
    return { head: head.subarray(0, got), size };
  } finally {
    await fh.close();
  }
}

/** Reads a whole file without the extra copy `readBytes` makes (errors as readBytes). */
async function readWhole(file: string): Promise<Uint8Array> {
  try {
    const b = await fs.readFile(file);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch {
    return await readBytes(file);
  }
}

class DirStore implements FeatureStore {
  where: string;
  #opts: FeatureReadOptions;
  #listing = new Map<string, Promise<Set<string>>>();
  constructor(dir: string, opts: FeatureReadOptions) {
    this.where = dir;
    this.#opts = opts;
  }
  #list(dir: string): Promise<Set<string>> {
    let p = this.#listing.get(dir);
    if (!p) {
      p = fs.readdir(dir).then((a) => new Set(a), () => new Set<string>());
      this.#listing.set(dir, p);
    }
    return p;
  }
  expected(rel: string): string {
    return path.join(this.where, rel + ".npy");
  }
  async find(rel: string): Promise<FeatureRef | null> {
    const full = path.join(this.where, rel);
    // A video id is a name, not a path: it must resolve inside the features folder.
    const inside = path.relative(path.resolve(this.where), path.resolve(full));
    if (inside === "" || inside.startsWith("..") || path.isAbsolute(inside) || rel.includes("\0")) {
      throw new InputError(
        `${this.where}: video id in ${JSON.stringify(rel)} resolves outside the features folder`,
      );
    }
    const names = await this.#list(path.dirname(full));
    const base = path.basename(full);
    for (const ext of [...FEATURE_EXTS, ""]) {
      if (names.has(base + ext)) {
        const st = await fs.stat(full + ext).catch(() => null);
        if (st?.isDirectory()) {
          throw new InputError(`${full + ext}: is a folder, expected a feature file`);
        }
        return this.#ref(full + ext);
      }
    }
    return null;
  }
  #ref(file: string): FeatureRef {
    const opts = this.#opts;
    return {
      path: file,
      async shape() {
        const { head, size } = await readHead(file, 65536);
        const kind = kindOf(file, head);
        if (kind === "npy") {
          let h = head;
          if (!tryParseNpyHeader(h, file) && size > h.length) h = await readBytes(file);
          return shapeFromPrefix(h, file, size);
        }
        if (kind === "gz") {
          if (head[0] !== 0x1f || head[1] !== 0x8b) {
            throw new InputError(`${file}: not a gzip file (bad magic bytes)`);
          }
          return shapeFromPrefix(inflatePrefix(head, "gzip", 4096, file), file);
        }
        const zip = await ZipReader.open(file, await fileSource(file));
        try {
          const e = pickNpzMember(zip, opts.npzKey);
          return shapeFromPrefix(await zip.readPrefix(e, 4096), `${file}: ${e.name}`);
        } finally {
          await zip.close();
        }
      },
      async load() {
        return await decodeFeatureBytes(await readWhole(file), file, opts);
      },
    };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class ZipStore implements FeatureStore {
  where: string;
  #zip: ZipReader;
  #opts: FeatureReadOptions;
  #index = new Map<string, ZipEntry>();
  constructor(file: string, zip: ZipReader, opts: FeatureReadOptions) {
    this.where = file;
    this.#zip = zip;
    this.#opts = opts;
    // Index every member by each path suffix without extension, so `train/rgb/<vid>` finds
    // `features/train/rgb/<vid>.npy` whatever folder the archive was packed from.
    for (const e of zip.entries) {
      if (e.name.endsWith("/")) continue;
      let key = e.name;
      for (const ext of FEATURE_EXTS) {
        if (key.endsWith(ext)) {
          key = key.slice(0, -ext.length);
          break;
        }
      }
      const parts = key.split("/");
      for (let i = 0; i < parts.length; i++) {
        const k = parts.slice(i).join("/");
        if (!this.#index.has(k)) this.#index.set(k, e);
      }
    }
  }
  expected(rel: string): string {
    return `${this.where}:${rel}.npy`;
  }
  find(rel: string): Promise<FeatureRef | null> {
    const e = this.#index.get(rel.split(path.sep).join("/"));
    if (!e) return Promise.resolve(null);
    const zip = this.#zip;
    const name = `${this.where}:${e.name}`;
    const opts = this.#opts;
    return Promise.resolve({
      path: name,
      async shape() {
        const head = await zip.readPrefix(e, 4096);
        const kind = kindOf(e.name, head);
        if (kind === "npy") return shapeFromPrefix(head, name, e.size);
        return (await decodeFeatureBytes(await zip.read(e), name, opts)).shape;
      },
      async load() {
        return await decodeFeatureBytes(await zip.read(e), name, opts);
      },
    });
  }
  close(): Promise<void> {
    return this.#zip.close();
  }
}

async function statKind(p: string): Promise<"dir" | "file" | null> {
  try {
    const s = await fs.stat(p);
    return s.isDirectory() ? "dir" : "file";
  } catch {
    return null;
  }
}

/**
 * Opens the features at `base`: a folder, a `.zip`, or (when `base` does not exist)
 * `base + ".zip"`. Returns null when none exists.
 */
export async function openFeatureStore(
  base: string,
  opts: FeatureReadOptions = {},
): Promise<FeatureStore | null> {
  const k = await statKind(base);
  if (k === "dir") return new DirStore(base, opts);
  const zipPath = k === "file"
    ? base
    : (await statKind(base + ".zip")) === "file"
    ? base + ".zip"
    : null;
  if (!zipPath) return null;
  return new ZipStore(zipPath, await ZipReader.open(zipPath, await fileSource(zipPath)), opts);
}

/**
 * Checks a decoded array as one video's features: 2-D, the expected dim (when given), every
 * value finite. Errors name the file and the video.
 */
export function checkFeatureArray(
  arr: NpyArray,
  file: string,
  video: string,
  expectDim?: number,
  checkFinite = true,
): void {
  const where = `${file} (video ${video})`;
  if (arr.shape.length !== 2) {
    throw new InputError(
      `${where}: expected a 2-D T x D array, got shape (${arr.shape.join(", ")})`,
    );
  }
  if (expectDim !== undefined && arr.shape[1] !== expectDim) {
    throw new InputError(
      `${where}: feature dim ${arr.shape[1]} differs from the dataset's ${expectDim}`,
    );
  }
  if (arr.shape[0] < 1) throw new InputError(`${where}: no feature rows`);
  if (checkFinite) {
    const d = arr.data;
    for (let i = 0; i < d.length; i++) {
      // x - x is NaN for NaN and for +/-Infinity.
      if (d[i] - d[i] !== 0) {
        const row = Math.floor(i / arr.shape[1]);
        throw new InputError(
          `${where}: non-finite value ${d[i]} at row ${row}, column ${i % arr.shape[1]}`,
        );
      }
    }
  }
}
