import { describe, expect, it } from 'vitest';
import { rngFor } from '../core/rng.js';
import { createModel } from './index.js';
import { denseToCsr, gramLambdaMax } from './matrix.js';
import { randomDense } from './testing.js';
import type { ConvexKind, Dataset, DenseMatrix, Model } from './types.js';

const N_FEATURES = 5;
const N_ROWS = 12;
const batch = new Uint32Array([3, 0, 7, 3, 11]);

const CLASSES: Record<ConvexKind, number> = { linear: 1, logistic: 1, multinomial: 3 };

function labels(kind: ConvexKind, m: number): Float32Array {
  const rng = rngFor(3, 'labels', m);
  const draw = {
    linear: () => rng.normal(),
    logistic: () => (rng.bernoulli(0.5) ? 1 : -1),
    multinomial: () => rng.int(CLASSES.multinomial),
  }[kind];
  return Float32Array.from({ length: m }, draw);
}

function dataset(kind: ConvexKind, format: 'dense' | 'csr'): Dataset {
  const x = randomDense(4, N_ROWS, N_FEATURES, 0.3);
  return { x: format === 'dense' ? x : denseToCsr(x), y: labels(kind, N_ROWS) };
}

function params(model: Model, seed = 5): Float32Array {
  const rng = rngFor(seed, 'params', model.layout.d);
  return Float32Array.from({ length: model.layout.d }, () => 0.5 * rng.normal());
}

/** Central differences (f(x + h e_j) − f(x − h e_j)) / h', h' the step float32 actually represents. */
function finiteDifferenceGrad(f: (x: Float32Array) => number, x: Float32Array): Float64Array {
  const fd = new Float64Array(x.length);
  for (let j = 0; j < x.length; j++) {
    const plus = Float32Array.from(x);
    const minus = Float32Array.from(x);
    plus[j]! += 1e-3;
    minus[j]! -= 1e-3;
    fd[j] = (f(plus) - f(minus)) / (plus[j]! - minus[j]!);
  }
  return fd;
}

/** Per-coordinate relative tolerance, floored by a fraction of the largest coordinate. */
function expectGradClose(grad: Float32Array, fd: Float64Array, rel = 1e-3): void {
  const scale = Math.max(...fd.map(Math.abs));
  for (let j = 0; j < fd.length; j++) {
    expect(Math.abs(grad[j]! - fd[j]!), `coordinate ${j}`).toBeLessThanOrEqual(
      rel * Math.max(Math.abs(fd[j]!), 1e-3 * scale),
    );
  }
}

const gradientCases = (['linear', 'logistic', 'multinomial'] as const).flatMap((kind) =>
  [false, true].flatMap((intercept) =>
    [0, 0.3].flatMap((l2) =>
      (['dense', 'csr'] as const).flatMap((format) =>
        [undefined, batch].map((rows) => ({ kind, intercept, l2, format, rows, batched: rows !== undefined })),
      ),
    ),
  ),
);

describe.each(gradientCases)('$kind gradient (intercept $intercept, l2 $l2, $format, minibatch $batched)', (c) => {
  const model = createModel({ kind: c.kind, nFeatures: N_FEATURES, nClasses: CLASSES[c.kind], intercept: c.intercept, l2: c.l2 });
  const data = dataset(c.kind, c.format);
  const x = params(model);

  it('matches central finite differences', () => {
    const grad = new Float32Array(model.layout.d).fill(Number.NaN);
    const loss = model.lossGrad(x, data, grad, c.rows);
    expect(model.lossGrad(x, data, null, c.rows)).toBe(loss);
    expectGradClose(grad, finiteDifferenceGrad((z) => model.lossGrad(z, data, null, c.rows), x));
  });
});

/** The dataset holding `rows` of `data` (dense), in that order. */
function selectRows(data: Dataset, rows: Uint32Array): Dataset {
  const x = data.x as DenseMatrix;
  const out = new Float32Array(rows.length * x.cols);
  rows.forEach((r, i) => out.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), i * x.cols));
  return { x: { kind: 'dense', rows: rows.length, cols: x.cols, data: out }, y: Float32Array.from(rows, (r) => data.y[r]!) };
}

