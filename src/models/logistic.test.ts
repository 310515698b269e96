import { describe, expect, it } from 'vitest';
import { createModel } from './index.js';
import type { Dataset } from './types.js';

const model = createModel({ kind: 'logistic', nFeatures: 1, nClasses: 1, intercept: false, l2: 0 });

function data(a: number[], y: number[]): Dataset {
  return { x: { kind: 'dense', rows: a.length, cols: 1, data: Float32Array.from(a) }, y: Float32Array.from(y) };
}

describe('logistic model', () => {
  it('has loss log 2 and gradient −y·a/2 at w = 0', () => {
    const grad = new Float32Array(1);
    expect(model.lossGrad(new Float32Array([0]), data([3], [1]), grad)).toBeCloseTo(Math.LN2, 12);
    expect(grad[0]).toBe(-1.5);
  });

  it('stays finite at scores of ±1000', () => {
    // scores y·s = +1000 (loss 0, gradient 0) and −1000 (loss 1000, gradient −y·a = 1 per sample)
    const grad = new Float32Array(1);
    expect(model.lossGrad(new Float32Array([1000]), data([1, -1], [1, 1]), grad)).toBeCloseTo(500, 9);
    expect(grad[0]).toBeCloseTo(0.5, 12);
    expect(model.lossGrad(new Float32Array([1000]), data([1], [1]), grad)).toBe(0);
    expect(grad[0]).toBe(0);
  });

  it('counts a score of exactly 0 as +1 in the accuracy', () => {
    // scores [0, 2, −1] predict [+1, +1, −1]
    expect(model.metric(new Float32Array([1]), data([0, 2, -1], [1, -1, -1]))).toEqual({ name: 'accuracy', value: 2 / 3 });
    expect(model.metric(new Float32Array([1]), data([0], [-1])).value).toBe(0);
  });

  it('rejects labels other than −1 and +1', () => {
    expect(() => model.lossGrad(new Float32Array([1]), data([1, 1], [1, 0]), null)).toThrow(/label 0 of row 1 is not -1 or \+1/);
    expect(() => model.metric(new Float32Array([1]), data([1], [2]))).toThrow(RangeError);
  });
});
