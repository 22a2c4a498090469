/**
 * The synthetic dataset: features written in the real layouts (THUMOS'14 ActionFormer and
 * CoLA from the SAME latent per video; or ActivityNet), laid on real annotation geometry
 * (the 412 THUMOS'14 videos, embedded in `thumos14_geometry.ts`) or on random
 * ActivityNet-like geometry. It is the default data of `deno run -A mod.ts`.
 *
 * ## Feature model
 * Each video has a latent z(t) in R^K, K = 32, in continuous time, sampled on a fine step of
 * H = 0.1 s. Dims 0..15 are the "appearance" block, 16..31 the "motion" block.
 *
 *   z(t) = A_SCENE s_v + A_CTX sum_c env_c(t) ctx_c
 *        + sum_i a_i [A_START w_s(u) start_c + A_MID w_m(u) mid_c + A_END w_e(u) end_c]
 *        + sum_j b_j sin(pi u_j) dis_j + n(t) + m(t)
 *
 * - Scene s_v (appearance block, constant per video): a mix of the context vectors of the
 *   video's classes (weight 0.5) and a random direction; A_SCENE = 1.0.
 * - Class context ctx_c (appearance block): 0.75 of a shared group vector (athletics field,
 *   pool, cricket ground, court, lawn, gym for THUMOS'14; class id mod 25 for ActivityNet)
 *   plus 0.66 of a class vector. env_c(t) is 1 from CTX_PRE before an instance of class c
 *   to CTX_POST after it (each uniform in [1.5, 6] s per instance), with 1 s cosine ramps:
 *   backgrounds next to actions look like the class (hard backgrounds). A_CTX = 0.9.
 * - Action phases (motion block), u = (t - s) / (e - s) within an instance [s, e]:
 *   w_s = max(0, 1 - u / 0.3), w_e = max(0, (u - 0.7) / 0.3), w_m = min(1, min(u, 1 - u) / 0.25).
 *   start_c = unit(0.8 S + 0.6 v_c), end_c = unit(0.8 E + 0.6 v_c) are mostly class-agnostic
 *   (shared onset S and offset E vectors); mid_c = v_c is the class's own motion, and the
 *   strongest: A_START = A_END = 0.7, A_MID = 1.5, times a per-instance strength
 *   a_i ~ U(0.6, 1.3). Instances with identical segments (THUMOS'14 CliffDiving is also
 *   annotated Diving) are one event whose class vector is the normalised sum.
 * - Distractors (motion block): class-agnostic motion bursts (camera moves, crowds,
 *   replays) at a rate of one per DIS_EVERY = 25 s, 0.8-4 s long, amplitude b_j ~
 *   U(0.6, 1.2), each one of 8 shared directions that overlap S and E by 0.5.
 * - Noise: n(t) AR(1) in every latent dim with time constant 1.5 s, sd 0.45 (temporally
 *   correlated); m(t) AR(1) in the appearance block with time constant 20 s, sd 0.3 (slow
 *   scene drift).
 *
 * A feature row averages z over its window (ActionFormer: frames [4g, 4g + 16) at the
 * video's fps; CoLA: [0.64 i, 0.64 (i + 1)) s), then maps it to D dims:
 * x = max(0, W z_bar + b + 0.2 xi), xi white per value. W is D x K Gaussian * 2 / sqrt(K) with
 * the appearance block weighted 1.0 and motion 0.35 in the first D/2 dims ("rgb") and the
 * reverse in the last D/2 ("flow"); b ~ N(-0.15, 0.1). So values are non-negative and
 * sparse, RGB sees scene and context, flow sees motion. In the CoLA layout the rgb file
 * holds the first D/2 columns and the flow file the rest.
 *
 * Difficulty (measured on the default set, D = 128, CoLA layout, ridge one-vs-rest on
 * train snippets, scored on test snippets): a single snippet's class among 20 is right 46%
 * of the time and background is called background 94%; averaging 7 neighbouring snippets
 * lifts the class rate to 57%. Weak video labels are learnable, single snippets are not
 * solved, and temporal context helps.
 *
 * Everything is a function of the seed; each video's randomness is seeded by (seed, video
 * id), so `--videos N` subsets carry the same features as the full set. Features cover each
 * video's stated duration and no more, as real features do; the real annotations are kept
 * as they are, including the 30 segments of the ActionFormer file that start after their
 * video ends (in 5 videos, 22 of them in video_test_0000270), which the loaders
 * report with one warning line.
 *
 * Speed: plain typed-array loops, table-driven Gaussian noise; the 412-video set at D = 128
 * takes seconds (see bench/BENCH-datasets.md).
 *
 * @module
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import process from "node:process";
import { Rng } from "../lib/rng.ts";
import { THUMOS14_CLASSES } from "./common.ts";
import { gzip } from "./inflate.ts";
import { encodeNpy } from "./npy.ts";
import { encodeNpz } from "./npz.ts";
import { THUMOS14_GEOMETRY_LINES } from "./thumos14_geometry.ts";
import { fileSink, ZipWriter } from "./zip.ts";

/** File formats the generator writes. */
export type SynthFormat = "npy" | "npy.gz" | "npz" | "zip";

