import { describe, expect, it } from 'vitest';
import { rngFor } from '../core/rng.js';
import { createModel, exactLeastSquares } from './index.js';
import { denseToCsr } from './matrix.js';
import { randomDense } from './testing.js';
import type { Dataset, ModelSpec } from './types.js';

function dense(rows: number[][]): Dataset['x'] {
  return { kind: 'dense', rows: rows.length, cols: rows[0]!.length, data: Float32Array.from(rows.flat()) };
}

describe('linear model on two samples, by hand', () => {
  // A = [[1, 0], [0, 2]], y = [1, 1], w = [2, 1], l2 = 0.5.
  const data: Dataset = { x: dense([[1, 0], [0, 2]]), y: new Float32Array([1, 1]) };

  it('without intercept', () => {
    // scores [2, 2], residuals r = [1, 1]: MSE (1 + 1)/2 = 1, penalty 0.25·(4 + 1) = 1.25, loss 2.25.
    // gradient (2/m)Aᵀr + l2·w = [1, 2] + [1, 0.5] = [2, 2.5].
    const model = createModel({ kind: 'linear', nFeatures: 2, nClasses: 1, intercept: false, l2: 0.5 });
    const grad = new Float32Array(2);
    expect(model.lossGrad(new Float32Array([2, 1]), data, grad)).toBeCloseTo(2.25, 12);
    expect([...grad]).toEqual([2, 2.5]);
  });

  it('with intercept -1, which the penalty leaves out', () => {
    // scores [1, 1], residuals 0: loss is the penalty 1.25; gradient l2·w = [1, 0.5] and 0 for the intercept.
    const model = createModel({ kind: 'linear', nFeatures: 2, nClasses: 1, intercept: true, l2: 0.5 });
    const grad = new Float32Array(3);
    expect(model.lossGrad(new Float32Array([2, 1, -1]), data, grad)).toBeCloseTo(1.25, 12);
    expect([...grad]).toEqual([1, 0.5, 0]);
  });
});

describe('R²', () => {
  const model = createModel({ kind: 'linear', nFeatures: 1, nClasses: 1, intercept: true, l2: 0 });
  const data: Dataset = { x: dense([[1], [2], [3]]), y: new Float32Array([2, 4, 6]) };

  it('is 1 for a perfect fit and 0 for predicting the mean', () => {
    expect(model.metric(new Float32Array([2, 0]), data)).toEqual({ name: 'r2', value: 1 });
    expect(model.metric(new Float32Array([0, 4]), data).value).toBeCloseTo(0, 12);
  });

  it('is 1 − SS_res/SS_tot', () => {
    // predictions [1, 2, 3]: SS_res = 1 + 4 + 9 = 14, SS_tot = 4 + 0 + 4 = 8.
    expect(model.metric(new Float32Array([1, 0]), data).value).toBeCloseTo(1 - 14 / 8, 12);
  });

  it('with constant labels is 1 for a perfect fit, else 0', () => {
    const flat = { ...data, y: new Float32Array([5, 5, 5]) };
    expect(model.metric(new Float32Array([0, 5]), flat).value).toBe(1);
    expect(model.metric(new Float32Array([0, 4]), flat).value).toBe(0);
  });
});

describe('exactLeastSquares', () => {
  function clients(format: 'dense' | 'csr'): Dataset[] {
    return [7, 12, 4].map((m, i) => {
      const x = randomDense(20 + i, m, 4, 0.3);
      const rng = rngFor(30, 'y', i);
      return { x: format === 'dense' ? x : denseToCsr(x), y: Float32Array.from({ length: m }, () => rng.normal()) };
    });
  }

  it('solves a one-feature problem by hand', () => {
    // y = 2a exactly: w = 2.
    const spec: ModelSpec = { kind: 'linear', nFeatures: 1, nClasses: 1, intercept: false, l2: 0 };
    expect(exactLeastSquares([{ x: dense([[1], [2]]), y: new Float32Array([2, 4]) }], spec)[0]).toBeCloseTo(2, 12);
  });

  describe.each([
    { intercept: false, l2: 0, format: 'dense' as const },
    { intercept: true, l2: 0.3, format: 'dense' as const },
    { intercept: true, l2: 0, format: 'csr' as const },
  ])('intercept $intercept, l2 $l2, $format', ({ intercept, l2, format }) => {
    it('zeroes the average of the clients’ gradients', () => {
      const spec: ModelSpec = { kind: 'linear', nFeatures: 4, nClasses: 1, intercept, l2 };
      const model = createModel(spec);
      const data = clients(format);
      const theta = Float32Array.from(exactLeastSquares(data, spec));
      const avg = new Float64Array(model.layout.d);
      const grad = new Float32Array(model.layout.d);
      for (const client of data) {
        model.lossGrad(theta, client, grad);
        grad.forEach((g, j) => (avg[j]! += g / data.length));
      }
      for (const g of avg) expect(Math.abs(g)).toBeLessThan(1e-5);
    });
  });

  it('throws when the normal equations are singular', () => {
    // two identical columns and no L2 term
    const spec: ModelSpec = { kind: 'linear', nFeatures: 2, nClasses: 1, intercept: false, l2: 0 };
    const data = { x: dense([[1, 1], [2, 2], [3, 3]]), y: new Float32Array([1, 2, 3]) };
    expect(() => exactLeastSquares([data], spec)).toThrow(/singular/);
    expect(exactLeastSquares([data], { ...spec, l2: 0.1 }).every(Number.isFinite)).toBe(true);
  });

  it('rejects other models, no clients and wrong shapes', () => {
    const spec: ModelSpec = { kind: 'linear', nFeatures: 4, nClasses: 1, intercept: false, l2: 0 };
    expect(() => exactLeastSquares(clients('dense'), { ...spec, kind: 'logistic' })).toThrow(/needs a linear model/);
    expect(() => exactLeastSquares([], spec)).toThrow(/no clients/);
    expect(() => exactLeastSquares(clients('dense'), { ...spec, nFeatures: 3 })).toThrow(/4 feature columns/);
  });
});

