/**
 * Snippet mining of the generator (FuSTAL `CrossVideo-Generator/core/model.py`,
 * `easy_snippets_mining` / `hard_snippets_mining`), computed on the host from the CAS that the
 * forward pass read back. The masks are constants for autodiff: tfjs has no TopK
 * gradient, and building the selections here keeps the reference tie rule exact (stable:
 * among equal scores the lower time index wins).
 *
 * Layout conventions: per-video arrays are length T; batched arrays are row-major B x T (or
 * B x T x C for the CAS).
 *
 * @module
 */
import { selectRank } from "../../lib/select.ts";

/** Median of a sequence; an even length averages the two middle values (numpy semantics). */
export function median(a: ArrayLike<number>): number {
  const s = Float64Array.from(a).sort();
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** b_t = 1 where a_t > median(a), else 0. */
export function binarizeAboveMedian(a: ArrayLike<number>): Uint8Array {
  const m = median(a);
  const b = new Uint8Array(a.length);
  for (let t = 0; t < a.length; t++) b[t] = a[t] > m ? 1 : 0;
  return b;
}

/**
 * Flat binary erosion with a structure of length n, centre ⌊n/2⌋, zero outside the sequence
 * (scipy `binary_erosion` with the default border value): out_t = 1 iff b is 1 on
 * t−⌊n/2⌋ … t−⌊n/2⌋+n−1.
 */
export function erode(b: ArrayLike<number>, n: number): Uint8Array {
  const T = b.length;
  const c = Math.floor(n / 2);
  const out = new Uint8Array(T);
  for (let t = 0; t < T; t++) {
    let all = 1;
    for (let j = 0; j < n; j++) {
      const i = t + j - c;
      if (i < 0 || i >= T || !b[i]) {
        all = 0;
        break;
      }
    }
    out[t] = all;
  }
  return out;
}

/**
 * Flat binary dilation with a structure of length n (scipy `binary_dilation`, reflected
 * structure): out_t = 1 iff b is 1 somewhere on t−n+1+⌊n/2⌋ … t+⌊n/2⌋ inside the sequence.
 * For n = 6 that is t−2 … t+3.
 */
export function dilate(b: ArrayLike<number>, n: number): Uint8Array {
  const T = b.length;
  const c = Math.floor(n / 2);
  const out = new Uint8Array(T);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < n; j++) {
      const i = t - j + c;
      if (i >= 0 && i < T && b[i]) {
        out[t] = 1;
        break;
      }
    }
  }
  return out;
}

/** inner = ero_m − ero_M (action border), outer = dil_M − dil_m (background border). */
export function borderRegions(
  b: ArrayLike<number>,
  m: number,
  M: number,
): { inner: Uint8Array; outer: Uint8Array } {
  const em = erode(b, m), eM = erode(b, M), dm = dilate(b, m), dM = dilate(b, M);
  const inner = new Uint8Array(b.length), outer = new Uint8Array(b.length);
  for (let t = 0; t < b.length; t++) {
    inner[t] = em[t] - eM[t];
    outer[t] = dM[t] - dm[t];
  }
  return { inner, outer };
}

/** Scratch for {@linkcode topKIndices} (grown as needed; the mining runs hundreds per step). */
let scratch = new Float64Array(0), work = new Float64Array(0);

/**
 * Indices of the k largest values of `score[off + stride*t]`, t < T, in ascending index
 * order. Ties at the k-th value are broken toward the lower index (the rule of a stable
 * descending sort). The k-th value is found by selection, not by sorting.
 */
