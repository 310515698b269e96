import { describe, expect, it } from 'vitest';
import type { Dataset, DenseMatrix } from '../models/types.js';
import { DataError } from './errors.js';
import { heterogeneousLeastSquares, syntheticImages, syntheticLogistic } from './synthetic.js';

function denseX(d: Dataset): DenseMatrix {
  if (d.x.kind !== 'dense') throw new Error('expected dense');
  return d.x;
}

/** Mean of column j over a client's rows. */
function columnMean(d: Dataset, j: number): number {
  const x = denseX(d);
  let s = 0;
  for (let r = 0; r < x.rows; r++) s += x.data[r * x.cols + j]!;
  return s / x.rows;
}

function std(values: number[]): number {
  const m = values.reduce((a, b) => a + b, 0) / values.length;
  return Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / values.length);
}

describe('syntheticLogistic', () => {
  const opts = { alpha: 1, beta: 1, clients: 6, seed: 7 };

  it('has the FedProx shapes: 60 features, 10 classes, 50..maxSamples samples per client, 20% pooled test', () => {
    const d = syntheticLogistic(opts);
    expect(d.task).toBe('multiclass');
    expect(d.nFeatures).toBe(60);
    expect(d.nClasses).toBe(10);
    expect(d.clients).toHaveLength(6);
    let trainTotal = 0;
    for (const c of d.clients) {
      expect(c.x.kind).toBe('dense');
      expect(c.x.cols).toBe(60);
      expect(c.x.rows).toBe(c.y.length);
      for (const label of c.y) expect(Number.isInteger(label) && label >= 0 && label < 10).toBe(true);
      trainTotal += c.y.length;
    }
    const summary = d.meta.samplesPerClient as { min: number; max: number; total: number };
    expect(summary.min).toBeGreaterThanOrEqual(50);
    expect(summary.max).toBeLessThanOrEqual(1000);
    expect(d.test!.y.length + trainTotal).toBe(summary.total);
    expect(d.test!.y.length / summary.total).toBeCloseTo(0.2, 1);
    expect(d.meta).toMatchObject({ generator: 'fedprox-synthetic', alpha: 1, beta: 1 });
  });

  it('is deterministic for a seed, and client k does not depend on the client count', () => {
    const a = syntheticLogistic(opts);
    const b = syntheticLogistic(opts);
    expect(a.clients.map((c) => denseX(c).data)).toEqual(b.clients.map((c) => denseX(c).data));
    expect(a.clients.map((c) => c.y)).toEqual(b.clients.map((c) => c.y));
    expect(denseX(syntheticLogistic({ ...opts, seed: 8 }).clients[0]!).data).not.toEqual(denseX(a.clients[0]!).data);
    const fewer = syntheticLogistic({ ...opts, clients: 3, testFraction: 0 });
    const more = syntheticLogistic({ ...opts, clients: 5, testFraction: 0 });
    expect(denseX(fewer.clients[2]!).data).toEqual(denseX(more.clients[2]!).data);
  });

  it('respects maxSamples, nFeatures, nClasses and testFraction 0 (no test set)', () => {
    const d = syntheticLogistic({ ...opts, maxSamples: 60, nFeatures: 5, nClasses: 3, testFraction: 0 });
    expect(d.test).toBeUndefined();
    for (const c of d.clients) {
      expect(c.y.length).toBeLessThanOrEqual(60);
      expect(c.x.cols).toBe(5);
      for (const label of c.y) expect(label).toBeLessThan(3);
    }
  });

  it('makes clients differ: input means with β, label mixes with α', () => {
    const d = syntheticLogistic({ alpha: 1, beta: 1, clients: 10, seed: 1 });
    // v_k ~ N(B_k, 1): per-client means of feature 0 spread with std about sqrt(1 + β²)
    expect(std(d.clients.map((c) => columnMean(c, 0)))).toBeGreaterThan(0.5);
    const majorities = new Set(d.clients.map((c) => majorityLabel(c.y)));
    expect(majorities.size).toBeGreaterThan(1);
  });

  it('rejects bad options with a DataError', () => {
    expect(() => syntheticLogistic({ ...opts, alpha: -1 })).toThrow(DataError);
    expect(() => syntheticLogistic({ ...opts, clients: 0 })).toThrow(/clients must be an integer >= 1, got 0/);
    expect(() => syntheticLogistic({ ...opts, nClasses: 1 })).toThrow(DataError);
    expect(() => syntheticLogistic({ ...opts, testFraction: 1 })).toThrow(/testFraction/);
  });
});

function majorityLabel(y: Float32Array): number {
  const counts = new Map<number, number>();
  for (const v of y) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
}

