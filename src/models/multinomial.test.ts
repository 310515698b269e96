import { describe, expect, it } from 'vitest';
import { rngFor } from '../core/rng.js';
import { createModel } from './index.js';
import { randomDense } from './testing.js';
import type { Dataset } from './types.js';

// One feature, three classes, W = [w0, w1, w2]: the scores of a sample are a·W.
const model = createModel({ kind: 'multinomial', nFeatures: 1, nClasses: 3, intercept: true, l2: 0 });

function data(a: number[], y: number[]): Dataset {
  return { x: { kind: 'dense', rows: a.length, cols: 1, data: Float32Array.from(a) }, y: Float32Array.from(y) };
}

describe('multinomial model', () => {
  it('has loss log C and gradient (1/C − [c = y])·(a, 1) at 0', () => {
    const grad = new Float32Array(6);
    expect(model.lossGrad(new Float32Array(6), data([2], [1]), grad)).toBeCloseTo(Math.log(3), 12);
    const p = 1 / 3;
    [2 * p, 2 * (p - 1), 2 * p, p, p - 1, p].forEach((g, j) => expect(grad[j]).toBeCloseTo(g, 7));
  });

  it('stays finite at scores of ±1000', () => {
    // scores [1000, −1000, 0], label 1: loss = logsumexp − s_1 = 1000 − (−1000); softmax ≈ e_0.
    const grad = new Float32Array(6);
    const loss = model.lossGrad(new Float32Array([1000, -1000, 0, 0, 0, 0]), data([1], [1]), grad);
    expect(loss).toBeCloseTo(2000, 9);
    expect([...grad]).toEqual([1, -1, 0, 1, -1, 0]);
  });

  it('takes the argmax, ties going to the lower class', () => {
    // biases [1, 1, 0] with W = 0: classes 0 and 1 tie, 0 wins.
    const x = new Float32Array([0, 0, 0, 1, 1, 0]);
    expect(model.metric(x, data([5, 5, 5], [0, 1, 2]))).toEqual({ name: 'accuracy', value: 1 / 3 });
  });

  it('rejects labels outside {0, …, C−1}', () => {
    for (const label of [3, -1, 0.5]) {
      expect(() => model.lossGrad(new Float32Array(6), data([1], [label]), null)).toThrow(/is not an integer in \[0, 2\]/);
    }
  });
});

describe('multinomial model against a float64 reference (62 classes, pixel-like data)', () => {
  const [m, n, C] = [300, 60, 62];
  const x = randomDense(5, m, n, 0.8, (rng) => 1 - rng.int(255) / 255);
  const rng = rngFor(6, 'multinomial/reference');
  const y = Float32Array.from({ length: m }, () => rng.int(C));
  const params = Float32Array.from({ length: n * C + C }, () => 0.3 * rng.normal());
  const big = createModel({ kind: 'multinomial', nFeatures: n, nClasses: C, intercept: true, l2: 0.01 });

  /** Loss and gradient computed directly in float64 over the dense rows. */
  function reference(rows: number[]): [number, Float64Array] {
    const grad = new Float64Array(params.length);
    let loss = 0;
    for (const r of rows) {
      const s = Array.from({ length: C }, (_, c) => {
        let v = params[n * C + c]!;
        for (let j = 0; j < n; j++) v += x.data[r * n + j]! * params[j * C + c]!;
        return v;
      });
      const max = Math.max(...s);
      const z = s.reduce((acc, v) => acc + Math.exp(v - max), 0);
      loss += max + Math.log(z) - s[y[r]!]!;
      for (let c = 0; c < C; c++) {
        const d = (Math.exp(s[c]! - max) / z - (c === y[r] ? 1 : 0)) / rows.length;
        for (let j = 0; j < n; j++) grad[j * C + c]! += x.data[r * n + j]! * d;
        grad[n * C + c]! += d;
      }
    }
    let norm2 = 0;
    for (let k = 0; k < n * C; k++) {
      norm2 += params[k]! ** 2;
      grad[k]! += 0.01 * params[k]!;
    }
    return [loss / rows.length + (0.01 / 2) * norm2, grad];
  }

  it.each([
    ['full batch', undefined],
    ['minibatch', Uint32Array.from({ length: 37 }, (_, i) => (i * 101) % m)],
  ])('%s: loss to 1e-12 and gradient to 1e-5 of the largest entry', (_label, rows) => {
    const [loss, expected] = reference(rows === undefined ? [...Array(m).keys()] : [...rows]);
    const grad = new Float32Array(params.length);
    expect(Math.abs(big.lossGrad(params, { x, y }, grad, rows) - loss)).toBeLessThanOrEqual(1e-12 * loss);
    const scale = Math.max(...expected.map(Math.abs));
    const diff = Math.max(...grad.map((g, k) => Math.abs(g - expected[k]!)));
    expect(diff / scale).toBeLessThanOrEqual(1e-5);
  });
});
