/**
 * The project's figure definitions, shared by `compare`, the experiment report and the web dashboard:
 * metric against cumulative uplink (in floats or in encoded bytes), ‖Σh‖ against rounds, and the
 * convergence plot f − f* on a log axis. Each figure is a PlotSpec; styles come from the palette by method.
 *
 * Runs in the browser too: imports nothing from `node:`.
 */
import type { RoundRecord } from '../sim/simulate.js';
import type { PlotPoint, PlotSpec, Series } from './plot.js';

export interface LabelledRun {
  label: string;
  records: RoundRecord[];
  /** the method's name for the palette (default: the label) */
  method?: string;
  algorithm?: string;
}

export type UplinkUnit = 'floats' | 'MB';

/** The two ways to count the uplink: f32 values carried (SPEC §4's floats) and encoded megabytes. */
export const UPLINK_AXES: Record<UplinkUnit, { label: string; x: (p: { uplinkFloats: number; uplinkBytes: number }) => number }> = {
  floats: { label: 'cumulative uplink (floats)', x: (p) => p.uplinkFloats },
  MB: { label: 'cumulative uplink (MB, encoded)', x: (p) => p.uplinkBytes / 1e6 },
};

/** The other unit: each uplink figure is drawn in both, the report's unit and this one. */
export function otherUplinkUnit(u: UplinkUnit): UplinkUnit {
  return u === 'floats' ? 'MB' : 'floats';
}

/** A reference optimum of a setting: the dense f*, and optionally a centralised K-sparse solution's loss. */
export interface Reference {
  fStar: number;
  fSparseRef?: number;
}

type Field = 'trainLoss' | 'testMetric' | 'sumHNorm' | 'nnz';

function styleKeys(run: LabelledRun): Pick<Series, 'method' | 'algorithm'> {
  return { ...(run.method !== undefined && { method: run.method }), ...(run.algorithm !== undefined && { algorithm: run.algorithm }) };
}

function series(runs: LabelledRun[], y: Field, x: (r: RoundRecord) => number): Series[] {
  return runs.map((run) => ({
    label: run.label,
    ...styleKeys(run),
    points: run.records.filter((r) => r[y] !== null).map((r) => ({ x: x(r), y: r[y] as number })),
  }));
}

/** Train loss against cumulative uplink, both axes logarithmic (round 0, at zero uplink, is not drawn). */
export function lossVsUplink(runs: LabelledRun[], title: string, unit: UplinkUnit): PlotSpec {
  const axis = UPLINK_AXES[unit];
  return { title, xLabel: axis.label, xScale: 'log', yLabel: 'train loss', yScale: 'log', series: series(runs, 'trainLoss', axis.x) };
}

export function metricVsUplink(runs: LabelledRun[], title: string, metricName: string, unit: UplinkUnit): PlotSpec {
  const axis = UPLINK_AXES[unit];
  return { title, xLabel: axis.label, xScale: 'log', yLabel: metricLabel(metricName), series: series(runs, 'testMetric', axis.x) };
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

export function metricLabel(name: string): string {
  return name === 'r2' ? 'test R²' : `test ${name}`;
}

/**
 * The convergence plot: f − f* on a log axis, from series of train loss (bands included), with the
 * K-sparse reference f_sparse − f* as a horizontal line. Points at or below f* cannot be drawn on a log
 * axis; the subtitle says how many there are.
 */
export function convergencePlot(loss: Series[], ref: Reference, p: { title: string; xLabel: string; xScale?: 'linear' | 'log' }): PlotSpec {
  const shift = (q: PlotPoint): PlotPoint => ({
    x: q.x,
    y: q.y - ref.fStar,
    ...(q.lo !== undefined && { lo: q.lo - ref.fStar }),
    ...(q.hi !== undefined && { hi: q.hi - ref.fStar }),
  });
  const series = loss.map((s) => ({ ...s, points: s.points.map(shift) }));
  const below = series.reduce((n, s) => n + s.points.filter((q) => q.y <= 0).length, 0);
  return {
    title: p.title,
    ...(below > 0 && { subtitle: [`${below} point(s) at or below f* = ${ref.fStar} not drawn`] }),
    xLabel: p.xLabel,
    ...(p.xScale !== undefined && { xScale: p.xScale }),
    yLabel: 'f − f*',
    yScale: 'log',
    series,
    ...(ref.fSparseRef !== undefined && { rules: [{ y: ref.fSparseRef - ref.fStar, label: 'centralised K-sparse reference' }] }),
  };
}

export function nnzVsRounds(runs: LabelledRun[], title: string): PlotSpec {
  return { title, xLabel: 'round', yLabel: 'nonzeros of the evaluated model', series: series(runs, 'nnz', (r) => r.round) };
}

/** Bytes sent in each round in one direction (the difference of the cumulative counts), against rounds. */
export function bytesPerRound(runs: LabelledRun[], title: string, direction: 'uplink' | 'downlink'): PlotSpec {
  const field = direction === 'uplink' ? 'uplinkBytes' : 'downlinkBytes';
  return {
    title,
    xLabel: 'round',
    yLabel: `${direction} bytes in the round`,
    series: runs.map((run) => ({
      ...styleKeys(run),
      label: run.label,
      points: run.records.slice(1).map((r, i) => ({ x: r.round, y: r[field] - run.records[i]![field] })),
    })),
  };
}

export interface NamedFigure {
  /** a file-name-like id, e.g. loss-vs-uplink-bytes */
  id: string;
  plot: PlotSpec;
}

/**
 * The figures of a set of runs drawn together (a `compare` output, a live run): train loss and the test
 * metric against cumulative uplink in floats and in bytes, ‖Σh‖ and nnz against rounds, and the bytes
 * of each round in each direction.
 */
export function runFigures(runs: LabelledRun[], metricName: string | null): NamedFigure[] {
  const figures: NamedFigure[] = [];
  for (const unit of ['floats', 'MB'] as const) {
    const suffix = unit === 'MB' ? 'bytes' : 'floats';
    figures.push({ id: `loss-vs-uplink-${suffix}`, plot: lossVsUplink(runs, `train loss against uplink ${suffix}`, unit) });
    if (metricName) figures.push({ id: `metric-vs-uplink-${suffix}`, plot: metricVsUplink(runs, `${metricLabel(metricName)} against uplink ${suffix}`, metricName, unit) });
  }
  figures.push(
    { id: 'sum-h-vs-rounds', plot: sumHVsRounds(runs, '‖Σᵢ hᵢ‖ per round') },
    { id: 'nnz-vs-rounds', plot: nnzVsRounds(runs, 'nonzeros per round') },
    { id: 'uplink-bytes-per-round', plot: bytesPerRound(runs, 'uplink bytes per round', 'uplink') },
    { id: 'downlink-bytes-per-round', plot: bytesPerRound(runs, 'downlink bytes per round', 'downlink') },
  );
  return figures;
}
