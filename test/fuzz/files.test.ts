/**
 * Every data file parser under generated hostile input (see hostile.ts): a valid result or a clean
 * one-line error, in bounded time. Results are also checked for what the parsers promise.
 */
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BLOG_COLUMNS, BLOG_FEATURES, readBlogCsv } from '../../src/data/blogfeedback.js';
import { CIFAR10_RECORD_BYTES, readCifarBatch } from '../../src/data/cifar10.js';
import { FEMNIST_PIXELS, loadFemnist, parseWriters } from '../../src/data/femnist.js';
import { parseDatasetSpec } from '../../src/data/index.js';
import { readLeafFile } from '../../src/data/leaf.js';
import { resolveLimits } from '../../src/data/limits.js';
import { parseLibsvmText, readLibsvm } from '../../src/data/libsvm.js';
import { parseJson } from '../../src/data/parse.js';
import type { Matrix } from '../../src/models/types.js';
import { clean, hostileBytes, hostileText, nasty, params, storage } from './hostile.js';

const dir = mkdtempSync(join(tmpdir(), 'fuzz-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;

/** Calls `use` with a fresh file holding `bytes`, removed afterwards (a soak writes thousands). */
async function withFile<T>(bytes: Uint8Array | string, use: (path: string) => Promise<T>): Promise<T> {
  const path = join(dir, `${fileNo++}`);
  writeFileSync(path, bytes);
  try {
    return await use(path);
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

/** Small limits, so long lines, wide indices and bombs are reached by kilobyte inputs. */
const LIMITS = { maxLineBytes: 2000, maxDimension: 1000, maxDecompressedMb: 1 };

function finiteMatrix(x: Matrix): boolean {
  const values = x.kind === 'dense' ? x.data : x.values;
  return values.every(Number.isFinite);
}

describe('LIBSVM', () => {
  const sample = ['# comment', '+1 1:0.5 3:-2', '-1 2:1e-1 # trailing', '+1 3:4\r', '', '-1 7:1 12:3.25'].join('\n') + '\n';

  it('text: a dataset within the limits, or a clean error', async () => {
    await fc.assert(
      fc.asyncProperty(hostileText(sample), async (text) => {
        const r = await clean(() => parseLibsvmText(text, 'fuzz.svm', { limits: LIMITS }));
        if (r) {
          expect(r.nFeatures).toBeLessThanOrEqual(LIMITS.maxDimension);
          expect(r.data.x.rows).toBe(r.data.y.length);
          expect(finiteMatrix(r.data.x) && r.data.y.every(Number.isFinite)).toBe(true);
        }
      }),
      params(1000),
    );
  });

  it('files, plain or gzip (truncated, corrupt, bombs)', async () => {
    await fc.assert(
      fc.asyncProperty(hostileText(sample), storage, async (text, store) => {
        await withFile(store(Buffer.from(text)), (path) => clean(() => readLibsvm(path, { limits: LIMITS })));
      }),
      params(250),
    );
  });
});

describe('BlogFeedback CSV', () => {
  const row = (i: number) => Array.from({ length: BLOG_COLUMNS }, (_, c) => (c === BLOG_COLUMNS - 1 ? i : (i * 7 + c) % 13) / 4).join(',');
  const sample = [row(0), row(1), row(2)].join('\n') + '\n';

  it('files, plain or gzip: rows of 280 finite features and a target >= 0, or a clean error', async () => {
    await fc.assert(
      fc.asyncProperty(hostileText(sample), storage, async (text, store) => {
        const r = await withFile(store(Buffer.from(text)), (path) => clean(() => readBlogCsv(path, { sources: true, limits: { ...LIMITS, maxLineBytes: 20_000 } })));
        if (r) {
          expect(r.x.length).toBe(r.rows * BLOG_FEATURES);
          expect(r.x.every(Number.isFinite) && r.y.every((v) => v >= 0)).toBe(true);
        }
      }),
      params(250),
    );
  });
});

describe('FEMNIST', () => {
  const HEADER = 'writer\ttrain_start\ttrain_count\ttest_start\ttest_count\tmaybe_truncated';
  const writers = [HEADER, 'a\t0\t2\t0\t1\t0', 'b\t2\t1\t1\t1\t1'].join('\n') + '\n';

  it('writers.tsv text: rows whose ranges follow each other, or a clean error', async () => {
    await fc.assert(
      fc.asyncProperty(hostileText(writers), async (text) => {
        const rows = await clean(() => parseWriters(text, 'writers.tsv'));
        if (rows) {
          let end = 0;
          for (const w of rows) {
            expect(w.trainStart).toBe(end);
            end += w.trainCount;
          }
        }
      }),
      params(1000),
    );
  });

  it('compact directories with one corrupt file', async () => {
    const parts = {
      'writers.tsv': Buffer.from(writers),
      'train_images.u8.gz': new Uint8Array(3 * FEMNIST_PIXELS).fill(200),
      'train_labels.u8.gz': Uint8Array.of(1, 61, 5),
      'test_images.u8.gz': new Uint8Array(2 * FEMNIST_PIXELS).fill(9),
      'test_labels.u8.gz': Uint8Array.of(0, 3),
    };
    const names = Object.keys(parts) as (keyof typeof parts)[];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...names), fc.oneof(hostileBytes(parts['writers.tsv']), hostileBytes(parts['train_labels.u8.gz'])), storage, async (victim, bytes, store) => {
        const r = await withFile('', async (root) => {
          rmSync(root);
          mkdirSync(join(root, 'femnist'), { recursive: true });
          for (const n of names) writeFileSync(join(root, 'femnist', n), n === victim ? store(bytes) : n === 'writers.tsv' ? parts[n] : gzipSync(parts[n]));
          return clean(() => loadFemnist(root, undefined, LIMITS));
        });
        if (r) expect(r.dataset.clients.every((c) => c.x.rows === c.y.length && c.y.every((y) => y >= 0 && y < 62))).toBe(true);
      }),
      params(150),
    );
  });

  it('LEAF JSON files: users with 784 values in [0, 1] per sample, or a clean error', async () => {
    const x = (v: number) => Array(FEMNIST_PIXELS).fill(v);
    const sample = JSON.stringify({ users: ['u1', 'u2'], num_samples: [2, 1], user_data: { u1: { x: [x(0.5), x(1)], y: [3, 61] }, u2: { x: [x(0)], y: [0] } } }, null, 1);
    const limits = resolveLimits(LIMITS);
    const shape = { features: FEMNIST_PIXELS, classes: 62, min: 0, max: 1 };
    const deep = fc.integer({ min: 1, max: 20_000 }).map((d) => `{"users": ["u"], "user_data": {"u": {"x": ${'['.repeat(d)}${']'.repeat(d)}, "y": [1]}}}`);
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: hostileText(sample) }, { weight: 1, arbitrary: deep }), storage, async (text, store) => {
        const users = await withFile(store(Buffer.from(text)), (path) => clean(() => readLeafFile(path, shape, limits)));
        if (users) expect(users.every((u) => u.x.length === u.y.length * FEMNIST_PIXELS && u.x.every((v) => v >= 0 && v <= 1))).toBe(true);
      }),
      params(250),
    );
  });
});