export function topKIndices(
  score: ArrayLike<number>,
  k: number,
  T = score.length,
  off = 0,
  stride = 1,
): number[] {
  k = Math.min(k, T);
  if (k <= 0) return [];
  if (scratch.length < T) {
    scratch = new Float64Array(T);
    work = new Float64Array(T);
  }
  const v = scratch;
  for (let t = 0; t < T; t++) v[t] = score[off + stride * t];
  work.set(v.subarray(0, T));
  const kth = selectRank(work, T, T - k);
  let ties = k;
  for (let t = 0; t < T; t++) if (v[t] > kth) ties--;
  const out: number[] = [];
  for (let t = 0; t < T; t++) {
    if (v[t] > kth || (v[t] === kth && ties-- > 0)) out.push(t);
  }
  return out;
}

/** k_e = ⌊T/r_easy⌋ and k_h = ⌊T/r_hard⌋, each at least 1 (the reference divides by them). */
export function mineCounts(
  T: number,
  rEasy: number,
  rHard: number,
): { kEasy: number; kHard: number } {
  return {
    kEasy: Math.max(1, Math.floor(T / rEasy)),
    kHard: Math.max(1, Math.floor(T / rHard)),
  };
}

/**
 * Top-k mask of a B x T x C CAS along time, per (video, class): exactly k ones per column.
 * Multiplying the CAS by it, summing over time and dividing by k gives the video score logits.
 */
export function topKTimeMask(
  cas: ArrayLike<number>,
  B: number,
  T: number,
  C: number,
  k: number,
): Float32Array {
  const mask = new Float32Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const off = b * T * C + c;
      for (const t of topKIndices(cas, k, T, off, C)) mask[off + t * C] = 1;
    }
  }
  return mask;
}

/**
 * Mining masks of a batch: each B x T with exactly k ones per video (`CoLA.easy_snippets_mining`).
 */
export interface MiningMasks {
  /** Easy action: top-k_e of a_t·drop_t. */
  easyAct: Float32Array;
  /** Easy background: top-k_e of (max a − a_t)·drop_t. */
  easyBkg: Float32Array;
  /** Hard action: top-k_h of a_t·inner_t. */
  hardAct: Float32Array;
  /** Hard background: top-k_h of a_t·outer_t. */
  hardBkg: Float32Array;
  /** k_e: ones per video in the easy masks. */
  kEasy: number;
  /** k_h: ones per video in the hard masks. */
  kHard: number;
}

/**
 * Mines the four snippet sets of every video of a batch from its actionness (B x T).
 *
 * @param drop Easy-mining dropout multipliers (B x T, values 0 or 1/(1−p)); null = eval mode.
 */
export function mineSnippets(
  actionness: ArrayLike<number>,
  B: number,
  T: number,
  opts: { rEasy: number; rHard: number; m: number; M: number; drop: ArrayLike<number> | null },
): MiningMasks {
  const { kEasy, kHard } = mineCounts(T, opts.rEasy, opts.rHard);
  const easyAct = new Float32Array(B * T), easyBkg = new Float32Array(B * T);
  const hardAct = new Float32Array(B * T), hardBkg = new Float32Array(B * T);
  const sa = new Float64Array(T), sb = new Float64Array(T);
  const si = new Float64Array(T), so = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    const a = Array.from({ length: T }, (_, t) => actionness[b * T + t]);
    let mx = -Infinity;
    for (const v of a) mx = Math.max(mx, v);
    const { inner, outer } = borderRegions(binarizeAboveMedian(a), opts.m, opts.M);
    for (let t = 0; t < T; t++) {
      const d = opts.drop ? opts.drop[b * T + t] : 1;
      sa[t] = a[t] * d;
      sb[t] = (mx - a[t]) * d;
      si[t] = a[t] * inner[t];
      so[t] = a[t] * outer[t];
    }
    for (const t of topKIndices(sa, kEasy)) easyAct[b * T + t] = 1;
    for (const t of topKIndices(sb, kEasy)) easyBkg[b * T + t] = 1;
    for (const t of topKIndices(si, kHard)) hardAct[b * T + t] = 1;
    for (const t of topKIndices(so, kHard)) hardBkg[b * T + t] = 1;
  }
  return { easyAct, easyBkg, hardAct, hardBkg, kEasy, kHard };
}
