/**
 * The fuzz suite's case generator: from a seed, mutated inputs across result files,
 * ground-truth files, annotation files of the three layouts (ActionFormer, CoLA,
 * ActivityNet), `.npy` / `.npy.gz` / `.npz` / `.zip` feature files, checkpoints, plugin modules
 * and CLI flags. Every case is bad input: the CLI must exit 2 with one `error:` line naming
 * `names` (the file or the flag) and write nothing. A few control cases (valid input, exit 0)
 * prove the harness can tell the difference.
 *
 * Cases are built against small template datasets written by `synthesize` (4 videos, 4-d
 * features); `build` returns the files to write over a copy of the template.
 *
 * @module
 */
import * as zlib from "node:zlib";
import { crc32 } from "../../datasets/inflate.ts";
import { encodeNpy } from "../../datasets/npy.ts";
import { encodeCheckpoint } from "../../stages/training/checkpoint.ts";

/** A template dataset a case starts from (copied to `DIR/data`). */
export type Template = "thumos" | "anet";

/** One fuzz case. `{d}` in `args` stands for the case's folder. */
export interface FuzzCase {
  /** Unique id (`<class>-<n>`). */
  id: string;
  /** Input class (what kind of file or flag is mutated). */
  cls: string;
  /** The mutation, in words. */
  what: string;
  /** Template copied to `{d}/data` first. */
  template?: Template;
  /** Paths (relative to `{d}`) removed after the copy. */
  remove?: string[];
  /** Folders (relative to `{d}`) created after the copy. */
  mkdir?: string[];
  /** Files (relative to `{d}`) written last. */
  write?: Record<string, string | Uint8Array>;
  /** CLI arguments. */
  args: string[];
  /** Expected exit code (2 for bad input, 0 for a control case). */
  exit: number;
  /** Text the error line must contain (a file name or a flag). */
  names: string;
}

/** What a generator needs to know about the templates (read from the written files). */
export interface TemplateInfo {
  /** ActionFormer annotation JSON text. */
  actionformerJson: string;
  /** CoLA gt.json text. */
  colaJson: string;
  /** CoLA split files. */
  colaSplits: { train: string[]; test: string[] };
  /** ActivityNet annotation JSON text. */
  anetJson: string;
  /** A few ActionFormer video ids with their durations. */
  afVideos: { id: string; duration: number; rows: number }[];
  /** Duration (s) of every THUMOS'14 template video by id (CoLA shares the ids). */
  durations: Record<string, number>;
  /** Feature dim of the templates. */
  dim: number;
}

/** Template-relative paths. */
export const AF = "data/actionformer";
/** CoLA root inside a case folder. */
export const COLA = "data/cola";
/** ActivityNet root inside a case folder. */
export const ANET = "data/activitynet";
/** ActivityNet annotation file inside its root. */
export const ANET_JSON = "activity_net.v1-3.min.json";

/** A small deterministic PRNG (mulberry32). */
export class CaseRng {
  #s: number;
  /** Seeds the stream. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** One element. */
  pick<T>(a: readonly T[]): T {
    return a[Math.floor(this.next() * a.length)];
  }
}

const enc = (s: string) => new TextEncoder().encode(s);

/** A proper prefix of a JSON object text (always invalid JSON). */
function truncateJson(text: string, rng: CaseRng): string {
  const last = text.lastIndexOf("}");
  return text.slice(0, rng.int(1, Math.max(1, last - 1)));
}

