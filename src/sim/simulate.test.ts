import { describe, expect, it } from 'vitest';
import { methodSpec } from '../algorithms/methods.js';
import { heterogeneousLeastSquares } from '../data/synthetic.js';
import { createModel, defaultModelSpec } from '../models/index.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { simulate } from './simulate.js';
import { tinySimOptions } from './testing.js';

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

describe('resuming a run from its state after a round', () => {
  // the random schedule and partial participation make every round draw coins: a resumed run must draw the same
  for (const name of ['sparse-proxskip', 'accelerated-server-pruning', 'randprox-l1', 'fedavg'] as const) {
    it(`${name}: 3 rounds, then 4 more from the state, equal 7 rounds straight`, async () => {
      const data = heterogeneousLeastSquares({ clients: 3, seed: 1, nFeatures: 4, samplesPerClient: 6 });
      const opts = tinySimOptions(name, defaultModelSpec('regression', 4, 1, {}), {
        sparsity: 0.5,
        schedule: 'random',
        participation: 0.67,
        rounds: 7,
        evalEvery: 2,
        step: { gamma: 0.05, p: 0.5, lambda: 0.01, steDecay: 0, batchSize: 0, seed: 3 },
      });
      const straight = await simulate(data, opts);
      // stopped after round 3 with its state in a checkpoint file, then resumed from that file
      const path = join(mkdtempSync(join(tmpdir(), 'resume-')), 'checkpoint.bin');
      let stop = false;
      const first = await simulate(data, opts, {
        shouldStop: () => stop,
        checkpoint: (state, stopping) => {
          if (stopping) writeCheckpoint(path, 'this run', state());
          stop ||= state().round === 3;
        },
      });
      expect(first.interrupted).toBe(true);
      expect(readCheckpoint(path, 'another run')).toBeNull();
      const saved = readCheckpoint(path, 'this run')!;
      expect(saved.round).toBe(3);
      expect(saved.records.map((r) => r.round)).toEqual([0, 1, 2, 3]);
      const resumed = await simulate(data, { ...opts, resume: saved });
      expect(resumed.records).toEqual(straight.records);
      expect(resumed.model).toEqual(straight.model);
      expect(resumed.h).toEqual(straight.h);
      expect(resumed.ledger.toJSON()).toEqual(straight.ledger.toJSON());
    });
  }
});

describe('a run whose local iterates overflow', () => {
  // γ = 1e30 overflows x to ±Infinity in the first local step and to NaN in the second: the methods that
  // prune inside local training (TopK of x each step, or after it) must report a divergence, not feed TopK a NaN.
  for (const name of ['sparse-proxskip', 'sparse-proxskip-prox', 'randprox-l1', 'proxskip'] as const) {
    it(`${name}: stops as diverged`, async () => {
      const data = heterogeneousLeastSquares({ clients: 2, seed: 0, nFeatures: 4, samplesPerClient: 5 });
      const opts = tinySimOptions(name, defaultModelSpec('regression', 4, 1, {}), {
        sparsity: 0.5,
        step: { gamma: 1e30, p: 0.5, lambda: 0.1, steDecay: 0, batchSize: 0, seed: 0 },
        localSteps: 3,
        init: new Float32Array([1, -1, 2, 0.5]),
      });
      await expect(simulate(data, opts)).rejects.toThrow(/client 0's update in round 1 has a non-finite value .*: the run diverged; try a smaller step size than γ=1e\+30/);
    });
  }
});

describe('simulate with evalTrainRows', () => {
  it('evaluates the train loss on the first rows of each client only (a fixed subsample); training is unchanged', async () => {
    const data = heterogeneousLeastSquares({ clients: 2, seed: 3, nFeatures: 3, samplesPerClient: 6 });
    const spec = defaultModelSpec('regression', 3, 1, {});
    const opts = tinySimOptions('proxskip', spec);
    const full = await simulate(data, opts);
    const sub = await simulate(data, { ...opts, evalTrainRows: 2 });
    expect(sub.model).toEqual(full.model);
    const model = createModel(spec);
    const rows = new Uint32Array([0, 1]);
    const byHand = data.clients.reduce((s, c) => s + model.lossGrad(sub.model, c, null, rows), 0) / 2;
    expect(sub.records.at(-1)!.trainLoss).toBe(byHand);
    expect(sub.records.at(-1)!.trainLoss).not.toBe(full.records.at(-1)!.trainLoss);
  });
});

describe('simulate with pruneInit', () => {
  it('starts from TopK of x₀: round 0 evaluates the K-sparse start', async () => {
    const data = heterogeneousLeastSquares({ clients: 2, seed: 4, nFeatures: 4, samplesPerClient: 6 });
    const spec = defaultModelSpec('regression', 4, 1, {});
    const init = new Float32Array([0.5, -3, 0.25, 2]);
    const opts = tinySimOptions('sparse-proxskip', spec, { sparsity: 0.5, rounds: 1, init });
    const pruned = await simulate(data, { ...opts, pruneInit: true });
    const fromPruned = await simulate(data, { ...opts, init: new Float32Array([0, -3, 0, 2]) });
    expect(pruned.records).toEqual(fromPruned.records); // the same as starting at TopK₂(init) = (0, −3, 0, 2)
    expect(init).toEqual(new Float32Array([0.5, -3, 0.25, 2])); // the given start is not changed
  });
});