describe.each(['linear', 'logistic', 'multinomial'] as const)('%s minibatch', (kind) => {
  it('is the full-batch loss and gradient of the selected rows', () => {
    const model = createModel({ kind, nFeatures: N_FEATURES, nClasses: CLASSES[kind], intercept: true, l2: 0.1 });
    const data = dataset(kind, 'dense');
    const x = params(model);
    const [gBatch, gSubset] = [new Float32Array(model.layout.d), new Float32Array(model.layout.d)];
    expect(model.lossGrad(x, data, gBatch, batch)).toBeCloseTo(model.lossGrad(x, selectRows(data, batch), gSubset), 12);
    expect([...gBatch]).toEqual([...gSubset]);
  });
});

describe.each(['linear', 'logistic', 'multinomial'] as const)('%s smoothness', (kind) => {
  const spec = { kind, nFeatures: N_FEATURES, nClasses: CLASSES[kind], intercept: true, l2: 0.2 };
  const model = createModel(spec);
  const data = dataset(kind, 'csr');

  it('is curvature · λ_max + l2', () => {
    const curvature = { linear: 2, logistic: 1 / 4, multinomial: 1 / 2 }[kind];
    expect(model.smoothness(data)).toBeCloseTo(curvature * gramLambdaMax(data.x, true) + 0.2, 12);
  });

  it('bounds how fast the gradient changes', () => {
    const L = model.smoothness(data);
    const [gx, gz] = [new Float32Array(model.layout.d), new Float32Array(model.layout.d)];
    for (let seed = 10; seed < 20; seed++) {
      const [x, z] = [params(model, seed), params(model, seed + 100)];
      model.lossGrad(x, data, gx);
      model.lossGrad(z, data, gz);
      const gradDist = Math.hypot(...gx.map((g, j) => g - gz[j]!));
      const dist = Math.hypot(...x.map((v, j) => v - z[j]!));
      expect(gradDist).toBeLessThanOrEqual(L * dist * (1 + 1e-6));
    }
  });
});

describe('smoothness on a diagonal design', () => {
  // A = diag(3, 1, 2), m = 3: (1/m)AᵀA = diag(3, 1/3, 4/3), so λ_max = 3 exactly.
  const data: Dataset = {
    x: { kind: 'dense', rows: 3, cols: 3, data: new Float32Array([3, 0, 0, 0, 1, 0, 0, 0, 2]) },
    y: new Float32Array([1, -1, 1]),
  };

  it('gives 2λ + l2 for least squares and λ/4 + l2 for logistic regression', () => {
    expect(createModel({ kind: 'linear', nFeatures: 3, nClasses: 1, intercept: false, l2: 0.5 }).smoothness(data)).toBeCloseTo(6.5, 6);
    expect(createModel({ kind: 'logistic', nFeatures: 3, nClasses: 1, intercept: false, l2: 0 }).smoothness(data)).toBeCloseTo(0.75, 6);
  });

  it('gives λ/2 + l2 for softmax regression', () => {
    const labelled = { ...data, y: new Float32Array([0, 1, 1]) };
    expect(createModel({ kind: 'multinomial', nFeatures: 3, nClasses: 2, intercept: false, l2: 0 }).smoothness(labelled)).toBeCloseTo(1.5, 6);
  });
});

describe('shape errors', () => {
  const model = createModel({ kind: 'multinomial', nFeatures: N_FEATURES, nClasses: 3, intercept: true, l2: 0 });
  const data = dataset('multinomial', 'dense');
  const x = params(model);

  it('name both sizes', () => {
    expect(() => model.lossGrad(new Float32Array(17), data, null)).toThrow(/length 17, the model has d = 18/);
    expect(() => model.lossGrad(x, data, new Float32Array(15))).toThrow(/grad has length 15, the model has d = 18/);
    const narrow = { x: randomDense(4, N_ROWS, 4, 0.3), y: data.y };
    for (const call of [() => model.lossGrad(x, narrow, null), () => model.metric(x, narrow), () => model.smoothness(narrow)]) {
      expect(call).toThrow(/4 feature columns, the model expects nFeatures = 5/);
    }
    expect(() => model.lossGrad(x, { x: data.x, y: data.y.subarray(1) }, null)).toThrow(/12 rows but 11 labels/);
  });

  it('reject empty data and minibatches and rows past the end', () => {
    expect(() => model.lossGrad(x, data, null, new Uint32Array(0))).toThrow(RangeError);
    expect(() => model.lossGrad(x, { x: randomDense(4, 0, N_FEATURES, 0), y: new Float32Array(0) }, null)).toThrow(/no rows/);
    expect(() => model.lossGrad(x, data, null, new Uint32Array([12]))).toThrow(/row index 12 out of range/);
  });
});
