/**
 * CIFAR-10 binary batches as bytes: records of 3,073 bytes (the label 0–9, then the R, G and B planes of
 * the 32×32 image, row-major), checked and turned into normalised NHWC images; for files (cifar10.ts) and
 * for a browser's Blob (readCifarChunks) alike. Imports nothing from `node:`.
 */
import type { Dataset } from '../models/types.js';
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_SIZE, IMAGE_WIDTH } from './augment.js';
import { DataError } from './errors.js';
import { LIMIT_OPTIONS, maxContentBytes, resolveLimits, type DataLimits } from './limits.js';

export const CIFAR10_RECORD_BYTES = 1 + IMAGE_SIZE;
const PLANE = IMAGE_HEIGHT * IMAGE_WIDTH;

/** The records of some batch files, kept as read (a batch is 30.7 MB; converted images are 4× that). */
export interface CifarRecords {
  /** each batch's bytes, a whole number of records */
  batches: Uint8Array[];
  /** total records */
  n: number;
}

/** Per-channel pixel statistics on the [0, 1] scale (R, G, B). */
export interface ChannelStats {
  mean: [number, number, number];
  std: [number, number, number];
}

/** The bytes of one batch, checked: a whole number of records, labels 0-9. `name` stands for the path in messages. */
export function checkCifarBatch(bytes: Uint8Array, name: string): Uint8Array {
  if (bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    throw new DataError(
      `${name}: ${bytes.length} bytes is not a whole number of ${CIFAR10_RECORD_BYTES}-byte CIFAR-10 records (truncated, or not a CIFAR-10 binary batch)`,
    );
  }
  for (let r = 0, off = 0; off < bytes.length; r++, off += CIFAR10_RECORD_BYTES) {
    if (bytes[off]! > 9) throw new DataError(`${name}: record ${r} has label ${bytes[off]} (expected 0-9; is this CIFAR-100?)`);
  }
  return bytes;
}

/** One batch from a stream of bytes (a Blob's, in the browser client), refused past limits.maxDecompressedMb. */
export async function readCifarChunks(chunks: AsyncIterable<Uint8Array>, name: string, limits: Partial<DataLimits> = {}): Promise<Uint8Array> {
  const resolved = resolveLimits(limits);
  const max = maxContentBytes(resolved);
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunks) {
    total += chunk.length;
    if (total > max) throw new DataError(`${name}: is larger than ${resolved.maxDecompressedMb} MB, the limit (${LIMIT_OPTIONS.maxDecompressedMb})`);
    parts.push(chunk.slice()); // a stream may reuse its chunk's memory
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return checkCifarBatch(bytes, name);
}

/** The labels of all records, in order. */
export function cifarLabels(records: CifarRecords): Float32Array {
  const y = new Float32Array(records.n);
  let i = 0;
  for (const b of records.batches) for (let off = 0; off < b.length; off += CIFAR10_RECORD_BYTES) y[i++] = b[off]!;
  return y;
}

/** Mean and (population) standard deviation of each channel over every pixel of every record, exact from byte histograms. */
export function channelStats(records: CifarRecords): ChannelStats {
  const hist = new Uint32Array(IMAGE_CHANNELS * 256); // at most 50,000 × 1,024 per bin
  for (const b of records.batches) {
    for (let off = 0; off < b.length; off += CIFAR10_RECORD_BYTES) {
      for (let c = 0; c < IMAGE_CHANNELS; c++) {
        const start = off + 1 + c * PLANE;
        const base = c * 256;
        for (let p = start; p < start + PLANE; p++) hist[base + b[p]!]!++;
      }
    }
  }
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < IMAGE_CHANNELS; c++) {
    let count = 0;
    let s1 = 0;
    let s2 = 0;
    for (let v = 0; v < 256; v++) {
      const k = hist[c * 256 + v]!;
      count += k;
      s1 += k * v;
      s2 += k * v * v;
    }
    const m = s1 / count;
    mean.push(m / 255);
    std.push(Math.sqrt(Math.max(0, s2 / count - m * m)) / 255);
  }
  return { mean: mean as ChannelStats['mean'], std: std as ChannelStats['std'] };
}

/** The records `rows` (indices over all batches) as normalised NHWC images with their labels. */
export function cifarImages(records: CifarRecords, rows: ArrayLike<number>, stats: ChannelStats): Dataset {
  // byte value -> normalised float, per channel (a constant std of 0 leaves the channel centred)
  const lut = new Float32Array(IMAGE_CHANNELS * 256);
  for (let c = 0; c < IMAGE_CHANNELS; c++) {
    const s = stats.std[c]! > 0 ? stats.std[c]! : 1;
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - stats.mean[c]!) / s;
  }
  const starts: number[] = [];
  let total = 0;
  for (const b of records.batches) {
    starts.push(total);
    total += b.length / CIFAR10_RECORD_BYTES;
  }
  const data = new Float32Array(rows.length * IMAGE_SIZE);
  const y = new Float32Array(rows.length);
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k]!;
    if (!(Number.isInteger(r) && r >= 0 && r < total)) throw new RangeError(`cifarImages: row ${r} out of range [0, ${total})`);
    let bi = starts.length - 1;
    while (starts[bi]! > r) bi--;
    const b = records.batches[bi]!;
    const off = (r - starts[bi]!) * CIFAR10_RECORD_BYTES;
    y[k] = b[off]!;
    // planes R, G, B -> interleaved pixels, written in order
    const r0 = off + 1;
    for (let p = 0, o = k * IMAGE_SIZE; p < PLANE; p++, o += 3) {
      data[o] = lut[b[r0 + p]!]!;
      data[o + 1] = lut[256 + b[r0 + PLANE + p]!]!;
      data[o + 2] = lut[512 + b[r0 + 2 * PLANE + p]!]!;
    }
  }
  return { x: { kind: 'dense', rows: rows.length, cols: IMAGE_SIZE, data }, y };
}