describe('heterogeneousLeastSquares', () => {
  it('has the requested shapes and is deterministic', () => {
    const d = heterogeneousLeastSquares({ clients: 4, seed: 3 });
    expect(d.task).toBe('regression');
    expect(d.nClasses).toBe(1);
    expect(d.nFeatures).toBe(20);
    expect(d.clients.map((c) => c.y.length)).toEqual([40, 40, 40, 40]);
    expect(d.test!.y.length).toBe(40);
    expect(d.test!.x.cols).toBe(20);
    const again = heterogeneousLeastSquares({ clients: 4, seed: 3 });
    expect(denseX(again.clients[3]!).data).toEqual(denseX(d.clients[3]!).data);
    expect(again.clients[3]!.y).toEqual(d.clients[3]!.y);
  });

  it('shifts client means with heterogeneity', () => {
    const spread = (h: number) => {
      const d = heterogeneousLeastSquares({ clients: 12, seed: 5, heterogeneity: h, samplesPerClient: 200 });
      return std(d.clients.map((c) => columnMean(c, 0)));
    };
    expect(spread(0)).toBeLessThan(0.3); // only sampling noise, scale <= 2 over 160 samples
    expect(spread(2)).toBeGreaterThan(1);
  });

  it('gives clients different optima: the pooled least-squares fit fits no client exactly', () => {
    const d = heterogeneousLeastSquares({ clients: 4, seed: 11, nFeatures: 3, noise: 0, testFraction: 0 });
    const pooled = solveLeastSquares(d.clients);
    for (const c of d.clients) {
      expect(meanSquaredResidual(c, solveLeastSquares([c]))).toBeLessThan(1e-6); // noise 0: own optimum fits exactly
      expect(meanSquaredResidual(c, pooled)).toBeGreaterThan(1e-2);
    }
  });

  it('rejects bad options with a DataError', () => {
    expect(() => heterogeneousLeastSquares({ clients: 2, seed: 1, heterogeneity: -0.5 })).toThrow(DataError);
    expect(() => heterogeneousLeastSquares({ clients: 2, seed: 1, samplesPerClient: 0 })).toThrow(/samplesPerClient/);
  });
});

/** argmin_w sum over parts of ||X w - y||² by the normal equations (small, well-conditioned tests only). */
function solveLeastSquares(parts: Dataset[]): number[] {
  const n = parts[0]!.x.cols;
  const A = Array.from({ length: n }, () => new Array<number>(n + 1).fill(0)); // [XᵀX | Xᵀy]
  for (const p of parts) {
    const x = denseX(p);
    for (let r = 0; r < x.rows; r++) {
      for (let i = 0; i < n; i++) {
        const xi = x.data[r * n + i]!;
        for (let j = 0; j < n; j++) A[i]![j]! += xi * x.data[r * n + j]!;
        A[i]![n]! += xi * p.y[r]!;
      }
    }
  }
  for (let col = 0; col < n; col++) {
    for (let row = col + 1; row < n; row++) {
      const f = A[row]![col]! / A[col]![col]!;
      for (let k = col; k <= n; k++) A[row]![k]! -= f * A[col]![k]!;
    }
  }
  const w = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = A[i]![n]!;
    for (let j = i + 1; j < n; j++) s -= A[i]![j]! * w[j]!;
    w[i] = s / A[i]![i]!;
  }
  return w;
}

function meanSquaredResidual(d: Dataset, w: number[]): number {
  const x = denseX(d);
  let s = 0;
  for (let r = 0; r < x.rows; r++) {
    let pred = 0;
    for (let j = 0; j < x.cols; j++) pred += x.data[r * x.cols + j]! * w[j]!;
    s += (pred - d.y[r]!) ** 2;
  }
  return s / x.rows;
}

describe('syntheticImages', () => {
  it('makes side×side×3 NHWC rows, 10 classes, 32 + 8 samples per client; client k depends on (seed, k) only', () => {
    const d = syntheticImages({ clients: 3, seed: 5 });
    expect([d.name, d.task, d.nFeatures, d.nClasses]).toEqual(['images', 'multiclass', 192, 10]);
    expect(d.clients.map((c) => c.y.length)).toEqual([32, 32, 32]);
    expect(d.test!.y.length).toBe(24);
    for (const c of d.clients) for (const label of c.y) expect(Number.isInteger(label) && label >= 0 && label < 10).toBe(true);
    const more = syntheticImages({ clients: 5, seed: 5 });
    for (let k = 0; k < 3; k++) {
      expect(denseX(more.clients[k]!).data).toEqual(denseX(d.clients[k]!).data);
      expect(more.clients[k]!.y).toEqual(d.clients[k]!.y);
    }
    expect(denseX(syntheticImages({ clients: 3, seed: 6 }).clients[0]!).data).not.toEqual(denseX(d.clients[0]!).data);
    expect(syntheticImages({ clients: 1, seed: 5, side: 16 }).nFeatures).toBe(768);
  });

  it("skews each client's labels towards its favourite class k mod C, and images of a class share its pattern", () => {
    const d = syntheticImages({ clients: 10, seed: 1, noise: 0 });
    for (let k = 0; k < 10; k++) {
      const own = d.clients[k]!.y.filter((y) => y === k).length;
      expect(own).toBeGreaterThan(32 / 4); // half of them, plus a tenth of the rest: ~17 of 32
    }
    // noise 0: two images of one class differ by their clients' colour shifts only, the same for every pixel of a channel
    const [a, b] = [d.clients[0]!, d.clients[1]!];
    const i = a.y.findIndex((y) => b.y.includes(y));
    const j = b.y.indexOf(a.y[i]!);
    expect(i >= 0 && j >= 0).toBe(true);
    const diff = (c: number) => Array.from({ length: 64 }, (_, p) => denseX(a).data[i * 192 + p * 3 + c]! - denseX(b).data[j * 192 + p * 3 + c]!);
    for (let c = 0; c < 3; c++) {
      const v = diff(c);
      for (const x of v) expect(x).toBeCloseTo(v[0]!, 5);
    }
  });
});
