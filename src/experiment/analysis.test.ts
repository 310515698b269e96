import { describe, expect, it } from 'vitest';
import type { RoundRecord } from '../sim/simulate.js';
import { analysisMarkdown, convergedFrom, pairedDifferences, tQuantile975, type RunRow, type SettingAnalysis } from './analysis.js';

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

describe('pairedDifferences', () => {
  const row = (method: string, seed: number, trainLoss: number) => ({ method, seed, trainLoss, testMetric: null }) as unknown as RunRow;
  it('takes differences seed by seed and a Student-t interval: by hand for three seeds', () => {
    // differences 1, 2, 3: mean 2, sd 1, half-width t(2) · 1/√3 = 4.303/√3 = 2.4843
    const runs = [row('sparse-proxskip', 0, 10), row('sparse-proxskip', 1, 20), row('sparse-proxskip', 2, 30), row('fedavg', 0, 11), row('fedavg', 1, 22), row('fedavg', 2, 33)];
    const [p] = pairedDifferences(runs);
    expect(p).toMatchObject({ method: 'fedavg', against: 'sparse-proxskip', quantity: 'trainLoss', seeds: 3, mean: 2 });
    expect(p!.high - p!.mean).toBeCloseTo(4.303 / Math.sqrt(3), 10);
    expect(tQuantile975(1)).toBe(12.706);
  });
  it('needs two seeds both methods finished', () => {
    expect(pairedDifferences([row('sparse-proxskip', 0, 1), row('fedavg', 0, 2), row('fedavg', 1, 3)])).toEqual([]);
  });
});

describe('analysisMarkdown', () => {
  it('says which starts of the K-sparse search its time limit cut short or left out', () => {
    const a: SettingAnalysis = {
      setting: 'sparsity-0.99',
      sparsity: 0.99,
      tol: 1e-4,
      reference: {
        fStar: 1.5,
        fSparseRef: 2,
        sparse: {
          k: 487,
          method: 'IHT, within 900 s',
          starts: [
            { name: 'zero', f: 2.5, ihtSteps: 3000, supports: 4 },
            { name: 'TopK(x*)', f: 2, ihtSteps: 120, supports: 1, cut: true },
          ],
          timeLimit: { seconds: 900, notRun: ['greedy (OMP)'] },
        },
      },
      runs: [],
      path: [],
      paired: [],
    };
    const text = analysisMarkdown(a).join('\n');
    expect(text).toContain('2 starts gave f from 2 (TopK(x*)) to 2.5; the 900 s limit cut TopK(x*) short and left greedy (OMP) not run;');
    delete a.reference!.sparse!.timeLimit;
    delete a.reference!.sparse!.starts[1]!.cut;
    expect(analysisMarkdown(a).join('\n')).not.toContain('limit');
    a.reference!.sparse!.starts.splice(0, 1);
    expect(analysisMarkdown(a).join('\n')).toContain('its one start, TopK(x*), gave f = 2;');
  });
});
