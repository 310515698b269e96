import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from './errors.js';
import { FEMNIST_CLASSES, FEMNIST_DEFAULTS, FEMNIST_PIXELS, loadFemnist, parseWriters } from './femnist.js';
import { loadFederated, parseDatasetSpec } from './index.js';
import type { Dataset, DenseMatrix } from '../models/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'femnist-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const SHARED = fileURLToPath(new URL('../../../shared/data', import.meta.url));

const HEADER = 'writer\ttrain_start\ttrain_count\ttest_start\ttest_count\tmaybe_truncated\tleaf_run';
/** Three writers: a (2 train, 1 test), b (3 train, 0 test, flagged), c (1 train, 2 test). */
const WRITERS = [HEADER, 'a\t0\t2\t0\t1\t0\trunA', 'b\t2\t3\t1\t0\t1\trunA', 'c\t5\t1\t1\t2\t0\trunB'].join('\n') + '\n';

/** Image i is all 255 (background) except pixel 0 = i and pixel 783 = 0 (full ink). */
function images(n: number): Uint8Array {
  const out = new Uint8Array(n * FEMNIST_PIXELS).fill(255);
  for (let i = 0; i < n; i++) {
    out[i * FEMNIST_PIXELS] = i;
    out[i * FEMNIST_PIXELS + 783] = 0;
  }
  return out;
}

interface Compact {
  writers?: string;
  trainImages?: Uint8Array;
  trainLabels?: Uint8Array;
  testImages?: Uint8Array;
  testLabels?: Uint8Array;
}

/** Writes a compact FEMNIST under tmp/NAME/femnist (each part overridable) and returns tmp/NAME. */
function compact(name: string, parts: Compact = {}): string {
  const dir = join(tmp, name, 'femnist');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'writers.tsv'), parts.writers ?? WRITERS);
  writeFileSync(join(dir, 'train_images.u8.gz'), gzipSync(parts.trainImages ?? images(6)));
  writeFileSync(join(dir, 'train_labels.u8.gz'), gzipSync(parts.trainLabels ?? Uint8Array.from([0, 61, 2, 3, 4, 5])));
  writeFileSync(join(dir, 'test_images.u8.gz'), gzipSync(parts.testImages ?? images(3)));
  writeFileSync(join(dir, 'test_labels.u8.gz'), gzipSync(parts.testLabels ?? Uint8Array.from([7, 8, 9])));
  return join(tmp, name);
}

const pixel = (d: Dataset, row: number, p: number) => (d.x as DenseMatrix).data[row * FEMNIST_PIXELS + p];

