/** Simulator options for the tests' small hand-built problems: full batch, fixed schedule, one worker, no timing. */
import { methodSpec, type AlgorithmName } from '../algorithms/methods.js';
import type { ModelSpec } from '../models/types.js';
import type { SimOptions } from './simulate.js';

export function tinySimOptions(algorithm: AlgorithmName, modelSpec: ModelSpec, over: Partial<SimOptions> = {}): SimOptions {
  return {
    method: methodSpec(algorithm),
    modelSpec,
    sparsity: 0,
    topkScope: 'global',
    step: { gamma: 0.05, p: 0.5, lambda: 0, steDecay: 0, batchSize: 0, seed: 0 },
    localSteps: 2,
    schedule: 'fixed',
    rounds: 3,
    participation: 1,
    workers: 1,
    evalEvery: 1,
    postHocTopk: false,
    timing: false,
    ...over,
  };
}
