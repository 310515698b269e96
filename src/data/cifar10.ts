/**
 * CIFAR-10 from Krizhevsky's binary batches (data_batch_1..5.bin, test_batch.bin; plain or gzip).
 * Each record is 3,073 bytes: the label (0–9), then the R, G and B planes of the 32×32 image, row-major.
 * Images become rows of 3,072 float32 in NHWC order, (h·32 + w)·3 + c, each channel normalised with
 * the mean and standard deviation of the training set's pixels.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_SIZE } from './augment.js';
import { CIFAR10_RECORD_BYTES, cifarImages, cifarLabels, channelStats, checkCifarBatch, type CifarRecords } from './cifar-records.js';
import type { Dataset } from '../models/types.js';
import { DataError } from './errors.js';
import { readMaybeGzip } from './files.js';
import { resolveLimits, type DataLimits } from './limits.js';
import { describePartition, partition, type PartitionScheme } from './partition.js';
import { sizeSummary } from './rows.js';
import type { FederatedDataset } from './types.js';

export { CIFAR10_RECORD_BYTES, channelStats, checkCifarBatch, cifarImages, cifarLabels, readCifarChunks, type ChannelStats, type CifarRecords } from './cifar-records.js';
export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR10_TEST_FILE = 'test_batch.bin';
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** Reads one batch file (gzip detected by its magic bytes) and checks its length and labels. */
export function readCifarBatch(path: string, limits: Partial<DataLimits> = {}): Uint8Array {
  return checkCifarBatch(readMaybeGzip(path, resolveLimits(limits)), path);
}

export function readCifarBatches(paths: string[], limits: Partial<DataLimits> = {}): CifarRecords {
  const batches = paths.map((p) => readCifarBatch(p, limits));
  return { batches, n: batches.reduce((s, b) => s + b.length / CIFAR10_RECORD_BYTES, 0) };
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
