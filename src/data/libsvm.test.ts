import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { Matrix } from '../models/types.js';
import { DataError } from './errors.js';
import { parseLibsvmText, readLibsvm } from './libsvm.js';

const dir = mkdtempSync(join(tmpdir(), 'libsvm-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fixture(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function toRows(x: Matrix): number[][] {
  const out = Array.from({ length: x.rows }, () => new Array<number>(x.cols).fill(0));
  if (x.kind === 'dense') {
    for (let r = 0; r < x.rows; r++) for (let c = 0; c < x.cols; c++) out[r]![c] = x.data[r * x.cols + c]!;
  } else {
    for (let r = 0; r < x.rows; r++) for (let k = x.indptr[r]!; k < x.indptr[r + 1]!; k++) out[r]![x.indices[k]!] = x.values[k]!;
  }
  return out;
}

const SAMPLE = ['# a comment line', '+1 1:0.5 3:-2   ', '', '-1 2:1e-1 # trailing comment', '+1 3:4\r', '-1'].join('\n');

describe('parsing', () => {
  it('reads labels and features, skipping comments, blank lines, trailing spaces and CRs', () => {
    const r = parseLibsvmText(SAMPLE, 'sample.txt');
    expect(r.task).toBe('binary');
    expect(r.nFeatures).toBe(3);
    expect(Array.from(r.data.y)).toEqual([1, -1, 1, -1]);
    expect(toRows(r.data.x)).toEqual([
      [0.5, 0, -2],
      [0, Math.fround(0.1), 0],
      [0, 0, 4],
      [0, 0, 0],
    ]);
  });

  it('reads a file and the same file gzipped identically', async () => {
    const plain = await readLibsvm(fixture('sample.txt', SAMPLE));
    const gz = await readLibsvm(fixture('sample.gz', gzipSync(SAMPLE)));
    expect(gz).toEqual(plain);
    expect(plain).toEqual(parseLibsvmText(SAMPLE, 'other name'));
  });

  it('widens to opts.nFeatures', () => {
    const r = parseLibsvmText('1 2:1\n0 1:1\n', 't', { nFeatures: 5 });
    expect(r.nFeatures).toBe(5);
    expect(r.data.x.cols).toBe(5);
  });
});

describe('errors name the file and line', () => {
  const cases: [string, string, RegExp][] = [
    ['malformed token', '1 abc', /malformed token 'abc'/],
    ['missing value', '1 2:', /value '' of feature 2 is not a finite number/],
    ['non-integer index', '1 1.5:2', /malformed token '1.5:2'/],
    ['index 0', '1 0:1', /feature index 0 .*indices start at 1/],
    ['decreasing indices', '1 3:1 2:1', /feature index 2 after 3: indices must increase/],
    ['repeated index', '1 2:1 2:1', /feature index 2 after 2/],
    ['non-numeric label', 'abc 1:1', /label 'abc' is not a finite number/],
    ['NaN label', 'nan 1:1', /label 'nan'/],
    ['Inf value', '1 1:inf', /value 'inf' of feature 1/],
    ['value beyond float32', '1 1:1e40', /value '1e40'/],
    ['qid token', '1 qid:3 1:1', /qid tokens .* not supported/],
    ['index beyond nFeatures', '1 9:1', /feature index 9 is beyond the expected 4 features/],
  ];
  for (const [what, bad, message] of cases) {
    it(what, () => {
      const text = ['# header', '1 1:1', '', bad, '0 2:1'].join('\n');
      expect(() => parseLibsvmText(text, 'f.svm', { nFeatures: 4 })).toThrow(DataError);
      expect(() => parseLibsvmText(text, 'f.svm', { nFeatures: 4 })).toThrow(new RegExp(`^f\\.svm:4: ${message.source}`));
    });
  }

  it('reports the line from a gzipped file too', async () => {
    const path = fixture('bad.gz', gzipSync('1 1:1\n1 1:1\n1 2:x\n'));
    await expect(readLibsvm(path)).rejects.toThrow(`${path}:3: value 'x' of feature 2 is not a finite number`);
  });

  it('missing file, empty file, truncated gzip', async () => {
    await expect(readLibsvm(join(dir, 'nope.svm'))).rejects.toThrow(`${join(dir, 'nope.svm')}: no such file`);
    const empty = fixture('empty.svm', '# only a comment\n\n');
    await expect(readLibsvm(empty)).rejects.toThrow(`${empty}: empty file`);
    const zeroBytes = fixture('zero.svm', '');
    await expect(readLibsvm(zeroBytes)).rejects.toThrow(DataError);
    const truncated = fixture('truncated.gz', gzipSync('1 1:1\n'.repeat(100)).subarray(0, 20));
    await expect(readLibsvm(truncated)).rejects.toThrow(/truncated\.gz: corrupt or truncated gzip/);
  });
});

describe('storage', () => {
  it('is CSR below 25% density and dense at or above', () => {
    // 4 rows × 4 features: 3 nonzeros (19%) vs 4 nonzeros (25%)
    const sparse = parseLibsvmText('1 1:1\n0 2:1\n1 4:1\n0\n', 't');
    expect(sparse.data.x.kind).toBe('csr');
    const dense = parseLibsvmText('1 1:1\n0 2:1\n1 4:1\n0 3:1\n', 't');
    expect(dense.data.x.kind).toBe('dense');
    expect(toRows(sparse.data.x)).toEqual([
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 0, 1],
      [0, 0, 0, 0],
    ]);
  });

  it('does not store explicit zeros', () => {
    const r = parseLibsvmText('1 1:0 2:0 3:0 4:0 5:0 6:0 7:0 8:0 9:1\n0 1:0\n', 't');
    expect(r.data.x.kind).toBe('csr');
    expect(r.nFeatures).toBe(9);
    if (r.data.x.kind === 'csr') expect(Array.from(r.data.x.indices)).toEqual([8]);
  });
});