/** Builds a zip archive; `lie` overrides one member's declared sizes or CRC. */
export function buildZip(
  members: {
    name: string;
    data: Uint8Array;
    deflate?: boolean;
    /** A ready deflated body and the size to declare for it (a lie, for bombs). */
    raw?: { body: Uint8Array; size: number };
  }[],
  lie?: { index: number; size?: number; crc?: number },
): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  members.forEach((m, i) => {
    const body = m.raw
      ? m.raw.body
      : m.deflate
      ? new Uint8Array(zlib.deflateRawSync(m.data))
      : m.data;
    const name = enc(m.name);
    const crc = lie?.index === i && lie.crc !== undefined ? lie.crc : crc32(m.data);
    const size = m.raw
      ? m.raw.size
      : lie?.index === i && lie.size !== undefined
      ? lie.size
      : m.data.length;
    const method = m.deflate || m.raw ? 8 : 0;
    const l = new Uint8Array(30 + name.length);
    const lv = new DataView(l.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, method, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, size, true);
    lv.setUint16(26, name.length, true);
    l.set(name, 30);
    const c = new Uint8Array(46 + name.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, size, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    c.set(name, 46);
    locals.push(l, body);
    centrals.push(c);
    offset += l.length + body.length;
  });
  const cdSize = centrals.reduce((n, c) => n + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, members.length, true);
  ev.setUint16(10, members.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const parts = [...locals, ...centrals, eocd];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const bombCache = new Map<string, { deflated: Uint8Array; gz: Uint8Array; size: number }>();

/**
 * A feature file that inflates to 64 MiB: a valid `.npy` header of `rows` x `dim` float32
 * followed by zeros, deflated (~64 KB) and gzipped. `size` is what the file should be (the
 * header's shape), the size a lying container declares.
 */
function bomb(rows: number, dim: number): { deflated: Uint8Array; gz: Uint8Array; size: number } {
  const key = `${rows}x${dim}`;
  let b = bombCache.get(key);
  if (!b) {
    const good = npy(rows, dim);
    const head = good.subarray(0, good.length - rows * dim * 4);
    const big = new Uint8Array(64 << 20);
    big.set(head, 0);
    b = {
      deflated: new Uint8Array(zlib.deflateRawSync(big, { level: 1 })),
      gz: new Uint8Array(zlib.gzipSync(big, { level: 1 })),
      size: good.length,
    };
    bombCache.set(key, b);
  }
  return b;
}

function npy(rows: number, dim: number, fill: (i: number) => number = (i) => (i % 7) / 7) {
  return encodeNpy(Float32Array.from({ length: rows * dim }, (_, i) => fill(i)), [rows, dim]);
}

function setJson(text: string, edit: (j: Record<string, unknown>) => void): string {
  const j = JSON.parse(text);
  edit(j);
  return JSON.stringify(j);
}

/** The mutators of one class: each returns a case (without id/cls) given the rng. */
type Mutator = (rng: CaseRng, t: TemplateInfo, n: number) => Omit<FuzzCase, "id" | "cls">;

const GT = {
  database: {
    v1: {
      subset: "test",
      annotations: [{ label: "A", segment: [1, 5] }, { label: "B", segment: [10, 20] }],
    },
    v2: { subset: "test", annotations: [{ label: "A", segment: [3, 9] }] },
  },
};
const PRED = {
  results: {
    v1: [{ label: "A", score: 0.9, segment: [1, 5] }, { label: "B", score: 0.4, segment: [9, 19] }],
    v2: [{ label: "A", score: 0.7, segment: [2, 8] }],
  },
};
const evalArgs = ["eval", "--gt", "{d}/gt.json", "--pred", "{d}/pred.json"];

function predWith(edit: (d: Record<string, unknown>) => void): string {
  const p = structuredClone(PRED) as { results: Record<string, Record<string, unknown>[]> };
  edit(p.results.v1[1]);
  return JSON.stringify(p);
}
function gtWith(edit: (db: Record<string, Record<string, unknown>>) => void): string {
  const g = structuredClone(GT) as { database: Record<string, Record<string, unknown>> };
  edit(g.database);
  return JSON.stringify(g);
}

const RESULTS: Mutator[] = [
  (r) => ({
    what: "truncated JSON",
    write: { "gt.json": JSON.stringify(GT), "pred.json": truncateJson(JSON.stringify(PRED), r) },
    args: evalArgs,
    exit: 2,
    names: "pred.json",
  }),
  (r) => ({
    what: "random bytes",
    write: {
      "gt.json": JSON.stringify(GT),
      "pred.json": Uint8Array.from({ length: r.int(1, 64) }, () => r.int(0x80, 0xff)),
    },
    args: evalArgs,
    exit: 2,
    names: "pred.json",
  }),
  (r) => ({
    what: "no results object",
    write: {
      "gt.json": JSON.stringify(GT),
      "pred.json": JSON.stringify(r.pick([{ method: "x" }, { results: [] }, [], 5, null])),
    },
    args: evalArgs,
    exit: 2,
    names: "pred.json",
  }),
  (r) => ({
    what: "video list not a list",
    write: {
      "gt.json": JSON.stringify(GT),
      "pred.json": JSON.stringify({ results: { v1: r.pick([{}, 5, "x", null, true]) } }),
    },
    args: evalArgs,
    exit: 2,
    names: "pred.json",
  }),
  (r) => {
    const bad = r.pick([null, 5, "x", [], true]);
    return {
      what: `detection ${JSON.stringify(bad)}`,
      write: {
        "gt.json": JSON.stringify(GT),
        "pred.json": JSON.stringify({ results: { v1: [bad] } }),
      },
      args: evalArgs,
      exit: 2,
      names: "pred.json",
    };
  },
  (r) => {
    const score = r.pick(["", " ", "abc", null, [], {}, true, "1e999", "NaN", "0x"]);
    return {
      what: `score ${JSON.stringify(score)}`,
      write: { "gt.json": JSON.stringify(GT), "pred.json": predWith((d) => (d.score = score)) },
      args: evalArgs,
      exit: 2,
      names: "pred.json",
    };
  },
  (r) => {
    const s = r.int(10, 100);
    const seg = [s, s - r.int(1, 9)];
    return {
      what: `reversed segment ${JSON.stringify(seg)}`,
      write: { "gt.json": JSON.stringify(GT), "pred.json": predWith((d) => (d.segment = seg)) },
      args: evalArgs,
      exit: 2,
      names: "pred.json",
    };
  },
  (r) => {
    const seg = r.pick([[1], [1, 2, 3], "1,2", null, ["a", 2], [1, "Infinity"], [NaN, 1], {}]);
    return {
      what: `segment ${JSON.stringify(seg)}`,
      write: { "gt.json": JSON.stringify(GT), "pred.json": predWith((d) => (d.segment = seg)) },
      args: evalArgs,
      exit: 2,
      names: "pred.json",
    };
  },
  (r) => {
    const label = r.pick([undefined, 5, null, ["A"]]);
    return {
      what: `label ${JSON.stringify(label)}`,
      write: { "gt.json": JSON.stringify(GT), "pred.json": predWith((d) => (d.label = label)) },
      args: evalArgs,
      exit: 2,
      names: "pred.json",
    };
  },
];

const GTS: Mutator[] = [
  (r) => ({
    what: "truncated JSON",
    write: { "gt.json": truncateJson(JSON.stringify(GT), r), "pred.json": JSON.stringify(PRED) },
    args: evalArgs,
    exit: 2,
    names: "gt.json",
  }),
  (r) => ({
    what: "no database object",
    write: {
      "gt.json": JSON.stringify(r.pick([{}, { database: [] }, { database: 5 }, [], "x"])),
      "pred.json": JSON.stringify(PRED),
    },
    args: evalArgs,
    exit: 2,
    names: "gt.json",
  }),
  (r) => {
    const v = r.pick([null, 5, "x", []]);
    return {
      what: `video entry ${JSON.stringify(v)}`,
      write: { "gt.json": gtWith((db) => (db.v2 = v as never)), "pred.json": JSON.stringify(PRED) },
      args: evalArgs,
      exit: 2,
      names: "gt.json",
    };
  },
  (r) => {
    const a = r.pick([{}, "x", 5, [null], [5], [{ segment: [1, 2] }], [{
      label: 3,
      segment: [1, 2],
    }]]);
    return {
      what: `annotations ${JSON.stringify(a)}`,
      write: {
        "gt.json": gtWith((db) => (db.v2.annotations = a)),
        "pred.json": JSON.stringify(PRED),
      },
      args: evalArgs,
      exit: 2,
      names: "gt.json",
    };
  },
  (r) => {
    const s = r.int(0, 50);
    const seg = r.pick([[s, s], [s + 5, s]]);
    return {
      what: `ground-truth segment ${JSON.stringify(seg)}`,
      write: {
        "gt.json": gtWith((db) => (db.v2.annotations = [{ label: "A", segment: seg }])),
        "pred.json": JSON.stringify(PRED),
      },
      args: evalArgs,
      exit: 2,
      names: "gt.json",
    };
  },
  (r) => ({
    what: "unknown subset",
    write: { "gt.json": JSON.stringify(GT), "pred.json": JSON.stringify(PRED) },
    args: [...evalArgs, "--subset", r.pick(["nope", "validation", "TRAIN"])],
    exit: 2,
    names: "gt.json",
  }),
];

/** Annotation mutations shared by the three layouts: (annotations of one video) -> case. */
function annotationMutations(
  r: CaseRng,
  duration: number,
  classesFromFile = false,
): { what: string; anns: unknown } {
  const s = Math.round(duration * 0.5);
  const all = [
    { what: "annotations {}", anns: {} },
    { what: "annotations [null]", anns: [null] },
    { what: "annotations [5]", anns: [r.int(0, 9)] },
    { what: "annotations a string", anns: "x" },
    { what: "segment reversed", anns: [{ label: "@", segment: [s + r.int(1, 5), s] }] },
    { what: "segment far before the video", anns: [{ label: "@", segment: [-r.int(10, 90), 5] }] },
    {
      what: "segment ending far past the video",
      anns: [{ label: "@", segment: [Math.floor(duration * 0.9), duration * 3 + r.int(10, 9000)] }],
    },
    { what: "segment not numeric", anns: [{ label: "@", segment: ["a", "b"] }] },
    { what: "segment of one number", anns: [{ label: "@", segment: [r.int(1, 9)] }] },
    { what: "unknown class", anns: [{ label: `NoSuchClass${r.int(0, 99)}`, segment: [1, 2] }] },
  ];
  // ActivityNet takes its classes from the file: an unknown class is a new class, not an error.
  return r.pick(classesFromFile ? all.slice(0, -1) : all);
}

function withLabel(anns: unknown, label: string): unknown {
  if (!Array.isArray(anns)) return anns;
  return anns.map((a) =>
    a && typeof a === "object" && (a as { label?: string }).label === "@" ? { ...a, label } : a
  );
}

const AF_ARGS = ["inspect", "--root", `{d}/${AF}`, "--layout", "actionformer"];
const COLA_ARGS = ["inspect", "--root", `{d}/${COLA}`, "--layout", "cola"];
const ANET_ARGS = ["inspect", "--root", `{d}/${ANET}`, "--layout", "activitynet"];

const ACTIONFORMER: Mutator[] = [
  (r, t) => {
    const v = r.pick(t.afVideos);
    const m = annotationMutations(r, v.duration);
    return {
      what: m.what,
      template: "thumos",
      write: {
        [`${AF}/annotations/thumos14.json`]: setJson(t.actionformerJson, (j) => {
          (j.database as Record<string, Record<string, unknown>>)[v.id].annotations = withLabel(
            m.anns,
            "CricketShot",
          );
        }),
      },
      args: AF_ARGS,
      exit: 2,
      names: "thumos14.json",
    };
  },
  (r, t) => ({
    what: "truncated annotation file",
    template: "thumos",
    write: { [`${AF}/annotations/thumos14.json`]: truncateJson(t.actionformerJson, r) },
    args: AF_ARGS,
    exit: 2,
    names: "thumos14.json",
  }),
  (r, t) => {
    const v = r.pick(t.afVideos);
    const bad = r.pick(["../../x", "../" + v.id, "a/b", ".."]);
    return {
      what: `video id ${bad}`,
      template: "thumos",
      write: {
        [`${AF}/annotations/thumos14.json`]: setJson(t.actionformerJson, (j) => {
          const db = j.database as Record<string, unknown>;
          db[bad] = db[v.id];
          delete db[v.id];
        }),
      },
      args: AF_ARGS,
      exit: 2,
      names: "thumos14.json",
    };
  },
];

const COLA_MUT: Mutator[] = [
  (r, t) => {
    const id = r.pick(t.colaSplits.train);
    const m = annotationMutations(r, t.durations[id] ?? 200);
    return {
      what: m.what,
      template: "thumos",
      write: {
        [`${COLA}/gt.json`]: setJson(t.colaJson, (j) => {
          (j.database as Record<string, Record<string, unknown>>)[id].annotations = withLabel(
            m.anns,
            "CricketShot",
          );
        }),
      },
      args: COLA_ARGS,
      exit: 2,
      names: "gt.json",
    };
  },
  (r, t) => {
    const which = r.pick(["train", "test"] as const);
    const list = t.colaSplits[which];
    const dup = r.pick(list);
    return {
      what: `split_${which}.txt lists ${dup} twice`,
      template: "thumos",
      write: { [`${COLA}/split_${which}.txt`]: [...list, dup].join("\n") + "\n" },
      args: COLA_ARGS,
      exit: 2,
      names: `split_${which}.txt`,
    };
  },
  (r, t) => {
    const leak = r.pick(t.colaSplits.test);
    return {
      what: `test video ${leak} also in split_train.txt`,
      template: "thumos",
      write: { [`${COLA}/split_train.txt`]: [...t.colaSplits.train, leak].join("\n") + "\n" },
      args: COLA_ARGS,
      exit: 2,
      names: "split_",
    };
  },
  (r, t) => {
    const bad = r.pick(["../../x", "../../../etc/passwd", "nope_" + r.int(0, 999), "constructor"]);
    return {
      what: `split lists ${bad}`,
      template: "thumos",
      write: { [`${COLA}/split_test.txt`]: [...t.colaSplits.test, bad].join("\n") + "\n" },
      args: COLA_ARGS,
      exit: 2,
      names: "split_test.txt",
    };
  },
  (r, t) => ({
    what: "truncated gt.json",
    template: "thumos",
    write: { [`${COLA}/gt.json`]: truncateJson(t.colaJson, r) },
    args: COLA_ARGS,
    exit: 2,
    names: "gt.json",
  }),
];

const ANET_MUT: Mutator[] = [
  (r, t) => {
    const db = JSON.parse(t.anetJson).database as Record<string, Record<string, unknown>>;
    const ids = Object.keys(db).filter((k) => Array.isArray(db[k].annotations));
    const id = r.pick(ids);
    const label = ((db[id].annotations as { label: string }[])[0] ?? { label: "x" }).label;
    const m = annotationMutations(r, Number(db[id].duration), true);
    return {
      what: m.what,
      template: "anet",
      write: {
        [`${ANET}/${ANET_JSON}`]: setJson(t.anetJson, (j) => {
          (j.database as Record<string, Record<string, unknown>>)[id].annotations = withLabel(
            m.anns,
            label,
          );
        }),
      },
      args: ANET_ARGS,
      exit: 2,
      names: ANET_JSON,
    };
  },
  (r, t) => {
    const db = JSON.parse(t.anetJson).database as Record<string, unknown>;
    const id = r.pick(Object.keys(db));
    const v = r.pick([null, 5, "x"]);
    return {
      what: `video entry ${JSON.stringify(v)}`,
      template: "anet",
      write: {
        [`${ANET}/${ANET_JSON}`]: setJson(
          t.anetJson,
          (j) => ((j.database as Record<string, unknown>)[id] = v),
        ),
      },
      args: ANET_ARGS,
      exit: 2,
      names: ANET_JSON,
    };
  },
  (r, t) => ({
    what: "truncated annotation file",
    template: "anet",
    write: { [`${ANET}/${ANET_JSON}`]: truncateJson(t.anetJson, r) },
    args: ANET_ARGS,
    exit: 2,
    names: ANET_JSON,
  }),
];

function npyFile(t: TemplateInfo, r: CaseRng) {
  const v = r.pick(t.afVideos);
  return { v, rel: `${AF}/i3d_features/${v.id}.npy` };
}

const NPY: Mutator[] = [
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    const full = npy(v.rows, t.dim);
    return {
      what: "truncated data",
      template: "thumos",
      write: { [rel]: full.subarray(0, r.int(129, full.length - 1)) },
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npy`,
    };
  },
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    const full = npy(v.rows, t.dim).slice();
    const at = r.int(0, 9);
    full[at] ^= 0x40;
    return {
      what: `bad magic/version byte ${at}`,
      template: "thumos",
      write: { [rel]: full },
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npy`,
    };
  },
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    const text = new TextDecoder().decode(npy(v.rows, t.dim));
    const hdr = r.pick([
      ["'<f4'", "'<i4'"],
      ["'<f4'", "'|b1'"],
      [`(${v.rows}, ${t.dim})`, `(${v.rows}, ${t.dim}, 1)`],
      ["'fortran_order': False", "'fortran_order': maybe"],
      ["{", "["],
    ]);
    return {
      what: `header ${hdr[1]}`,
      template: "thumos",
      write: { [rel]: enc(text.replace(hdr[0], hdr[1])).slice(0, 128) },
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npy`,
    };
  },
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    const at = r.int(0, v.rows * t.dim - 1);
    const bad = r.pick([NaN, Infinity, -Infinity]);
    return {
      what: `value ${bad}`,
      template: "thumos",
      write: { [rel]: npy(v.rows, t.dim, (i) => (i === at ? bad : 0.5)) },
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npy`,
    };
  },
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    const at = r.int(0, v.rows * t.dim - 1);
    const data = Float64Array.from({ length: v.rows * t.dim }, (_, i) => (i === at ? 1e300 : 0.5));
    return {
      what: "float64 1e300 (overflows float32)",
      template: "thumos",
      write: { [rel]: encodeNpy(data, [v.rows, t.dim], { dtype: "<f8" }) },
      args: AF_ARGS,
      exit: 2,
      names: "overflows float32",
    };
  },
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    const dim = r.pick([t.dim + 1, t.dim * 2, 1]);
    return {
      what: `feature dim ${dim}`,
      template: "thumos",
      write: { [rel]: npy(v.rows, dim) },
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npy`,
    };
  },
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    return {
      what: "a folder where the feature file should be",
      template: "thumos",
      remove: [rel],
      mkdir: [rel],
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npy`,
    };
  },
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    return {
      what: "empty file",
      template: "thumos",
      write: { [rel]: new Uint8Array(0) },
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npy`,
    };
  },
];

const GZ: Mutator[] = [
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    const gz = new Uint8Array(zlib.gzipSync(npy(v.rows, t.dim)));
    const kind = r.pick(["truncated", "not gzip", "flipped deflate byte"]);
    let bytes: Uint8Array;
    if (kind === "truncated") bytes = gz.subarray(0, r.int(10, gz.length - 9));
    else if (kind === "not gzip") bytes = npy(v.rows, t.dim);
    else {
      bytes = gz.slice();
      bytes[r.int(12, gz.length - 9)] ^= 0xff;
    }
    return {
      what: `.npy.gz ${kind}`,
      template: "thumos",
      remove: [rel],
      write: { [rel + ".gz"]: bytes },
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npy.gz`,
    };
  },
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    // A valid npy header followed by 64 MiB of zeros; the trailer declares the npy's size.
    const bb = bomb(v.rows, t.dim);
    const b = bb.gz.slice();
    const dv = new DataView(b.buffer, b.length - 4, 4);
    dv.setUint32(0, bb.size, true);
    void r;
    return {
      what: ".npy.gz whose ISIZE trailer lies (64 MiB of zeros)",
      template: "thumos",
      remove: [rel],
      write: { [rel + ".gz"]: b },
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npy.gz`,
    };
  },
];

const NPZ: Mutator[] = [
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    const data = npy(v.rows, t.dim);
    const kind = r.pick(["crc", "size", "truncated", "not a zip", "no arrays"]);
    const base = rel.replace(/\.npy$/, ".npz");
    let bytes: Uint8Array;
    if (kind === "crc") {
      bytes = buildZip([{ name: "arr_0.npy", data, deflate: true }], {
        index: 0,
        crc: r.int(1, 1e9),
      });
    } else if (kind === "size") {
      bytes = buildZip([{ name: "arr_0.npy", data, deflate: true }], {
        index: 0,
        size: data.length + r.int(1, 100),
      });
    } else if (kind === "truncated") {
      const z = buildZip([{ name: "arr_0.npy", data, deflate: true }]);
      bytes = z.subarray(0, r.int(4, z.length - 1));
    } else if (kind === "not a zip") bytes = data;
    else bytes = buildZip([{ name: "readme.txt", data: enc("hello") }]);
    return {
      what: `.npz ${kind}`,
      template: "thumos",
      remove: [rel],
      write: { [base]: bytes },
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npz`,
    };
  },
  (r, t) => {
    const { v, rel } = npyFile(t, r);
    // A deflated member of 64 MiB that declares the size its npy header implies.
    const b = bomb(v.rows, t.dim);
    const z = zipWithRaw("arr_0.npy", b.deflated, b.size);
    return {
      what: ".npz member whose declared size lies (64 MiB of zeros)",
      template: "thumos",
      remove: [rel],
      write: { [rel.replace(/\.npy$/, ".npz")]: z },
      args: AF_ARGS,
      exit: 2,
      names: `${v.id}.npz`,
    };
  },
];