/** Loss and gradient of the linear model in plain float64 loops over the dense rows (the reference). */
function plainLinear(x: Float32Array, A: { rows: number; cols: number; data: Float32Array }, y: Float32Array, intercept: boolean, rows?: Uint32Array) {
  const n = A.cols;
  const batch = rows ?? Uint32Array.from({ length: A.rows }, (_, i) => i);
  const grad = new Float64Array(n + (intercept ? 1 : 0));
  let loss = 0;
  for (const r of batch) {
    let s = intercept ? x[n]! : 0;
    for (let j = 0; j < n; j++) s += A.data[r * n + j]! * x[j]!;
    const residual = s - y[r]!;
    loss += residual * residual;
    for (let j = 0; j < n; j++) grad[j]! += (2 * residual * A.data[r * n + j]!) / batch.length;
    if (intercept) grad[n]! += (2 * residual) / batch.length;
  }
  return { loss: loss / batch.length, grad };
}

describe('linear model through the SIMD kernels, against plain float64 loops', () => {
  // odd column counts, one row, a row count past one float32 block (512 rows) and past one range
  // (4,096 rows); dense and CSR storage; minibatches with repeated rows
  const cases: [rows: number, cols: number, zeros: number][] = [
    [1, 1, 0],
    [7, 3, 0.5],
    [513, 281, 0.03],
    [4200, 5, 0.8],
  ];
  for (const [m, n, zeros] of cases) {
    it(`${m} × ${n}, ${zeros * 100}% zeros`, () => {
      const A = randomDense(m + n, m, n, zeros);
      const rng = rngFor(1, 'linear-kernels', m, n);
      const y = Float32Array.from({ length: m }, () => 10 * rng.normal());
      const x = Float32Array.from({ length: n + 1 }, () => rng.normal());
      const model = createModel({ kind: 'linear', nFeatures: n, nClasses: 1, intercept: true, l2: 0 });
      const batches = [undefined, Uint32Array.from({ length: 9 }, (_, i) => (i * 7919) % m)];
      for (const xMatrix of [A, denseToCsr(A)]) {
        for (const rows of batches) {
          const want = plainLinear(x, A, y, true, rows);
          const grad = new Float32Array(n + 1);
          const loss = model.lossGrad(x, { x: xMatrix, y }, grad, rows);
          // the scores are float64 sums, as in the reference; the gradient is summed in float32 within
          // blocks of 512 rows
          expect(Math.abs(loss - want.loss)).toBeLessThanOrEqual(1e-12 * want.loss);
          const scale = Math.max(...want.grad.map(Math.abs));
          for (let j = 0; j <= n; j++) expect(Math.abs(grad[j]! - want.grad[j]!)).toBeLessThanOrEqual(1e-5 * scale);
        }
      }
    });
  }

  it('rejects a client without rows and an empty minibatch', () => {
    const model = createModel({ kind: 'linear', nFeatures: 3, nClasses: 1, intercept: true, l2: 0 });
    const empty: Dataset = { x: { kind: 'dense', rows: 0, cols: 3, data: new Float32Array(0) }, y: new Float32Array(0) };
    expect(() => model.lossGrad(new Float32Array(4), empty, new Float32Array(4))).toThrow(/no rows/);
    const one: Dataset = { x: randomDense(0, 2, 3, 0), y: new Float32Array(2) };
    expect(() => model.lossGrad(new Float32Array(4), one, new Float32Array(4), new Uint32Array(0))).toThrow(/empty minibatch/);
  });
});
