import { describe, expect, it } from 'vitest';
import { simulate, type SimOptions } from '../sim/simulate.js';
import { ALGORITHMS, type AlgorithmName } from './methods.js';
import { tinySimOptions } from '../sim/testing.js';
import type { FederatedDataset } from '../data/types.js';
import type { Dataset, ModelSpec } from '../models/types.js';
import { heterogeneousLeastSquares, syntheticLogistic } from '../data/synthetic.js';
import { exactLeastSquares } from '../models/linear.js';
import { createModel, defaultModelSpec } from '../models/index.js';
import { smoothnessOf } from '../sim/simulate.js';
import { makePruner } from '../core/prune.js';

const dense = (rows: number[][], y: number[]): Dataset => ({
  x: { kind: 'dense', rows: rows.length, cols: rows[0]!.length, data: Float32Array.from(rows.flat()) },
  y: Float32Array.from(y),
});

/** f_1(x) = (x − 1)², f_2(x) = (x − 3)²: one sample each, a = 1. The minimiser of the mean is 2. */
const twoClients: FederatedDataset = {
  name: 'two-clients',
  task: 'regression',
  nFeatures: 1,
  nClasses: 1,
  clients: [dense([[1]], [1]), dense([[1]], [3])],
  meta: {},
};
const scalarLinear: ModelSpec = { kind: 'linear', nFeatures: 1, nClasses: 1, intercept: false, l2: 0 };

/** γ = 1/4 and seed 1, 2 rounds: the numbers of the hand-checked examples below. */
const options = (algorithm: AlgorithmName, over: Partial<SimOptions> = {}): SimOptions =>
  tinySimOptions(algorithm, scalarLinear, { step: { gamma: 0.25, p: 0.5, lambda: 0, steDecay: 0, batchSize: 0, seed: 1 }, rounds: 2, ...over });

describe('proxskip on two scalar clients, by hand', () => {
  // γ = 1/4, p = 1/2, k = 2, x₀ = 0, h = 0. ∇f_i(x) = 2(x − c_i).
  // Round 1. Client 1: 0 → 0.5 → 0.75. Client 2: 0 → 1.5 → 2.25. Average 1.5.
  //   h_1 = (p/γ)(1.5 − 0.75) = 1.5, h_2 = 2(1.5 − 2.25) = −1.5.
  // Round 2. Client 1: 1.5 → 1.625 → 1.6875, sends 1.6875 − (γ/p)·1.5 = 0.9375.
  //   Client 2: 1.5 → 1.875 → 2.0625, sends 2.0625 + 0.75 = 2.8125. Average 1.875.
  //   h_1 = 2(1.875 − 0.9375) = 1.875, h_2 = −1.875 (→ ∇f_i(2) = ±2 at the optimum).
  it('matches the hand-computed iterates and control variates', async () => {
    const r1 = await simulate(twoClients, options('proxskip', { rounds: 1 }));
    expect(Array.from(r1.average)).toEqual([1.5]);
    expect(r1.h.map((h) => h![0])).toEqual([1.5, -1.5]);
    const r2 = await simulate(twoClients, options('proxskip', { rounds: 2 }));
    expect(Array.from(r2.average)).toEqual([1.875]);
    expect(r2.h.map((h) => h![0])).toEqual([1.875, -1.875]);
    // train loss at round 2: ((1.875 − 1)² + (1.875 − 3)²) / 2 = (0.765625 + 1.265625) / 2
    expect(r2.records[2]!.trainLoss).toBeCloseTo(1.015625, 6);
    // one float per client per round up and down; a 1-float message is 9 header + 4 value bytes (dense)
    expect(r2.records[2]!.uplinkFloats).toBe(4);
    expect(r2.records[2]!.downlinkFloats).toBe(4);
  });

  it('fedavg has no control variates and averages plain local iterates', async () => {
    // Round 2 from 1.5: client 1: 1.25 → 1.125; client 2: 2.25 → 2.625; average 1.875.
    const r = await simulate(twoClients, options('fedavg'));
    expect(Array.from(r.average)).toEqual([1.875]);
    expect(r.h).toEqual([null, null]);
    expect(r.records.every((rec) => rec.sumHNorm === 0)).toBe(true);
  });
});

