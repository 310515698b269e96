import { describe, expect, it } from 'vitest';
import type { RoundRecord } from '../sim/simulate.js';
import { formatStat, meanCurve, meanSe, meanSeOf } from './aggregate.js';

function rec(round: number, trainLoss: number | null, uplinkFloats: number, sumHNorm = 0): RoundRecord {
  return {
    round, localSteps: 10, trainLoss, testMetric: null, nnz: 5, sumHNorm, hNormSum: 0,
    uplinkFloats, uplinkBytes: 4 * uplinkFloats, downlinkFloats: 0, downlinkBytes: 0, seconds: null,
  };
}

describe('meanSe', () => {
  it('is the mean and the sample standard deviation over √n', () => {
    // mean 2.5; deviations ±1.5, ±0.5: s² = (2.25+0.25+0.25+2.25)/3 = 5/3; SE = √(5/3)/2 = 0.645497...
    const s = meanSe([1, 2, 3, 4]);
    expect(s.mean).toBe(2.5);
    expect(s.se).toBeCloseTo(Math.sqrt(5 / 3) / 2, 15);
    expect(s.se).toBeCloseTo(0.6454972, 7);
    expect(s.n).toBe(4);
    // three seeds 0.9, 0.8, 1.0: mean 0.9, s = 0.1, SE = 0.1/√3 = 0.0577350...
    const t = meanSe([0.9, 0.8, 1.0]);
    expect(t.mean).toBeCloseTo(0.9, 15);
    expect(t.se).toBeCloseTo(0.0577350269, 9);
    expect(meanSe([7, 7, 7]).se).toBe(0);
  });

  it('has no standard error below two values', () => {
    expect(meanSe([3])).toEqual({ mean: 3, se: null, n: 1 });
    expect(meanSe([])).toEqual({ mean: NaN, se: null, n: 0 });
    expect(meanSeOf([null, 2, undefined, 4])).toEqual({ mean: 3, se: 1, n: 2 });
    expect(meanSeOf([null, null])).toBeNull();
  });

  it('formats as m ± se', () => {
    const f = (x: number) => x.toFixed(2);
    expect(formatStat({ mean: 1, se: 0.25, n: 2 }, f)).toBe('1.00 ± 0.25');
    expect(formatStat({ mean: 1, se: null, n: 1 }, f)).toBe('1.00');
    expect(formatStat(null, f)).toBe('—');
  });
});

describe('meanCurve', () => {
  it('averages round by round, x the mean uplink, over the rounds every seed reached', () => {
    const a = [rec(0, 4, 0, 1), rec(1, 2, 10, 3), rec(2, 1, 20, 5)];
    const b = [rec(0, 4, 0, 3), rec(1, 4, 14, 5)];
    const c = meanCurve([a, b]);
    expect(c).toHaveLength(2);
    expect(c[1]!.round).toBe(1);
    expect(c[1]!.uplinkFloats).toBe(12);
    expect(c[1]!.uplinkBytes).toBe(48);
    // losses 2 and 4: mean 3, s = √2, SE = √2/√2 = 1
    expect(c[1]!.trainLoss).toEqual({ mean: 3, se: 1, n: 2 });
    expect(c[0]!.sumHNorm).toEqual({ mean: 2, se: 1, n: 2 });
  });

  it('leaves a value out on rounds some seed did not evaluate', () => {
    const c = meanCurve([[rec(0, 1, 0), rec(1, null, 5)], [rec(0, 3, 0), rec(1, 2, 5)]]);
    expect(c[1]!.trainLoss).toBeNull();
    expect(c[1]!.testMetric).toBeNull();
  });

  it('rejects runs that recorded different rounds', () => {
    expect(() => meanCurve([[rec(0, 1, 0), rec(2, 1, 0)], [rec(0, 1, 0), rec(1, 1, 0)]])).toThrow(/disagree/);
  });
});
