import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, loadCifar10 } from '../data/cifar10.js';
import { DataError } from '../data/errors.js';
import { UsageError } from '../errors.js';
import { inputFormatOf, predictionsOf, readInputRows } from './predict.js';
import type { ModelSpec } from './types.js';

const dir = mkdtempSync(join(tmpdir(), 'predict-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string | Uint8Array): string => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const linear: ModelSpec = { kind: 'linear', nFeatures: 3, nClasses: 1, intercept: false, l2: 0 };

describe('input rows', () => {
  it('picks the format from the name, or asks for --format', () => {
    expect(inputFormatOf('a/rows.CSV')).toBe('csv');
    expect(inputFormatOf('test_batch.bin.gz')).toBe('images');
    expect(inputFormatOf('x.svm')).toBe('libsvm');
    expect(() => inputFormatOf('x.dat')).toThrow(UsageError);
  });

  it('CSV: a header line skipped, a target column ignored, the features transform applied from the float32 value', async () => {
    const path = file('rows.csv', 'a,b,c,target\n1,2,3,10\r\n0.1,-4,5e-1\n\n');
    const t = { kind: 'features' as const, shift: [1, 0, 0.5], factor: [2, 0.5, 0] };
    const x = await readInputRows(path, 'csv', linear, t);
    // (1 − 1)·2, (2 − 0)·0.5, (3 − 0.5)·0; then (f32(0.1) − 1)·2, −2, 0
    expect(x).toEqual({ kind: 'dense', rows: 2, cols: 3, data: Float32Array.from([0, 1, 0, (Math.fround(0.1) - 1) * 2, -2, 0]) });
    expect((await readInputRows(path, 'csv', linear, null)).kind).toBe('dense');
  });

  it('CSV and LIBSVM errors name the file and line', async () => {
    await expect(readInputRows(file('wide.csv', '1,2,3,4,5\n'), 'csv', linear, null)).rejects.toThrow(`${join(dir, 'wide.csv')}:1: 5 columns; the model takes 3 features (or 4 with a target last)`);
    await expect(readInputRows(file('nan.csv', '1,2,3\n1,x,3\n'), 'csv', linear, null)).rejects.toThrow(/nan.csv:2: column 2 is not a finite decimal number/);
    await expect(readInputRows(file('far.svm', '1 1:2 7:1\n'), 'libsvm', linear, null)).rejects.toThrow(DataError);
    await expect(readInputRows(file('empty.csv', 'a,b,c\n'), 'csv', linear, null)).rejects.toThrow(/no rows to predict/);
  });

  it('LIBSVM rows stay sparse for a convex model (labels ignored)', async () => {
    const wide: ModelSpec = { ...linear, nFeatures: 20 };
    const x = await readInputRows(file('rows.svm', '7 1:2 3:-1\n-1 2:0.5\n'), 'libsvm', wide, null);
    expect(x).toEqual({ kind: 'csr', rows: 2, cols: 20, indptr: Uint32Array.from([0, 2, 3]), indices: Uint32Array.from([0, 2, 1]), values: Float32Array.from([2, -1, 0.5]) });
  });

  it('CIFAR-style records become exactly the rows the CIFAR-10 loader gives, with the transform it saved', async () => {
    const record = (r: number): number[] => [r % 10, ...Array.from({ length: 3072 }, (_, i) => (r * 31 + i * 7) % 256)];
    const batch = (r0: number, n: number): Uint8Array => Uint8Array.from(Array.from({ length: n }, (_, k) => record(r0 + k)).flat());
    CIFAR10_TRAIN_FILES.forEach((f, i) => file(f, batch(i * 2, 2)));
    file(CIFAR10_TEST_FILE, gzipSync(batch(50, 3)));
    const data = loadCifar10(dir, { clients: 1, partition: { kind: 'contiguous' }, seed: 0 });
    const spec: ModelSpec = { kind: 'cnn', nFeatures: 3072, nClasses: 10, intercept: false, l2: 0, inputShape: [32, 32, 3] };
    const x = await readInputRows(join(dir, CIFAR10_TEST_FILE), 'images', spec, data.dataset.input!);
    expect(x).toEqual(data.dataset.test!.x);
    await expect(readInputRows(join(dir, CIFAR10_TEST_FILE), 'images', spec, null)).rejects.toThrow(/holds no image normalisation/);
    await expect(readInputRows(file('short.bin', new Uint8Array(3070)), 'images', spec, data.dataset.input!)).rejects.toThrow(/3070 bytes is not a whole number of 3073-byte records/);
  });

  it("FEMNIST's transform (mean 1, std −1) gives the loader's 1 − b/255 for every byte, bit for bit", async () => {
    const spec: ModelSpec = { kind: 'multinomial', nFeatures: 256, nClasses: 62, intercept: false, l2: 0 };
    const x = await readInputRows(file('all-bytes.bin', Uint8Array.from([0, ...Array.from({ length: 256 }, (_, b) => b)])), 'images', spec, { kind: 'image-bytes', mean: [1], std: [-1] });
    expect(x.kind === 'dense' && Array.from(x.data)).toEqual(Array.from(Float32Array.from({ length: 256 }, (_, b) => 1 - b / 255)));
  });
});

describe('predictions from outputs', () => {
  it('regression: the value; binary: ±1 (or the original labels) and P(+1); multiclass: the arg max (ties to the lower class) and softmax', () => {
    expect(predictionsOf(linear, Float64Array.from([2.5, -1]), null)).toEqual([{ row: 0, prediction: 2.5 }, { row: 1, prediction: -1 }]);
    const logistic: ModelSpec = { ...linear, kind: 'logistic' };
    const [p0, p1] = predictionsOf(logistic, Float64Array.from([0, Math.log(3)]), null);
    expect(p0).toEqual({ row: 0, prediction: -1, probability: 0.5 });
    expect(p1!.prediction).toBe(1);
    expect(p1!.probability).toBeCloseTo(0.75, 15);
    expect(predictionsOf(logistic, Float64Array.from([-2, 2]), [4, 9]).map((p) => p.prediction)).toEqual([4, 9]);
    const multi: ModelSpec = { ...linear, kind: 'multinomial', nClasses: 3 };
    const p = predictionsOf(multi, Float64Array.from([0, Math.log(2), Math.log(2), 5, 1, 1]), [10, 20, 30]);
    expect(p[0]!.prediction).toBe(20);
    p[0]!.probabilities!.forEach((q, c) => expect(q).toBeCloseTo([0.2, 0.4, 0.4][c]!, 15));
    expect(p[1]!.prediction).toBe(10);
  });
});
