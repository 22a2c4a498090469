/**
 * The concatenated level layout every part of the student agrees on, and the host-side inputs
 * and outputs of one forward pass.
 *
 * Heads run once over all levels: the levels are concatenated along time with `gap` zero rows
 * before, between and after them ({@linkcode Layout}). A gap of `numBins` rows makes every
 * kernel-3 conv and every Trident window (16 rows) see zeros outside its own level, exactly as
 * per-level zero padding would (TriDet `libs/modeling/meta_archs.py`, heads applied per level).
 *
 * @module
 */
import type { tf } from "../../../deps.ts";
import type { StudentConfig } from "../presets.ts";

/** Where each pyramid level sits in the concatenated head layout. */
export interface Layout {
  /** Level lengths T_l (T_0 = input length). */
  lengths: number[];
  /** Start row of each level in the concatenated layout. */
  offsets: number[];
  /** Zero rows before, between and after levels. */
  gap: number;
  /** Total rows of the concatenated layout. */
  total: number;
  /** Stride of each level (1, 2, 4, ...). */
  strides: number[];
}

/** The concatenated layout for an input of `t0` rows (t0 divisible by 2^(levels-1)). */
export function makeLayout(t0: number, cfg: Pick<StudentConfig, "levels" | "numBins">): Layout {
  const div = 2 ** (cfg.levels - 1);
  if (t0 % div !== 0) throw new Error(`input length ${t0} is not a multiple of ${div}`);
  const gap = Math.max(1, cfg.numBins);
  const lengths: number[] = [];
  const offsets: number[] = [];
  const strides: number[] = [];
  let pos = gap;
  for (let l = 0; l < cfg.levels; l++) {
    const len = t0 / 2 ** l;
    lengths.push(len);
    offsets.push(pos);
    strides.push(2 ** l);
    pos += len + gap;
  }
  return { lengths, offsets, gap, total: pos, strides };
}

/** Level masks of each item: level 0 = t < len; level l+1 = level l at even positions. */
export function levelMasks(lens: number[], layout: Layout): Float32Array[] {
  const b = lens.length;
  return layout.lengths.map((len, l) => {
    const m = new Float32Array(b * len);
    for (let i = 0; i < b; i++) {
      // m_l[t] = m_0[t * 2^l] = (t * 2^l < len_i)
      for (let t = 0; t < len; t++) m[i * len + t] = t * layout.strides[l] < lens[i] ? 1 : 0;
    }
    return m;
  });
}

/** Valid-point mask of the concatenated layout, host side ([B * Ltot]). */
export function concatValid(lens: number[], layout: Layout): Float32Array {
  const masks = levelMasks(lens, layout);
  const out = new Float32Array(lens.length * layout.total);
  for (let i = 0; i < lens.length; i++) {
    layout.lengths.forEach((len, l) => {
      out.set(masks[l].subarray(i * len, (i + 1) * len), i * layout.total + layout.offsets[l]);
    });
  }
  return out;
}

/** Host-side inputs of one forward pass (built by the caller; turned into tensors here). */
export interface ForwardBatch {
  /** [B, T0, D] features (noise already added when training). */
  x: Float32Array;
  /** Valid rows per item (<= T0). */
  lens: number[];
  /** T0 (padded length). */
  t0: number;
  /** Input dimension D. */
  dim: number;
  /** Drop-path keep factors per branch block: [dp1 [B], dp2 [B]] (0 or 1/(1-p)); training only. */
  dropPath?: [Float32Array, Float32Array][];
}

/** Outputs in the concatenated layout. */
export interface ForwardOutput {
  /** [B, Ltot, K] classification logits (0 at padding and gaps). */
  cls: tf.Tensor3D;
  /** [B, Ltot, K] start-boundary logits. */
  start: tf.Tensor3D;
  /** [B, Ltot, K] end-boundary logits. */
  end: tf.Tensor3D;
  /** [B, Ltot, 2(B+1)] centre offsets (after scale and ReLU). */
  off: tf.Tensor3D;
  /** [B, Ltot, 1] valid-point mask. */
  valid: tf.Tensor3D;
}
