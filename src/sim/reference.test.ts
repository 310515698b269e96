import { describe, expect, it } from 'vitest';
import { heterogeneousLeastSquares, syntheticLogistic } from '../data/synthetic.js';
import { createModel, defaultModelSpec, exactLeastSquares } from '../models/index.js';
import { smoothnessOf } from './simulate.js';
import { referenceOptima } from './reference.js';

const meanLoss = (model: ReturnType<typeof createModel>, clients: Parameters<typeof referenceOptima>[1], x: Float32Array): number =>
  clients.reduce((s, c) => s + model.lossGrad(x, c, null), 0) / clients.length;

describe('referenceOptima', () => {
  const data = heterogeneousLeastSquares({ clients: 3, seed: 1, nFeatures: 5, samplesPerClient: 8 });
  const spec = defaultModelSpec('regression', 5, 1, { intercept: true });
  const model = createModel(spec);
  const L = smoothnessOf(model, data);

  it('linear: f* is f at the exact least-squares solution, and the K-sparse reference is the best of all supports', () => {
    const { reference: r, points } = referenceOptima(model, data.clients, { sparsity: 0.6, topkScope: 'global', L });
    const exact = meanLoss(model, data.clients, Float32Array.from(exactLeastSquares(data.clients, spec)));
    expect(r.fStar).toBeCloseTo(exact, 9);
    expect(r.dense.rank).toBe(6);
    // K = 2 of 5 weights (the intercept is always free): all 10 supports, each solved exactly
    expect(r.sparse.k).toBe(2);
    let best = Infinity;
    for (let a = 0; a < 5; a++) {
      for (let b = a + 1; b < 5; b++) {
        const cols = [a, b];
        const sub = data.clients.map((c) => {
          const x = c.x as { kind: 'dense'; rows: number; cols: number; data: Float32Array };
          const data2 = new Float32Array(x.rows * 2);
          for (let i = 0; i < x.rows; i++) cols.forEach((j, q) => (data2[i * 2 + q] = x.data[i * x.cols + j]!));
          return { x: { kind: 'dense' as const, rows: x.rows, cols: 2, data: data2 }, y: c.y };
        });
        const theta = exactLeastSquares(sub, { ...spec, nFeatures: 2 });
        const full = new Float32Array(6);
        full[a] = theta[0]!;
        full[b] = theta[1]!;
        full[5] = theta[2]!;
        best = Math.min(best, meanLoss(model, data.clients, full));
      }
    }
    expect(r.fSparseRef).toBeCloseTo(best, 6);
    // the points are the ones the values belong to
    expect(meanLoss(model, data.clients, points.xSparse)).toBe(r.fSparseRef);
    expect(points.xSparse.subarray(0, 5).filter((v) => v !== 0)).toHaveLength(2);
    expect(meanLoss(model, data.clients, points.xStar)).toBe(r.fStar);
    expect(r.fSparseRef).toBeGreaterThanOrEqual(r.fStar);
  });

  it('multinomial: L-BFGS reaches a stationary point below what gradient descent reaches', () => {
    // Synthetic(α, β) labels are a linear argmax, so the classes are separable: L2 keeps the optimum finite
    const d = syntheticLogistic({ clients: 3, nFeatures: 6, nClasses: 3, maxSamples: 60, alpha: 0.5, beta: 0.5, seed: 2 });
    const m = createModel(defaultModelSpec('multiclass', 6, 3, { intercept: true, l2: 0.01 }));
    const { reference: r } = referenceOptima(m, d.clients, { sparsity: 0.5, topkScope: 'global', L: smoothnessOf(m, d), randomStarts: 1 });
    expect(r.dense.gradInf).toBeLessThan(1e-4);
    const x = new Float32Array(m.layout.d);
    const g = new Float32Array(m.layout.d);
    const step = 1 / smoothnessOf(m, d);
    for (let t = 0; t < 200; t++) {
      const sum = new Float32Array(m.layout.d);
      for (const c of d.clients) {
        m.lossGrad(x, c, g);
        for (let j = 0; j < g.length; j++) sum[j]! += g[j]! / d.clients.length;
      }
      for (let j = 0; j < x.length; j++) x[j]! -= step * sum[j]!;
    }
    expect(r.fStar).toBeLessThanOrEqual(meanLoss(m, d.clients, x));
    expect(r.fSparseRef).toBeGreaterThanOrEqual(r.fStar);
  });

  it('tries the extra starts first, best first, and ends at least as low as TopK of each; a given dense optimum is not computed again', () => {
    const d = syntheticLogistic({ clients: 2, nFeatures: 4, nClasses: 3, maxSamples: 30, alpha: 0.5, beta: 0.5, seed: 3 });
    const m = createModel(defaultModelSpec('multiclass', 4, 3, { intercept: true, l2: 0.01 }));
    const L = smoothnessOf(m, d);
    const first = referenceOptima(m, d.clients, { sparsity: 0.5, topkScope: 'global', L, randomStarts: 0 });
    const far = Float32Array.from(first.points.xStar, (v, j) => (j % 2 ? -3 * v : v));
    const { reference: r } = referenceOptima(m, d.clients, {
      sparsity: 0.5,
      topkScope: 'global',
      L,
      randomStarts: 0,
      extraStarts: [
        { name: 'far', x: far },
        { name: 'x*', x: first.points.xStar },
      ],
      dense: { ...first.dense, dense: { ...first.dense.dense, method: 'given' } },
    });
    expect(r.sparse.starts.map((x) => x.name)).toEqual(['x*', 'far', 'zero', 'TopK(x*)', 'greedy (OMP)']);
    expect(r.dense.method).toBe('given');
    expect(r.fStar).toBe(first.reference.fStar);
    expect(r.fSparseRef).toBe(first.reference.fSparseRef);
  });

  it('a non-linear model searches within its time limit: with none left, TopK(x*) is the reference and every start is listed as not run', () => {
    const d = syntheticLogistic({ clients: 2, nFeatures: 4, nClasses: 3, maxSamples: 30, alpha: 0.5, beta: 0.5, seed: 3 });
    const m = createModel(defaultModelSpec('multiclass', 4, 3, { intercept: true, l2: 0.01 }));
    const { reference: r, points } = referenceOptima(m, d.clients, { sparsity: 0.5, topkScope: 'global', L: smoothnessOf(m, d), randomStarts: 1, sparseSeconds: 0 });
    expect(r.sparse.timeLimit).toEqual({ seconds: 0, notRun: ['zero', 'TopK(x*)', 'greedy (OMP)', 'TopK(x* + noise 0)'] });
    expect(r.sparse.starts).toEqual([{ name: 'TopK(x*), no search (time limit)', f: r.fSparseRef, ihtSteps: 0, supports: 0, cut: true }]);
    expect(r.sparse.method).toMatch(/within 0 s$/);
    // K = 6 of the 12 weights, the 3 intercepts dense
    expect(points.xSparse.subarray(0, 12).filter((v) => v !== 0)).toHaveLength(6);
    expect(meanLoss(m, d.clients, points.xSparse)).toBe(r.fSparseRef);
    expect(r.fSparseRef).toBeGreaterThanOrEqual(r.fStar);
  });
});
