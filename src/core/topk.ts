/**
 * Exact TopK by magnitude in O(d): radix select over the IEEE-754 bits of |v|.
 *
 * With the sign bit cleared, the uint32 bit pattern of a float is monotone in its magnitude
 * (+0 < subnormals < normals < Infinity < NaN patterns), so the k largest keys are the k largest
 * |v_j|, and -0 and +0 share the key 0. Ties go to the lower index, so runs replay bit for bit.
 *
 * The k-th largest key is found one digit at a time (12, 11, then 8 bits of the 31-bit key) by
 * histograms; one pass then writes the indices above it plus the lowest-index ties. For large d, a
 * sampled lower bound first cuts the keys down to about 1.1 k candidates in a single pass, so the
 * histograms run on those only. Repeated calls on a slowly changing vector (TopK after every local
 * step) can pass a TopkHint: the previous k-th largest magnitude then gives the bound without sampling.
 */

const ABS_MASK = 0x7fffffff;
const INF_KEY = 0x7f800000;
/** [shift, bits] of each digit of the key, most significant first. */
const DIGITS: readonly (readonly [number, number])[] = [
  [19, 12],
  [8, 11],
  [0, 8],
];
/** Sample size: d/16, between MIN_SAMPLE and SAMPLE (a sort of the sample must stay cheap next to a pass over d). */
const SAMPLE = 1 << 14;
const MIN_SAMPLE = 1 << 10;
const BLOCK = 1 << 12; // collect() checks its capacity once per block (a multiple of 4)
/**
 * A hinted bound is a fraction of the previous k-th largest magnitude: 3/4 first, then lower ones
 * while fewer than k keys pass (a new client's first step starts from another client's threshold),
 * down to 0, which collects every nonzero (a vector with fewer than k of them).
 */
const WARM_MARGINS = [0.75, 0.25, 0.0625, 0];

// Scratch reused across calls: selection runs every round on every client, so no allocation.
const hists = DIGITS.map(([, bits]) => new Uint32Array(1 << bits));
const sample = new Uint32Array(SAMPLE);
let candKeys = new Uint32Array(0);
let candIdx = new Uint32Array(0);
let denseIdx = new Uint32Array(0);
const scaleBits = new Uint32Array(1);
const scaleFloat = new Float32Array(scaleBits.buffer);

/**
 * Warm-start state for TopK on a vector that changes little between calls: the k-th largest key of
 * the last selection. The result never depends on it (a bound that misses falls back to the cold path).
 */
export class TopkHint {
  /** the last k-th largest key (|v| as uint32 bits), -1 before the first call */
  key = -1;
}

/**
 * K = ceil((1 - sparsity) * n), at least 1 when n >= 1. `1 - sparsity` carries the binary rounding
 * error of a decimal sparsity (1 - 0.99 = 0.010000000000000009), magnified n times, so a product
 * within that error of an integer is taken as that integer.
 */
export function keepCount(n: number, sparsity: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`keepCount: n must be a non-negative integer, got ${n}`);
  if (!(sparsity >= 0 && sparsity < 1)) throw new RangeError(`keepCount: sparsity must be in [0, 1), got ${sparsity}`);
  if (n === 0) return 0;
  const x = (1 - sparsity) * n;
  const nearest = Math.round(x);
  const k = Math.abs(x - nearest) <= 8 * Number.EPSILON * n ? nearest : Math.ceil(x);
  return Math.min(n, Math.max(1, k));
}

/** Indices of the k largest |v_j| in ascending order; k is clamped to [0, d]. Throws on NaN. */
export function topkIndices(v: Float32Array, k: number, hint?: TopkHint): Uint32Array {
  const kk = clampK(k, v.length);
  const out = new Uint32Array(kk);
  selectInto(v, kk, out, hint);
  return out;
}

/**
 * Dense TopK: the k largest-magnitude entries of v copied, the rest 0. `out` may be `v` itself
 * (in place) or a non-overlapping array of the same length.
 */
export function topk(v: Float32Array, k: number, out: Float32Array = new Float32Array(v.length), hint?: TopkHint): Float32Array {
  const d = v.length;
  if (out.length !== d) throw new RangeError(`topk: out has length ${out.length}, v has ${d}`);
  const inPlace = out.buffer === v.buffer && out.byteOffset === v.byteOffset;
  if (!inPlace && overlaps(out, v)) throw new RangeError('topk: out overlaps v without being v');
  const kk = clampK(k, d);
  if (denseIdx.length < kk) denseIdx = new Uint32Array(kk);
  selectInto(v, kk, denseIdx, hint);
  if (inPlace) {
    let next = 0;
    for (let j = 0; j < kk; j++) {
      const i = denseIdx[j]!;
      if (i > next) out.fill(0, next, i);
      next = i + 1;
    }
    out.fill(0, next, d);
  } else {
    out.fill(0);
    for (let j = 0; j < kk; j++) {
      const i = denseIdx[j]!;
      out[i] = v[i]!;
    }
  }
  return out;
}

