/**
 * CIFAR-10 from Krizhevsky's binary batches (data_batch_1..5.bin, test_batch.bin; plain or gzip).
 * Each record is 3,073 bytes: the label (0–9), then the R, G and B planes of the 32×32 image, row-major.
 * Images become rows of 3,072 float32 in NHWC order, (h·32 + w)·3 + c, each channel normalised with
 * the mean and standard deviation of the training set's pixels.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../models/types.js';
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_SIZE, IMAGE_WIDTH } from './augment.js';
import { DataError } from './errors.js';
import { readMaybeGzip } from './files.js';
import { resolveLimits, type DataLimits } from './limits.js';
import { describePartition, partition, type PartitionScheme } from './partition.js';
import { sizeSummary } from './rows.js';
import type { FederatedDataset } from './types.js';

export const CIFAR10_RECORD_BYTES = 1 + IMAGE_SIZE;
export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR10_TEST_FILE = 'test_batch.bin';
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
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

/** Reads one batch file (gzip detected by its magic bytes) and checks its length and labels. */
export function readCifarBatch(path: string, limits: Partial<DataLimits> = {}): Uint8Array {
  const bytes = readMaybeGzip(path, resolveLimits(limits));
  if (bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    throw new DataError(
      `${path}: ${bytes.length} bytes is not a whole number of ${CIFAR10_RECORD_BYTES}-byte CIFAR-10 records (truncated, or not a CIFAR-10 binary batch)`,
    );
  }
  for (let r = 0, off = 0; off < bytes.length; r++, off += CIFAR10_RECORD_BYTES) {
    if (bytes[off]! > 9) throw new DataError(`${path}: record ${r} has label ${bytes[off]} (expected 0-9; is this CIFAR-100?)`);
  }
  return bytes;
}

export function readCifarBatches(paths: string[], limits: Partial<DataLimits> = {}): CifarRecords {
  const batches = paths.map((p) => readCifarBatch(p, limits));
  return { batches, n: batches.reduce((s, b) => s + b.length / CIFAR10_RECORD_BYTES, 0) };
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

/** DIR/NAME, or DIR/NAME.gz; a missing file is a DataError that says how to get the data. */
export function cifarFile(dir: string, name: string): string {
  for (const path of [join(dir, name), join(dir, `${name}.gz`)]) if (existsSync(path)) return path;
  throw new DataError(`cifar10: no ${name} (or ${name}.gz) in ${dir}; run \`sparse-proxskip data fetch cifar10\` or pass --data-dir DIR with DIR/cifar10`);
}

export interface Cifar10Options {
  clients: number;
  partition: PartitionScheme;
  seed: number;
  /** keep at most this many samples per client (the first of each client's rows), for quick runs */
  maxSamples?: number;
  /** keep only the first this many of the 10,000 test images (the test batch is in random class order) */
  testSamples?: number;
  /**
   * hold out the last this many training images as the test set (for tuning, so the test set is never
   * looked at); the clients split the rest. The test batch is then not read. The normalisation
   * statistics still come from all training images (no label enters them).
   */
  validation?: number;
  /** decompressed size of a batch (defaults: DEFAULT_LIMITS) */
  limits?: Partial<DataLimits>;
}

/**
 * CIFAR-10 from `dir` (the folder with the batches): the 50,000 training images split over the clients
 * by `partition` (contiguous, iid, or Dirichlet label skew), the 10,000 test images as the test set.
 */
export function loadCifar10(dir: string, opts: Cifar10Options): { dataset: FederatedDataset; warnings: string[] } {
  const trainPaths = CIFAR10_TRAIN_FILES.map((f) => cifarFile(dir, f));
  const train = readCifarBatches(trainPaths, opts.limits);
  const held = Math.min(opts.validation ?? 0, train.n - 1);
  const stats = channelStats(train);
  // Split a column of row indices (exact in float32 below 2^24), so only the rows kept are ever converted to floats.
  const kept = train.n - held;
  const index: Dataset = { x: { kind: 'dense', rows: kept, cols: 1, data: Float32Array.from({ length: kept }, (_, i) => i) }, y: cifarLabels(train).subarray(0, kept) };
  const split = partition(index, opts.clients, opts.partition, opts.seed, 'multiclass');
  const clients = split.clients.map((c) => {
    const rows = c.x.kind === 'dense' ? c.x.data : new Float32Array(0);
    return cifarImages(train, opts.maxSamples === undefined ? rows : rows.subarray(0, opts.maxSamples), stats);
  });
  const testSet =
    held > 0
      ? cifarImages(train, Array.from({ length: held }, (_, i) => kept + i), stats)
      : (() => {
          const testRecords = readCifarBatches([cifarFile(dir, CIFAR10_TEST_FILE)], opts.limits);
          return cifarImages(testRecords, Array.from({ length: Math.min(testRecords.n, opts.testSamples ?? testRecords.n) }, (_, i) => i), stats);
        })();
  return {
    dataset: {
      name: 'cifar10',
      task: 'multiclass',
      nFeatures: IMAGE_SIZE,
      nClasses: CIFAR10_CLASSES.length,
      clients,
      test: testSet,
      meta: {
        source: dir,
        layout: 'NHWC 32x32x3',
        normalisation: { mean: stats.mean, std: stats.std },
        classes: CIFAR10_CLASSES,
        partition: describePartition(opts.partition),
        samplesPerClient: sizeSummary(clients),
        ...(opts.maxSamples !== undefined ? { maxSamples: opts.maxSamples } : {}),
        ...(held > 0 ? { testSet: `validation: the last ${held} training images (the test batch is not read)` } : {}),
      },
      input: { kind: 'image-bytes', mean: [...stats.mean], std: stats.std.map((s) => (s > 0 ? s : 1)) },
    },
    warnings: split.warnings,
  };
}
