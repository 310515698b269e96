/**
 * Wire encodings of a SparseVector, with exact byte sizes. Everything is little-endian.
 *
 * Every message starts with a 9-byte header: u8 kind id, u32 d, u32 nnz. Bodies:
 *   dense (0)        d f32 values, zeros included
 *   coo (1)          nnz u32 indices, then nnz f32 values
 *   bitmask (2)      ceil(d/8) bytes (bit j of byte j>>3, LSB first, set iff index j is present),
 *                    then nnz f32 values
 *   delta-varint (3) the gaps as LEB128 unsigned varints, then nnz f32 values
 *   rice (4)         one more header byte, the Rice parameter b (0..31); the gaps Golomb-Rice
 *                    coded in a bit stream, padded with zero bits to a whole byte; then nnz f32
 *                    values
 * The gaps are indices[0], then indices[j] - indices[j-1] - 1. A Rice code of gap g is the
 * quotient g >>> b in unary as that many 0 bits and a terminating 1 bit, then the b low bits of g,
 * least significant first; bits fill each byte from its least significant bit.
 *
 * Round trips: decode returns the entries a message carries, and a dense message carries only its
 * nonzero values (exact zeros, either sign, are dropped), so decode(encode(s)) equals s for every
 * kind whenever s has no explicit zero values. The dense header's nnz counts those nonzeros.
 */

import type { SparseVector } from './sparse.js';

export type EncodingName = 'dense' | 'coo' | 'bitmask' | 'delta-varint' | 'rice';

/** In id order: ENCODINGS[id] is the kind with that id. */
export const ENCODINGS: readonly EncodingName[] = ['dense', 'coo', 'bitmask', 'delta-varint', 'rice'];

/** A malformed message; the message says what is wrong and at which byte or entry. */
export class EncodingError extends Error {
  override name = 'EncodingError';
}

const HEADER_BYTES = 9;
const RICE_HEADER_BYTES = HEADER_BYTES + 1;
const MAX_U32 = 0xffffffff;
const MAX_RICE_PARAMETER = 31;

/** Exact byte length of encode(s, kind), in O(nnz) without building the bytes. */
export function encodedSize(kind: EncodingName, s: SparseVector): number {
  const nnz = s.indices.length;
  switch (kind) {
    case 'dense':
      return HEADER_BYTES + 4 * s.d;
    case 'coo':
      return HEADER_BYTES + 8 * nnz;
    case 'bitmask':
      return HEADER_BYTES + Math.ceil(s.d / 8) + 4 * nnz;
    case 'delta-varint':
      return HEADER_BYTES + varintBytes(s.indices) + 4 * nnz;
    case 'rice':
      return RICE_HEADER_BYTES + Math.ceil(riceBits(s.indices, riceParameter(s.indices)) / 8) + 4 * nnz;
    default:
      throw new RangeError(`unknown encoding '${String(kind)}'`);
  }
}

/** The smallest encoding of s; ties go to the earlier kind in ENCODINGS. */
export function chooseEncoding(s: SparseVector): { kind: EncodingName; bytes: number } {
  let best = { kind: ENCODINGS[0]!, bytes: encodedSize(ENCODINGS[0]!, s) };
  for (const kind of ENCODINGS.slice(1)) {
    const bytes = encodedSize(kind, s);
    if (bytes < best.bytes) best = { kind, bytes };
  }
  return best;
}

/** The number of f32 values a message carries: d for dense, nnz otherwise. */
export function floatsOf(kind: EncodingName, s: SparseVector): number {
  return kind === 'dense' ? s.d : s.indices.length;
}

/**
 * log2 C(d, k): the bits needed to name a k-subset of d coordinates, the floor under any support
 * encoding.
 */
export function supportBoundBits(d: number, k: number): number {
  if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`supportBoundBits: d must be a non-negative integer, got ${d}`);
  if (!Number.isSafeInteger(k) || k < 0 || k > d) {
    throw new RangeError(`supportBoundBits: k must be an integer in [0, ${d}], got ${k}`);
  }
  const m = Math.min(k, d - k);
  if (m === 0) return 0;
  return (lgamma(d + 1) - lgamma(m + 1) - lgamma(d - m + 1)) / Math.LN2;
}

