/**
 * The figures of an experiment report, as PlotSpecs: per setting the uplink plots (in the report's unit and
 * in the other), ‖Σh‖ per round and, given a reference optimum, the convergence plots; with a sweep, the
 * final values against the swept field. The report writes them as files; the dashboard draws the same.
 *
 * Runs in the browser too: imports nothing from `node:`.
 */
import { convergencePlot, metricLabel, otherUplinkUnit, UPLINK_AXES, type Reference, type UplinkUnit } from '../report/figures.js';
import { formatNumber } from '../report/table.js';
import type { PlotSpec, Series } from '../report/vegalite.js';
import type { CurvePoint, Stat } from './aggregate.js';
import type { ExperimentResults, MethodResult } from './report.js';
import type { ExperimentSpec } from './spec.js';

export interface Figure {
  /** the setting it belongs to ('' for the sweep plots) */
  setting: string;
  /** path relative to the report directory, without extension */
  base: string;
  plot: PlotSpec;
  /** the same figure against the other uplink unit, written as `${base}${suffix}` */
  variant?: { unit: string; suffix: string; plot: PlotSpec };
}

/** What the figures need of the experiment file (the dashboard gets it from DIR/experiment.json). */
export type FigureOptions = Pick<ExperimentSpec, 'name' | 'methods' | 'report'>;

/** Every figure of the report with at least one point, in report order. */
export function experimentFigures(spec: FigureOptions, results: ExperimentResults, references: Record<string, Reference> = {}): Figure[] {
  const figures: Figure[] = [];
  const put = (setting: string, base: string, plot: PlotSpec, variant?: Figure['variant']) => {
    if (plot.series.some((s) => s.points.length > 0)) figures.push({ setting, base, plot, ...(variant && { variant }) });
  };
  const unit = spec.report.uplink;
  const other = otherUplinkUnit(unit);
  const uplink = (u: UplinkUnit) => ({ xLabel: UPLINK_AXES[u].label, xScale: spec.report.uplinkScale, x: (p: CurvePoint) => UPLINK_AXES[u].x(p) });
  /** The same figure against the report's uplink unit, and against the other one as `-bytes`/`-floats`. */
  const inBothUnits = (setting: string, base: string, make: (u: ReturnType<typeof uplink>) => PlotSpec) =>
    put(setting, base, make(uplink(unit)), { unit: other === 'MB' ? 'bytes' : 'floats', suffix: other === 'MB' ? '-bytes' : '-floats', plot: make(uplink(other)) });

  for (const s of results.settings) {
    const where = `${s.datasetName ?? spec.name}, ${s.name === 'default' && s.sparsity !== null ? `sparsity ${s.sparsity}` : s.label}`;
    const dir = `plots/${s.name}`;
    const withRuns = s.methods.filter((m) => m.seeds.length > 0);
    const lossSeries = (x: (p: CurvePoint) => number) => withRuns.map((m) => curveSeries(m, x, (p) => p.trainLoss));
    if (spec.report.plots.includes('loss-vs-uplink')) {
      inBothUnits(s.name, `${dir}/loss-vs-uplink`, (u) => ({ title: `${where}: train loss`, xLabel: u.xLabel, xScale: u.xScale, yLabel: 'train loss', yScale: 'log', series: lossSeries(u.x) }));
    }
    if (spec.report.plots.includes('metric-vs-uplink') && s.metricName) {
      const metric = metricLabel(s.metricName);
      inBothUnits(s.name, `${dir}/metric-vs-uplink`, (u) => ({
        title: `${where}: ${metric}`,
        xLabel: u.xLabel,
        xScale: u.xScale,
        yLabel: metric,
        series: withRuns.map((m) => curveSeries(m, u.x, (p) => p.testMetric)),
      }));
    }
    if (spec.report.plots.includes('sum-h-vs-rounds')) {
      put(s.name, `${dir}/sum-h-vs-rounds`, {
        title: `${where}: ‖Σᵢ hᵢ‖ per round`,
        xLabel: 'round',
        yLabel: '‖Σᵢ hᵢ‖',
        yScale: 'log',
        series: withRuns.filter((m) => m.controlVariates).map((m) => curveSeries(m, (p) => p.round, (p) => p.sumHNorm)),
      });
    }
    const ref = references[s.name];
    if (ref) {
      const title = `${where}: train loss above the dense optimum f* = ${formatNumber(ref.fStar)}`;
      put(s.name, `${dir}/convergence-vs-rounds`, convergencePlot(lossSeries((p) => p.round), ref, { title, xLabel: 'round' }));
      inBothUnits(s.name, `${dir}/convergence-vs-uplink`, (u) => convergencePlot(lossSeries(u.x), ref, { title, xLabel: u.xLabel, xScale: u.xScale }));
    }
  }
  if (spec.report.plots.includes('sweep') && results.sweepField) {
    const field = results.sweepField;
    const metricName = results.settings.find((s) => s.metricName)?.metricName ?? null;
    const sweepSeries = (stat: (m: MethodResult) => Stat | null): Series[] =>
      spec.methods.map((method) => ({
        label: method.label,
        method: method.name,
        algorithm: method.algorithm,
        points: results.settings.flatMap((s) => {
          const m = s.methods.find((x) => x.name === method.name);
          const st = m ? stat(m) : null;
          return st && s.sweepValue !== null ? [point(s.sweepValue, st)] : [];
        }),
      }));
    if (metricName) {
      put('', 'plots/sweep-metric', {
        title: `${spec.name}: final ${metricLabel(metricName)} vs ${field}`,
        xLabel: field,
        yLabel: `final ${metricLabel(metricName)}`,
        markers: 'all',
        series: sweepSeries((m) => m.final.testMetric),
      });
    }
    put('', 'plots/sweep-loss', {
      title: `${spec.name}: final train loss vs ${field}`,
      xLabel: field,
      yLabel: 'final train loss',
      yScale: 'log',
      markers: 'all',
      series: sweepSeries((m) => m.final.trainLoss),
    });
  }
  return figures;
}

function curveSeries(m: MethodResult, x: (p: CurvePoint) => number, y: (p: CurvePoint) => Stat | null): Series {
  return {
    label: m.label,
    method: m.name,
    algorithm: m.algorithm,
    points: m.curve.flatMap((p) => {
      const s = y(p);
      return s ? [point(x(p), s)] : [];
    }),
  };
}

function point(x: number, s: Stat) {
  return s.se === null ? { x, y: s.mean } : { x, y: s.mean, lo: s.mean - s.se, hi: s.mean + s.se };
}
