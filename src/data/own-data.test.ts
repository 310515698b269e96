/**
 * CSV rows and CIFAR-10 batches from a stream of byte chunks (a browser's Blob): the same rows as the
 * file readers give, however the bytes are cut; a client's own data in the model's coding; hostile bytes
 * give a one-line DataError.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { ModelSpec } from '../models/types.js';
import { BLOG_COLUMNS, readBlogCsv } from './blogfeedback.js';
import { CIFAR10_RECORD_BYTES, readCifarBatch, readCifarChunks } from './cifar10.js';
import { readCsvChunks } from './csv-parser.js';
import { DataError } from './errors.js';
import { ownDataChunks, ownFormatOf } from './own-data.js';

const dir = mkdtempSync(join(tmpdir(), 'own-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function* chunks(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    yield bytes.subarray(at, c);
    at = c;
  }
  yield bytes.subarray(at);
}

const bytesOf = (text: string) => new TextEncoder().encode(text);
const cutsOf = (n: number) => fc.array(fc.integer({ min: 0, max: n }), { maxLength: 8 });

/** BlogFeedback-shaped rows: two sources, a CRLF, a blank line, an exponent and a long mantissa. */
const blogRow = (source: number, target: string, last = '0.5') =>
  Array.from({ length: BLOG_COLUMNS }, (_, c) => (c < 50 ? String(source) : c === BLOG_COLUMNS - 1 ? target : c === BLOG_COLUMNS - 2 ? last : String(c % 7))).join(',');
const BLOG_TEXT = `${blogRow(1, '3')}\r\n\n${blogRow(2, '0', '1.25e-3')}\n${blogRow(1, '12', '-0.12345678901234567')}`;

const IMAGE_SPEC: ModelSpec = { kind: 'cnn', nFeatures: 3072, nClasses: 10, intercept: false, l2: 0, inputShape: [32, 32, 3] };
const linear = (nFeatures: number): ModelSpec => ({ kind: 'linear', nFeatures, nClasses: 1, intercept: false, l2: 0 });
const logistic = (nFeatures: number): ModelSpec => ({ kind: 'logistic', nFeatures, nClasses: 1, intercept: false, l2: 0 });

function cifarBatch(n: number): Uint8Array {
  const out = new Uint8Array(n * CIFAR10_RECORD_BYTES);
  for (let i = 0; i < n; i++) {
    out[i * CIFAR10_RECORD_BYTES] = (i * 3) % 10;
    for (let p = 1; p < CIFAR10_RECORD_BYTES; p++) out[i * CIFAR10_RECORD_BYTES + p] = (i * 31 + p * 7) % 256;
  }
  return out;
}

/** The error of a call that must fail: a DataError of one line. */
async function oneLineError(call: () => Promise<unknown>): Promise<string> {
  const e = await call().then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(DataError);
  const message = (e as Error).message;
  expect(message).not.toMatch(/\n/);
  return message;
}

describe('readCsvChunks', () => {
  it('property: any cutting of the bytes gives readBlogCsv’s rows and sources of the same file', async () => {
    const path = file('blog.csv', BLOG_TEXT);
    const fromFile = await readBlogCsv(path, { sources: true });
    expect(fromFile.rows).toBe(3);
    expect(fromFile.groups).toBe(2);
    const bytes = bytesOf(BLOG_TEXT);
    await fc.assert(
      fc.asyncProperty(cutsOf(bytes.length), async (cuts) => {
        expect(await readCsvChunks(chunks(bytes, cuts), path, { columns: BLOG_COLUMNS, sourceColumns: 50, nonNegativeTarget: true })).toEqual(fromFile);
      }),
      { numRuns: 50 },
    );
  });

  it('property: any bytes either parse or give a one-line DataError naming the file', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), cutsOf(200), async (bytes, cuts) => {
        const e = await readCsvChunks(chunks(bytes, cuts.map((c) => Math.min(c, bytes.length))), 'x.csv', { columns: 3 }).then(() => null, (err: unknown) => err);
        if (e === null) return;
        expect(e).toBeInstanceOf(DataError);
        expect((e as Error).message).toMatch(/^x\.csv(:\d+)?: [^\n]*$/);
      }),
      { numRuns: 200 },
    );
  });
});