/** The features zip of every template video, `id`'s member replaced by a bomb. */
function buildZipWithBomb(t: TemplateInfo, id: string, body: Uint8Array, size: number) {
  return buildZip(t.afVideos.map((v) => ({
    name: `i3d_features/${v.id}.npy`,
    data: npy(v.rows, t.dim),
    deflate: true,
    ...(v.id === id ? { raw: { body, size } } : {}),
  })));
}

/** A one-member zip whose deflated `body` is given as is, declaring `size`. */
function zipWithRaw(name: string, body: Uint8Array, size: number): Uint8Array {
  const n = enc(name);
  const l = new Uint8Array(30 + n.length);
  const lv = new DataView(l.buffer);
  lv.setUint32(0, 0x04034b50, true);
  lv.setUint16(4, 20, true);
  lv.setUint16(8, 8, true);
  lv.setUint32(18, body.length, true);
  lv.setUint32(22, size, true);
  lv.setUint16(26, n.length, true);
  l.set(n, 30);
  const c = new Uint8Array(46 + n.length);
  const cv = new DataView(c.buffer);
  cv.setUint32(0, 0x02014b50, true);
  cv.setUint16(4, 20, true);
  cv.setUint16(6, 20, true);
  cv.setUint16(10, 8, true);
  cv.setUint32(20, body.length, true);
  cv.setUint32(24, size, true);
  cv.setUint16(28, n.length, true);
  c.set(n, 46);
  const e = new Uint8Array(22);
  const ev = new DataView(e.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, 1, true);
  ev.setUint16(10, 1, true);
  ev.setUint32(12, c.length, true);
  ev.setUint32(16, l.length + body.length, true);
  const out = new Uint8Array(l.length + body.length + c.length + e.length);
  out.set(l, 0);
  out.set(body, l.length);
  out.set(c, l.length + body.length);
  out.set(e, l.length + body.length + c.length);
  return out;
}

