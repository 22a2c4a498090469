/**
 * Seeded pseudo-random numbers with a serialisable state, so checkpoints can store and
 * restore the stream exactly (same seed, same backend, same result; resume == no kill).
 *
 * Generator: xoshiro128** (32-bit state words), seeded through splitmix32.
 *
 * @module
 */

/** A seeded random stream. `state()` / `setState()` round-trip exactly. */
export class Rng {
  #s = new Uint32Array(4);
  #spare: number | null = null;

  /** Seeds the stream with `seed` (an integer, taken modulo 2^32; default 0). */
  constructor(seed = 0) {
    let x = (seed >>> 0) ^ 0x9e3779b9;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
  }

  /** Next unsigned 32-bit integer. */
  nextU32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (both included). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Standard normal (Box-Muller, caching the second value). */
  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** In-place Fisher-Yates shuffle; returns `a`. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }

  /** A derived independent stream (for per-video or per-stage randomness). */
  fork(): Rng {
    return new Rng(this.nextU32());
  }

  /** Serialisable state. */
  state(): number[] {
    return [...this.#s, this.#spare === null ? NaN : this.#spare];
  }

  /** Restores a state from {@linkcode Rng.state}. */
  setState(st: number[]): void {
    for (let i = 0; i < 4; i++) this.#s[i] = st[i] >>> 0;
    this.#spare = st[4] === null || Number.isNaN(st[4]) ? null : st[4];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
