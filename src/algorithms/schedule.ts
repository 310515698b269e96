import { rngFor } from '../core/rng.js';

/**
 * 'fixed': communicate every k local steps (the paper's experiments).
 * 'random': the server flips one shared coin θ ~ Bernoulli(p) after each local step and communicates on
 * heads (ProxSkip), so a round lasts a Geometric(p) number of steps.
 */
export type Schedule = 'fixed' | 'random';

export function localStepsForRound(schedule: Schedule, localSteps: number, p: number, seed: number, round: number): number {
  if (schedule === 'fixed') return localSteps;
  const coin = rngFor(seed, 'coin', round);
  let steps = 1;
  while (!coin.bernoulli(p)) steps++;
  return steps;
}