const ZIP: Mutator[] = [
  (r, t) => {
    // The whole features folder packed as one zip, one member damaged.
    const members = t.afVideos.map((v) => ({
      name: `i3d_features/${v.id}.npy`,
      data: npy(v.rows, t.dim),
      deflate: true,
    }));
    const i = r.int(0, members.length - 1);
    const kind = r.pick(["crc", "size", "truncated archive", "bad npy in member"]);
    let bytes: Uint8Array;
    if (kind === "crc") bytes = buildZip(members, { index: i, crc: r.int(1, 1e9) });
    else if (kind === "size") {
      bytes = buildZip(members, { index: i, size: members[i].data.length + r.int(1, 99) });
    } else if (kind === "truncated archive") {
      const z = buildZip(members);
      bytes = z.subarray(0, r.int(1, z.length - 23));
    } else {
      members[i].data = members[i].data.slice(0, r.int(20, 120));
      bytes = buildZip(members);
    }
    return {
      what: `features .zip: ${kind}`,
      template: "thumos",
      remove: [`${AF}/i3d_features`],
      write: { [`${AF}/i3d_features.zip`]: bytes },
      args: AF_ARGS,
      exit: 2,
      names: "i3d_features.zip",
    };
  },
  (r, t) => {
    const v = r.pick(t.afVideos);
    const b = bomb(v.rows, t.dim);
    return {
      what: "features .zip member whose declared size lies (64 MiB of zeros)",
      template: "thumos",
      remove: [`${AF}/i3d_features`],
      write: {
        [`${AF}/i3d_features.zip`]: buildZipWithBomb(t, v.id, b.deflated, b.size),
      },
      args: AF_ARGS,
      exit: 2,
      names: "i3d_features.zip",
    };
  },
];

