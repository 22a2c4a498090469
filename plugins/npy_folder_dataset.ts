/**
 * Example dataset plugin: a folder of `.npy` feature files plus one small labels file, the
 * layout a user with their own videos would plausibly have.
 *
 * ```
 * my_videos/
 *   labels.json
 *   clip_001.npy          T x D features (float32 or float64, C order), one row per snippet
 *   clip_002.npy
 * ```
 *
 * `labels.json`:
 * ```json
 * { "classes": ["Jump", "Throw"],
 *   "fps": 25, "stride": 16,
 *   "videos": {
 *     "clip_001": { "split": "train", "labels": ["Jump"] },
 *     "clip_002": { "split": "test", "annotations": [{ "label": "Throw", "segment": [3.2, 7.9] }] }
 *   } }
 * ```
 * - `fps`, `stride` (frames between rows, default 16), `window` (default = stride) and
 *   `offset` (frame of row 0's start, default 0) give the time of each row:
 *   row g starts at `(g * stride + offset) / fps` s. Per-video `fps` overrides the global one.
 * - A video's weak labels are `labels` plus the labels of its `annotations` (optional; test
 *   videos need annotations to be scored). `duration` (s) defaults to rows * stride / fps.
 * - The file of video `id` is `<id>.npy`, or the `file` given in its entry.
 *
 * Only headers are read when opening; features are read one video at a time on `load`.
 * Self-contained: it has its own minimal `.npy` reader (little-endian `f4`/`f8`, C order).
 *
 * Use it: `deno run -A mod.ts --plugin plugins/npy_folder_dataset.ts --layout npy-folder --root my_videos`
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type {
  Annotation,
  Dataset,
  DatasetPlugin,
  Split,
  VideoFeatures,
  VideoMeta,
} from "../plugins.ts";

interface NpyHeader {
  dtype: "<f4" | "<f8";
  shape: number[];
  dataOffset: number;
}

/** Parses a `.npy` header (versions 1-3); throws naming `file` on anything unsupported. */
function parseHeader(bytes: Uint8Array, file: string): NpyHeader {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) {
    throw new Error(`${file}: not a .npy file (bad magic)`);
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  if (bytes.length < start + headerLen) throw new Error(`${file}: truncated .npy header`);
  const text = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr !== "<f4" && descr !== "<f8") {
    throw new Error(`${file}: dtype ${descr} not supported (use float32 or float64)`);
  }
  if (fortran !== "False") throw new Error(`${file}: Fortran-order arrays not supported`);
  if (shapeText === undefined) throw new Error(`${file}: .npy header has no shape`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (shape.length < 1 || shape.length > 2 || shape.some((s) => !Number.isInteger(s))) {
    throw new Error(`${file}: expected a 1-D or 2-D array, shape (${shapeText})`);
  }
  return { dtype: descr, shape, dataOffset: start + headerLen };
}

async function readHeader(file: string): Promise<NpyHeader> {
  const fh = await fs.open(file, "r");
  try {
    const buf = new Uint8Array(4096); // headers are far smaller in practice
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return parseHeader(buf.subarray(0, bytesRead), file);
  } finally {
    await fh.close();
  }
}

