/**
 * Seeded, keyed pseudo-random numbers.
 *
 * Generator: xoshiro128** (Blackman & Vigna), 32-bit state words, so it runs without BigInt.
 * Keying: every stream is derived from (seed, label, ...integers) by the murmur3 32-bit finaliser
 * chained over the key words (SplitMix-style). A client's minibatches in round r come from
 * `rngFor(seed, 'batch', client, r)`, never from a shared sequential stream, so results do not
 * depend on which worker or in what order a client is computed.
 */

/** murmur3 fmix32: a bijective avalanche mix of one 32-bit word. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a of a label, so streams can be named ('coin', 'batch', ...). */
export function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  /** Seeds the four state words from `words` (any length) by chained mixing. */
  constructor(words: readonly number[]) {
    let h = 0x9e3779b9;
    const state = [0, 0, 0, 0];
    for (let j = 0; j < 4; j++) {
      for (const w of words) h = mix32((h ^ (w >>> 0)) + 0x9e3779b9 * (j + 1));
      h = mix32(h + j + 1);
      state[j] = h;
    }
    if ((state[0] | state[1] | state[2] | state[3]) === 0) state[0] = 1; // all-zero state is absorbing
    [this.s0, this.s1, this.s2, this.s3] = state as [number, number, number, number];
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). */
  int(n: number): number {
    if (!(n >= 1 && n <= 0x100000000)) throw new RangeError(`Rng.int: n must be in [1, 2^32], got ${n}`);
    if (n === 0x100000000) return this.nextU32();
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const u = this.nextU32();
      if (u < limit) return u % n;
    }
  }

  /** Standard normal (Box-Muller, the second value cached). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  bernoulli(p: number): boolean {
    return this.float() < p;
  }

  /** Gamma(shape, 1) by Marsaglia & Tsang (shape < 1 boosted). */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new RangeError(`Rng.gamma: shape must be > 0, got ${shape}`);
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.float() || Number.MIN_VALUE, 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.float();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** A draw from the symmetric Dirichlet(alpha) over `k` categories. */
  dirichlet(alpha: number, k: number): Float64Array {
    const out = new Float64Array(k);
    let sum = 0;
    for (let i = 0; i < k; i++) sum += out[i] = this.gamma(alpha);
    if (sum === 0) out.fill(1 / k);
    else for (let i = 0; i < k; i++) out[i]! /= sum;
    return out;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }

  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The stream for (seed, label, ...keys): independent of every other key tuple. */
export function rngFor(seed: number, label: string, ...keys: number[]): Rng {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 0x100000000) >>> 0;
  return new Rng([lo, hi, hashLabel(label), keys.length, ...keys]);
}