/** Options of {@linkcode synthesize}. */
export interface SynthOptions {
  /** Output folder (gets `actionformer/` and `cola/`, or `activitynet/`). */
  out: string;
  /** Geometry: the real THUMOS'14 videos (default) or random ActivityNet-like videos. */
  like?: "thumos14" | "activitynet";
  /** Feature dim D (even; default 128). CoLA files hold D/2 columns each. */
  dim?: number;
  /** Number of videos (a deterministic, split-balanced subset; default all / 300 for ANet). */
  videos?: number;
  /** Seed (default 0). */
  seed?: number;
  /** Feature file format (default `npy`). */
  format?: SynthFormat;
  /** Called after each video. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@linkcode synthesize} wrote. */
export interface SynthResult {
  /** Output folder. */
  out: string;
  /** Layout folders written under `out`. */
  layouts: string[];
  /** Videos per split. */
  videos: { train: number; test: number };
  /** Feature rows written over all layouts. */
  rows: number;
  /** Bytes of feature files written. */
  bytes: number;
  /** Wall time in seconds. */
  seconds: number;
}

/** One video of a geometry: id, subset name, duration, fps and class-labelled segments. */
export interface GeometryVideo {
  /** Video id (e.g. `video_test_0000004`). */
  id: string;
  /** Subset name of the ActionFormer / ActivityNet file (`Validation`, `Test`, `training`...). */
  subset: string;
  /** The split the video belongs to. */
  split: "train" | "test";
  /** Duration in seconds. */
  duration: number;
  /** Frame rate of the source video (frames per second). */
  fps: number;
  /** Action instances: class index into the geometry's class list, start and end in seconds. */
  segments: { classId: number; start: number; end: number }[];
}

/** The 412 real THUMOS'14 videos (200 Validation, 212 Test) from the embedded copy. */
export function thumos14Geometry(): GeometryVideo[] {
  const out: GeometryVideo[] = [];
  for (const line of THUMOS14_GEOMETRY_LINES.split("\n")) {
    if (line.trim() === "") continue;
    const [code, dur, fps, segs] = line.split("|");
    const val = code[0] === "v";
    out.push({
      id: `video_${val ? "validation" : "test"}_${code.slice(1).padStart(7, "0")}`,
      subset: val ? "Validation" : "Test",
      split: val ? "train" : "test",
      duration: Number(dur),
      fps: Number(fps),
      segments: segs === "" ? [] : segs.split(",").map((s) => {
        const [c, a, b] = s.split(":");
        return { classId: Number(c), start: Number(a), end: Number(b) };
      }),
    });
  }
  return out;
}

/** THUMOS'14 test videos with faulty annotations that the CoLA package excludes. */
export const COLA_EXCLUDED = ["video_test_0000270", "video_test_0001496"];

// ---- model constants (documented in the module doc) ----
const K = 32;
const KA = 16; // appearance block size; motion block = K - KA
const H = 0.1;
const A_SCENE = 1.0;
const A_CTX = 0.9;
const A_START = 0.7;
const A_MID = 1.5;
const A_END = 0.7;
const CTX_RAMP = 1.0;
const DIS_EVERY = 25;
const N_DISTRACTORS = 8;
const AR_TAU = 1.5;
const AR_SD = 0.45;
const DRIFT_TAU = 20;
const DRIFT_SD = 0.3;
const WHITE_SD = 0.2;
const NOISE_TABLE = 1 << 16;

const THUMOS_GROUPS: Record<string, number> = {
  HighJump: 0,
  LongJump: 0,
  PoleVault: 0,
  JavelinThrow: 0,
  HammerThrow: 0,
  Shotput: 0,
  ThrowDiscus: 0,
  Diving: 1,
  CliffDiving: 1,
  CricketBowling: 2,
  CricketShot: 2,
  BasketballDunk: 3,
  VolleyballSpiking: 3,
  TennisSwing: 3,
  BaseballPitch: 4,
  GolfSwing: 4,
  SoccerPenalty: 4,
  FrisbeeCatch: 4,
  Billiards: 5,
  CleanAndJerk: 5,
};

/** Class vectors and projection shared by all videos of one seed. */
interface Model {
  dim: number;
  ctx: Float32Array[]; // per class, K (appearance block only)
  start: Float32Array[];
  mid: Float32Array[];
  end: Float32Array[];
  dis: Float32Array[];
  w: Float32Array; // D x K row-major
  b: Float32Array; // D
  normals: Float32Array; // table of N(0, 1) draws
}

function randVec(rng: Rng, lo: number, hi: number): Float32Array {
  const v = new Float32Array(K);
  for (let k = lo; k < hi; k++) v[k] = rng.normal();
  return unit(v);
}

function unit(v: Float32Array): Float32Array {
  let n = 0;
  for (let k = 0; k < v.length; k++) n += v[k] * v[k];
  n = Math.sqrt(n) || 1;
  for (let k = 0; k < v.length; k++) v[k] /= n;
  return v;
}

function mix(a: Float32Array, wa: number, b: Float32Array, wb: number): Float32Array {
  const v = new Float32Array(K);
  for (let k = 0; k < K; k++) v[k] = wa * a[k] + wb * b[k];
  return unit(v);
}

function buildModel(seed: number, dim: number, groups: number[]): Model {
  const rng = new Rng(seed ^ 0x5eed5);
  const nGroups = Math.max(...groups) + 1;
  const g = Array.from({ length: nGroups }, () => randVec(rng, 0, KA));
  const S = randVec(rng, KA, K);
  const E = randVec(rng, KA, K);
  const ctx: Float32Array[] = [];
  const start: Float32Array[] = [];
  const mid: Float32Array[] = [];
  const end: Float32Array[] = [];
  for (let c = 0; c < groups.length; c++) {
    ctx.push(mix(g[groups[c]], 0.75, randVec(rng, 0, KA), 0.66));
    const v = randVec(rng, KA, K);
    mid.push(v);
    start.push(mix(S, 0.8, v, 0.6));
    end.push(mix(E, 0.8, v, 0.6));
  }
  const dis: Float32Array[] = [];
  for (let j = 0; j < N_DISTRACTORS; j++) {
    dis.push(mix(j % 2 ? S : E, 0.5, randVec(rng, KA, K), 0.87));
  }
  const w = new Float32Array(dim * K);
  const b = new Float32Array(dim);
  const half = dim / 2;
  for (let d = 0; d < dim; d++) {
    const appearance = d < half ? 1.0 : 0.35;
    const motion = d < half ? 0.35 : 1.0;
    for (let k = 0; k < K; k++) {
      w[d * K + k] = rng.normal() / Math.sqrt(K) * (k < KA ? appearance : motion) * 2;
    }
    b[d] = -0.15 + 0.1 * rng.normal();
  }
  const normals = new Float32Array(NOISE_TABLE);
  for (let i = 0; i < NOISE_TABLE; i++) normals[i] = rng.normal();
  return { dim, ctx, start, mid, end, dis, w, b, normals };
}

/** FNV-1a of a string mixed with the seed: the per-video stream. */
function videoSeed(seed: number, id: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** A video's latent on the fine grid, as prefix sums for window averages. */
interface Latent {
  /** (N + 1) x K prefix sums (float64). */
  prefix: Float64Array;
  /** Fine steps. */
  n: number;
}

function smoothEnv(t: number, a: number, b: number): number {
  if (t <= a - CTX_RAMP || t >= b + CTX_RAMP) return 0;
  if (t < a) return 0.5 - 0.5 * Math.cos(Math.PI * (t - a + CTX_RAMP) / CTX_RAMP);
  if (t > b) return 0.5 + 0.5 * Math.cos(Math.PI * (t - b) / CTX_RAMP);
  return 1;
}

function buildLatent(m: Model, v: GeometryVideo, span: number, rng: Rng): Latent {
  const n = Math.ceil(span / H) + 2;
  const z = new Float32Array(n * K);
  const nrm = m.normals;
  let st = rng.nextU32() | 1;
  const gauss = () => {
    st ^= st << 13;
    st ^= st >>> 17;
    st ^= st << 5;
    return nrm[(st >>> 0) & (NOISE_TABLE - 1)];
  };
  // Scene: mix of the video's class contexts and a random direction.
  const classes = [...new Set(v.segments.map((s) => s.classId))];
  const scene = new Float32Array(K);
  for (const c of classes) for (let k = 0; k < KA; k++) scene[k] += m.ctx[c][k] / classes.length;
  const r = randVec(rng, 0, KA);
  const sc = classes.length ? mix(scene, 0.5, r, 0.87) : r;
  // Noise (two AR(1) processes) + scene, step by step.
  const rho = Math.exp(-H / AR_TAU);
  const rhoD = Math.exp(-H / DRIFT_TAU);
  const inn = AR_SD * Math.sqrt(1 - rho * rho);
  const innD = DRIFT_SD * Math.sqrt(1 - rhoD * rhoD);
  const ar = new Float32Array(K);
  const drift = new Float32Array(KA);
  for (let k = 0; k < K; k++) ar[k] = AR_SD * gauss();
  for (let k = 0; k < KA; k++) drift[k] = DRIFT_SD * gauss();
  for (let i = 0; i < n; i++) {
    const o = i * K;
    for (let k = 0; k < K; k++) {
      ar[k] = rho * ar[k] + inn * gauss();
      z[o + k] = ar[k] + A_SCENE * sc[k];
    }
    for (let k = 0; k < KA; k++) {
      drift[k] = rhoD * drift[k] + innD * gauss();
      z[o + k] += drift[k];
    }
  }
  // Class context: per class, the max of the instance envelopes.
  for (const c of classes) {
    const wins = v.segments.filter((s) => s.classId === c).map((s) => [
      s.start - (1.5 + 4.5 * rng.next()),
      s.end + (1.5 + 4.5 * rng.next()),
    ]);
    const lo = Math.max(0, Math.floor((Math.min(...wins.map((w) => w[0])) - CTX_RAMP) / H));
    const hi = Math.min(n, Math.ceil((Math.max(...wins.map((w) => w[1])) + CTX_RAMP) / H) + 1);
    const cv = m.ctx[c];
    for (let i = lo; i < hi; i++) {
      const t = (i + 0.5) * H;
      let e = 0;
      for (const w of wins) e = Math.max(e, smoothEnv(t, w[0], w[1]));
      if (e === 0) continue;
      const o = i * K;
      for (let k = 0; k < KA; k++) z[o + k] += A_CTX * e * cv[k];
    }
  }
  // Action phases; identical segments (CliffDiving + Diving) are one event.
  const events = new Map<string, { start: number; end: number; cls: number[] }>();
  for (const s of v.segments) {
    const key = `${s.start}:${s.end}`;
    const ev = events.get(key);
    if (ev) ev.cls.push(s.classId);
    else events.set(key, { start: s.start, end: s.end, cls: [s.classId] });
  }
  const tmp = new Float32Array(3 * K);
  for (const ev of events.values()) {
    const a = 0.6 + 0.7 * rng.next();
    tmp.fill(0);
    for (const c of ev.cls) {
      for (let k = 0; k < K; k++) {
        tmp[k] += m.start[c][k];
        tmp[K + k] += m.mid[c][k];
        tmp[2 * K + k] += m.end[c][k];
      }
    }
    for (let p = 0; p < 3; p++) unit(tmp.subarray(p * K, (p + 1) * K));
    const len = Math.max(ev.end - ev.start, 1e-3);
    const lo = Math.max(0, Math.floor(ev.start / H));
    const hi = Math.min(n, Math.ceil(ev.end / H) + 1);
    for (let i = lo; i < hi; i++) {
      const u = ((i + 0.5) * H - ev.start) / len;
      if (u < 0 || u > 1) continue;
      const ws = a * A_START * Math.max(0, 1 - u / 0.3);
      const we = a * A_END * Math.max(0, (u - 0.7) / 0.3);
      const wm = a * A_MID * Math.min(1, Math.min(u, 1 - u) / 0.25);
      const o = i * K;
      for (let k = KA; k < K; k++) {
        z[o + k] += ws * tmp[k] + wm * tmp[K + k] + we * tmp[2 * K + k];
      }
    }
  }
  // Distractors: class-agnostic motion bursts.
  const nDis = Math.round(span / DIS_EVERY * (0.5 + rng.next()));
  for (let j = 0; j < nDis; j++) {
    const len = 0.8 + 3.2 * rng.next();
    const s0 = rng.next() * Math.max(0, span - len);
    const amp = 0.6 + 0.6 * rng.next();
    const dv = m.dis[rng.int(0, N_DISTRACTORS - 1)];
    const lo = Math.max(0, Math.floor(s0 / H));
    const hi = Math.min(n, Math.ceil((s0 + len) / H) + 1);
    for (let i = lo; i < hi; i++) {
      const u = ((i + 0.5) * H - s0) / len;
      if (u < 0 || u > 1) continue;
      const wgt = amp * Math.sin(Math.PI * u);
      const o = i * K;
      for (let k = KA; k < K; k++) z[o + k] += wgt * dv[k];
    }
  }
  const prefix = new Float64Array((n + 1) * K);
  for (let i = 0; i < n; i++) {
    const o = i * K;
    for (let k = 0; k < K; k++) prefix[o + K + k] = prefix[o + k] + z[o + k];
  }
  return { prefix, n };
}

/** Adds the integral of the latent over [0, x] seconds (per dim) times `sign` into `acc`. */
function integrate(l: Latent, x: number, sign: number, acc: Float64Array): void {
  const pos = Math.min(Math.max(x / H, 0), l.n);
  const i = Math.min(Math.floor(pos), l.n - 1);
  const f = pos - i;
  const p = l.prefix;
  const o = i * K;
  for (let k = 0; k < K; k++) {
    acc[k] += sign * H * (p[o + k] + f * (p[o + K + k] - p[o + k]));
  }
}

/**
 * Feature rows for windows [starts[r], starts[r] + width) seconds: T x D float32,
 * x = max(0, W z_bar + b + white noise).
 */
function renderRows(m: Model, l: Latent, starts: Float64Array, width: number, rng: Rng) {
  const T = starts.length;
  const D = m.dim;
  const out = new Float32Array(T * D);
  const acc = new Float64Array(K);
  const zb = new Float32Array(K);
  const w = m.w;
  const b = m.b;
  const nrm = m.normals;
  let st = rng.nextU32() | 1;
  for (let r = 0; r < T; r++) {
    acc.fill(0);
    integrate(l, starts[r] + width, 1, acc);
    integrate(l, starts[r], -1, acc);
    for (let k = 0; k < K; k++) zb[k] = acc[k] / width;
    const o = r * D;
    for (let d = 0; d < D; d++) {
      const wo = d * K;
      let s = b[d];
      for (let k = 0; k < K; k++) s += w[wo + k] * zb[k];
      st ^= st << 13;
      st ^= st >>> 17;
      st ^= st << 5;
      s += WHITE_SD * nrm[(st >>> 0) & (NOISE_TABLE - 1)];
      out[o + d] = s > 0 ? s : 0;
    }
  }
  return out;
}

/** Seconds the features of a video cover: its stated duration (segments past it included). */
function coveredSpan(v: GeometryVideo): number {
  return v.duration;
}

/** ActionFormer rows of a video: window starts (s) and width. */
function actionFormerWindows(v: GeometryVideo): { starts: Float64Array; width: number } {
  const span = coveredSpan(v);
  const T = Math.max(1, Math.floor((span * v.fps - 16) / 4) + 1);
  const starts = new Float64Array(T);
  for (let g = 0; g < T; g++) starts[g] = (4 * g) / v.fps;
  return { starts, width: 16 / v.fps };
}

/** CoLA snippets of a video (16 frames at 25 fps). */
function colaWindows(v: GeometryVideo): { starts: Float64Array; width: number } {
  const L = Math.max(1, Math.floor(coveredSpan(v) * 25 / 16));
  const starts = new Float64Array(L);
  for (let i = 0; i < L; i++) starts[i] = i * 0.64;
  return { starts, width: 0.64 };
}

/** Picks `n` videos, split-balanced (proportional), evenly spaced in id order. */
export function pickSubset<T extends { id: string; split: string }>(all: T[], n?: number): T[] {
  if (n === undefined || n >= all.length) return all;
  if (!(n >= 1)) throw new RangeError("videos must be at least 1");
  const pool = all.filter((v) => !COLA_EXCLUDED.includes(v.id));
  const train = pool.filter((v) => v.split === "train").sort((a, b) => a.id < b.id ? -1 : 1);
  const test = pool.filter((v) => v.split === "test").sort((a, b) => a.id < b.id ? -1 : 1);
  let nTrain = Math.round(n * train.length / pool.length);
  if (n >= 2) nTrain = Math.min(n - 1, Math.max(1, nTrain));
  const pick = (a: T[], k: number) =>
    Array.from({ length: k }, (_, i) => a[Math.floor((i + 0.5) * a.length / k)]);
  const chosen = new Set([...pick(train, nTrain), ...pick(test, n - nTrain)]);
  return all.filter((v) => chosen.has(v));
}

/** Random ActivityNet-like geometry: 200 classes, mostly 1-3 long instances per video. */
export function activityNetGeometry(seed: number, count: number): GeometryVideo[] {
  const rng = new Rng(seed ^ 0xa7e7);
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
  const out: GeometryVideo[] = [];
  const nTrain = Math.round(count * 2 / 3);
  for (let i = 0; i < count; i++) {
    let id = "";
    for (let j = 0; j < 11; j++) id += alphabet[rng.int(0, 63)];
    const duration = Math.round((20 + 220 * rng.next() ** 1.5) * 100) / 100;
    const cls = rng.int(0, 199);
    const u = rng.next();
    const k = u < 0.55 ? 1 : u < 0.85 ? 2 : 3;
    const cover = (0.3 + 0.5 * rng.next()) * duration;
    // k instances of random lengths summing to `cover`, separated by random gaps.
    const lens = Array.from({ length: k }, () => 0.5 + rng.next());
    const ls = lens.reduce((a, b) => a + b, 0);
    const gaps = Array.from({ length: k + 1 }, () => 0.2 + rng.next());
    const gs = gaps.reduce((a, b) => a + b, 0);
    let t = gaps[0] / gs * (duration - cover);
    const segments = [];
    for (let j = 0; j < k; j++) {
      const len = lens[j] / ls * cover;
      segments.push({
        classId: cls,
        start: Math.round(t * 100) / 100,
        end: Math.round((t + len) * 100) / 100,
      });
      t += len + gaps[j + 1] / gs * (duration - cover);
    }
    const train = i < nTrain;
    out.push({
      id,
      subset: train ? "training" : "validation",
      split: train ? "train" : "test",
      duration,
      fps: 25,
      segments,
    });
  }
  return out;
}

/** Synthetic ActivityNet class names (id = index). */
export function activityNetClassNames(): string[] {
  return Array.from({ length: 200 }, (_, i) => `activity_${String(i).padStart(3, "0")}`);
}

/** Writes feature files in one of the formats; `zip` goes through one archive per layout. */
class FeatureWriter {
  bytes = 0;
  #format: SynthFormat;
  #zip: { w: ZipWriter; sink: ReturnType<typeof fileSink>; fh: fs.FileHandle } | null = null;
  #zipPrefix = "";
  #dir: string;
  constructor(dir: string, format: SynthFormat) {
    this.#dir = dir;
    this.#format = format;
  }
  async open(): Promise<void> {
    if (this.#format !== "zip") return;
    await fs.mkdir(path.dirname(this.#dir), { recursive: true });
    const fh = await fs.open(this.#dir + ".zip", "w");
    const sink = fileSink(fh);
    this.#zip = { w: new ZipWriter(sink), sink, fh };
    this.#zipPrefix = path.basename(this.#dir) + "/";
  }
  async write(rel: string, data: Float32Array, rows: number, dim: number): Promise<void> {
    const npy = encodeNpy(data, [rows, dim]);
    if (this.#zip) {
      const before = npy.length;
      await this.#zip.w.add(`${this.#zipPrefix}${rel}.npy`, npy, true, 1);
      this.bytes += before;
      return;
    }
    const file = path.join(this.#dir, `${rel}.${this.#format}`);
    await fs.mkdir(path.dirname(file), { recursive: true });
    let bytes: Uint8Array = npy;
    if (this.#format === "npy.gz") bytes = gzip(npy, 1);
    else if (this.#format === "npz") {
      bytes = await encodeNpz({ arr_0: { data, shape: [rows, dim] } }, true, 1);
    }
    await fs.writeFile(file, bytes);
    this.bytes += bytes.length;
  }
  async close(): Promise<void> {
    if (!this.#zip) return;
    await this.#zip.w.finish();
    await this.#zip.sink.flush();
    await this.#zip.fh.close();
  }
}

function sortedIds(vs: GeometryVideo[]): string[] {
  return vs.map((v) => v.id).sort();
}

/**
 * Writes the synthetic dataset (see the module doc). The layouts are built in a temporary
 * folder inside `out` and moved into place at the end, so an interrupted run leaves no
 * half-written layout.
 */
export async function synthesize(opts: SynthOptions): Promise<SynthResult> {
  const t0 = performance.now();
  const like = opts.like ?? "thumos14";
  const dim = opts.dim ?? 128;
  const seed = opts.seed ?? 0;
  const format = opts.format ?? "npy";
  if (!(Number.isInteger(dim) && dim >= 2 && dim % 2 === 0)) {
    throw new RangeError(`dim must be an even integer >= 2, got ${dim}`);
  }
  await fs.mkdir(opts.out, { recursive: true });
  const tmp = path.join(opts.out, `.synth-tmp-${process.pid}-${Date.now()}`);
  let rows = 0;
  let bytes = 0;
  const layouts: string[] = [];
  let videos: GeometryVideo[];
  try {
    if (like === "activitynet") {
      videos = activityNetGeometry(seed, opts.videos ?? 300);
      const classes = activityNetClassNames();
      const model = buildModel(seed, dim, classes.map((_, i) => i % 25));
      const root = path.join(tmp, "activitynet");
      const fw = new FeatureWriter(path.join(root, "features"), format);
      await fw.open();
      const database: Record<string, unknown> = {};
      for (const [i, v] of videos.entries()) {
        const rng = new Rng(videoSeed(seed, v.id));
        const span = coveredSpan(v);
        const lat = buildLatent(model, v, span, rng);
        const L = Math.max(8, Math.round(span * 25 / 16));
        const width = span / L;
        const starts = new Float64Array(L).map((_, g) => g * width);
        const x = renderRows(model, lat, starts, width, rng);
        await fw.write(`v_${v.id}`, x, L, dim);
        rows += L;
        database[v.id] = {
          subset: v.subset,
          duration: v.duration,
          resolution: "320x240",
          url: `https://www.youtube.com/watch?v=${v.id}`,
          annotations: v.segments.map((s) => ({
            label: classes[s.classId],
            segment: [s.start, s.end],
          })),
        };
        opts.onProgress?.(i + 1, videos.length);
      }
      await fw.close();
      bytes += fw.bytes;
      await writeJsonFile(path.join(root, "activity_net.v1-3.min.json"), {
        version: "VERSION 1.3",
        taxonomy: classes.map((c, i) => ({
          nodeId: i + 1,
          nodeName: c,
          parentId: 0,
          parentName: "Root",
        })),
        database,
      });
      layouts.push("activitynet");
    } else {
      videos = pickSubset(thumos14Geometry(), opts.videos);
      const model = buildModel(
        seed,
        dim,
        THUMOS14_CLASSES.map((c) => THUMOS_GROUPS[c]),
      );
      const af = path.join(tmp, "actionformer");
      const co = path.join(tmp, "cola");
      const afw = new FeatureWriter(path.join(af, "i3d_features"), format);
      const cow = new FeatureWriter(path.join(co, "features"), format);
      await afw.open();
      await cow.open();
      const half = dim / 2;
      for (const [i, v] of videos.entries()) {
        const rng = new Rng(videoSeed(seed, v.id));
        const lat = buildLatent(model, v, coveredSpan(v), rng);
        const a = actionFormerWindows(v);
        const xa = renderRows(model, lat, a.starts, a.width, rng);
        await afw.write(v.id, xa, a.starts.length, dim);
        rows += a.starts.length;
        if (!COLA_EXCLUDED.includes(v.id)) {
          const c = colaWindows(v);
          const xc = renderRows(model, lat, c.starts, c.width, rng);
          const L = c.starts.length;
          const rgb = new Float32Array(L * half);
          const flow = new Float32Array(L * half);
          for (let t = 0; t < L; t++) {
            rgb.set(xc.subarray(t * dim, t * dim + half), t * half);
            flow.set(xc.subarray(t * dim + half, (t + 1) * dim), t * half);
          }
          await cow.write(`${v.split}/rgb/${v.id}`, rgb, L, half);
          await cow.write(`${v.split}/flow/${v.id}`, flow, L, half);
          rows += L;
        }
        opts.onProgress?.(i + 1, videos.length);
      }
      await afw.close();
      await cow.close();
      bytes += afw.bytes + cow.bytes;
      const afDb: Record<string, unknown> = {};
      const coDb: Record<string, unknown> = {};
      for (const v of videos) {
        afDb[v.id] = {
          subset: v.subset,
          duration: v.duration,
          fps: v.fps,
          annotations: v.segments.map((s) => ({
            label: THUMOS14_CLASSES[s.classId],
            segment: [s.start, s.end],
            "segment(frames)": [
              Math.round(s.start * v.fps * 10) / 10,
              Math.round(s.end * v.fps * 10) / 10,
            ],
            label_id: s.classId,
          })),
        };
        if (!COLA_EXCLUDED.includes(v.id)) {
          coDb[v.id] = {
            subset: v.split,
            annotations: v.segments.map((s) => ({
              segment: [String(s.start), String(s.end)],
              label: THUMOS14_CLASSES[s.classId],
            })),
          };
        }
      }
      await writeJsonFile(path.join(af, "annotations", "thumos14.json"), {
        version: "Thumos14-30fps",
        database: afDb,
      });
      await writeJsonFile(path.join(co, "gt.json"), { database: coDb });
      const colaVideos = videos.filter((v) => !COLA_EXCLUDED.includes(v.id));
      for (const split of ["train", "test"] as const) {
        const ids = sortedIds(colaVideos.filter((v) => v.split === split));
        await fs.writeFile(path.join(co, `split_${split}.txt`), ids.map((s) => s + "\n").join(""));
      }
      layouts.push("actionformer", "cola");
    }
    // Move the finished layouts into place (replacing older ones).
    for (const l of layouts) {
      const dest = path.join(opts.out, l);
      await fs.rm(dest, { recursive: true, force: true });
      await fs.rename(path.join(tmp, l), dest);
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return {
    out: opts.out,
    layouts,
    videos: {
      train: videos.filter((v) => v.split === "train").length,
      test: videos.filter((v) => v.split === "test").length,
    },
    rows,
    bytes,
    seconds: (performance.now() - t0) / 1000,
  };
}

async function writeJsonFile(file: string, value: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, JSON.stringify(value) + "\n");
}