describe('sparse methods on a 2-client, 2-coordinate problem, by hand', () => {
  // f_1(x) = (x_1 − 2)² + (x_2 − 1)² as two samples e_1, e_2 with targets 2, 1 (MSE over 2 rows halves it):
  // loss_1 = ½[(x_1 − 2)² + (x_2 − 1)²], ∇ = (x_1 − 2, x_2 − 1). Client 2: targets 0, 3.
  const data: FederatedDataset = {
    name: 'two-by-two',
    task: 'regression',
    nFeatures: 2,
    nClasses: 1,
    clients: [dense([[1, 0], [0, 1]], [2, 1]), dense([[1, 0], [0, 1]], [0, 3])],
    meta: {},
  };
  const spec: ModelSpec = { kind: 'linear', nFeatures: 2, nClasses: 1, intercept: false, l2: 0 };
  // γ = 0.5, p = 0.5, one local step, K = 1 (sparsity 0.5).
  // sparse-proxskip, round 1: z_i = 0 − 0.5·∇f_i(TopK(0) = 0) = 0.5·c_i: client 1 (1, 0.5), client 2 (0, 1.5).
  //   s_1 = TopK = (1, 0), s_2 = (0, 1.5); x̄ = (0.5, 0.75); h_1 = (p/γ)(x̄ − s_1) = (−0.5, 0.75), h_2 = (0.5, −0.75).
  //   Clients continue from z = TopK(x̄) = (0, 0.75); the evaluated model is the same.
  it('sparse-proxskip: sends TopK(z), averages, moves h towards the unpruned average', async () => {
    const r = await simulate(data, {
      ...options('sparse-proxskip', { rounds: 1, localSteps: 1, modelSpec: spec, sparsity: 0.5 }),
      step: { gamma: 0.5, p: 0.5, lambda: 0, steDecay: 0, batchSize: 0, seed: 1 },
    });
    expect(Array.from(r.average)).toEqual([0.5, 0.75]);
    expect(Array.from(r.model)).toEqual([0, 0.75]);
    expect(Array.from(r.h[0]!)).toEqual([-0.5, 0.75]);
    expect(Array.from(r.h[1]!)).toEqual([0.5, -0.75]);
    expect(r.records[1]!.uplinkFloats).toBe(2); // one value per client
    expect(r.records[1]!.nnz).toBe(1);
  });

  // accelerated-server-pruning, round 1: x̂_1 = (1, 0.5), x̂_2 = (0, 1.5); a = (0.5, 1); TopK(a) = (0, 1).
  //   h_i = (p/γ)(TopK(a) − u_i): h_1 = (−1, 0.5), h_2 = (0, −0.5); Σh = (−1, 0) = (p·n/γ)(TopK(a) − a) = 2·(−0.5, 0).
  it('accelerated-server-pruning: Σh = (p·n/γ)(TopK(a) − a)', async () => {
    const r = await simulate(data, {
      ...options('accelerated-server-pruning', { rounds: 1, localSteps: 1, modelSpec: spec, sparsity: 0.5 }),
      step: { gamma: 0.5, p: 0.5, lambda: 0, steDecay: 0, batchSize: 0, seed: 1 },
    });
    expect(Array.from(r.average)).toEqual([0.5, 1]);
    expect(Array.from(r.model)).toEqual([0, 1]);
    expect(Array.from(r.h[0]!)).toEqual([-1, 0.5]);
    expect(Array.from(r.h[1]!)).toEqual([0, -0.5]);
    expect(r.records[1]!.sumHNorm).toBe(1);
  });
});

function randomProblem(seed: number): { data: FederatedDataset; spec: ModelSpec; gamma: number } {
  const data = heterogeneousLeastSquares({ clients: 4, seed, nFeatures: 12, samplesPerClient: 30, heterogeneity: 1, noise: 0.1 });
  const spec = defaultModelSpec('regression', data.nFeatures, 1, {});
  const gamma = 1 / smoothnessOf(createModel(spec), data);
  return { data, spec, gamma };
}

