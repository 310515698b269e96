import { describe, expect, it } from 'vitest';
import { heterogeneousLeastSquares } from '../data/synthetic.js';
import { defaultModelSpec } from '../models/index.js';
import { hasConverged, MIN_ROUNDS } from './convergence.js';
import { simulate } from './simulate.js';
import { tinySimOptions } from './testing.js';

const curve = (losses: (number | null)[]) => losses.map((trainLoss, round) => ({ round, trainLoss }));

describe('hasConverged', () => {
  it('compares the last loss with the one ⌈r/10⌉ rounds before, relative to the last', () => {
    // r = 20: the window starts at round 18; |1.0001 − 1.0000| / 1.0000 = 1e-4
    const losses = Array.from({ length: 21 }, (_, r) => (r < 18 ? 5 : r === 18 ? 1.0001 : 1));
    expect(hasConverged(curve(losses), 1e-4 + 1e-12)).toBe(true);
    expect(hasConverged(curve(losses), 0.9e-4)).toBe(false);
    // r = 25: ⌈2.5⌉ = 3 rounds back, round 22
    const longer = Array.from({ length: 26 }, (_, r) => (r <= 22 ? 2 : 1));
    expect(hasConverged(curve(longer), 0.5)).toBe(false); // |2 − 1| / 1 = 1
    expect(hasConverged(curve(longer), 1)).toBe(true);
  });

  it('never before MIN_ROUNDS, never on an unevaluated last round, and off at tol 0', () => {
    const flat = Array.from({ length: MIN_ROUNDS }, () => 1);
    expect(hasConverged(curve(flat), 0.1)).toBe(false); // last round MIN_ROUNDS − 1
    expect(hasConverged(curve([...flat, 1]), 0.1)).toBe(true);
    expect(hasConverged(curve([...flat, null]), 0.1)).toBe(false);
    expect(hasConverged(curve([...flat, 1]), 0)).toBe(false);
  });

  it('uses the last evaluated round at or before the window start (--eval-every)', () => {
    // evaluated every 5 rounds: at r = 30 the window starts at 27, so round 25 is compared
    const losses = Array.from({ length: 31 }, (_, r) => (r % 5 === 0 ? (r === 25 ? 1.5 : r === 30 ? 1 : 9) : null));
    expect(hasConverged(curve(losses), 0.49)).toBe(false);
    expect(hasConverged(curve(losses), 0.5)).toBe(true);
  });
});

describe('simulate with stopTol', () => {
  it('stops a run that has converged and says so; the rounds are those of the uncapped run', async () => {
    const data = heterogeneousLeastSquares({ clients: 2, seed: 0, nFeatures: 2, samplesPerClient: 5 });
    const opts = tinySimOptions('proxskip', defaultModelSpec('regression', 2, 1, {}), { rounds: 2000 });
    const full = await simulate(data, opts);
    const stopped = await simulate(data, { ...opts, stopTol: 1e-6 });
    expect(full.converged).toBe(false);
    expect(stopped.converged).toBe(true);
    const r = stopped.records.length - 1;
    expect(r).toBeGreaterThanOrEqual(MIN_ROUNDS);
    expect(r).toBeLessThan(2000);
    expect(stopped.records).toEqual(full.records.slice(0, r + 1));
    expect(hasConverged(full.records.slice(0, r), 1e-6)).toBe(false); // it stopped at the first round the rule holds
  });
});

describe('simulate with topkAt', () => {
  it("evaluates TopK of the final average at each sparsity; at the run's own it is the post-hoc TopK", async () => {
    const data = heterogeneousLeastSquares({ clients: 2, seed: 0, nFeatures: 4, samplesPerClient: 6 });
    const r = await simulate(data, tinySimOptions('proxskip', defaultModelSpec('regression', 4, 1, {}), { sparsity: 0.5, rounds: 5, topkAt: [0.5, 0.75, 0] }));
    expect(r.topkAt.map((t) => [t.sparsity, t.k, t.nnz])).toEqual([
      [0.5, 2, 2],
      [0.75, 1, 1],
      [0, 4, 4],
    ]);
    expect(r.topkAt[0]!.trainLoss).toBe(r.postHocTopk!.trainLoss);
    expect(r.topkAt[2]!.trainLoss).toBe(r.records.at(-1)!.trainLoss); // nothing pruned: the model itself
  });
});
