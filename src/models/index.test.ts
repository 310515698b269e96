import { describe, expect, it } from 'vitest';
import { createModel, defaultModelSpec, paramLayout } from './index.js';
import type { ModelSpec } from './types.js';

describe('paramLayout', () => {
  it('puts the prunable weights first and the bias, when there is one, after them', () => {
    const spec: ModelSpec = { kind: 'multinomial', nFeatures: 4, nClasses: 3, intercept: true, l2: 0 };
    expect(paramLayout(spec)).toEqual({
      d: 15,
      segments: [
        { name: 'weights', offset: 0, size: 12, prunable: true },
        { name: 'bias', offset: 12, size: 3, prunable: false },
      ],
    });
    expect(paramLayout({ ...spec, kind: 'logistic', nClasses: 1, intercept: false })).toEqual({
      d: 4,
      segments: [{ name: 'weights', offset: 0, size: 4, prunable: true }],
    });
  });
});

describe('createModel', () => {
  const spec: ModelSpec = { kind: 'linear', nFeatures: 3, nClasses: 1, intercept: true, l2: 0.1 };

  it('keeps its own copy of the spec', () => {
    const copy = { ...spec };
    const model = createModel(copy);
    copy.nFeatures = 7;
    expect(model.spec).toEqual(spec);
    expect(model.layout.d).toBe(4);
  });

  it('rejects invalid specs', () => {
    const bad: [Partial<ModelSpec> | Record<string, unknown>, RegExp][] = [
      [{ kind: 'svm' }, /kind must be one of linear, logistic, multinomial, got svm/],
      [{ nFeatures: 0 }, /nFeatures must be a positive integer, got 0/],
      [{ nFeatures: 2.5 }, /nFeatures/],
      [{ kind: 'logistic', nClasses: 2 }, /nClasses must be 1 for a logistic model, got 2/],
      [{ kind: 'multinomial', nClasses: 1 }, /nClasses must be an integer >= 2 for a multinomial model, got 1/],
      [{ l2: -1 }, /l2 must be finite and >= 0, got -1/],
      [{ l2: Number.NaN }, /l2/],
    ];
    for (const [change, message] of bad) expect(() => createModel({ ...spec, ...change } as ModelSpec)).toThrow(message);
  });
});

describe('defaultModelSpec', () => {
  it('maps each task to its model, intercept and L2 off unless asked for', () => {
    expect(defaultModelSpec('regression', 5, 1, {})).toEqual({ kind: 'linear', nFeatures: 5, nClasses: 1, intercept: false, l2: 0 });
    expect(defaultModelSpec('binary', 5, 1, { l2: 0.01 }).kind).toBe('logistic');
    expect(defaultModelSpec('multiclass', 784, 62, { intercept: true })).toEqual({
      kind: 'multinomial',
      nFeatures: 784,
      nClasses: 62,
      intercept: true,
      l2: 0,
    });
  });

  it('rejects an unknown task', () => {
    expect(() => defaultModelSpec('ranking' as never, 5, 1, {})).toThrow(/task must be one of/);
  });
});
