import type { PlotSpec } from '../../report/vegalite.js';

/** The plotted points, one row per point: series, x, y and the band's lo and hi where there is one. */
export function toCsv(plot: PlotSpec): string {
  const q = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  const rows = [['series', plot.xLabel, plot.yLabel, 'lo', 'hi'].map(q).join(',')];
  for (const s of plot.series) for (const p of s.points) rows.push([q(s.label), p.x, p.y, p.lo ?? '', p.hi ?? ''].join(','));
  return rows.join('\n') + '\n';
}
