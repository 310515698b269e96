import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { keepCount, topk, topkIndices, TopkHint } from './topk.js';
import { rngFor } from './rng.js';

/** Reference: sort indices by |v| descending, ties by index ascending; take k; sort ascending. */
function referenceIndices(v: Float32Array, k: number): number[] {
  const order = Array.from(v.keys()).sort((a, b) => Math.abs(v[b]!) - Math.abs(v[a]!) || a - b);
  return order.slice(0, Math.max(0, Math.min(k, v.length))).sort((a, b) => a - b);
}

function referenceDense(v: Float32Array, k: number): Float32Array {
  const out = new Float32Array(v.length);
  for (const i of referenceIndices(v, k)) out[i] = v[i]!;
  return out;
}

function normalVector(d: number, seed: number): Float32Array {
  const rng = rngFor(seed, 'topk-test');
  const v = new Float32Array(d);
  for (let i = 0; i < d; i++) v[i] = rng.normal();
  return v;
}

/** Values drawn from a few levels, so most magnitudes tie (with both signs). */
function tiedVector(d: number, levels: number, seed: number): Float32Array {
  const rng = rngFor(seed, 'topk-ties');
  const v = new Float32Array(d);
  for (let i = 0; i < d; i++) v[i] = (rng.int(levels) - (levels >> 1)) * 0.5;
  return v;
}

function expectMatchesReference(v: Float32Array, k: number): void {
  expect(Array.from(topkIndices(v, k))).toEqual(referenceIndices(v, k));
  expect(Array.from(topk(v, k))).toEqual(Array.from(referenceDense(v, k)));
}

describe('keepCount', () => {
  it('rounds up (1 - sparsity) * n without float error', () => {
    expect(keepCount(100, 0.99)).toBe(1);
    expect(keepCount(48670, 0.99)).toBe(487);
    expect(keepCount(11173962, 0.9)).toBe(1117397);
    expect(keepCount(1000, 0.9)).toBe(100);
    expect(keepCount(10, 0.7)).toBe(3);
    expect(keepCount(3, 0.5)).toBe(2);
    expect(keepCount(7, 0)).toBe(7);
  });

  it('keeps at least one entry of a non-empty vector, none of an empty one', () => {
    expect(keepCount(5, 0.999)).toBe(1);
    expect(keepCount(1, 0.5)).toBe(1);
    expect(keepCount(0, 0.5)).toBe(0);
  });

  it('rejects sparsity outside [0, 1) and bad n', () => {
    expect(() => keepCount(10, 1)).toThrow(RangeError);
    expect(() => keepCount(10, -0.1)).toThrow(RangeError);
    expect(() => keepCount(10, Number.NaN)).toThrow(RangeError);
    expect(() => keepCount(-1, 0.5)).toThrow(RangeError);
    expect(() => keepCount(2.5, 0.5)).toThrow(RangeError);
  });

  it('agrees with exact rational arithmetic for sparsities given as per-mille', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20_000_000 }), fc.integer({ min: 0, max: 999 }), (n, perMille) => {
        const exact = Math.max(1, Math.ceil(((1000 - perMille) * n) / 1000)); // integer numerator: exact
        expect(keepCount(n, perMille / 1000)).toBe(exact);
      }),
    );
  });
});

