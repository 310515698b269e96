import { describe, expect, it } from 'vitest';
import { methodSpec } from '../algorithms/methods.js';
import { heterogeneousLeastSquares } from '../data/synthetic.js';
import { defaultModelSpec } from '../models/index.js';
import { simulate } from './simulate.js';

describe('simulate', () => {
  it('lets the event loop run between rounds, so a timer or signal handler can stop an in-process run', async () => {
    const data = heterogeneousLeastSquares({ clients: 2, seed: 0, nFeatures: 2, samplesPerClient: 5 });
    const rounds = 1_000_000; // minutes of work: the stop must end it
    let stop = false;
    setTimeout(() => (stop = true), 100);
    const result = await simulate(
      data,
      {
        method: methodSpec('proxskip'),
        modelSpec: defaultModelSpec('regression', 2, 1, {}),
        sparsity: 0,
        topkScope: 'global',
        step: { gamma: 0.01, p: 1, lambda: 0, steDecay: 0, batchSize: 0, seed: 0 },
        localSteps: 1,
        schedule: 'fixed',
        rounds,
        participation: 1,
        workers: 1,
        evalEvery: rounds,
        postHocTopk: false,
        timing: false,
      },
      { shouldStop: () => stop },
    );
    expect(result.interrupted).toBe(true);
    expect(result.records.length).toBeLessThan(rounds + 1);
  });

  it('stops as diverged on a non-finite train loss (a network with finite parameters can still overflow it)', async () => {
    const data = heterogeneousLeastSquares({ clients: 2, seed: 0, nFeatures: 2, samplesPerClient: 5 });
    data.clients[0]!.y[0] = NaN; // a finite model with a NaN loss, at x₀ = 0 already
    const opts = {
      method: methodSpec('fedavg'),
      modelSpec: defaultModelSpec('regression', 2, 1, {}),
      sparsity: 0,
      topkScope: 'global' as const,
      step: { gamma: 0.01, p: 1, lambda: 0, steDecay: 0, batchSize: 0, seed: 0 },
      localSteps: 1,
      schedule: 'fixed' as const,
      rounds: 2,
      participation: 1,
      workers: 1,
      evalEvery: 1,
      postHocTopk: false,
      timing: false,
    };
    await expect(simulate(data, opts)).rejects.toThrow('the train loss in round 0 is NaN: the run diverged');
  });
});
