import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataError } from '../data/errors.js';
import { decodeSafetensors, encodeSafetensors, headerLength, MAX_HEADER_BYTES, parseHeader, type Tensor } from './safetensors.js';

const bits = (v: Float32Array): number[] => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

/** A file from a header object and data bytes, the header unpadded. */
function file(header: unknown, data: Uint8Array | number[] = [], lengthOverride?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, lengthOverride ?? json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const decodeError = (bytes: Uint8Array): string => {
  try {
    decodeSafetensors(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return (e as Error).message;
  }
  return 'accepted';
};

describe('encodeSafetensors', () => {
  it('writes the length prefix, a space-padded JSON header aligned to 8 bytes, then little-endian float32 data', () => {
    const bytes = encodeSafetensors([{ name: 'w', shape: [2], data: Float32Array.from([1, -2]) }], { k: 'v' });
    const header = '{"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const padded = 80; // 79 characters and one space
    expect(header.length).toBe(79);
    expect(new DataView(bytes.buffer).getUint32(0, true)).toBe(padded);
    expect(new DataView(bytes.buffer).getUint32(4, true)).toBe(0);
    expect(new TextDecoder().decode(bytes.subarray(8, 8 + padded))).toBe(header.padEnd(padded, ' '));
    // 1.0f = 0x3f800000, -2.0f = 0xc0000000, least significant byte first
    expect(Array.from(bytes.subarray(8 + padded))).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    expect((8 + padded) % 8).toBe(0);
  });

  it('round-trips any float32 tensors bit for bit (−0, subnormals, NaN payloads), with the metadata', () => {
    const tensor = fc.record({
      shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
      seed: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 64, maxLength: 64 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }).filter((s) => s !== '__metadata__'), { minLength: 1, maxLength: 5 }), fc.array(tensor, { minLength: 5, maxLength: 5 }), fc.dictionary(fc.string(), fc.string()), (names, specs, metadata) => {
        const tensors: Tensor[] = names.map((name, i) => {
          const { shape, seed } = specs[i]!;
          const n = shape.reduce((a, b) => a * b, 1);
          return { name, shape, data: new Float32Array(Uint32Array.from({ length: n }, (_, j) => seed[j % 64]!).buffer) };
        });
        const { header, tensors: back } = decodeSafetensors(encodeSafetensors(tensors, metadata));
        expect(header.metadata).toEqual(metadata);
        for (const t of tensors) {
          expect(back.get(t.name)!.shape).toEqual(t.shape);
          expect(bits(back.get(t.name)!.data)).toEqual(bits(t.data));
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('reading hostile files', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);

  it('checks the header length against the limit and the file size before reading it', () => {
    expect(() => headerLength(eight.subarray(0, 4), 4)).toThrow(/too short for a safetensors file/);
    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setUint32(4, 1, true); // 2^32
    expect(() => headerLength(huge, 1e12)).toThrow(`safetensors header length ${2 ** 32} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
    const big = new Uint8Array(8);
    new DataView(big.buffer).setUint32(0, MAX_HEADER_BYTES + 1, true);
    expect(() => headerLength(big, 1e12)).toThrow(/exceeds the limit/);
    new DataView(big.buffer).setUint32(0, 100, true);
    expect(() => headerLength(big, 50)).toThrow('safetensors header length 100 runs past the end of the file (50 bytes)');
  });

  it('refuses each malformed field with one line naming it', () => {
    const cases: [unknown, number[], RegExp][] = [
      ['[1, 2]', [], /does not start with '\{'/],
      ['{"w": ', [], /not valid JSON/],
      [{ w: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, [0, 0, 0, 0], /tensor 'w': dtype "F16", only F32 is supported/],
      [{ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, Array(8).fill(0), /shape must be a list of at most 8 non-negative integers/],
      [{ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, Array(8).fill(0), /data_offsets span 8 bytes, shape \[3\] needs 12/],
      [{ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, Array(4).fill(0), /data_offsets \[0, 8\] are outside the 4 data bytes/],
      [{ w: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, Array(12).fill(0), /starts at data byte 4, expected 0/],
      [{ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, Array(12).fill(0), /the tensors cover 8 data bytes, the file has 12/],
      [{ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, Array(8).fill(0), /tensor 'b' starts at data byte 4, expected 8/],
      [{ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8], extra: 1 } }, Array(8).fill(0), /unknown field 'extra'/],
      [{ __metadata__: { n: 1 }, ...ok }, Array(8).fill(0), /__metadata__ 'n' must be a string/],
      // names from the file are escaped and cut: a message stays one line
      [{ ['a\nb'.repeat(40)]: { dtype: 'I8', shape: [0], data_offsets: [0, 0] } }, [], /^tensor 'a\\nba\\nb.*…': dtype "I8"/],
      [{ w: 5 }, [], /tensor 'w': expected \{dtype, shape, data_offsets\}/],
    ];
    for (const [header, data, message] of cases) {
      const msg = decodeError(file(header, data));
      expect(msg, JSON.stringify(header)).toMatch(message);
      expect(msg).not.toContain('\n');
    }
    const notUtf8 = file('{"a":"xx"}');
    notUtf8[8 + 6] = 0xff;
    expect(decodeError(notUtf8)).toMatch(/not valid UTF-8/);
  });

  it('accepts tensors stored in any data order (as Python writes them), each from its own offsets', () => {
    const data = new Uint8Array(new Float32Array([3, 1, 2]).buffer);
    const { tensors } = decodeSafetensors(file({ b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] }, a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, data));
    expect(Array.from(tensors.get('a')!.data)).toEqual([3]);
    expect(Array.from(tensors.get('b')!.data)).toEqual([1, 2]);
  });

  it('any bytes: a DataError of one line or a decoded file whose tensors lie inside it, fast', () => {
    const valid = encodeSafetensors([{ name: 'w', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, { name: 'b', shape: [3], data: Float32Array.from([7, 8, 9]) }], { spec: '{}' });
    const mutated = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      // flip up to 4 bytes of a valid file, then cut it or extend it
      fc.tuple(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.integer({ min: -20, max: 8 })).map(([flips, cut]) => {
        const b = valid.slice();
        for (const [i, v] of flips) b[i] = v;
        return cut >= 0 ? Uint8Array.from([...b, ...Array(cut).fill(0)]) : b.subarray(0, b.length + cut);
      }),
    );
    fc.assert(
      fc.property(mutated, (bytes) => {
        const t0 = performance.now();
        try {
          const { header, tensors } = decodeSafetensors(bytes);
          for (const t of header.tensors) expect(header.dataStart + t.end).toBeLessThanOrEqual(bytes.length);
          expect([...tensors.values()].reduce((s, t) => s + 4 * t.data.length, 0)).toBe(bytes.length - header.dataStart);
        } catch (e) {
          expect(e).toBeInstanceOf(DataError);
          expect((e as Error).message).not.toContain('\n');
        }
        expect(performance.now() - t0).toBeLessThan(100);
      }),
      { numRuns: 1000 },
    );
  });

  it('parseHeader alone never reads past the declared file size', () => {
    const header = new TextEncoder().encode(JSON.stringify(ok));
    expect(() => parseHeader(header, 8 + header.length + 4)).toThrow(/outside the 4 data bytes/);
    expect(parseHeader(header, 8 + header.length + 8).tensors).toEqual([{ name: 'w', shape: [2], begin: 0, end: 8 }]);
  });
});