describe('topkIndices / topk', () => {
  it('matches the sort-based reference on random vectors', () => {
    for (const d of [1, 2, 7, 100, 1000, 5000]) {
      const v = normalVector(d, d);
      for (const k of [1, 2, Math.floor(d / 10), Math.floor(d / 2), d - 1]) expectMatchesReference(v, k);
    }
  });

  it('breaks ties toward the lower index', () => {
    const v = new Float32Array([1, -2, 2, 1, -1, 2, 0]);
    expect(Array.from(topkIndices(v, 2))).toEqual([1, 2]);
    expect(Array.from(topkIndices(v, 4))).toEqual([0, 1, 2, 5]);
    expect(Array.from(topkIndices(v, 5))).toEqual([0, 1, 2, 3, 5]);
    for (const levels of [2, 3, 7]) {
      const t = tiedVector(3000, levels, levels);
      for (const k of [1, 17, 500, 1500, 2999]) expectMatchesReference(t, k);
    }
  });

  it('handles k = 0, k = d, k > d and negative k by clamping', () => {
    const v = normalVector(50, 1);
    expect(topkIndices(v, 0).length).toBe(0);
    expect(Array.from(topkIndices(v, 50))).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(Array.from(topkIndices(v, 80))).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(Array.from(topkIndices(v, Infinity))).toHaveLength(50);
    expect(topkIndices(v, -3).length).toBe(0);
    expect(Array.from(topk(v, 0))).toEqual(new Array(50).fill(0));
    expect(Array.from(topk(v, 50))).toEqual(Array.from(v));
    expect(topkIndices(new Float32Array(0), 3).length).toBe(0);
  });

  it('rejects a non-integer k', () => {
    expect(() => topkIndices(new Float32Array(4), 1.5)).toThrow(RangeError);
    expect(() => topkIndices(new Float32Array(4), Number.NaN)).toThrow(RangeError);
  });

  it('selects among all zeros by index', () => {
    const z = new Float32Array(1000);
    expect(Array.from(topkIndices(z, 3))).toEqual([0, 1, 2]);
    expect(Array.from(topk(z, 3))).toEqual(new Array(1000).fill(0));
  });

  it('treats -0 and +0 as equal magnitudes and keeps the sign of kept values', () => {
    const v = new Float32Array([0, -0, -0, 0, -3]);
    expect(Array.from(topkIndices(v, 3))).toEqual([0, 1, 4]);
    const dense = topk(v, 3);
    expect(Object.is(dense[1], -0)).toBe(true);
    expect(dense[4]).toBe(-3);
  });

  it('ranks negative values by magnitude and Infinity as the largest', () => {
    const v = new Float32Array([-5, 4, -Infinity, 3, Infinity, -6]);
    expect(Array.from(topkIndices(v, 2))).toEqual([2, 4]);
    expect(Array.from(topkIndices(v, 3))).toEqual([2, 4, 5]);
    expect(Array.from(topk(v, 3))).toEqual([0, 0, -Infinity, 0, Infinity, -6]);
  });

  it('orders subnormals, the smallest and the largest floats correctly', () => {
    const v = new Float32Array([1e-45, -3.4028234663852886e38, 1e-40, 1.1754943508222875e-38, 0, -1e-45]);
    expect(Array.from(topkIndices(v, 1))).toEqual([1]);
    expectMatchesReference(v, 3);
    expectMatchesReference(v, 4);
    expectMatchesReference(v, 5);
  });

  it('throws a RangeError naming the first NaN', () => {
    const v = normalVector(200, 2);
    v[37] = Number.NaN;
    v[150] = Number.NaN;
    for (const k of [0, 1, 100, 200]) expect(() => topkIndices(v, k)).toThrow(/v\[37\] is NaN/);
    expect(() => topk(v, 10)).toThrow(RangeError);
    // a NaN with a negative sign bit and an unusual payload
    const w = new Float32Array(10);
    new Uint32Array(w.buffer)[4] = 0xff800001;
    expect(() => topkIndices(w, 3)).toThrow(/v\[4\] is NaN/);
  });

  it('works on subarray views with a non-zero byteOffset', () => {
    const base = normalVector(3000, 3);
    const view = base.subarray(123, 2123);
    expect(view.byteOffset).toBe(492);
    for (const k of [1, 200, 1999]) expectMatchesReference(view, k);
  });

  it('writes into out, or in place, leaving v intact when out is another array', () => {
    const v = normalVector(500, 4);
    const before = Float32Array.from(v);
    const expected = referenceDense(v, 60);
    const out = new Float32Array(500).fill(7);
    expect(topk(v, 60, out)).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(expected));
    expect(Array.from(v)).toEqual(Array.from(before));
    expect(topk(v, 60, v)).toBe(v);
    expect(Array.from(v)).toEqual(Array.from(expected));
  });

  it('works in place on a subarray view', () => {
    const base = normalVector(1000, 5);
    const copy = Float32Array.from(base);
    const seg = base.subarray(100, 600);
    const expected = referenceDense(copy.subarray(100, 600), 50);
    topk(seg, 50, seg);
    expect(Array.from(seg)).toEqual(Array.from(expected));
    expect(Array.from(base.subarray(0, 100))).toEqual(Array.from(copy.subarray(0, 100)));
    expect(Array.from(base.subarray(600))).toEqual(Array.from(copy.subarray(600)));
  });

  it('rejects an out of the wrong length or overlapping v', () => {
    const base = new Float32Array(20);
    expect(() => topk(base.subarray(0, 10), 2, new Float32Array(9))).toThrow(RangeError);
    expect(() => topk(base.subarray(0, 10), 2, base.subarray(5, 15))).toThrow(/overlaps/);
  });

  // Large enough for the sampled fast path (d >= 65536), including inputs that defeat the sample.
  describe('large vectors', () => {
    it('matches the reference on normal data at several k', () => {
      const v = normalVector(200_000, 6);
      for (const k of [1, 5, 2_000, 20_000, 60_000, 150_000]) expectMatchesReference(v, k);
    });

    it('matches the reference when most entries tie or are zero', () => {
      const t = tiedVector(100_000, 3, 7);
      for (const k of [10, 30_000, 70_000]) expectMatchesReference(t, k);
      const sparse = new Float32Array(100_000);
      const rng = rngFor(8, 'sparse');
      for (let j = 0; j < 3000; j++) sparse[rng.int(100_000)] = rng.normal();
      for (const k of [100, 2900, 10_000]) expectMatchesReference(sparse, k);
    });

    it('matches the reference when the sample misjudges the distribution', () => {
      // Large values exactly at the sampled positions, and a sorted ramp.
      const spiky = new Float32Array(100_000).fill(1);
      for (let j = 0; j < 16384; j++) spiky[Math.floor((j * 100_000) / 16384)] = 2;
      for (const k of [10, 20_000]) expectMatchesReference(spiky, k);
      const ramp = Float32Array.from({ length: 100_000 }, (_, i) => (i % 1000) - 500);
      for (const k of [999, 10_000, 45_000]) expectMatchesReference(ramp, k);
    });

    it('matches the reference at mid sizes, where the sample is d/16 keys (a FEMNIST model: d = 48,670)', () => {
      for (const d of [16_384, 48_670, 65_535]) {
        const v = normalVector(d, d);
        for (const k of [1, Math.ceil(0.01 * d), Math.ceil(0.1 * d), d >>> 1]) expectMatchesReference(v, k);
        const t = tiedVector(d, 3, d + 1);
        for (const k of [7, Math.ceil(0.01 * d), d >>> 2]) expectMatchesReference(t, k);
        // large values exactly at the sampled positions: the bound is too high, the exact path takes over
        const spiky = new Float32Array(d).fill(1);
        const m = d >>> 4;
        for (let j = 0; j < m; j++) spiky[Math.floor((j * d) / m)] = 2;
        for (const k of [10, Math.ceil(0.01 * d), m + 5]) expectMatchesReference(spiky, k);
      }
    });

    it('finds a NaN that only the full pass sees', () => {
      const v = normalVector(100_000, 9);
      v[99_999] = Number.NaN;
      expect(() => topkIndices(v, 10_000)).toThrow(/v\[99999\] is NaN/);
      v[5] = Number.NaN;
      expect(() => topk(v, 10)).toThrow(/v\[5\] is NaN/);
    });

    it('is deterministic across repeated calls', () => {
      const v = tiedVector(120_000, 5, 10);
      const a = topkIndices(v, 30_000);
      const b = topkIndices(v, 30_000);
      expect(Array.from(a)).toEqual(Array.from(b));
    });
  });

  describe('with a TopkHint (warm threshold)', () => {
    /** hinted results equal the unhinted ones, indices and dense (in place too); returns the hint's key after */
    function expectHintedExact(v: Float32Array, k: number, hint: TopkHint): void {
      const want = topkIndices(v, k);
      const key = hint.key;
      expect(Array.from(topkIndices(v, k, hint))).toEqual(Array.from(want));
      hint.key = key;
      const inPlace = Float32Array.from(v);
      topk(inPlace, k, inPlace, hint);
      const dense = new Float32Array(v.length);
      for (const i of want) dense[i] = v[i]!;
      expect(Array.from(inPlace)).toEqual(Array.from(dense));
    }

    it('follows a slowly changing vector exactly, keeping the k-th largest magnitude', () => {
      const d = 48_670;
      const k = keepCount(d, 0.99);
      const v = normalVector(d, 11);
      const step = normalVector(d, 12);
      const hint = new TopkHint();
      for (let t = 0; t < 6; t++) {
        expectHintedExact(v, k, hint);
        const kth = topk(v, k).reduce((m, x) => (x !== 0 ? Math.min(m, Math.abs(x)) : m), Infinity);
        expect(new Float32Array(new Uint32Array([hint.key]).buffer)[0]).toBe(kth);
        for (let j = 0; j < d; j++) v[j]! += 0.05 * step[j]!;
      }
    });

    it('stays exact when the hint is wrong: too high, too low, zero, infinite, or a NaN pattern', () => {
      const cases = [normalVector(20_000, 13), tiedVector(20_000, 3, 14), new Float32Array(20_000), normalVector(3_000, 15)];
      const sparse = new Float32Array(20_000);
      for (let j = 0; j < 20_000; j += 97) sparse[j] = j % 2 === 0 ? -1 : 1;
      cases.push(sparse);
      const keys = [1, 0x3f800000 /* 1.0 */, 0x40a00000 /* 5.0 */, 0x30000000, 0x7f800000, 0x7fc00000, 0x00000001];
      for (const v of cases) {
        for (const k of [1, 37, 200, Math.ceil(v.length / 3)]) {
          for (const key of keys) expectHintedExact(v, k, Object.assign(new TopkHint(), { key }));
        }
      }
    });

    it('breaks ties toward the lower index and handles -0, +0 and Infinity like the cold path', () => {
      const v = tiedVector(30_000, 5, 16);
      for (let j = 0; j < 30_000; j += 7) v[j] = j % 2 === 0 ? -0 : 0;
      v[123] = Infinity;
      v[29_000] = -Infinity;
      const hint = new TopkHint();
      for (const k of [1, 2, 3, 300, 5_000, 12_000, 12_000, 300]) expectHintedExact(v, k, hint);
    });

    it('reports a NaN the hinted pass finds', () => {
      const v = normalVector(20_000, 17);
      const hint = new TopkHint();
      topk(v, 200, undefined, hint);
      v[19_999] = Number.NaN;
      expect(() => topk(v, 200, undefined, hint)).toThrow(/v\[19999\] is NaN/);
    });
  });

  it('agrees with the reference on arbitrary float vectors (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ noNaN: true }), { maxLength: 300 }),
        fc.integer({ min: -2, max: 320 }),
        (values, k) => {
          const v = Float32Array.from(values);
          expect(Array.from(topkIndices(v, k))).toEqual(referenceIndices(v, k));
          const inPlace = Float32Array.from(v);
          topk(inPlace, k, inPlace);
          expect(Array.from(inPlace)).toEqual(Array.from(referenceDense(v, k)));
        },
      ),
      { numRuns: 300 },
    );
  });
});