function clampK(k: number, d: number): number {
  if (Number.isNaN(k) || (Number.isFinite(k) && !Number.isInteger(k))) {
    throw new RangeError(`topk: k must be an integer, got ${k}`);
  }
  return Math.min(d, Math.max(0, k));
}

function overlaps(a: Float32Array, b: Float32Array): boolean {
  return (
    a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength
  );
}

/** Writes the sorted indices of the k (already clamped) largest |v_j| into dst[0..k). */
function selectInto(v: Float32Array, k: number, dst: Uint32Array, hint: TopkHint | undefined): void {
  const keys = new Uint32Array(v.buffer, v.byteOffset, v.length);
  if (k === 0 || k === keys.length) {
    throwOnNaN(keys, keys.length, null);
    for (let i = 0; i < k; i++) dst[i] = i;
    return;
  }
  let threshold = hint !== undefined && hint.key >= 0 ? selectWarm(keys, k, dst, hint.key) : -1;
  if (threshold < 0) threshold = selectSampled(keys, k, dst);
  if (threshold < 0) threshold = selectExact(keys, k, dst);
  if (hint !== undefined) hint.key = threshold;
}

/**
 * Exact selection without scratch: three histogram passes over all keys fix the k-th largest key
 * digit by digit, and one more pass writes the output. Returns the k-th largest key.
 */
function selectExact(keys: Uint32Array, k: number, dst: Uint32Array): number {
  const [threshold, equalTake] = kthKey(keys, keys.length, k);
  if (sawInfOrNaN()) throwOnNaN(keys, keys.length, null);
  compactInto(keys, null, keys.length, threshold, equalTake, dst);
  return threshold;
}

/**
 * The hinted path: a bound of WARM_MARGINS times the last k-th largest magnitude, and one pass
 * collecting the keys at or above it (another pass per lower bound while fewer than k pass).
 * Returns the k-th largest key, or -1, having written nothing, when a bound collects more keys
 * than the scratch allows.
 */
function selectWarm(keys: Uint32Array, k: number, dst: Uint32Array, lastKey: number): number {
  const cap = Math.min(keys.length, 4 * k + 1024);
  ensureCandidates(cap);
  let c = 0;
  let lo = -1;
  for (const margin of WARM_MARGINS) {
    scaleBits[0] = lastKey;
    scaleFloat[0] *= margin;
    // 1 for margin 0 (an infinite last key times 0 is NaN); at least 1 (zeros are never
    // collected) and at most the smallest NaN key (every NaN is collected)
    const next = margin === 0 ? 1 : Math.max(1, Math.min(scaleBits[0]!, INF_KEY + 1));
    if (next === lo) continue;
    lo = next;
    c = collectSparse(keys, lo, cap, candKeys, candIdx);
    if (c >= k) return selectCandidates(c, k, dst);
    if (c < 0) return -1; // a lower bound would collect even more
  }
  // Fewer than k nonzeros: all of them, and the lowest-index zeros (the keys not collected).
  throwOnNaN(candKeys, c, candIdx);
  let zeros = k - c;
  for (let j = 0, q = 0, m = 0; m < k; j++) {
    if (q < c && candIdx[q] === j) {
      dst[m++] = j;
      q++;
    } else if (zeros > 0) {
      dst[m++] = j;
      zeros--;
    }
  }
  return 0;
}

function ensureCandidates(cap: number): void {
  if (candIdx.length < cap + BLOCK) {
    candKeys = new Uint32Array(cap + BLOCK);
    candIdx = new Uint32Array(cap + BLOCK);
  }
}

/**
 * Like collect(), for a bound that few keys pass (a hinted one): a branch is then cheaper than
 * storing every index, and it collects the masked keys at once. -1 if more than cap. Four keys
 * share one test, (below - key) < 0 iff key >= lo (lo >= 1, keys below 2^31), or-ed over the four.
 */