/**
 * ln Gamma(x) for x >= 1 by the Lanczos approximation (g = 7, 9 terms): relative error near 1e-15,
 * which holds for large x, where the terms are computed in log form.
 */
function lgamma(x: number): number {
  const z = x - 1;
  let a = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i]! / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

const LANCZOS_G = 7;
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** The message for s; by default the smallest kind. */
export function encode(s: SparseVector, kind?: EncodingName): Uint8Array {
  checkVector(s);
  const k = kind ?? chooseEncoding(s).kind;
  const out = new Uint8Array(encodedSize(k, s));
  const view = new DataView(out.buffer);
  const nnz = s.indices.length;
  view.setUint8(0, ENCODINGS.indexOf(k));
  view.setUint32(1, s.d, true);
  view.setUint32(5, k === 'dense' ? countNonzero(s.values) : nnz, true);
  let at = HEADER_BYTES;
  switch (k) {
    case 'dense':
      for (let j = 0; j < nnz; j++) view.setFloat32(HEADER_BYTES + 4 * s.indices[j]!, s.values[j]!, true);
      return out;
    case 'coo':
      for (let j = 0; j < nnz; j++, at += 4) view.setUint32(at, s.indices[j]!, true);
      break;
    case 'bitmask':
      for (let j = 0; j < nnz; j++) out[at + (s.indices[j]! >>> 3)]! |= 1 << (s.indices[j]! & 7);
      at += Math.ceil(s.d / 8);
      break;
    case 'delta-varint':
      at = writeVarints(out, at, s.indices);
      break;
    case 'rice': {
      const b = riceParameter(s.indices);
      out[at++] = b;
      at = writeRice(out, at, s.indices, b);
      break;
    }
  }
  for (let j = 0; j < nnz; j++, at += 4) view.setFloat32(at, s.values[j]!, true);
  return out;
}

/**
 * Parses and validates a message. Every defect is an EncodingError: unknown kind, truncated header
 * or body, trailing bytes, d != expectedDim, nnz > d, an index out of range or not strictly
 * increasing, a NaN or infinite value, a bitmask whose popcount is not nnz, a bad Rice parameter,
 * a malformed varint, nonzero padding bits.
 */
