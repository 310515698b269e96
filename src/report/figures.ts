/** Plot specs built from run records: metric against cumulative uplink, as in the paper's figures. */
import type { RoundRecord } from '../sim/simulate.js';
import type { PlotSpec, Series } from './plot.js';

export interface LabelledRun {
  label: string;
  records: RoundRecord[];
  dashed?: boolean;
}

const MB = 1e6;

type Field = 'trainLoss' | 'testMetric' | 'sumHNorm';

function series(runs: LabelledRun[], y: Field, x: (r: RoundRecord) => number): Series[] {
  return runs.map((run) => ({
    label: run.label,
    ...(run.dashed ? { dashed: true } : {}),
    points: run.records.filter((r) => r[y] !== null).map((r) => ({ x: x(r), y: r[y] as number })),
  }));
}

export function lossVsUplink(runs: LabelledRun[], title: string): PlotSpec {
  return {
    title,
    xLabel: 'cumulative uplink (MB)',
    yLabel: 'train loss',
    yScale: 'log',
    series: series(runs, 'trainLoss', (r) => r.uplinkBytes / MB),
  };
}

export function metricVsUplink(runs: LabelledRun[], title: string, metricName: string): PlotSpec {
  return {
    title,
    xLabel: 'cumulative uplink (MB)',
    yLabel: metricName === 'r2' ? 'test R²' : `test ${metricName}`,
    series: series(runs, 'testMetric', (r) => r.uplinkBytes / MB),
  };
}

export function sumHVsRounds(runs: LabelledRun[], title: string): PlotSpec {
  return {
    title,
    xLabel: 'round',
    yLabel: '‖Σᵢ hᵢ‖',
    yScale: 'log',
    series: series(runs, 'sumHNorm', (r) => r.round).map((s) => ({ ...s, points: s.points.filter((p) => p.y > 0) })),
  };
}