function collectSparse(keys: Uint32Array, lo: number, cap: number, ck: Uint32Array, ci: Uint32Array): number {
  const n = keys.length;
  const below = lo - 1;
  let c = 0;
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const a = keys[j]! & ABS_MASK;
    const b = keys[j + 1]! & ABS_MASK;
    const e = keys[j + 2]! & ABS_MASK;
    const f = keys[j + 3]! & ABS_MASK;
    if (((below - a) | (below - b) | (below - e) | (below - f)) < 0) {
      if (c + 4 > cap) return collectTail(keys, lo, cap, ck, ci, j, c);
      if (a >= lo) (ck[c] = a), (ci[c++] = j);
      if (b >= lo) (ck[c] = b), (ci[c++] = j + 1);
      if (e >= lo) (ck[c] = e), (ci[c++] = j + 2);
      if (f >= lo) (ck[c] = f), (ci[c++] = j + 3);
    }
  }
  return collectTail(keys, lo, cap, ck, ci, j, c);
}

/** collectSparse one key at a time from index j on, with c keys collected so far. */
function collectTail(keys: Uint32Array, lo: number, cap: number, ck: Uint32Array, ci: Uint32Array, j: number, c: number): number {
  for (; j < keys.length; j++) {
    const key = keys[j]! & ABS_MASK;
    if (key >= lo) {
      if (c === cap) return -1;
      ck[c] = key;
      ci[c++] = j;
    }
  }
  return c;
}

/** The selection among the c >= k collected candidates (candKeys, candIdx); returns the k-th largest key. */
function selectCandidates(c: number, k: number, dst: Uint32Array): number {
  const [threshold, equalTake] = kthKey(candKeys, c, k);
  if (sawInfOrNaN()) throwOnNaN(candKeys, c, candIdx); // the bound is <= every NaN key, so all were collected
  compactInto(candKeys, candIdx, c, threshold, equalTake, dst);
  return threshold;
}

/**
 * The fast path for large d: a strided sample bounds the k-th largest key from below, one pass
 * collects the keys at or above that bound (about 1.1 k of them), and the exact selection then runs
 * on those only. Returns the k-th largest key, or -1, having written nothing, when the sample bound
 * is unusable (too many keys collected, or fewer than k), so the caller falls back to the exact path.
 */
function selectSampled(keys: Uint32Array, k: number, dst: Uint32Array): number {
  const d = keys.length;
  const m = Math.min(SAMPLE, d >>> 4);
  if (m < MIN_SAMPLE) return -1;
  const [lo, estimate] = sampleBound(keys, k, m);
  const cap = Math.ceil(1.25 * estimate) + 1024;
  if (cap > d / 2) return -1;
  ensureCandidates(cap);
  const c = collect(keys, lo, cap, candKeys, candIdx);
  return c < k ? -1 : selectCandidates(c, k, dst); // c = -1 on overflow
}

/**
 * A lower bound on the k-th largest key from m evenly spaced keys, with a margin of four
 * standard deviations of the sampled count, and the number of keys expected at or above it.
 */
function sampleBound(keys: Uint32Array, k: number, m: number): [lo: number, estimate: number] {
  const d = keys.length;
  const s = sample.subarray(0, m);
  for (let j = 0; j < m; j++) s[j] = keys[Math.floor((j * d) / m)]! & ABS_MASK;
  s.sort();
  const p = k / d;
  const rank = Math.min(m, Math.ceil(m * p + 4 * Math.sqrt(m * p * (1 - p)) + 1));
  // Capped at the smallest NaN key so that every NaN is collected and reported.
  return [Math.min(s[m - rank]!, INF_KEY + 1), (rank / m) * d];
}

/**
 * Copies the indices of keys >= lo, then those keys (masked), in index order; -1 if more than cap.
 * Branch-free, since about one key in ten passes at random, which a branch would mispredict: every
 * index is stored and the count advances by the comparison bit, (below - key) >>> 31, which is 1
 * iff key >= lo (keys and lo are below 2^31). Unrolled by 4, which V8 runs about twice as fast.
 * ci needs cap + BLOCK slots.
 */