function checkpointBytes(t: TemplateInfo): Uint8Array {
  return encodeCheckpoint({ format: "fustal-student", version: 1, inDim: t.dim, classes: ["A"] }, {
    model: {
      w: { shape: [t.dim, 3], data: Float32Array.from({ length: t.dim * 3 }, (_, i) => i / 10) },
    },
  });
}

const CKPT_ARGS = (t: TemplateInfo) => [
  "predict",
  "--checkpoint",
  "{d}/student.ckpt",
  "--features",
  `{d}/${AF}/i3d_features/${t.afVideos[0].id}.npy`,
  "--out",
  "{d}/out/pred.json",
  "--backend",
  "cpu",
];

const CHECKPOINT: Mutator[] = [
  (r, t) => {
    const b = checkpointBytes(t).slice();
    const at = r.int(0, b.length - 1);
    b[at] ^= 1 << r.int(0, 7);
    return {
      what: `one flipped bit at byte ${at}`,
      template: "thumos",
      write: { "student.ckpt": b },
      args: CKPT_ARGS(t),
      exit: 2,
      names: "student.ckpt",
    };
  },
  (r, t) => {
    const b = checkpointBytes(t);
    return {
      what: "truncated",
      template: "thumos",
      write: { "student.ckpt": b.subarray(0, r.int(0, b.length - 1)) },
      args: CKPT_ARGS(t),
      exit: 2,
      names: "student.ckpt",
    };
  },
  (_r, t) => ({
    what: "a folder instead of the checkpoint",
    template: "thumos",
    mkdir: ["student.ckpt"],
    args: CKPT_ARGS(t),
    exit: 2,
    names: "student.ckpt",
  }),
];