describe('compact FEMNIST', () => {
  it('one dense client per writer, x = 1 - byte/255, the test set the union of the writers\' test samples', async () => {
    const { dataset } = await loadFemnist(compact('ok'));
    expect(dataset).toMatchObject({ name: 'femnist', task: 'multiclass', nFeatures: 784, nClasses: FEMNIST_CLASSES });
    expect(dataset.clients.map((c) => c.y.length)).toEqual([2, 3, 1]);
    expect(dataset.clients.every((c) => c.x.kind === 'dense')).toBe(true);
    expect(Array.from(dataset.clients[0]!.y)).toEqual([0, 61]);
    expect(Array.from(dataset.clients[2]!.y)).toEqual([5]);
    // client b's first sample is train image 2: pixel 0 = 2, so x = 1 - 2/255; background 255 -> exactly 0; ink 0 -> 1
    expect(pixel(dataset.clients[1]!, 0, 0)).toBe(Math.fround(1 - 2 / 255));
    expect(pixel(dataset.clients[1]!, 0, 1)).toBe(0);
    expect(pixel(dataset.clients[1]!, 0, 783)).toBe(1);
    expect(Array.from(dataset.test!.y)).toEqual([7, 8, 9]);
    expect(pixel(dataset.test!, 2, 0)).toBe(Math.fround(1 - 2 / 255));
    expect(dataset.meta).toMatchObject({ writers: 3, maybeTruncated: 1, droppedTruncated: 0 });
  });

  it('drop-truncated leaves out the flagged writers', async () => {
    const { dataset } = await loadFemnist(compact('ok'), { ...FEMNIST_DEFAULTS, dropTruncated: true });
    expect(dataset.clients.map((c) => Array.from(c.y))).toEqual([[0, 61], [5]]);
    expect(Array.from(dataset.test!.y)).toEqual([7, 8, 9]);
    expect(dataset.meta).toMatchObject({ droppedTruncated: 1 });
  });

  it('names the file and the writer or line of bad input', async () => {
    const cases: [string, Compact, RegExp][] = [
      ['label62', { trainLabels: Uint8Array.from([0, 1, 2, 62, 4, 5]) }, /train_labels\.u8\.gz: sample 3 \(writer b, .*writers\.tsv:3\): label 62 is outside 0\.\.61/],
      ['bytes', { trainImages: images(6).subarray(1) }, /train_images\.u8\.gz: 4703 bytes, expected 6 images x 784 = 4704/],
      ['beyond', { writers: WRITERS.replace('c\t5\t1\t1\t2', 'c\t5\t2\t1\t2') }, /writers\.tsv:4: writer c: train samples 5\.\.6 go beyond the 6 labels in .*train_labels\.u8\.gz/],
      ['short', { testLabels: Uint8Array.from([7, 8, 9, 10]) }, /the writers' test ranges cover 3 samples, but .*test_labels\.u8\.gz has 4 labels/],
      ['gap', { writers: WRITERS.replace('b\t2\t3', 'b\t3\t3') }, /writers\.tsv:3: writer b: train_start 3, expected 2/],
      ['fields', { writers: WRITERS.replace('runB', 'runB\textra') }, /writers\.tsv:4: 8 fields, expected 7/],
      ['count', { writers: WRITERS.replace('a\t0\t2', 'a\t0\tx') }, /writers\.tsv:2: writer a: train_count 'x' is not a non-negative integer/],
      ['header', { writers: WRITERS.replace('maybe_truncated', 'truncated') }, /writers\.tsv:1: header has no 'maybe_truncated' column/],
    ];
    for (const [name, parts, message] of cases) {
      const err = await loadFemnist(compact(name, parts)).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(DataError);
      expect((err as Error).message, name).toMatch(message);
    }
  });

  it('reports a truncated gzip and missing files, saying what to pass', async () => {
    const root = compact('truncated');
    const gz = gzipSync(images(6));
    writeFileSync(join(root, 'femnist', 'train_images.u8.gz'), gz.subarray(0, gz.length - 20));
    await expect(loadFemnist(root)).rejects.toThrow(/train_images\.u8\.gz: corrupt or truncated gzip \(unexpected end of file\)/);
    await expect(loadFemnist(join(tmp, 'nothing'))).rejects.toThrow(/no writers\.tsv in .*nothing\/femnist or .*nothing; pass --data-dir DIR .* femnist:leaf=DIR/);
  });

  it('parseWriters reads the ranges and flags', () => {
    expect(parseWriters(WRITERS, 'w.tsv')).toEqual([
      { id: 'a', trainStart: 0, trainCount: 2, testStart: 0, testCount: 1, maybeTruncated: false, line: 2 },
      { id: 'b', trainStart: 2, trainCount: 3, testStart: 1, testCount: 0, maybeTruncated: true, line: 3 },
      { id: 'c', trainStart: 5, trainCount: 1, testStart: 1, testCount: 2, maybeTruncated: false, line: 4 },
    ]);
    expect(() => parseWriters(WRITERS + 'a\t6\t1\t3\t0\t0\trunA\n', 'w.tsv')).toThrow('w.tsv:5: writer a appears twice');
  });
});

/** A LEAF user's data with `n` samples: x = byte/255 with pixel 0 = (label)/255, the rest background 1. */
function leafUser(labels: number[]) {
  return {
    x: labels.map((l) => Array.from({ length: FEMNIST_PIXELS }, (_, j) => (j === 0 ? l / 255 : 1))),
    y: labels,
  };
}

function leafDir(name: string, train: Record<string, unknown>[], test: Record<string, unknown>[]): string {
  const dir = join(tmp, name);
  for (const [split, files] of [['train', train], ['test', test]] as const) {
    mkdirSync(join(dir, split), { recursive: true });
    files.forEach((doc, i) => writeFileSync(join(dir, split, `all_data_${i}_niid_0_keep_0_${split}_9.json`), JSON.stringify(doc)));
  }
  return dir;
}

function leafDoc(users: Record<string, number[]>) {
  const ids = Object.keys(users);
  return { users: ids, num_samples: ids.map((u) => users[u]!.length), user_data: Object.fromEntries(ids.map((u) => [u, leafUser(users[u]!)])) };
}

describe('LEAF JSON FEMNIST', () => {
  it('one client per user in id order, test set from test/, x = 1 - leaf x', async () => {
    const dir = leafDir('leaf-ok', [leafDoc({ f2: [3, 4] }), leafDoc({ f1: [5] })], [leafDoc({ f2: [6], f1: [7, 8] })]);
    const { dataset } = await loadFemnist(join(tmp, 'unused'), { ...FEMNIST_DEFAULTS, leaf: dir });
    expect(dataset.clients.map((c) => Array.from(c.y))).toEqual([[5], [3, 4]]);
    expect(pixel(dataset.clients[0]!, 0, 0)).toBe(Math.fround(1 - Math.fround(5 / 255)));
    expect(pixel(dataset.clients[0]!, 0, 1)).toBe(0);
    expect(Array.from(dataset.test!.y)).toEqual([7, 8, 6]);
    expect(dataset.meta).toMatchObject({ format: 'LEAF JSON', writers: 2, trainFiles: 2, testFiles: 1 });
  });

  it('names the file and user of bad content', async () => {
    const short = leafDoc({ u1: [1] });
    (short.user_data.u1!.x[0] as number[]).pop();
    const label = leafDoc({ u1: [62] });
    const count = { ...leafDoc({ u1: [1, 2] }), num_samples: [3] };
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['leaf-short', short, /train_9\.json: user u1: sample 0: x has 783 values, expected 784/],
      ['leaf-label', label, /train_9\.json: user u1: sample 0: label 62 is not an integer in 0\.\.61/],
      ['leaf-count', count, /train_9\.json: user u1: num_samples says 3 but there are 2 samples/],
      ['leaf-shape', { users: ['u1'] }, /not a LEAF data file/],
    ];
    for (const [name, doc, message] of cases) {
      const dir = leafDir(name, [doc], [leafDoc({ u1: [1] })]);
      const err = await loadFemnist(tmp, { ...FEMNIST_DEFAULTS, leaf: dir }).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(DataError);
      expect((err as Error).message, name).toMatch(message);
    }
    const broken = leafDir('leaf-json', [], []);
    writeFileSync(join(broken, 'train', 'x.json'), '{"users": [');
    await expect(loadFemnist(tmp, { ...FEMNIST_DEFAULTS, leaf: broken })).rejects.toThrow(/x\.json: not valid JSON/);
    await expect(loadFemnist(tmp, { ...FEMNIST_DEFAULTS, leaf: join(tmp, 'none') })).rejects.toThrow(/none\/train: no \.json files/);
  });

  it('spec syntax: femnist, femnist:drop-truncated, femnist:leaf=DIR (a path may hold commas)', async () => {
    expect(parseDatasetSpec('femnist')).toEqual({ kind: 'femnist', dropTruncated: false, leaf: null });
    expect(parseDatasetSpec('femnist:drop-truncated')).toEqual({ kind: 'femnist', dropTruncated: true, leaf: null });
    expect(parseDatasetSpec('femnist:leaf=/a,b/c')).toEqual({ kind: 'femnist', dropTruncated: false, leaf: '/a,b/c' });
    expect(() => parseDatasetSpec('femnist:leaf=')).toThrow(/bad dataset/);
    expect(() => parseDatasetSpec('femnist:truncated')).toThrow(/bad dataset/);
    await expect(loadFederated(parseDatasetSpec('femnist:drop-truncated,leaf=x'), { clients: 3, partition: { kind: 'contiguous' }, seed: 0 })).rejects.toThrow(
      /drop-truncated needs the compact format/,
    );
    const { dataset } = await loadFederated(parseDatasetSpec('femnist'), { clients: 3, partition: { kind: 'contiguous' }, seed: 0, dataDir: compact('ok') });
    expect(dataset.clients).toHaveLength(3);
  });
});

describe.skipIf(!existsSync(join(SHARED, 'femnist')))('real FEMNIST (../shared/data)', () => {
  it('306 writers, 41,629 train and 4,780 test images; 250 without the flagged writers', async () => {
    const { dataset } = await loadFemnist(SHARED);
    expect(dataset.clients).toHaveLength(306);
    expect(dataset.clients.reduce((n, c) => n + c.y.length, 0)).toBe(41_629);
    expect(dataset.test!.y.length).toBe(4_780);
    expect(dataset.test!.x.kind === 'dense' && dataset.test!.x.data.length).toBe(4_780 * 784);
    const kept = await loadFemnist(SHARED, { ...FEMNIST_DEFAULTS, dropTruncated: true });
    expect(kept.dataset.clients).toHaveLength(250);
  });
});