function collect(keys: Uint32Array, lo: number, cap: number, ck: Uint32Array, ci: Uint32Array): number {
  const n = keys.length;
  const below = lo - 1;
  let c = 0;
  let i = 0;
  for (; i + BLOCK <= n; i += BLOCK) {
    for (let j = i; j < i + BLOCK; j += 4) {
      ci[c] = j;
      c += (below - (keys[j]! & ABS_MASK)) >>> 31;
      ci[c] = j + 1;
      c += (below - (keys[j + 1]! & ABS_MASK)) >>> 31;
      ci[c] = j + 2;
      c += (below - (keys[j + 2]! & ABS_MASK)) >>> 31;
      ci[c] = j + 3;
      c += (below - (keys[j + 3]! & ABS_MASK)) >>> 31;
    }
    if (c > cap) return -1;
  }
  for (; i < n; i++) {
    ci[c] = i;
    c += (below - (keys[i]! & ABS_MASK)) >>> 31;
  }
  if (c > cap) return -1;
  for (let j = 0; j < c; j++) ck[j] = keys[ci[j]!]! & ABS_MASK;
  return c;
}

/**
 * The k-th largest of keys[0..n) (masked), found one digit at a time, and how many keys equal to
 * it belong to the top k (the rest of the top k are strictly larger).
 */
function kthKey(keys: Uint32Array, n: number, k: number): [threshold: number, equalTake: number] {
  if (n <= SMALL_N) return kthKeySorted(keys, n, k);
  lastMaxKey = -1;
  let prefix = 0;
  let need = k;
  for (let level = 0; level < DIGITS.length; level++) {
    const [shift, bits] = DIGITS[level]!;
    const h = hists[level]!;
    const mask = h.length - 1;
    const top = shift + bits; // keys still in play have key >>> top === prefix
    h.fill(0);
    for (let j = 0; j < n; j++) {
      const key = keys[j]! & ABS_MASK;
      if (key >>> top === prefix) h[(key >>> shift) & mask]++;
    }
    const [b, above] = pickBucket(h, need);
    need -= above;
    prefix = prefix * (1 << bits) + b;
  }
  return [prefix, need];
}

/**
 * Below this many keys, sorting a copy costs less than clearing the three histograms (6,400 buckets):
 * BlogFeedback's d = 282 selects in every local step.
 */
const SMALL_N = 1024;
const smallKeys = new Uint32Array(SMALL_N);
/** the largest key of the last kthKeySorted call (-1 after a histogram pass), for sawInfOrNaN */
let lastMaxKey = -1;

/** kthKey by sorting the magnitudes' keys (1 <= k <= n <= SMALL_N). */
function kthKeySorted(keys: Uint32Array, n: number, k: number): [threshold: number, equalTake: number] {
  const s = smallKeys.subarray(0, n);
  for (let j = 0; j < n; j++) s[j] = keys[j]! & ABS_MASK;
  s.sort();
  const threshold = s[n - k]!;
  let above = 0;
  for (let j = n - 1; s[j]! > threshold; j--) above++;
  lastMaxKey = s[n - 1]!;
  return [threshold, k - above];
}

/** The bucket holding the k-th largest entry (scanning from the top), and the count above it. */
function pickBucket(hist: Uint32Array, k: number): [bucket: number, above: number] {
  let above = 0;
  let b = hist.length - 1;
  while (above + hist[b]! < k) above += hist[b--]!;
  return [b, above];
}

/**
 * Writes, in index order, the positions whose key is above the threshold plus the first
 * `equalTake` equal to it (ties to the lower index). `idx` maps positions to indices (null: identity).
 */
function compactInto(
  keys: Uint32Array,
  idx: Uint32Array | null,
  n: number,
  threshold: number,
  equalTake: number,
  dst: Uint32Array,
): void {
  let m = 0;
  let equalLeft = equalTake;
  for (let j = 0; j < n; j++) {
    const key = keys[j]! & ABS_MASK;
    if (key > threshold || (key === threshold && equalLeft-- > 0)) dst[m++] = idx === null ? j : idx[j]!;
  }
}

/**
 * Whether the keys of the last kthKey call include Infinity or NaN: those, and only those, land in
 * the top 16 buckets of its first-digit histogram, which counts every key.
 */
function sawInfOrNaN(): boolean {
  if (lastMaxKey >= 0) return lastMaxKey >= INF_KEY;
  const h = hists[0]!;
  for (let b = INF_KEY >>> DIGITS[0]![0]; b < h.length; b++) if (h[b] !== 0) return true;
  return false;
}

/** Throws naming the first NaN among keys[0..n) (in index order); `idx` maps positions to indices. */
function throwOnNaN(keys: Uint32Array, n: number, idx: Uint32Array | null): void {
  for (let j = 0; j < n; j++) {
    if ((keys[j]! & ABS_MASK) > INF_KEY) throw new RangeError(`topk: v[${idx === null ? j : idx[j]}] is NaN`);
  }
}
