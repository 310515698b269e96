import { describe, expect, it } from 'vitest';
import type { RoundRecord } from '../sim/simulate.js';
import { bytesPerRound, convergencePlot, lossVsUplink, runFigures } from './figures.js';
import { HOVER_PER_SERIES, vegaLiteSpec } from './vegalite.js';

function rec(round: number, over: Partial<RoundRecord> = {}): RoundRecord {
  return { round, localSteps: 1, trainLoss: 2 - round / 10, testMetric: null, nnz: 1, sumHNorm: 1, hNormSum: 1, uplinkFloats: 10 * round, uplinkBytes: 50 * round, downlinkFloats: 0, downlinkBytes: 0, seconds: null, ...over };
}

describe('figures', () => {
  it('plot uplink in floats or encoded MB on log axes', () => {
    const runs = [{ label: 'a', records: [rec(0), rec(1), rec(2)] }];
    const floats = lossVsUplink(runs, 't', 'floats');
    expect(floats).toMatchObject({ xScale: 'log', yScale: 'log', xLabel: 'cumulative uplink (floats)' });
    expect(floats.series[0]!.points).toEqual([{ x: 0, y: 2 }, { x: 10, y: 1.9 }, { x: 20, y: 1.8 }]);
    expect(lossVsUplink(runs, 't', 'MB').series[0]!.points[2]).toEqual({ x: 100 / 1e6, y: 1.8 });
  });

  it('take the bytes of each round as the difference of the cumulative counts', () => {
    const records = [rec(0, { downlinkBytes: 0 }), rec(1, { downlinkBytes: 70 }), rec(2, { downlinkBytes: 100 })];
    const p = bytesPerRound([{ label: 'a', records }], 't', 'downlink');
    expect(p.series[0]!.points).toEqual([{ x: 1, y: 70 }, { x: 2, y: 30 }]);
  });

  it('list the figures of a set of runs, the metric ones only with a metric', () => {
    const runs = [{ label: 'a', records: [rec(0), rec(1)] }];
    expect(runFigures(runs, null).map((f) => f.id)).toEqual(['loss-vs-uplink-floats', 'loss-vs-uplink-bytes', 'sum-h-vs-rounds', 'nnz-vs-rounds', 'uplink-bytes-per-round', 'downlink-bytes-per-round']);
    expect(runFigures(runs, 'r2').map((f) => f.id)).toContain('metric-vs-uplink-bytes');
  });

  it('draw f − f* with its bands and the K-sparse reference, and say how many points lie at or below f*', () => {
    const p = convergencePlot([{ label: 'a', points: [{ x: 0, y: 3, lo: 2.5, hi: 3.5 }, { x: 1, y: 1 }, { x: 2, y: 0.5 }] }], { fStar: 1, fSparseRef: 1.25 }, { title: 't', xLabel: 'round' });
    expect(p.series[0]!.points).toEqual([{ x: 0, y: 2, lo: 1.5, hi: 2.5 }, { x: 1, y: 0 }, { x: 2, y: -0.5 }]);
    expect(p.rules).toEqual([{ y: 0.25, label: 'centralised K-sparse reference' }]);
    expect(p.subtitle).toEqual(['2 point(s) at or below f* = 1 not drawn']);
    expect(p.yScale).toBe('log');
  });

  it('give interactive views a hover target per point, at most HOVER_PER_SERIES a series, the last always', () => {
    const many = Array.from({ length: 1001 }, (_, i) => ({ x: i, y: i }));
    const spec = vegaLiteSpec({ title: 't', xLabel: 'x', yLabel: 'y', hover: true, series: [{ label: 'a', points: many }] });
    const layers = spec['layer'] as { mark: { type: string; opacity?: number }; data: { values: { x: number }[] } }[];
    const hover = layers.at(-1)!;
    expect(hover.mark).toMatchObject({ type: 'point', opacity: 0 });
    // stride ⌈1001 / 400⌉ = 3: x = 0, 3, ..., 999, and the last point 1000
    expect(hover.data.values.length).toBe(335);
    expect(hover.data.values.length).toBeLessThanOrEqual(HOVER_PER_SERIES + 1);
    expect(hover.data.values.at(-1)!.x).toBe(1000);
    expect((vegaLiteSpec({ title: 't', xLabel: 'x', yLabel: 'y', series: [] })['layer'] as unknown[]).length).toBe(2);
  });
});
