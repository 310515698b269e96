import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CurvePoint, Stat } from './aggregate.js';
import type { ExperimentResults, MethodResult } from './report.js';
import { readResults, resultsJson } from './results-file.js';

const stat = (mean: number, n = 1, se: number | null = null): Stat => ({ mean, se, n });
const point = (round: number, loss: Stat | null): CurvePoint => ({
  round,
  uplinkFloats: 10 * round,
  uplinkBytes: 40 * round,
  trainLoss: loss,
  testMetric: null,
  nnz: stat(3),
  sumHNorm: stat(0),
});

function results(curves: CurvePoint[][]): ExperimentResults {
  const method = (curve: CurvePoint[], i: number): MethodResult => ({
    name: `m${i}`, label: `m${i}`, algorithm: 'proxskip', seeds: [0], failed: [], missing: [], d: 3, lambda: null,
    lambdaAuto: false, lambdaWarnings: [], final: {} as MethodResult['final'], postHocTopk: null, controlVariates: true, curve,
  });
  return {
    name: 'e', description: '', seeds: [0], sweepField: null, uplinkUnit: 'floats', missing: [], failed: [],
    settings: [{ name: 'default', label: 'default', sweepValue: null, metricName: null, datasetName: null, sparsity: null, evaluationSet: null, methods: curves.map(method) }],
  };
}

describe('results.json', () => {
  it('stores a curve as columns, a column of equal values as that value', () => {
    const r = results([[point(0, stat(5)), point(10, stat(4, 2, 0.5)), point(20, null)]]);
    const curve = JSON.parse(resultsJson(r)).settings[0].methods[0].curve;
    expect(curve).toEqual({
      points: 3,
      round: [0, 10, 20],
      uplinkFloats: [0, 100, 200],
      uplinkBytes: [0, 400, 800],
      trainLoss: { mean: [5, 4, null], se: [null, 0.5, null], n: [1, 2, null] },
      testMetric: { mean: null, se: null, n: null },
      nnz: { mean: 3, se: null, n: 1 },
      sumHNorm: { mean: 0, se: null, n: 1 },
    });
    expect(readResults(resultsJson(r))).toEqual(r);
  });

  it('reads back exactly what it wrote (NaN as null, as JSON writes it)', () => {
    const num = fc.double({ noDefaultInfinity: true, noNaN: false });
    const st = fc.option(fc.record({ mean: num, se: fc.option(num), n: fc.nat(5) }), { nil: null });
    const pt = fc.record({ round: fc.nat(), uplinkFloats: fc.nat(), uplinkBytes: fc.nat(), trainLoss: st, testMetric: st, nnz: st, sumHNorm: st });
    fc.assert(
      fc.property(fc.array(fc.array(pt, { maxLength: 6 }), { maxLength: 3 }), (curves) => {
        const r = results(curves as CurvePoint[][]);
        expect(readResults(resultsJson(r))).toEqual(JSON.parse(JSON.stringify(r)));
      }),
    );
  });

  it('reads results.json written point by point, and refuses a column of the wrong length', () => {
    const r = results([[point(0, stat(5)), point(10, stat(4))]]);
    expect(readResults(JSON.stringify(r))).toEqual(r);
    const bad = JSON.parse(resultsJson(r));
    bad.settings[0].methods[0].curve.round = [0];
    expect(() => readResults(JSON.stringify(bad))).toThrow('results.json: column default/m0.round has 1 values, not 2');
  });
});
