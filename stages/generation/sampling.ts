/**
 * Snippet sampling of the generator (FuSTAL `CrossVideo-Generator/core/dataset.py`): "random
 * perturb" for training (always N snippets) and "uniform" for inference (all L snippets when L <=
 * N).
 *
 * The cell boundaries s_i = i·L/N are computed as `(i * L) / N` in float64, the same order of
 * operations as the reference (`np.arange(N) * L / N`), so the integer parts agree exactly.
 *
 * @module
 */
import type { Rng } from "../../lib/rng.ts";

/**
 * Training indices: N positions drawn from a video of L snippets (`NpyFeature.random_perturb`).
 *
 * Cell i spans [⌊s_i⌋, ⌊s_{i+1}⌋] (both ends included, so a draw may land on the next cell's
 * first index); the last cell spans [⌊s_{N-1}⌋, L-1]. With L = N the identity is returned.
 */
export function randomPerturbIndices(L: number, N: number, rng: Rng): Int32Array {
  const out = new Int32Array(N);
  if (L === N) {
    for (let i = 0; i < N; i++) out[i] = i;
    return out;
  }
  const cell = (i: number) => Math.floor((i * L) / N);
  for (let i = 0; i < N; i++) {
    const lo = cell(i);
    if (i < N - 1) {
      const hi = cell(i + 1);
      out[i] = lo !== hi ? rng.int(lo, hi) : lo;
    } else {
      out[i] = lo < L - 1 ? rng.int(lo, L - 1) : lo;
    }
  }
  return out;
}

/**
 * Inference indices: all L snippets when L <= N, else ⌊i·L/N⌋ for i < N
 * (`NpyFeature.uniform_sampling`).
 */
export function uniformIndices(L: number, N: number): Int32Array {
  const T = Math.min(L, N);
  const out = new Int32Array(T);
  for (let i = 0; i < T; i++) out[i] = L <= N ? i : Math.floor((i * L) / N);
  return out;
}

/** Copies rows `indices` of a row-major `L x D` matrix into `dst` at row offset `row0`. */
export function gatherRows(
  src: Float32Array,
  dim: number,
  indices: ArrayLike<number>,
  dst: Float32Array,
  row0 = 0,
): void {
  for (let i = 0; i < indices.length; i++) {
    const s = indices[i] * dim;
    dst.set(src.subarray(s, s + dim), (row0 + i) * dim);
  }
}