describe('readCifarChunks', () => {
  it('property: any cutting of a batch gives readCifarBatch’s bytes of the same file', async () => {
    const bytes = cifarBatch(3);
    const path = file('data_batch_1.bin', bytes);
    const fromFile = readCifarBatch(path);
    await fc.assert(
      fc.asyncProperty(cutsOf(bytes.length), async (cuts) => {
        expect(await readCifarChunks(chunks(bytes, cuts), path)).toEqual(new Uint8Array(fromFile));
      }),
      { numRuns: 30 },
    );
  });

  it('a truncated batch, a label above 9 and a stream past the size limit are one-line DataErrors', async () => {
    const bytes = cifarBatch(2);
    expect(await oneLineError(() => readCifarChunks(chunks(bytes.subarray(0, 5000), [100]), 'b.bin'))).toBe(
      'b.bin: 5000 bytes is not a whole number of 3073-byte CIFAR-10 records (truncated, or not a CIFAR-10 binary batch)',
    );
    const bad = bytes.slice();
    bad[CIFAR10_RECORD_BYTES] = 10;
    expect(await oneLineError(() => readCifarChunks(chunks(bad, []), 'b.bin'))).toBe('b.bin: record 1 has label 10 (expected 0-9; is this CIFAR-100?)');
    const big = new Uint8Array(2 ** 20 + 1);
    expect(await oneLineError(() => readCifarChunks(chunks(big, [2 ** 19]), 'big.bin', { maxDecompressedMb: 1 }))).toMatch(/^big\.bin: is larger than 1 MB, the limit \(--max-decompressed-mb\)$/);
  });
});

describe('ownDataChunks', () => {
  it('the format follows the name, after any .gz: .csv rows, .bin a CIFAR-10 batch, anything else LIBSVM', () => {
    expect(['a.csv', 'B.CSV', 'data_batch_1.bin', 'a.txt', 'a.svm', 'a.csv.gz', 'b.bin.GZ', 'a.gz'].map(ownFormatOf)).toEqual(['csv', 'csv', 'cifar10', 'libsvm', 'libsvm', 'csv', 'cifar10', 'libsvm']);
  });

  it('CSV rows: the features, then the target; a logistic model takes targets ±1 only', async () => {
    const own = await ownDataChunks(linear(2), 'own.csv', () => chunks(bytesOf('1,2,3\n\n4,-5,0.5\n'), [3]));
    expect(own.x).toEqual({ kind: 'dense', rows: 2, cols: 2, data: new Float32Array([1, 2, 4, -5]) });
    expect(own.y).toEqual(new Float32Array([3, 0.5]));
    expect((await ownDataChunks(logistic(1), 'own.csv', () => chunks(bytesOf('1,1\n2,-1\n'), []))).y).toEqual(new Float32Array([1, -1]));
    expect(await oneLineError(() => ownDataChunks(logistic(1), 'own.csv', () => chunks(bytesOf('1,1\n2,0\n'), [])))).toBe("own.csv: row 2 has target 0, not one of the model's labels (-1, 1)");
    expect(await oneLineError(() => ownDataChunks(linear(2), 'own.csv', () => chunks(bytesOf('1,2,3\n4,5\n'), [])))).toBe('own.csv:2: expected 3 columns, found 2');
    expect(await oneLineError(() => ownDataChunks(linear(2), 'own.csv', () => chunks(bytesOf('1,x,3\n'), [])))).toBe("own.csv:1: column 2: 'x' is not a number");
    expect(await oneLineError(() => ownDataChunks(IMAGE_SPEC, 'own.csv', () => chunks(bytesOf('1,2\n'), [])))).toMatch(/for the linear models only \(this run's model is cnn/);
  });

  it('a CIFAR-10 batch: images of the batch, normalised with its own channel statistics; a linear model refuses it', async () => {
    const own = await ownDataChunks(IMAGE_SPEC, 'data_batch_1.bin', () => chunks(cifarBatch(4), [5000]));
    expect(own.y).toEqual(new Float32Array([0, 3, 6, 9]));
    expect(own.x.rows).toBe(4);
    const data = (own.x as { data: Float32Array }).data;
    let mean = 0;
    for (let i = 0; i < data.length; i += 3) mean += data[i]!; // channel R over every pixel: 0 after its own normalisation
    expect(Math.abs(mean / (data.length / 3))).toBeLessThan(1e-4);
    expect(await oneLineError(() => ownDataChunks(linear(3072), 'data_batch_1.bin', () => chunks(cifarBatch(1), [])))).toMatch(
      /^data_batch_1\.bin: a CIFAR-10 batch is the data of an image network/,
    );
  });
});