export function decode(bytes: Uint8Array, expectedDim?: number): { vector: SparseVector; kind: EncodingName } {
  if (bytes.length < HEADER_BYTES) fail(`truncated header: ${bytes.length} bytes, need ${HEADER_BYTES}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = ENCODINGS[bytes[0]!];
  if (kind === undefined) fail(`unknown encoding kind id ${bytes[0]} at byte 0`);
  const d = view.getUint32(1, true);
  const nnz = view.getUint32(5, true);
  if (expectedDim !== undefined && d !== expectedDim) fail(`dimension d = ${d} (bytes 1-4), expected ${expectedDim}`);
  if (nnz > d) fail(`nnz = ${nnz} (bytes 5-8) exceeds d = ${d}`);
  const r = new Reader(bytes, view, kind, d, nnz);
  switch (kind) {
    case 'dense':
      return { vector: r.dense(), kind };
    case 'coo':
      r.cooIndices();
      break;
    case 'bitmask':
      r.bitmaskIndices();
      break;
    case 'delta-varint':
      r.varintIndices();
      break;
    case 'rice':
      r.riceIndices();
      break;
  }
  return { vector: r.valuesAndVector(), kind };
}

function fail(message: string): never {
  throw new EncodingError(`decode: ${message}`);
}

/**
 * Cursor over one message being decoded: the index section, then the values section. Each index
 * reader first bounds nnz by the message length, so a forged header cannot force a huge allocation.
 */
class Reader {
  private at = HEADER_BYTES;
  private indices = new Uint32Array(0);

  constructor(
    private readonly bytes: Uint8Array,
    private readonly view: DataView,
    private readonly kind: EncodingName,
    private readonly d: number,
    private readonly nnz: number,
  ) {}

  dense(): SparseVector {
    this.expectLength(HEADER_BYTES + 4 * this.d);
    let count = 0;
    for (let i = 0; i < this.d; i++) {
      const x = this.value(HEADER_BYTES + 4 * i, i);
      if (x !== 0) count++;
    }
    if (count !== this.nnz) fail(`dense body has ${count} nonzero values, header nnz = ${this.nnz}`);
    const indices = new Uint32Array(count);
    const values = new Float32Array(count);
    for (let i = 0, j = 0; i < this.d; i++) {
      const x = this.view.getFloat32(HEADER_BYTES + 4 * i, true);
      if (x !== 0) {
        indices[j] = i;
        values[j++] = x;
      }
    }
    return { d: this.d, indices, values };
  }

  cooIndices(): void {
    this.expectLength(HEADER_BYTES + 8 * this.nnz);
    this.indices = new Uint32Array(this.nnz);
    for (let j = 0; j < this.nnz; j++, this.at += 4) this.setIndex(j, this.view.getUint32(this.at, true), this.at);
  }

  bitmaskIndices(): void {
    const maskBytes = Math.ceil(this.d / 8);
    this.expectLength(HEADER_BYTES + maskBytes + 4 * this.nnz);
    let count = 0;
    for (let i = 0; i < maskBytes; i++) count += popcount8(this.bytes[this.at + i]!);
    if (count !== this.nnz) fail(`bitmask has ${count} bits set, header nnz = ${this.nnz}`);
    this.indices = new Uint32Array(this.nnz);
    let j = 0;
    for (let i = 0; i < maskBytes; i++) {
      let x = this.bytes[this.at + i]!;
      while (x !== 0) {
        const bit = 31 - Math.clz32(x & -x);
        const index = 8 * i + bit;
        if (index >= this.d) fail(`bitmask sets bit ${index} (byte ${this.at + i}) at or beyond d = ${this.d}`);
        this.indices[j++] = index;
        x &= x - 1;
      }
    }
    this.at += maskBytes;
  }

  varintIndices(): void {
    this.expectAtLeast(HEADER_BYTES + 5 * this.nnz, 'each entry needs at least 1 varint byte and 4 value bytes');
    this.indices = new Uint32Array(this.nnz);
    const end = this.bytes.length - 4 * this.nnz;
    let prev = -1;
    for (let j = 0; j < this.nnz; j++) {
      const start = this.at;
      let gap = 0;
      for (let scale = 1; ; scale *= 128) {
        if (this.at >= end) fail(`truncated varint for entry ${j} at byte ${start}`);
        const byte = this.bytes[this.at++]!;
        gap += (byte & 0x7f) * scale;
        if (byte < 0x80) {
          if (byte === 0 && scale > 1) fail(`non-minimal varint for entry ${j} at byte ${start}`);
          break;
        }
        if (scale === 2 ** 28) fail(`varint longer than 5 bytes for entry ${j} at byte ${start}`);
      }
      if (gap > MAX_U32) fail(`varint ${gap} exceeds 32 bits for entry ${j} at byte ${start}`);
      prev = this.setIndex(j, prev + 1 + gap, start);
    }
  }

  riceIndices(): void {
    if (this.bytes.length < RICE_HEADER_BYTES) {
      fail(`truncated header: ${this.bytes.length} bytes, need ${RICE_HEADER_BYTES} for rice`);
    }
    this.expectAtLeast(RICE_HEADER_BYTES + 4 * this.nnz, 'each entry needs 4 value bytes');
    this.indices = new Uint32Array(this.nnz);
    const b = this.bytes[this.at]!;
    if (b > MAX_RICE_PARAMETER) fail(`rice parameter ${b} at byte ${HEADER_BYTES} out of range 0..${MAX_RICE_PARAMETER}`);
    const end = this.bytes.length - 4 * this.nnz; // the bit stream cannot reach into the values
    const scale = 2 ** b;
    let p = this.at + 1;
    let bit = 0;
    let prev = -1;
    for (let j = 0; j < this.nnz; j++) {
      const start = p;
      // Unary quotient: count 0 bits up to the terminating 1.
      let q = 0;
      if (p >= end) fail(`truncated rice stream at entry ${j} (byte ${p})`);
      let x = this.bytes[p]! >>> bit;
      while (x === 0) {
        q += 8 - bit;
        bit = 0;
        if (++p >= end) fail(`truncated rice stream at entry ${j} (byte ${p})`);
        x = this.bytes[p]!;
      }
      const zeros = 31 - Math.clz32(x & -x);
      q += zeros;
      bit += zeros + 1;
      // Remainder: b bits, least significant first, possibly spanning bytes. rem < 2^b <= 2^31.
      let rem = 0;
      for (let got = 0; got < b; ) {
        if (bit === 8) {
          bit = 0;
          p++;
        }
        if (p >= end) fail(`truncated rice stream at entry ${j} (byte ${p})`);
        const take = Math.min(8 - bit, b - got);
        rem |= ((this.bytes[p]! >>> bit) & ((1 << take) - 1)) << got;
        got += take;
        bit += take;
      }
      if (bit === 8) {
        bit = 0;
        p++;
      }
      prev = this.setIndex(j, prev + 1 + q * scale + rem, start);
    }
    if (bit > 0) {
      if (this.bytes[p]! >>> bit !== 0) fail(`nonzero padding bits in rice stream at byte ${p}`);
      p++;
    }
    this.at = p;
  }

  /** Reads the nnz values that end every sparse message and returns the vector. */
  valuesAndVector(): SparseVector {
    this.expectLength(this.at + 4 * this.nnz);
    const values = new Float32Array(this.nnz);
    for (let j = 0; j < this.nnz; j++, this.at += 4) values[j] = this.value(this.at, this.indices[j]!);
    return { d: this.d, indices: this.indices, values };
  }

  private expectLength(total: number): void {
    if (this.bytes.length < total) fail(`truncated ${this.kind} body: ${this.bytes.length} bytes, need ${total}`);
    if (this.bytes.length > total) {
      fail(`${this.bytes.length - total} trailing bytes after the ${total}-byte ${this.kind} message`);
    }
  }

  private expectAtLeast(total: number, why: string): void {
    if (this.bytes.length < total) {
      fail(`truncated ${this.kind} body: ${this.bytes.length} bytes for nnz = ${this.nnz}, need ${total}: ${why}`);
    }
  }

  /** Stores index j after checking range and order; returns it. */
  private setIndex(j: number, index: number, byte: number): number {
    if (index >= this.d) fail(`index ${index} of entry ${j} (byte ${byte}) is out of range for d = ${this.d}`);
    if (j > 0 && index <= this.indices[j - 1]!) {
      const what = index === this.indices[j - 1] ? 'duplicate' : 'not increasing';
      fail(`indices ${what}: entry ${j} (byte ${byte}) has index ${index} after ${this.indices[j - 1]}`);
    }
    this.indices[j] = index;
    return index;
  }

  private value(byte: number, index: number): number {
    const x = this.view.getFloat32(byte, true);
    if (!Number.isFinite(x)) fail(`value ${x} at index ${index} (byte ${byte}) is not finite`);
    return x;
  }
}

/** Throws a RangeError unless s is a valid sparse vector that fits the u32 header fields. */
function checkVector(s: SparseVector): void {
  const { d, indices, values } = s;
  if (!Number.isSafeInteger(d) || d < 0 || d > MAX_U32) {
    throw new RangeError(`encode: d must be an integer in [0, 2^32), got ${d}`);
  }
  if (indices.length !== values.length) {
    throw new RangeError(`encode: ${indices.length} indices but ${values.length} values`);
  }
  for (let j = 0; j < indices.length; j++) {
    if (indices[j]! >= d) throw new RangeError(`encode: index ${indices[j]} of entry ${j} is out of range for d = ${d}`);
    if (j > 0 && indices[j]! <= indices[j - 1]!) throw new RangeError(`encode: indices not strictly increasing at entry ${j}`);
    if (!Number.isFinite(values[j]!)) throw new RangeError(`encode: value ${values[j]} at index ${indices[j]} is not finite`);
  }
}

function countNonzero(values: Float32Array): number {
  let c = 0;
  for (let j = 0; j < values.length; j++) if (values[j] !== 0) c++;
  return c;
}

function popcount8(x: number): number {
  x = x - ((x >>> 1) & 0x55);
  x = (x & 0x33) + ((x >>> 2) & 0x33);
  return (x + (x >>> 4)) & 0x0f;
}

function varintLength(x: number): number {
  return x < 2 ** 7 ? 1 : x < 2 ** 14 ? 2 : x < 2 ** 21 ? 3 : x < 2 ** 28 ? 4 : 5;
}

function varintBytes(indices: Uint32Array): number {
  let total = 0;
  let prev = -1;
  for (let j = 0; j < indices.length; j++) {
    total += varintLength(indices[j]! - prev - 1);
    prev = indices[j]!;
  }
  return total;
}

function writeVarints(out: Uint8Array, at: number, indices: Uint32Array): number {
  let prev = -1;
  for (let j = 0; j < indices.length; j++) {
    let gap = indices[j]! - prev - 1;
    prev = indices[j]!;
    while (gap >= 0x80) {
      out[at++] = (gap & 0x7f) | 0x80;
      gap = Math.floor(gap / 128); // gap may exceed 2^31, beyond the reach of >>> on int32
    }
    out[at++] = gap;
  }
  return at;
}

/** Bits of the Rice code of all gaps with parameter b: per gap, (gap >>> b) + 1 + b. */
function riceBits(indices: Uint32Array, b: number): number {
  let total = indices.length * (1 + b);
  let prev = -1;
  for (let j = 0; j < indices.length; j++) {
    total += (indices[j]! - prev - 1) >>> b;
    prev = indices[j]!;
  }
  return total;
}

/**
 * The Rice parameter with the fewest bits (the smallest such b on ties). riceBits is convex in b
 * (its increments nnz - sum ceil((gap >>> b) / 2) never decrease), so walking downhill from the
 * classic estimate log2(mean gap * ln 2) finds the global minimum in a few evaluations.
 */
function riceParameter(indices: Uint32Array): number {
  const n = indices.length;
  if (n === 0) return 0;
  const meanGap = (indices[n - 1]! + 1 - n) / n;
  let b = Math.min(MAX_RICE_PARAMETER, Math.max(0, Math.round(Math.log2(Math.max(meanGap * Math.LN2, 1)))));
  let bits = riceBits(indices, b);
  while (b > 0) {
    const lower = riceBits(indices, b - 1);
    if (lower > bits) break;
    b--;
    bits = lower;
  }
  while (b < MAX_RICE_PARAMETER) {
    const higher = riceBits(indices, b + 1);
    if (higher >= bits) break;
    b++;
    bits = higher;
  }
  return b;
}

/** Writes the Rice-coded gaps from byte `at` into a zeroed buffer; returns the byte after the padding. */
function writeRice(out: Uint8Array, at: number, indices: Uint32Array, b: number): number {
  const scale = 2 ** b;
  let p = at;
  let bit = 0; // next free bit of out[p]
  let prev = -1;
  for (let j = 0; j < indices.length; j++) {
    const gap = indices[j]! - prev - 1;
    prev = indices[j]!;
    const q = gap >>> b;
    // q zero bits (already zero), then the terminating 1.
    const skip = bit + q;
    p += Math.floor(skip / 8);
    bit = skip % 8;
    out[p]! |= 1 << bit;
    bit++;
    // b low bits of the gap, least significant first; rem < 2^b <= 2^31, so >>> is safe.
    let rem = gap - q * scale;
    for (let left = b; left > 0; ) {
      if (bit === 8) {
        bit = 0;
        p++;
      }
      const take = Math.min(8 - bit, left);
      out[p]! |= (rem & ((1 << take) - 1)) << bit;
      rem >>>= take;
      left -= take;
      bit += take;
    }
    if (bit === 8) {
      bit = 0;
      p++;
    }
  }
  return bit > 0 ? p + 1 : p;
}