async function readFeatures(file: string): Promise<VideoFeatures> {
  const bytes = new Uint8Array(await fs.readFile(file));
  const h = parseHeader(bytes, file);
  const length = h.shape[0], dim = h.shape[1] ?? 1;
  const item = h.dtype === "<f4" ? 4 : 8;
  if (bytes.length - h.dataOffset !== length * dim * item) {
    throw new Error(`${file}: data size does not match shape (${h.shape.join(", ")})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + h.dataOffset, length * dim * item);
  const data = new Float32Array(length * dim);
  for (let i = 0; i < data.length; i++) {
    data[i] = item === 4 ? view.getFloat32(i * 4, true) : view.getFloat64(i * 8, true);
  }
  return { data, length, dim };
}

interface LabelsFile {
  classes: string[];
  fps?: number;
  stride?: number;
  window?: number;
  offset?: number;
  videos: Record<string, {
    split: string;
    labels?: string[];
    annotations?: { label: string; segment: [number, number] }[];
    duration?: number;
    fps?: number;
    file?: string;
  }>;
}

function readLabels(raw: unknown, file: string): LabelsFile {
  const bad = (why: string): never => {
    throw new Error(`${file}: ${why}`);
  };
  const o = raw as Partial<LabelsFile> | null;
  if (typeof o !== "object" || o === null) bad("not a JSON object");
  if (!Array.isArray(o!.classes) || o!.classes.some((c) => typeof c !== "string")) {
    bad(`"classes" must be a list of names`);
  }
  if (typeof o!.videos !== "object" || o!.videos === null) bad(`missing "videos" object`);
  for (const [id, v] of Object.entries(o!.videos!)) {
    if (v?.split !== "train" && v?.split !== "test") {
      bad(`video ${id}: "split" must be "train" or "test"`);
    }
  }
  return o as LabelsFile;
}

async function open(root: string): Promise<Dataset> {
  const labelsFile = path.join(root, "labels.json");
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(labelsFile, "utf8"));
  } catch (e) {
    throw new Error(`${labelsFile}: cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  const spec = readLabels(raw, labelsFile);
  const classId = new Map(spec.classes.map((c, i) => [c, i]));
  const files = new Map<string, string>();
  const metas: VideoMeta[] = [];
  let featureDim = -1;
  for (const [id, v] of Object.entries(spec.videos)) {
    const file = path.join(root, v.file ?? `${id}.npy`);
    const h = await readHeader(file);
    const dim = h.shape[1] ?? 1;
    if (featureDim < 0) featureDim = dim;
    if (dim !== featureDim) {
      throw new Error(`${file}: feature dimension ${dim}, other videos have ${featureDim}`);
    }
    const fps = v.fps ?? spec.fps ?? 25;
    const stride = spec.stride ?? 16;
    const grid = { fps, stride, window: spec.window ?? stride, offset: spec.offset ?? 0 };
    const cid = (label: string) => {
      const c = classId.get(label);
      if (c === undefined) throw new Error(`${labelsFile}: video ${id}: unknown class "${label}"`);
      return c;
    };
    const annotations: Annotation[] = (v.annotations ?? []).map((a) => ({
      label: a.label,
      classId: cid(a.label),
      segment: [a.segment[0], a.segment[1]],
    }));
    const labels = [
      ...new Set([...(v.labels ?? []).map(cid), ...annotations.map((a) => a.classId)]),
    ]
      .sort((a, b) => a - b);
    files.set(id, file);
    metas.push({
      id,
      split: v.split as Split,
      subset: v.split,
      duration: v.duration ?? (h.shape[0] * stride) / fps,
      fps,
      grid,
      length: h.shape[0],
      annotations,
      labels,
    });
  }
  const list = (split?: Split) => metas.filter((m) => split === undefined || m.split === split);
  const load = (id: string) => {
    const file = files.get(id);
    if (!file) throw new Error(`${root}: no video "${id}"`);
    return readFeatures(file);
  };
  return {
    layout: "npy-folder",
    root,
    classes: spec.classes,
    featureDim: Math.max(featureDim, 0),
    list,
    load,
    async *videos(split?: Split) {
      for (const meta of list(split)) yield { meta, features: await load(meta.id) };
    },
  };
}

const npyFolderDataset: DatasetPlugin = {
  kind: "dataset",
  name: "npy-folder",
  description: "a folder of <video>.npy feature files with a labels.json",
  async detect(root: string) {
    try {
      const o = JSON.parse(await fs.readFile(path.join(root, "labels.json"), "utf8"));
      return typeof o === "object" && o !== null && Array.isArray(o.classes) &&
        typeof o.videos === "object";
    } catch {
      return false;
    }
  },
  open,
};

export default npyFolderDataset;