function pluginSource(r: CaseRng, name: string): { what: string; src: string; extra: string[] } {
  const body = (apply: string) =>
    `export default { kind: "filter", name: "${name}", apply(props, ctx) { ${apply} } };\n`;
  return r.pick([
    {
      what: "syntax error",
      src: `export default { kind: "filter", name: "${name}", apply( };`,
      extra: [],
    },
    { what: "no default export", src: `export const x = 1;\n`, extra: [] },
    { what: "default export 5", src: `export default 5;\n`, extra: [] },
    {
      what: "wrong kind",
      src: `export default { kind: "flter", name: "${name}", apply() {} };\n`,
      extra: [],
    },
    {
      what: "apply not a function",
      src: `export default { kind: "filter", name: "${name}", apply: 3 };\n`,
      extra: [],
    },
    { what: "apply throws", src: body(`throw new RangeError("boom ${r.int(0, 99)}");`), extra: [] },
    { what: "apply returns null", src: body("return null;"), extra: [] },
    {
      what: "apply returns a reversed proposal",
      src: body("return props.map((p) => ({ ...p, segment: [p.segment[1] + 5, p.segment[0]] }));"),
      extra: [],
    },
    {
      what: "apply returns a NaN score",
      src: body("return props.map((p) => ({ ...p, score: NaN }));"),
      extra: [],
    },
    {
      what: "apply returns an absurd segment",
      src: body(`return props.map((p) => ({ ...p, segment: [-${r.int(50, 5000)}, 1] }));`),
      extra: [],
    },
    {
      what: "apply returns another video's proposal",
      src: body(`return props.map((p) => ({ ...p, videoId: "other" }));`),
      extra: [],
    },
    {
      what: "apply never settles (with --plugin-timeout)",
      src: body("return new Promise(() => {});"),
      extra: ["--plugin-timeout", "0.2"],
    },
  ]);
}

