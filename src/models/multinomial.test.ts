import { describe, expect, it } from 'vitest';
import { createModel } from './index.js';
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