describe('CIFAR-10 batches', () => {
  const sample = new Uint8Array(2 * CIFAR10_RECORD_BYTES).map((_, i) => (i * 37) % 256);
  sample[0] = 3;
  sample[CIFAR10_RECORD_BYTES] = 9;

  it('files, plain or gzip: whole records with labels 0-9, or a clean error', async () => {
    await fc.assert(
      fc.asyncProperty(hostileBytes(sample), storage, async (bytes, store) => {
        const r = await withFile(store(bytes), (path) => clean(() => readCifarBatch(path, LIMITS)));
        if (r) {
          expect(r.length % CIFAR10_RECORD_BYTES).toBe(0);
          for (let off = 0; off < r.length; off += CIFAR10_RECORD_BYTES) expect(r[off]).toBeLessThan(10);
        }
      }),
      params(250),
    );
  });
});

describe('strings that name data', () => {
  const specs = ['synthetic:0.5,0.5', 'lsq', 'libsvm:/tmp/x.svm', 'blogfeedback:log1p,min=5,small=merge,scale=minmax', 'femnist:drop-truncated', 'femnist:leaf=/d,x', 'cifar10:test=100'];

  it('dataset specs: a spec or a clean error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.constantFrom(...specs).chain((s) => hostileText(s)), fc.tuple(fc.constantFrom(...specs), nasty).map(([s, t]) => s + t)), async (text) => {
        await clean(() => parseDatasetSpec(text));
      }),
      params(1000),
    );
  });

  it('parseJson: the value JSON.parse gives, or a clean one-line error', async () => {
    const sample = JSON.stringify({ a: [1, 2, { b: 'c\nd' }], e: null }, null, 2);
    await fc.assert(
      fc.asyncProperty(hostileText(sample), async (text) => {
        const v = await clean(() => parseJson(text, 'x.json', (m) => Object.assign(new Error(m), { name: 'DataError' })));
        if (v !== null) expect(v).toEqual(JSON.parse(text));
      }),
      params(1000),
    );
  });

  it('limits: checked values or a clean error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.record({ maxLineBytes: fc.anything(), maxDimension: fc.double(), maxDecompressedMb: fc.oneof(fc.double(), nasty) }, { requiredKeys: [] }), async (given) => {
        const l = await clean(() => resolveLimits(given as never));
        if (l) expect(Number.isInteger(l.maxLineBytes) && Number.isInteger(l.maxDimension) && l.maxDecompressedMb > 0).toBe(true);
      }),
      params(1000),
    );
  });
});