const PLUGIN: Mutator[] = [
  (r, _t, n) => {
    const name = `fz-filter-${n}`;
    const m = pluginSource(r, name);
    return {
      what: m.what,
      write: {
        "p.json": JSON.stringify(PRED),
        [`plug-${n}.ts`]: m.src,
      },
      args: [
        "select",
        "--proposals",
        "{d}/p.json",
        "--out",
        "{d}/out/sel.json",
        "--filter",
        name,
        "--plugin",
        `{d}/plug-${n}.ts`,
        ...m.extra,
      ],
      exit: 2,
      names: `plug-${n}.ts`,
    };
  },
];

const FLAGS: Mutator[] = [
  (r) => {
    const n = r.pick([101, 5000, 1_000_000]);
    return {
      what: `--tiou with ${n} thresholds`,
      write: { "gt.json": JSON.stringify(GT), "pred.json": JSON.stringify(PRED) },
      args: [...evalArgs, "--tiou", Array.from({ length: n }, () => "0.5").join(",")],
      exit: 2,
      names: "--tiou",
    };
  },
  (r) => ({
    what: "--tiou range of too many thresholds",
    write: { "gt.json": JSON.stringify(GT), "pred.json": JSON.stringify(PRED) },
    args: [...evalArgs, "--tiou", `0.0001:1:${r.pick(["0.000001", "1e-9", "0.001"])}`],
    exit: 2,
    names: "--tiou",
  }),
  (r) => ({
    what: "--tiou unreadable",
    write: { "gt.json": JSON.stringify(GT), "pred.json": JSON.stringify(PRED) },
    args: [...evalArgs, "--tiou", r.pick(["abc", "0:2:0", "1.5", "0.5,,0.7", "0.7:0.1:0.1", ""])],
    exit: 2,
    names: "--tiou",
  }),
  (r) => {
    const flag = r.pick(["--bogus", "--tiouu", "--gtt"]);
    return {
      what: `unknown flag ${flag}`,
      write: { "gt.json": JSON.stringify(GT), "pred.json": JSON.stringify(PRED) },
      args: [...evalArgs, flag, "x"],
      exit: 2,
      names: flag,
    };
  },
  (r) => {
    const [cmd, flag, value] = r.pick([
      ["generate", "--lr", "abc"],
      ["generate", "--iterations", ""],
      ["generate", "--seed", "1e"],
      ["synth", "--dim", "3"],
      ["synth", "--videos", "0"],
      ["synth", "--format", "bmp"],
      ["synth", "--seed", "0.5"],
      ["run", "--plugin-timeout", "-1"],
      ["eval", "--dataset", "kinetics"],
    ]);
    const base = cmd === "generate"
      ? ["generate", "--root", "{d}/data", "--out", "{d}/out"]
      : cmd === "synth"
      ? ["synth", "--out", "{d}/out"]
      : cmd === "eval"
      ? evalArgs
      : ["run", "--out", "{d}/out"];
    return {
      what: `${cmd} ${flag} "${value}"`,
      template: cmd === "generate" ? "thumos" as const : undefined,
      write: cmd === "eval"
        ? { "gt.json": JSON.stringify(GT), "pred.json": JSON.stringify(PRED) }
        : {},
      args: [...base, flag, value],
      exit: 2,
      names: flag,
    };
  },
  (r) => {
    const kind = r.pick(["out is a file", "out under a file", "a file target is a folder"]);
    const write: Record<string, string> = { afile: "x" };
    const mkdir: string[] = [];
    let out = "{d}/afile";
    let names = "afile";
    if (kind === "out under a file") out = `{d}/afile/sub${r.int(0, 9)}`;
    if (kind === "a file target is a folder") {
      out = "{d}/gen";
      mkdir.push("gen/proposals.json");
      names = "proposals.json";
    }
    return {
      what: `generate: ${kind}`,
      template: "thumos",
      write,
      mkdir,
      args: ["generate", "--root", "{d}/data", "--out", out, "--iterations", "1"],
      exit: 2,
      names,
    };
  },
  (r) => {
    const cmd = r.pick(["select", "eval-json-out"]);
    void cmd;
    return {
      what: "select: --out is an existing folder",
      mkdir: ["adir"],
      write: { "p.json": JSON.stringify(PRED) },
      args: ["select", "--proposals", "{d}/p.json", "--out", "{d}/adir", "--filter", "none"],
      exit: 2,
      names: "adir",
    };
  },
  (r) => ({
    what: "missing required flag",
    write: {},
    args: r.pick([["eval", "--pred", "{d}/x.json"], ["select", "--out", "{d}/o.json"], ["synth"]]),
    exit: 2,
    names: "--",
  }),
];

