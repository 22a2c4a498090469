/**
 * NumPy `.npz` archives: a zip of `.npy` members (stored by `np.savez`, deflated by
 * `np.savez_compressed`). A feature file holds one array; with several, the one named by
 * `key` (e.g. `"feats"`, without `.npy`) is read.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";
import { decodeNpy, encodeNpy, type NpyArray } from "./npy.ts";
import { bytesSource, zipBytes, type ZipEntry, ZipReader } from "./zip.ts";

/** Picks the member holding the wanted array; errors list what the archive has. */
export function pickNpzMember(zip: ZipReader, key: string | undefined): ZipEntry {
  const arrays = zip.entries.filter((e) => e.name.endsWith(".npy"));
  const names = arrays.map((e) => e.name.slice(0, -4));
  if (key !== undefined) {
    const i = names.indexOf(key);
    if (i < 0) {
      throw new InputError(
        `${zip.file}: no array "${key}" in the .npz (it has: ${names.join(", ") || "none"})`,
      );
    }
    return arrays[i];
  }
  if (arrays.length !== 1) {
    throw new InputError(
      `${zip.file}: .npz holds ${arrays.length} arrays (${names.join(", ") || "none"}); ` +
        `name one with the npz key option`,
    );
  }
  return arrays[0];
}

/** Decodes the array of an in-memory `.npz` (`key` picks one of several). */
export async function readNpz(bytes: Uint8Array, file: string, key?: string): Promise<NpyArray> {
  const zip = await ZipReader.open(file, bytesSource(bytes));
  const entry = pickNpzMember(zip, key);
  const data = await zip.read(entry);
  return decodeNpy(data, `${file}: ${entry.name}`);
}

/** Encodes named float32 arrays as an `.npz` (deflated like `np.savez_compressed` if asked). */
export function encodeNpz(
  arrays: Record<string, { data: Float32Array; shape: number[] }>,
  compressed = true,
  level = 6,
): Promise<Uint8Array> {
  return zipBytes(
    Object.entries(arrays).map(([name, a]) => ({
      name: `${name}.npy`,
      data: encodeNpy(a.data, a.shape),
    })),
    compressed,
    level,
  );
}
