import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CIFAR10_RECORD_BYTES,
  CIFAR10_TEST_FILE,
  CIFAR10_TRAIN_FILES,
  channelStats,
  cifarFile,
  cifarImages,
  cifarLabels,
  loadCifar10,
  readCifarBatch,
  readCifarBatches,
} from './cifar10.js';
import type { Matrix } from '../models/types.js';
import { DataError } from './errors.js';
import { loadFederated, parseDatasetSpec } from './index.js';
import { resolveConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';

const dir = mkdtempSync(join(tmpdir(), 'cifar10-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Byte (c, h, w) of record r: distinct enough to tell positions and records apart. */
const pixel = (r: number, c: number, h: number, w: number): number => (r * 7 + c * 50 + h * 3 + w) % 256;

/** Records with the given labels and pixel(r0 + r, ...) images. */
function records(labels: number[], r0 = 0): Uint8Array {
  const out = new Uint8Array(labels.length * CIFAR10_RECORD_BYTES);
  labels.forEach((label, r) => {
    const off = r * CIFAR10_RECORD_BYTES;
    out[off] = label;
    for (let c = 0; c < 3; c++) for (let h = 0; h < 32; h++) for (let w = 0; w < 32; w++) out[off + 1 + c * 1024 + h * 32 + w] = pixel(r0 + r, c, h, w);
  });
  return out;
}

function file(name: string, bytes: Uint8Array, d = dir): string {
  const path = join(d, name);
  writeFileSync(path, bytes);
  return path;
}

const unit = { mean: [0, 0, 0], std: [1, 1, 1] } as { mean: [number, number, number]; std: [number, number, number] };

describe('readCifarBatch', () => {
  it('reads plain and gzip batches alike', () => {
    const raw = records([3, 8, 0]);
    expect(Buffer.from(readCifarBatch(file('plain.bin', raw)))).toEqual(Buffer.from(raw));
    expect(Buffer.from(readCifarBatch(file('packed.bin.gz', gzipSync(raw))))).toEqual(Buffer.from(raw));
    expect(Array.from(cifarLabels(readCifarBatches([join(dir, 'plain.bin'), join(dir, 'packed.bin.gz')])))).toEqual([3, 8, 0, 3, 8, 0]);
  });

  it('rejects a length that is not a whole number of records, naming the file', () => {
    const path = file('short.bin', records([1, 2]).subarray(0, 2 * CIFAR10_RECORD_BYTES - 5));
    expect(() => readCifarBatch(path)).toThrow(DataError);
    expect(() => readCifarBatch(path)).toThrow(`${path}: 6141 bytes is not a whole number of 3073-byte CIFAR-10 records`);
    expect(() => readCifarBatch(file('empty.bin', new Uint8Array(0)))).toThrow('0 bytes is not a whole number');
  });

  it('rejects labels above 9 and truncated gzip', () => {
    expect(() => readCifarBatch(file('label.bin', records([1, 10])))).toThrow('label.bin: record 1 has label 10 (expected 0-9');
    const gz = gzipSync(records([1, 2]));
    const path = file('cut.bin.gz', gz.subarray(0, gz.length - 20));
    expect(() => readCifarBatch(path)).toThrow(DataError);
    expect(() => readCifarBatch(path)).toThrow(`${path}: corrupt or truncated gzip`);
    expect(() => readCifarBatch(join(dir, 'nope.bin'))).toThrow(`${join(dir, 'nope.bin')}: no such file`);
  });
});

describe('cifarImages', () => {
  it('lays images out NHWC: index (h·32 + w)·3 + c, rows in the order asked, across batches', () => {
    const recs = readCifarBatches([file('a.bin', records([5, 6])), file('b.bin', records([7], 2))]);
    const { x, y } = cifarImages(recs, [2, 0], unit);
    expect(x.kind).toBe('dense');
    if (x.kind !== 'dense') return;
    expect([x.rows, x.cols]).toEqual([2, 3072]);
    expect(Array.from(y)).toEqual([7, 5]);
    for (const [k, r] of [[0, 2], [1, 0]] as const) {
      for (const [h, w, c] of [[0, 0, 0], [0, 1, 2], [5, 17, 1], [31, 31, 2]] as const) {
        expect(x.data[k * 3072 + (h * 32 + w) * 3 + c]).toBe(Math.fround(pixel(r, c, h, w) / 255));
      }
    }
    // by hand: record 2, G (c = 1), h = 1, w = 2: (14 + 50 + 3 + 2) = 69
    expect(x.data[(1 * 32 + 2) * 3 + 1]).toBe(Math.fround(69 / 255));
    expect(() => cifarImages(recs, [3], unit)).toThrow('row 3 out of range [0, 3)');
  });

  it('normalises each channel with the statistics of the data', () => {
    // record 0: R 0, G 51, B 0; record 1: R 255, G 51, B 102
    const bytes = new Uint8Array(2 * CIFAR10_RECORD_BYTES);
    bytes.fill(0, 1, 3073);
    bytes.fill(51, 1 + 1024, 1 + 2048);
    bytes.fill(255, 3073 + 1, 3073 + 1025);
    bytes.fill(51, 3073 + 1025, 3073 + 2049);
    bytes.fill(102, 3073 + 2049, 2 * 3073);
    const recs = readCifarBatches([file('stats.bin', bytes)]);
    const stats = channelStats(recs);
    expect(stats.mean.map((v) => +v.toFixed(12))).toEqual([0.5, 0.2, 0.2]);
    expect(stats.std.map((v) => +v.toFixed(12))).toEqual([0.5, 0, 0.2]);
    const { x } = cifarImages(recs, [0, 1], stats);
    if (x.kind !== 'dense') throw new Error('dense expected');
    // R: (0 − 0.5)/0.5 = −1 and +1; G: constant, centred to 0 (std 0 is left as 1); B: −1 and +1
    expect(Array.from(x.data.subarray(0, 6)).map((v) => +v.toFixed(6))).toEqual([-1, 0, -1, -1, 0, -1]);
    expect(Array.from(x.data.subarray(3072, 3078)).map((v) => +v.toFixed(6))).toEqual([1, 0, 1, 1, 0, 1]);
  });
});

describe('loadCifar10 on a fixture', () => {
  const cdir = join(dir, 'cifar10');
  mkdirSync(cdir);
  // five batches of 6 records (labels 0..5 shifted per batch), gzip and plain mixed; 4 test records
  CIFAR10_TRAIN_FILES.forEach((f, b) => {
    const raw = records([0, 1, 2, 3, 4, 5].map((l) => (l + b) % 10), b * 6);
    if (b % 2 === 0) file(`${f}.gz`, gzipSync(raw), cdir);
    else file(f, raw, cdir);
  });
  file(CIFAR10_TEST_FILE, records([3, 8, 8, 0], 100), cdir);

  it('splits the 30 training images over the clients and keeps the test set whole', () => {
    const { dataset, warnings } = loadCifar10(cdir, { clients: 3, partition: { kind: 'iid' }, seed: 1 });
    expect(warnings).toEqual([]);
    expect(dataset.clients.map((c) => c.y.length)).toEqual([10, 10, 10]);
    expect([dataset.task, dataset.nFeatures, dataset.nClasses]).toEqual(['multiclass', 3072, 10]);
    expect(Array.from(dataset.test!.y)).toEqual([3, 8, 8, 0]);
    // every training image lands once: the multiset of labels is kept
    const labels = dataset.clients.flatMap((c) => Array.from(c.y)).sort((a, b) => a - b);
    const expected = CIFAR10_TRAIN_FILES.flatMap((_, b) => [0, 1, 2, 3, 4, 5].map((l) => (l + b) % 10)).sort((a, b) => a - b);
    expect(labels).toEqual(expected);
    expect(dataset.meta.partition).toBe('iid');
  });

  it('contiguous keeps file order; --max-samples keeps each client\'s first rows', () => {
    const { dataset } = loadCifar10(cdir, { clients: 2, partition: { kind: 'contiguous' }, seed: 1, maxSamples: 4 });
    // client 1 starts at row 15: batch 2 (labels shifted by 2), records 3, 4, 5, then batch 3's record 0
    expect(dataset.clients.map((c) => Array.from(c.y))).toEqual([[0, 1, 2, 3], [5, 6, 7, 3]]);
    // its first pixel is pixel(15, 0, 0, 0), normalised
    const x1 = dataset.clients[1]!.x;
    const stats = dataset.meta.normalisation as { mean: number[]; std: number[] };
    if (x1.kind !== 'dense') throw new Error('dense expected');
    expect(x1.data[0]).toBe(Math.fround((pixel(15, 0, 0, 0) / 255 - stats.mean[0]!) / stats.std[0]!));
    expect(dataset.meta.samplesPerClient).toEqual({ min: 4, median: 4, max: 4, total: 8 });
  });

  it('splits by Dirichlet label skew, the same for the same seed', () => {
    const load = () => loadCifar10(cdir, { clients: 3, partition: { kind: 'dirichlet', alpha: 0.5 }, seed: 4 }).dataset;
    const a = load();
    expect(a.clients.reduce((s, c) => s + c.y.length, 0)).toBe(30);
    expect(a.clients.map((c) => Array.from(c.y))).toEqual(load().clients.map((c) => Array.from(c.y)));
  });

  it('says how to get the data when a batch is missing', () => {
    expect(() => cifarFile(join(dir, 'nowhere'), 'data_batch_1.bin')).toThrow(
      /no data_batch_1\.bin \(or data_batch_1\.bin\.gz\) in .*nowhere; run `sparse-proxskip data fetch cifar10`/,
    );
    expect(() => loadCifar10(dir, { clients: 1, partition: { kind: 'iid' }, seed: 1 })).toThrow(DataError);
  });
});

describe('--dataset cifar10 in the registry', () => {
  it('loads DATA_DIR/cifar10 with the run options; --max-samples caps every dataset', async () => {
    expect(parseDatasetSpec('cifar10')).toEqual({ kind: 'cifar10' });
    expect(parseDatasetSpec('cifar10:test=2')).toEqual({ kind: 'cifar10', testSamples: 2 });
    for (const bad of ['cifar10:x', 'cifar10:test=0', 'cifar10:test=10001', 'cifar10:test=1.5']) {
      expect(() => parseDatasetSpec(bad)).toThrow(`bad dataset '${bad}': option`);
    }
    const base = { clients: 3, partition: { kind: 'iid' as const }, seed: 2, dataDir: dir };
    const { dataset } = await loadFederated({ kind: 'cifar10' }, { ...base, maxSamples: 4 });
    expect(dataset.clients.map((c) => c.y.length)).toEqual([4, 4, 4]);
    expect(dataset.meta.maxSamples).toBe(4);
    const few = await loadFederated({ kind: 'cifar10', testSamples: 2 }, base);
    expect(few.dataset.test!.y).toEqual(dataset.test!.y.subarray(0, 2));
    const pixels = (m: Matrix): Float32Array => (m.kind === 'dense' ? m.data : new Float32Array(0));
    expect(pixels(few.dataset.test!.x)).toEqual(pixels(dataset.test!.x).subarray(0, 2 * 3072));
    await expect(loadFederated({ kind: 'cifar10' }, { ...base, test: 'libsvm:x' })).rejects.toThrow('cifar10 brings its own test set');
    const lsq = await loadFederated({ kind: 'lsq' }, { ...base, maxSamples: 2 });
    expect(lsq.dataset.clients.every((c) => c.y.length === 2)).toBe(true);
    expect(lsq.dataset.meta.samplesPerClient).toMatchObject({ max: 2 });
  });

  it('cifar10:validation=N holds out the last N training images as the test set, for tuning without the test set', async () => {
    expect(parseDatasetSpec('cifar10:validation=3')).toEqual({ kind: 'cifar10', validation: 3 });
    expect(() => parseDatasetSpec('cifar10:validation=0')).toThrow("bad dataset 'cifar10:validation=0': option");
    expect(() => parseDatasetSpec('cifar10:test=2,validation=3')).toThrow('give test=N or validation=N, not both');
    const base = { clients: 3, partition: { kind: 'contiguous' as const }, seed: 2, dataDir: dir };
    const all = await loadFederated({ kind: 'cifar10' }, base);
    const held = await loadFederated({ kind: 'cifar10', validation: 3 }, base);
    const pixels = (m: Matrix): Float32Array => (m.kind === 'dense' ? m.data : new Float32Array(0));
    const allRows = all.dataset.clients.reduce((n, c) => n + c.y.length, 0);
    expect(held.dataset.clients.reduce((n, c) => n + c.y.length, 0)).toBe(allRows - 3);
    // contiguous split: the last client's last 3 rows are now the test set
    const last = all.dataset.clients.at(-1)!;
    expect(held.dataset.test!.y).toEqual(last.y.subarray(last.y.length - 3));
    expect(pixels(held.dataset.test!.x)).toEqual(pixels(last.x).subarray((last.y.length - 3) * 3072));
    expect(held.dataset.meta.testSet).toMatch(/validation: the last 3 training images/);
  });

  it('--augment needs CIFAR-10', async () => {
    await expect(prepareRun(resolveConfig({ algorithm: 'fedavg', dataset: 'lsq', augment: true }))).rejects.toThrow(
      '--augment needs 32×32 colour images (--dataset cifar10), not',
    );
  });
});

const realDir = resolve(process.cwd(), '../shared/data/cifar10');
describe.skipIf(!existsSync(realDir))('the real CIFAR-10 in ../shared/data/cifar10 (skipped when absent)', () => {
  it('test_batch has 10,000 images with labels 3 8 8 0 6 6 1 6 3 1 ...', () => {
    const test = readCifarBatches([cifarFile(realDir, CIFAR10_TEST_FILE)]);
    expect(test.n).toBe(10000);
    const y = cifarLabels(test);
    expect(Array.from(y.subarray(0, 10))).toEqual([3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
    const perClass = new Array(10).fill(0);
    for (const l of y) perClass[l]++;
    expect(perClass).toEqual(new Array(10).fill(1000));
  });

  it('the training set has the channel statistics the data README gives', () => {
    const train = readCifarBatches(CIFAR10_TRAIN_FILES.map((f) => cifarFile(realDir, f)));
    expect(train.n).toBe(50000);
    const s = channelStats(train);
    expect(s.mean.map((v) => +v.toFixed(4))).toEqual([0.4913, 0.4821, 0.4465]);
    expect(s.std.map((v) => +v.toFixed(4))).toEqual([0.2452, 0.2428, 0.2606]);
  });
});
