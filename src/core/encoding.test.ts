import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  chooseEncoding,
  decode,
  encode,
  encodedSize,
  ENCODINGS,
  EncodingError,
  floatsOf,
  supportBoundBits,
  type EncodingName,
} from './encoding.js';
import type { SparseVector } from './sparse.js';

function sv(d: number, indices: number[], values: number[]): SparseVector {
  return { d, indices: Uint32Array.from(indices), values: Float32Array.from(values) };
}

function plain(s: SparseVector): { d: number; indices: number[]; values: number[] } {
  return { d: s.d, indices: Array.from(s.indices), values: Array.from(s.values) };
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

function fromHex(text: string): Uint8Array {
  return Uint8Array.from(text.split(/\s+/).filter(Boolean), (h) => parseInt(h, 16));
}

function expectDecodeError(bytes: Uint8Array, pattern: RegExp, expectedDim?: number): void {
  let caught: unknown;
  try {
    decode(bytes, expectedDim);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(EncodingError);
  expect((caught as Error).name).toBe('EncodingError');
  expect((caught as Error).message).toMatch(pattern);
}

/** Random sparse vectors with nonzero finite values (so every kind round-trips exactly). */
const sparseVectors = fc
  .integer({ min: 0, max: 3000 })
  .chain((d) =>
    fc.tuple(
      fc.constant(d),
      d === 0 ? fc.constant([] as number[]) : fc.uniqueArray(fc.integer({ min: 0, max: d - 1 }), { maxLength: Math.min(d, 400) }),
    ),
  )
  .chain(([d, idx]) =>
    fc
      .array(fc.float({ noNaN: true, noDefaultInfinity: true }).filter((x) => x !== 0), {
        minLength: idx.length,
        maxLength: idx.length,
      })
      .map((values) => sv(d, [...idx].sort((a, b) => a - b), values)),
  );

// d = 10, indices [1, 4, 5], values [1.5, -2, 0.25]; little-endian f32: 1.5 = 3fc00000,
// -2 = c0000000, 0.25 = 3e800000. Header: kind, d = 0a000000, nnz = 03000000.
const tiny = sv(10, [1, 4, 5], [1.5, -2, 0.25]);
const VALUES = '00 00 c0 3f 00 00 00 c0 00 00 80 3e';
const tinyBytes: Record<EncodingName, string> = {
  dense:
    '00 0a 00 00 00 03 00 00 00  00 00 00 00 00 00 c0 3f 00 00 00 00 00 00 00 00 00 00 00 c0 00 00 80 3e ' +
    '00 '.repeat(16),
  coo: `01 0a 00 00 00 03 00 00 00  01 00 00 00 04 00 00 00 05 00 00 00  ${VALUES}`,
  // bits 1, 4, 5 of byte 0 = 0x32; byte 1 holds bits 8, 9 (absent)
  bitmask: `02 0a 00 00 00 03 00 00 00  32 00  ${VALUES}`,
  // gaps 1, 2, 0
  'delta-varint': `03 0a 00 00 00 03 00 00 00  01 02 00  ${VALUES}`,
  // b = 0 (6 bits; b = 1 needs 7): unary 01, 001, 1 -> bits 1, 4, 5 set -> 0x32
  rice: `04 0a 00 00 00 03 00 00 00  00  32  ${VALUES}`,
};

describe('encodings of a hand-checked example', () => {
  for (const kind of ENCODINGS) {
    it(`${kind}: exact bytes, size and round trip`, () => {
      const bytes = encode(tiny, kind);
      expect(hex(bytes)).toBe(hex(fromHex(tinyBytes[kind])));
      expect(encodedSize(kind, tiny)).toBe(bytes.length);
      const back = decode(bytes, 10);
      expect(back.kind).toBe(kind);
      expect(plain(back.vector)).toEqual(plain(tiny));
    });
  }

  it('has the expected sizes, and the tie between bitmask and rice goes to bitmask', () => {
    expect(ENCODINGS.map((k) => encodedSize(k, tiny))).toEqual([49, 33, 23, 24, 23]);
    expect(chooseEncoding(tiny)).toEqual({ kind: 'bitmask', bytes: 23 });
    expect(hex(encode(tiny))).toBe(hex(encode(tiny, 'bitmask')));
  });

  it('codes a Rice stream with b > 0 as specified', () => {
    // d = 100, gaps 10, 19, 0. Bits per b: b=1: 20, b=2: 15, b=3: 15, b=4: 16 -> b = 2 (smallest).
    // 10 = q 2, r 2: 0 0 1 | 0 1;  19 = q 4, r 3: 0 0 0 0 1 | 1 1;  0 = q 0, r 0: 1 | 0 0.
    // Bits 0..14: 0010 1000 | 0111 1000 -> bytes 0x14, 0x1e.
    const s = sv(100, [10, 30, 31], [1, 2, 3]);
    const bytes = encode(s, 'rice');
    expect(hex(bytes.subarray(0, 12))).toBe('04 64 00 00 00 03 00 00 00 02 14 1e');
    expect(bytes.length).toBe(24);
    expect(plain(decode(bytes).vector)).toEqual(plain(s));
  });

  it('reports floats carried per kind', () => {
    expect(ENCODINGS.map((k) => floatsOf(k, tiny))).toEqual([10, 3, 3, 3, 3]);
  });
});

describe('round trips and sizes (property)', () => {
  it('decode(encode(s, kind)) equals s and the size is exact, for every kind', () => {
    fc.assert(
      fc.property(sparseVectors, (s) => {
        for (const kind of ENCODINGS) {
          const bytes = encode(s, kind);
          expect(bytes.length).toBe(encodedSize(kind, s));
          const back = decode(bytes, s.d);
          expect(back.kind).toBe(kind);
          expect(plain(back.vector)).toEqual(plain(s));
        }
      }),
      { numRuns: 150 },
    );
  });

  it('round-trips huge dimensions with few entries (coo, delta-varint, rice)', () => {
    const wide = fc
      .tuple(
        fc.integer({ min: 1, max: 2 ** 32 - 1 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { maxLength: 20 }),
      )
      .map(([d, fractions]) => {
        const idx = [...new Set(fractions.map((f) => Math.floor(f * d)))].sort((x, y) => x - y);
        return sv(d, idx, idx.map((_, j) => j + 1));
      });
    fc.assert(
      fc.property(wide, (s) => {
        for (const kind of ['coo', 'delta-varint', 'rice'] as const) {
          const bytes = encode(s, kind);
          expect(bytes.length).toBe(encodedSize(kind, s));
          expect(plain(decode(bytes, s.d).vector)).toEqual(plain(s));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('chooseEncoding picks the smallest, earliest on ties, and encode defaults to it', () => {
    fc.assert(
      fc.property(sparseVectors, (s) => {
        const sizes = ENCODINGS.map((k) => encodedSize(k, s));
        const min = Math.min(...sizes);
        const chosen = chooseEncoding(s);
        expect(chosen).toEqual({ kind: ENCODINGS[sizes.indexOf(min)], bytes: min });
        expect(encode(s).length).toBe(min);
        expect(decode(encode(s)).kind).toBe(chosen.kind);
      }),
      { numRuns: 150 },
    );
  });

  it('the Rice parameter minimises the size over all 32 choices', () => {
    fc.assert(
      fc.property(sparseVectors, (s) => {
        const bytes = encode(s, 'rice');
        const chosenB = bytes[9]!;
        const bitsFor = (b: number): number => {
          let total = 0;
          let prev = -1;
          for (const i of s.indices) {
            total += Math.floor((i - prev - 1) / 2 ** b) + 1 + b;
            prev = i;
          }
          return total;
        };
        const all = Array.from({ length: 32 }, (_, b) => bitsFor(b));
        expect(bitsFor(chosenB)).toBe(Math.min(...all));
        expect(chosenB).toBe(all.indexOf(Math.min(...all)));
      }),
      { numRuns: 100 },
    );
  });
});

describe('edge cases', () => {
  it('d = 0', () => {
    const s = sv(0, [], []);
    expect(ENCODINGS.map((k) => encodedSize(k, s))).toEqual([9, 9, 9, 9, 10]);
    expect(chooseEncoding(s)).toEqual({ kind: 'dense', bytes: 9 });
    for (const kind of ENCODINGS) expect(plain(decode(encode(s, kind), 0).vector)).toEqual(plain(s));
  });

  it('nnz = 0', () => {
    const s = sv(100, [], []);
    expect(ENCODINGS.map((k) => encodedSize(k, s))).toEqual([409, 9, 22, 9, 10]);
    expect(chooseEncoding(s).kind).toBe('coo');
    for (const kind of ENCODINGS) expect(plain(decode(encode(s, kind)).vector)).toEqual(plain(s));
  });

  it('a full vector prefers dense', () => {
    const s = sv(5, [0, 1, 2, 3, 4], [1, 2, 3, 4, 5]);
    expect(chooseEncoding(s).kind).toBe('dense');
  });

  it('large gaps: varints of 4 and 5 bytes, and the largest d', () => {
    const mid = sv(10_000_000, [2 ** 21 + 5], [1]);
    expect(encodedSize('delta-varint', mid)).toBe(9 + 4 + 4);
    expect(hex(encode(mid, 'delta-varint').subarray(9, 13))).toBe('85 80 80 01');
    const d = 2 ** 32 - 1;
    const s = sv(d, [0, 5, 2 ** 30, d - 1], [1, -1, 2, -2]);
    // gaps 0, 4, 2^30 - 6, 2^32 - 2^30 - 2: 1 + 1 + 5 + 5 bytes
    expect(encodedSize('delta-varint', s)).toBe(9 + 12 + 16);
    for (const kind of ['coo', 'delta-varint', 'rice'] as const) {
      const bytes = encode(s, kind);
      expect(bytes.length).toBe(encodedSize(kind, s));
      expect(plain(decode(bytes, d).vector)).toEqual(plain(s));
    }
    expect(encodedSize('dense', s)).toBe(9 + 4 * d);
    expect(chooseEncoding(s)).toEqual({ kind: 'delta-varint', bytes: 37 }); // coo 41, rice 42
  });

  it('a dense message drops explicit zeros (either sign) and counts only nonzeros in nnz', () => {
    const s = sv(6, [0, 2, 3, 5], [0, 4, -0, -1]);
    const bytes = encode(s, 'dense');
    expect(new DataView(bytes.buffer).getUint32(5, true)).toBe(2);
    expect(plain(decode(bytes).vector)).toEqual(plain(sv(6, [2, 5], [4, -1])));
    // the sparse kinds keep the explicit zeros
    expect(plain(decode(encode(s, 'coo')).vector)).toEqual(plain(s));
  });

  it('decodes from a Uint8Array view at an odd offset', () => {
    const bytes = encode(tiny, 'coo');
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    expect(plain(decode(padded.subarray(3), 10).vector)).toEqual(plain(tiny));
  });

  it('encode rejects invalid vectors and unknown kinds', () => {
    expect(() => encode(sv(10, [3, 3], [1, 2]))).toThrow(/strictly increasing/);
    expect(() => encode(sv(10, [4, 2], [1, 2]))).toThrow(RangeError);
    expect(() => encode(sv(10, [10], [1]))).toThrow(/out of range/);
    expect(() => encode(sv(10, [1], [Number.NaN]))).toThrow(/not finite/);
    expect(() => encode(sv(10, [1, 2], [1]))).toThrow(/2 indices but 1 values/);
    expect(() => encode(sv(2 ** 32, [], []))).toThrow(RangeError);
    expect(() => encode(tiny, 'zip' as EncodingName)).toThrow(/unknown encoding/);
  });
});

describe('decode errors', () => {
  const coo = (): Uint8Array => encode(tiny, 'coo');
  const withByte = (bytes: Uint8Array, at: number, value: number): Uint8Array => {
    const copy = Uint8Array.from(bytes);
    copy[at] = value;
    return copy;
  };
  const withU32 = (bytes: Uint8Array, at: number, value: number): Uint8Array => {
    const copy = Uint8Array.from(bytes);
    new DataView(copy.buffer).setUint32(at, value, true);
    return copy;
  };
  const withF32 = (bytes: Uint8Array, at: number, value: number): Uint8Array => {
    const copy = Uint8Array.from(bytes);
    new DataView(copy.buffer).setFloat32(at, value, true);
    return copy;
  };

  it('truncated header', () => {
    expectDecodeError(new Uint8Array(5), /truncated header: 5 bytes, need 9/);
    expectDecodeError(encode(sv(10, [], []), 'rice').subarray(0, 9), /truncated header: 9 bytes, need 10 for rice/);
  });

  it('unknown kind', () => {
    expectDecodeError(withByte(coo(), 0, 5), /unknown encoding kind id 5 at byte 0/);
  });

  it('wrong dimension and nnz > d', () => {
    expectDecodeError(coo(), /dimension d = 10 \(bytes 1-4\), expected 12/, 12);
    expectDecodeError(withU32(coo(), 5, 11), /nnz = 11 \(bytes 5-8\) exceeds d = 10/);
  });

  it('truncated body and trailing bytes, for every kind', () => {
    for (const kind of ENCODINGS) {
      const bytes = encode(tiny, kind);
      expectDecodeError(bytes.subarray(0, bytes.length - 1), /truncated/);
      const longer = new Uint8Array(bytes.length + 2);
      longer.set(bytes);
      expectDecodeError(longer, /2 trailing bytes|truncated/);
    }
    const longer = new Uint8Array(34);
    longer.set(coo());
    expectDecodeError(longer, /1 trailing bytes after the 33-byte coo message/);
    expectDecodeError(coo().subarray(0, 30), /truncated coo body: 30 bytes, need 33/);
  });

  it('a forged nnz does not allocate before the length check', () => {
    const forged = withU32(withU32(coo(), 1, 0xffffffff), 5, 0xfffffff0);
    expectDecodeError(forged, /truncated coo body/);
    expectDecodeError(withByte(forged, 0, 3), /truncated delta-varint body/);
    expectDecodeError(withByte(forged, 0, 4), /truncated rice body/);
  });

  it('coo: index out of range, duplicate, not increasing', () => {
    expectDecodeError(withU32(coo(), 17, 10), /index 10 of entry 2 \(byte 17\) is out of range for d = 10/);
    expectDecodeError(withU32(coo(), 13, 1), /indices duplicate: entry 1 \(byte 13\) has index 1 after 1/);
    expectDecodeError(withU32(coo(), 13, 0), /indices not increasing: entry 1 \(byte 13\) has index 0 after 1/);
  });

  it('NaN and infinite values name their index', () => {
    expectDecodeError(withF32(coo(), 25, Number.NaN), /value NaN at index 4 \(byte 25\) is not finite/);
    expectDecodeError(withF32(encode(tiny, 'rice'), 15, -Infinity), /value -Infinity at index 4 \(byte 15\)/);
    expectDecodeError(withF32(encode(tiny, 'dense'), 9 + 4 * 7, Infinity), /value Infinity at index 7 \(byte 37\)/);
  });

  it('dense: header nnz must count the nonzero values', () => {
    expectDecodeError(withU32(encode(tiny, 'dense'), 5, 2), /dense body has 3 nonzero values, header nnz = 2/);
  });

  it('bitmask: popcount and bits beyond d', () => {
    const bytes = encode(tiny, 'bitmask');
    expectDecodeError(withByte(bytes, 9, 0x33), /bitmask has 4 bits set, header nnz = 3/);
    // move index 5 to bit 15 (byte 10, bit 7): popcount still 3
    expectDecodeError(withByte(withByte(bytes, 9, 0x12), 10, 0x80), /bitmask sets bit 15 \(byte 10\) at or beyond d = 10/);
  });

  it('delta-varint: out of range, truncated, overlong, non-minimal', () => {
    const bytes = encode(tiny, 'delta-varint');
    expectDecodeError(withByte(bytes, 11, 5), /index 10 of entry 2 \(byte 11\) is out of range/);
    // a continuation bit on the last gap runs into the values section
    expectDecodeError(withByte(bytes, 11, 0x80), /truncated varint for entry 2 at byte 11/);
    const big = sv(2 ** 32 - 1, [2 ** 31], [1]);
    const five = encode(big, 'delta-varint'); // gap 2^31: 80 80 80 80 08
    expect(hex(five.subarray(9, 14))).toBe('80 80 80 80 08');
    expectDecodeError(withByte(five, 13, 0x1f), /varint \d+ exceeds 32 bits for entry 0 at byte 9/);
    expectDecodeError(withByte(five, 13, 0x88), /varint longer than 5 bytes for entry 0 at byte 9/);
    const overlong = fromHex('03 0a 00 00 00 01 00 00 00 81 00 00 00 80 3f');
    expectDecodeError(overlong, /non-minimal varint for entry 0 at byte 9/);
  });

  it('rice: parameter out of range, padding, overflowing gaps, truncated stream', () => {
    const bytes = encode(tiny, 'rice');
    expectDecodeError(withByte(bytes, 9, 32), /rice parameter 32 at byte 9 out of range 0..31/);
    expectDecodeError(withByte(bytes, 10, 0x72), /nonzero padding bits in rice stream at byte 10/);
    // with b = 3, bits 1, 4, 5 decode as gaps exceeding d
    expectDecodeError(withByte(bytes, 9, 3), /out of range for d = 10/);
    // no terminating 1 bit before the values
    expectDecodeError(withByte(bytes, 10, 0x00), /truncated rice stream at entry 0/);
  });

  it('is an EncodingError, not a bare Error', () => {
    expect(new EncodingError('x')).toBeInstanceOf(Error);
    expect(new EncodingError('x').name).toBe('EncodingError');
  });
});

describe('supportBoundBits', () => {
  function binomial(n: number, k: number): bigint {
    let r = 1n;
    for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
    return r;
  }
  function log2Big(x: bigint): number {
    const bits = x.toString(2).length;
    const shift = Math.max(0, bits - 60);
    return shift + Math.log2(Number(x >> BigInt(shift)));
  }

  it('matches exact binomials', () => {
    expect(supportBoundBits(10, 3)).toBeCloseTo(Math.log2(120), 10);
    expect(supportBoundBits(52, 5)).toBeCloseTo(Math.log2(2598960), 10);
    for (const [n, k] of [
      [1, 1],
      [20, 10],
      [100, 50],
      [1000, 7],
      [5000, 1234],
      [100_000, 1000],
    ] as const) {
      const exact = log2Big(binomial(n, k));
      expect(Math.abs(supportBoundBits(n, k) - exact)).toBeLessThan(1e-9 * Math.max(1, exact));
    }
  });

  it('is 0 at k = 0 and k = d, symmetric, and rejects bad arguments', () => {
    expect(supportBoundBits(0, 0)).toBe(0);
    expect(supportBoundBits(1000, 0)).toBe(0);
    expect(supportBoundBits(1000, 1000)).toBe(0);
    expect(supportBoundBits(1000, 1)).toBeCloseTo(Math.log2(1000), 9);
    expect(supportBoundBits(1000, 990)).toBeCloseTo(supportBoundBits(1000, 10), 9);
    expect(() => supportBoundBits(10, 11)).toThrow(RangeError);
    expect(() => supportBoundBits(10, -1)).toThrow(RangeError);
    expect(() => supportBoundBits(10.5, 1)).toThrow(RangeError);
  });

  it('stays accurate at large d (against Stirling with the 1/(12n) terms)', () => {
    // ln n! = n ln n - n + ln(2 pi n)/2 + 1/(12 n) - 1/(360 n^3), exact to ~1e-20 for these n
    const lnFact = (n: number): number =>
      n * Math.log(n) - n + 0.5 * Math.log(2 * Math.PI * n) + 1 / (12 * n) - 1 / (360 * n ** 3);
    const d = 11_173_962;
    const k = 1_117_397;
    const expected = (lnFact(d) - lnFact(k) - lnFact(d - k)) / Math.LN2;
    expect(Math.abs(supportBoundBits(d, k) - expected)).toBeLessThan(1e-4);
    // about d * H(0.1) bits, a little less
    expect(supportBoundBits(d, k) / d).toBeGreaterThan(0.4689);
    expect(supportBoundBits(d, k) / d).toBeLessThan(0.4691);
  });
});