describe('invariants on random heterogeneous problems', () => {
  const zeroSum: AlgorithmName[] = ['proxskip', 'randprox-l1', 'sparse-proxskip-prox', 'sparse-proxskip', 'sparse-proxskip-local', 'server-pruning-modified'];
  for (const algorithm of zeroSum) {
    it(`${algorithm}: Σ_i h_i = 0 after every round`, async () => {
      for (const seed of [1, 2, 3]) {
        const { data, spec, gamma } = randomProblem(seed);
        const r = await simulate(data, {
          ...options(algorithm, { modelSpec: spec, sparsity: 0.75, rounds: 15, localSteps: 5, schedule: 'random' }),
          step: { gamma, p: 0.2, lambda: 0.01, steDecay: 0, batchSize: 0, seed },
        });
        for (const rec of r.records.slice(1)) {
          expect(rec.hNormSum).toBeGreaterThan(0);
          expect(rec.sumHNorm / rec.hNormSum).toBeLessThan(1e-5);
        }
      }
    });
  }

  it('accelerated-server-pruning: the identity Σ_i h_i = (p·n/γ)(TopK(a) − a) after 1, 2 and 7 rounds', async () => {
    const { data, spec, gamma } = randomProblem(5);
    const p = 0.2;
    for (const rounds of [1, 2, 7]) {
      const r = await simulate(data, {
        ...options('accelerated-server-pruning', { modelSpec: spec, sparsity: 0.75, rounds, localSteps: 5 }),
        step: { gamma, p, lambda: 0, steDecay: 0, batchSize: 0, seed: 5 },
      });
      const n = data.clients.length;
      const c = (p * n) / gamma;
      const d = r.average.length;
      let maxErr = 0;
      let scale = 0;
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (const h of r.h) s += h![j]!;
        const expected = c * (r.model[j]! - r.average[j]!);
        maxErr = Math.max(maxErr, Math.abs(s - expected));
        scale = Math.max(scale, Math.abs(expected));
      }
      expect(scale).toBeGreaterThan(0); // the identity is not trivially 0 = 0
      expect(maxErr / scale).toBeLessThan(1e-4);
      expect(r.records.at(-1)!.sumHNorm).toBeGreaterThan(0.1 * scale);
    }
  });

  it('sparse methods upload at most K values per prunable layer per client', async () => {
    const { data, spec, gamma } = randomProblem(7);
    const K = makePruner(createModel(spec).layout, 0.75).k;
    for (const algorithm of ['sparse-proxskip', 'sparse-proxskip-local', 'sparse-proxskip-prox'] as const) {
      const r = await simulate(data, {
        ...options(algorithm, { modelSpec: spec, sparsity: 0.75, rounds: 6, localSteps: 3 }),
        step: { gamma, p: 1 / 3, lambda: 0, steDecay: 0, batchSize: 0, seed: 7 },
      });
      for (let i = 1; i < r.records.length; i++) {
        const perRound = r.records[i]!.uplinkFloats - r.records[i - 1]!.uplinkFloats;
        expect(perRound).toBeLessThanOrEqual(data.clients.length * K);
        expect(r.records[i]!.nnz).toBeLessThanOrEqual(K);
      }
    }
  });
});

describe('convergence on heterogeneous least squares', () => {
  it('proxskip converges linearly to the exact minimiser; fedavg with the same local steps stalls at a biased point', async () => {
    const { data, spec, gamma } = randomProblem(11);
    const xStar = exactLeastSquares(data.clients, spec);
    const dist = (x: Float32Array): number => Math.sqrt(x.reduce((s, v, j) => s + (v - xStar[j]!) ** 2, 0));
    const norm = Math.sqrt(xStar.reduce((s, v) => s + v * v, 0));
    const run = async (algorithm: AlgorithmName, rounds: number) =>
      simulate(data, {
        ...options(algorithm, { modelSpec: spec, rounds, localSteps: 5 }),
        step: { gamma, p: 0.2, lambda: 0, steDecay: 0, batchSize: 0, seed: 11 },
      });
    const errs = [];
    for (const rounds of [40, 80, 160]) errs.push(dist((await run('proxskip', rounds)).average) / norm);
    // linear rate: the error shrinks by a roughly constant factor every 40 rounds, down to float32 precision
    expect(errs[1]!).toBeLessThan(errs[0]! * 0.3);
    expect(errs[2]!).toBeLessThan(1e-4);
    const fedavg160 = dist((await run('fedavg', 160)).average) / norm;
    const fedavg320 = dist((await run('fedavg', 320)).average) / norm;
    expect(fedavg160).toBeGreaterThan(1e-2);
    expect(Math.abs(fedavg320 - fedavg160)).toBeLessThan(0.05 * fedavg160); // stalled, not slow
  });
});

describe('determinism', () => {
  const data = syntheticLogistic({ alpha: 1, beta: 1, clients: 7, seed: 3, maxSamples: 80 });
  const spec = defaultModelSpec('multiclass', data.nFeatures, data.nClasses, {});
  const run = (algorithm: AlgorithmName, workers: number) =>
    simulate(data, {
      ...options(algorithm, { modelSpec: spec, sparsity: 0.9, rounds: 4, localSteps: 3, workers, schedule: 'random' }),
      step: { gamma: 0.05, p: 0.3, lambda: 0.001, steDecay: 0, batchSize: 16, seed: 3 },
    });
  it('the same seed gives identical records and models', async () => {
    const a = await run('sparse-proxskip', 1);
    const b = await run('sparse-proxskip', 1);
    expect(JSON.stringify(a.records)).toBe(JSON.stringify(b.records));
    expect(Buffer.from(a.model.buffer).equals(Buffer.from(b.model.buffer))).toBe(true);
  });
  it('worker threads give bit-identical results to one thread, for every algorithm', async () => {
    for (const algorithm of ALGORITHMS) {
      const a = await run(algorithm, 1);
      const b = await run(algorithm, 3);
      expect(JSON.stringify(b.records), algorithm).toBe(JSON.stringify(a.records));
      expect(Buffer.from(b.model.buffer).equals(Buffer.from(a.model.buffer)), algorithm).toBe(true);
    }
  });
});