describe('task inference', () => {
  const labels = (ys: (number | string)[]) => ys.map((y, i) => `${y} ${(i % 3) + 1}:1`).join('\n');

  it('two integer labels: binary, smaller -> -1', () => {
    const r = parseLibsvmText(labels([0, 1, 1, 0]), 't');
    expect(r.task).toBe('binary');
    expect(r.nClasses).toBe(1);
    expect(Array.from(r.data.y)).toEqual([-1, 1, 1, -1]);
    expect(r.labelMap).toEqual([0, 1]);
    expect(Array.from(parseLibsvmText(labels([4, '+2', 4]), 't', { task: 'binary' }).data.y)).toEqual([1, -1, 1]);
  });

  it('3..1000 integer labels: multiclass in sorted order', () => {
    const r = parseLibsvmText(labels([5, -2, 7, 5]), 't');
    expect(r.task).toBe('multiclass');
    expect(r.nClasses).toBe(3);
    expect(r.labelMap).toEqual([-2, 5, 7]);
    expect(Array.from(r.data.y)).toEqual([1, 0, 2, 1]);
  });

  it('otherwise regression: non-integers, one value, over 1000 classes', () => {
    expect(parseLibsvmText(labels([0.5, 1.5, 0.5]), 't').task).toBe('regression');
    expect(parseLibsvmText(labels([3, 3]), 't').task).toBe('regression');
    const many = parseLibsvmText(labels(Array.from({ length: 1001 }, (_, i) => i)), 't');
    expect(many.task).toBe('regression');
    expect(many.labelMap).toBeUndefined();
    expect(many.data.y[1000]).toBe(1000);
  });

  it('opts.task overrides inference and is checked', () => {
    expect(parseLibsvmText(labels([0, 1, 2]), 't', { task: 'regression' }).data.y).toEqual(Float32Array.of(0, 1, 2));
    expect(parseLibsvmText(labels([0, 1]), 't', { task: 'multiclass' }).nClasses).toBe(2);
    expect(parseLibsvmText(labels([1, 1]), 't', { task: 'binary' }).labelMap).toEqual([-1, 1]);
    expect(() => parseLibsvmText(labels([0, 1, 2]), 't', { task: 'binary' })).toThrow(/t: task 'binary' needs 2 distinct labels, found 3/);
    expect(() => parseLibsvmText(labels([0, 0.5]), 't', { task: 'multiclass' })).toThrow(/needs integer labels, found 0.5/);
  });

  it('a labelMap fixes the coding; other labels are errors at their line', () => {
    const r = parseLibsvmText(labels([7, 7]), 't', { task: 'multiclass', labelMap: [3, 7, 9] });
    expect(Array.from(r.data.y)).toEqual([1, 1]);
    expect(r.nClasses).toBe(3);
    const binary = parseLibsvmText(labels([4]), 't', { task: 'binary', labelMap: [2, 4] });
    expect(Array.from(binary.data.y)).toEqual([1]);
    expect(() => parseLibsvmText(labels([3, 8]), 't', { task: 'multiclass', labelMap: [3, 7, 9] })).toThrow(
      't:2: label 8 is not one of the known labels (3, 7, 9)',
    );
  });
});