/** Every class with its mutators and how many cases it gets. */
export const CLASSES: { cls: string; mutators: Mutator[]; count: number }[] = [
  { cls: "results-file", mutators: RESULTS, count: 30 },
  { cls: "gt-file", mutators: GTS, count: 22 },
  { cls: "annotations-actionformer", mutators: ACTIONFORMER, count: 16 },
  { cls: "annotations-cola", mutators: COLA_MUT, count: 18 },
  { cls: "annotations-activitynet", mutators: ANET_MUT, count: 14 },
  { cls: "features-npy", mutators: NPY, count: 24 },
  { cls: "features-npy.gz", mutators: GZ, count: 10 },
  { cls: "features-npz", mutators: NPZ, count: 10 },
  { cls: "features-zip", mutators: ZIP, count: 10 },
  { cls: "checkpoint", mutators: CHECKPOINT, count: 14 },
  { cls: "plugin-module", mutators: PLUGIN, count: 18 },
  { cls: "cli-flags", mutators: FLAGS, count: 24 },
];

/** Control cases: valid input that must succeed (exit 0), proving the harness itself. */
export function controlCases(): FuzzCase[] {
  return [
    {
      id: "control-eval",
      cls: "control",
      what: "valid eval",
      write: { "gt.json": JSON.stringify(GT), "pred.json": JSON.stringify(PRED) },
      args: evalArgs,
      exit: 0,
      names: "",
    },
    ...[AF_ARGS, COLA_ARGS].map((args, i) => ({
      id: `control-inspect-${i}`,
      cls: "control",
      what: "valid dataset",
      template: "thumos" as const,
      args,
      exit: 0,
      names: "",
    })),
    {
      id: "control-inspect-anet",
      cls: "control",
      what: "valid dataset",
      template: "anet",
      args: ANET_ARGS,
      exit: 0,
      names: "",
    },
  ];
}

/** The seeded case list (deterministic for a seed). */
export function generateCases(seed: number, t: TemplateInfo): FuzzCase[] {
  const rng = new CaseRng(seed);
  const out: FuzzCase[] = [];
  let n = 0;
  for (const c of CLASSES) {
    for (let i = 0; i < c.count; i++) {
      // Every mutator at least once, then random ones.
      const m = i < c.mutators.length ? c.mutators[i] : rng.pick(c.mutators);
      out.push({ id: `${c.cls}-${i}`, cls: c.cls, ...m(rng, t, n++) });
    }
  }
  return out;
}
