import { describe, expect, it } from 'vitest';
import type { RoundRecord } from '../sim/simulate.js';
import { convergedFrom } from './analysis.js';

const records = (losses: (number | null)[]) => losses.map((trainLoss, round) => ({ round, trainLoss }) as RoundRecord);

describe('convergedFrom', () => {
  it('is the first round of the last unbroken stretch where the rule holds', () => {
    // flat at 1 from round 0: the rule (tol 0.01) first holds at round 20 (MIN_ROUNDS) and stays
    expect(convergedFrom(records(Array.from({ length: 31 }, () => 1)), 0.01)).toBe(20);
    // a drop at round 25 (1 → 0.5) breaks it at 25..27 (window back to ≤ 24 sees 1 against 0.5), then it holds again
    const drop = Array.from({ length: 41 }, (_, r) => (r < 25 ? 1 : 0.5));
    expect(convergedFrom(records(drop), 0.01)).toBe(28); // at 28 the window starts at 28 − ⌈2.8⌉ = 25
  });

  it('is null when the rule does not hold at the last round', () => {
    expect(convergedFrom(records(Array.from({ length: 31 }, (_, r) => 100 - r)), 1e-4)).toBeNull();
  });
});
