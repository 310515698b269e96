/**
 * The Vega-Lite specs of the project's plots: line plots with bands, markers and reference rules, and
 * histograms. Pure functions of the data; styles come from the palette by method.
 *
 * Runs in the browser too (the dashboard draws the same specs): imports nothing from `node:`.
 */
import { methodStyle, NEUTRAL_COLOR, type MethodStyle } from './palette.js';

/** One point of a curve; lo/hi bound the shaded band around it (mean ± standard error). */
export interface PlotPoint {
  x: number;
  y: number;
  lo?: number;
  hi?: number;
}

export interface Series {
  /** legend text */
  label: string;
  points: PlotPoint[];
  /** the method's name, which picks its style from the palette (default: the label) */
  method?: string;
  /** the algorithm a named variant runs (see methodStyle) */
  algorithm?: string;
}

/** A horizontal reference line, labelled at its right end. */
export interface Rule {
  y: number;
  label: string;
}

export interface PlotSpec {
  title: string;
  /** lines under the title; a note on coinciding curves is added to them */
  subtitle?: string[];
  xLabel: string;
  yLabel: string;
  series: Series[];
  xScale?: 'linear' | 'log';
  yScale?: 'linear' | 'log';
  /** markers on every point ('all': the measured points of a sweep) or on a few per curve, staggered so
   * that coinciding curves show both ('some', the default) */
  markers?: 'all' | 'some';
  rules?: Rule[];
  /** an invisible point under the pointer's reach at every point (at most HOVER_PER_SERIES a series),
   * each with a tooltip of its exact values: for interactive views */
  hover?: boolean;
  width?: number;
  height?: number;
}

const DEFAULT_WIDTH = 480;
const DEFAULT_HEIGHT = 300;
/** hover targets per series at most (evenly spaced over its points) */
export const HOVER_PER_SERIES = 400;
/** markers per curve with markers: 'some' */
const MARKERS_PER_CURVE = 8;
/** Curves closer than this fraction of each axis's span at every point look like one line. */
const COINCIDE_TOLERANCE = 0.005;
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

interface LineRow {
  series: string;
  x: number;
  y: number;
}

interface MarkerRow extends LineRow {
  color: string;
  shape: string;
}

interface BandRow {
  series: string;
  fill: string;
  x: number;
  lo: number;
  hi: number;
}

/** The palette's style of a series. */
export function seriesStyle(s: Series): MethodStyle {
  return methodStyle(s.method ?? s.label, s.algorithm);
}

/**
 * The layered Vega-Lite spec: a translucent band (only where lo/hi are given) under each line, the lines
 * with their markers, and the reference rules; colour, dash pattern and marker shape come from the palette
 * by method. Non-finite values are dropped, and so are non-positive ones on a log axis. Axes span the data
 * (a log axis is not widened to whole decades).
 */
export function vegaLiteSpec(p: PlotSpec): Record<string, unknown> {
  const styles = p.series.map(seriesStyle);
  const labels = p.series.map((s) => s.label);
  const lines = lineRows(p);
  const rules = (p.rules ?? []).filter((r) => usable(r.y, p.yScale));
  const xScale = axisScale(p.xScale, lines.map((r) => r.x));
  const yScale = axisScale(p.yScale, [...lines.map((r) => r.y), ...rules.map((r) => r.y)]);
  const bands = bandRows(p, styles);
  const marks = markerRows(p, styles);
  const byLabel = (range: unknown[]) => ({ domain: labels, range });
  // x is set per layer, not shared: a rule spans the plot only without one.
  const x = { field: 'x', type: 'quantitative', title: p.xLabel, scale: xScale };
  const y = { field: 'y', type: 'quantitative', title: p.yLabel, scale: yScale };
  const color = { field: 'series', type: 'nominal', title: null, scale: byLabel(styles.map((s) => s.color)) };

  const lineLayer = {
    data: { values: lines },
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x,
      y,
      color,
      strokeDash: { field: 'series', type: 'nominal', title: null, scale: byLabel(styles.map((s) => s.dash)) },
    },
  };
  const tooltip = [
    { field: 'series', type: 'nominal', title: 'method' },
    { field: 'x', type: 'quantitative', title: p.xLabel, format: '.6~g' },
    { field: 'y', type: 'quantitative', title: p.yLabel, format: '.6~g' },
  ];
  const pointLayer = {
    data: { values: marks },
    mark: { type: 'point', filled: true, size: 40, opacity: 1 },
    encoding: {
      x,
      y,
      // Literal colour and shape (scale: null), like the band's fill: the legend is the lines' alone.
      color: { field: 'color', type: 'nominal', scale: null },
      shape: { field: 'shape', type: 'nominal', scale: null },
      tooltip,
    },
  };
  const hoverLayer = {
    data: { values: p.hover ? hoverRows(p) : [] },
    mark: { type: 'point', filled: true, size: 120, opacity: 0 },
    encoding: { x, y, tooltip },
  };
  const bandLayer = {
    data: { values: bands },
    // Clipped: on a log axis a band reaching towards zero would otherwise stretch the axis over decades.
    mark: { type: 'area', opacity: 0.2, clip: true },
    encoding: {
      x,
      y: { ...y, field: 'lo' },
      y2: { field: 'hi' },
      // The band's colour is a literal (scale: null), not the line's color scale: Vega-Lite merges
      // legends over equal scale domains and would draw the legend with the band's faint disc,
      // or drop it altogether if the band's were hidden. This way the legend shows each line's
      // stroke and dash.
      fill: { field: 'fill', type: 'nominal', scale: null },
      detail: { field: 'series', type: 'nominal' },
    },
  };
  const ruleLayers = [
    { data: { values: rules }, mark: { type: 'rule', color: '#333333', strokeDash: [2, 2], strokeWidth: 1 }, encoding: { y } },
    {
      data: { values: rules },
      mark: { type: 'text', align: 'right', baseline: 'bottom', dx: -2, dy: -2, fontSize: 10, color: '#333333' },
      encoding: { y, x: { value: p.width ?? DEFAULT_WIDTH }, text: { field: 'label' } },
    },
  ];
  const notes = coincidenceNotes(p, (many) => (many ? ' (their dashes and markers show them all)' : ' (its dashes and markers show both)'));
  // wrapped to about the plot's width (≈ 5 px a character at the subtitle's size), so a long note does not widen the figure
  const subtitle = [...(p.subtitle ?? []), ...notes].flatMap((line) => wrapLine(line, Math.max(60, Math.round((p.width ?? DEFAULT_WIDTH) / 5))));

  return {
    $schema: SCHEMA,
    title: subtitle.length > 0 ? { text: p.title, subtitle } : p.title,
    width: p.width ?? DEFAULT_WIDTH,
    height: p.height ?? DEFAULT_HEIGHT,
    // Bands first so the lines are drawn over them.
    layer: [...(bands.length > 0 ? [bandLayer] : []), lineLayer, pointLayer, ...(rules.length > 0 ? ruleLayers : []), ...(p.hover ? [hoverLayer] : [])],
    // Full labels (no ellipsis), and legend strokes long enough to show a dash pattern.
    config: { legend: { labelLimit: 0, symbolType: 'stroke', symbolSize: 500, symbolStrokeWidth: 2 } },
  };
}

/**
 * A linear axis starts where the data start. A log axis spans the curves (`values`), not the enclosing
 * decades, nor the bands: mean − SE may lie decades below a mean near zero.
 */
function axisScale(type: PlotSpec['xScale'], values: number[]): Record<string, unknown> {
  // no points yet (a live run before its first round): a fixed domain, where Vega would warn of an infinite extent
  if (values.length === 0) return type === 'log' ? { type: 'log', domain: [1, 10] } : { type: 'linear', domain: [0, 1] };
  if (type !== 'log') return { type: 'linear', zero: false };
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return lo < hi ? { type: 'log', nice: false, domain: [lo, hi] } : { type: 'log', nice: false };
}

/** The drawn points of each series, in axis space (log10 on a log axis). */
function drawnPoints(p: PlotSpec): { x: number; y: number; raw: PlotPoint }[][] {
  const tx = (v: number, scale: PlotSpec['xScale']) => (scale === 'log' ? Math.log10(v) : v);
  return p.series.map((s) =>
    s.points.filter(({ x, y }) => usable(x, p.xScale) && usable(y, p.yScale)).map((raw) => ({ x: tx(raw.x, p.xScale), y: tx(raw.y, p.yScale), raw })),
  );
}

/** Rows of the solid lines first: Vega draws the lines in the order of their first row, so a dashed
 * line lies over a coinciding solid one and lets it show between its dashes. */
function lineRows(p: PlotSpec): LineRow[] {
  const styles = p.series.map(seriesStyle);
  const rows = drawnPoints(p).map((pts, i) => pts.map(({ raw }) => ({ series: p.series[i]!.label, x: raw.x, y: raw.y })));
  const order = rows.map((_, i) => i).sort((a, b) => Number(!isSolid(styles[a]!.dash)) - Number(!isSolid(styles[b]!.dash)));
  return order.flatMap((i) => rows[i]!);
}

function isSolid(dash: number[]): boolean {
  return dash.length === 2 && dash[1] === 0;
}

/**
 * The points that carry a marker: all of them, or with 'some' the point nearest each of a few x positions
 * evenly spread over the axis, shifted per series so that the markers of coinciding curves do not overlap.
 */
function markerRows(p: PlotSpec, styles: MethodStyle[]): MarkerRow[] {
  const drawn = drawnPoints(p);
  const all = drawn.flat();
  if (all.length === 0) return [];
  const lo = Math.min(...all.map((q) => q.x));
  const span = Math.max(...all.map((q) => q.x)) - lo;
  return drawn.flatMap((pts, i) => {
    const { color, shape } = styles[i]!;
    const row = (q: PlotPoint): MarkerRow => ({ series: p.series[i]!.label, x: q.x, y: q.y, color, shape });
    if (p.markers === 'all' || pts.length <= MARKERS_PER_CURVE || span === 0) return pts.map(({ raw }) => row(raw));
    const chosen = new Set<number>();
    for (let k = 0; k < MARKERS_PER_CURVE; k++) {
      const target = lo + (span * (k + (i + 0.5) / p.series.length)) / MARKERS_PER_CURVE;
      let best = 0;
      for (let j = 1; j < pts.length; j++) if (Math.abs(pts[j]!.x - target) < Math.abs(pts[best]!.x - target)) best = j;
      chosen.add(best);
    }
    return [...chosen].sort((a, b) => a - b).map((j) => row(pts[j]!.raw));
  });
}

function hoverRows(p: PlotSpec): LineRow[] {
  return drawnPoints(p).flatMap((pts, i) => {
    const stride = Math.max(1, Math.ceil(pts.length / HOVER_PER_SERIES));
    return pts.filter((_, j) => j % stride === 0 || j === pts.length - 1).map(({ raw }) => ({ series: p.series[i]!.label, x: raw.x, y: raw.y }));
  });
}

function bandRows(p: PlotSpec, styles: MethodStyle[]): BandRow[] {
  const rows: BandRow[] = [];
  for (const [i, s] of p.series.entries()) {
    for (const { x, y, lo, hi } of s.points) {
      if (lo === undefined || hi === undefined) continue;
      // A band point only where its line point is drawn, so the band never outruns the curve.
      const ok = usable(x, p.xScale) && usable(y, p.yScale) && usable(lo, p.yScale) && usable(hi, p.yScale);
      if (ok) rows.push({ series: s.label, fill: styles[i]!.color, x, lo, hi });
    }
  }
  return rows;
}

/**
 * Pairs [earlier, later] of series whose drawn curves coincide: the same number of points, each within
 * half a percent of the axis span of its counterpart, in axis space.
 */
export function coincidentSeries(p: PlotSpec): [string, string][] {
  const drawn = drawnPoints(p);
  const all = drawn.flat();
  if (all.length === 0) return [];
  const span = (v: number[]) => Math.max(...v) - Math.min(...v) || 1;
  const sx = span(all.map((q) => q.x));
  const sy = span(all.map((q) => q.y));
  const pairs: [string, string][] = [];
  for (let a = 0; a < drawn.length; a++) {
    for (let b = a + 1; b < drawn.length; b++) {
      const pa = drawn[a]!;
      const pb = drawn[b]!;
      const same =
        pa.length >= 2 &&
        pa.length === pb.length &&
        pa.every((q, i) => Math.abs(q.x - pb[i]!.x) <= COINCIDE_TOLERANCE * sx && Math.abs(q.y - pb[i]!.y) <= COINCIDE_TOLERANCE * sy);
      if (same) pairs.push([p.series[a]!.label, p.series[b]!.label]);
    }
  }
  return pairs;
}

/** `text` broken at spaces into lines of at most `max` characters (a longer word stays whole). */
export function wrapLine(text: string, max: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > max) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

/**
 * One note per group of coinciding curves, each later curve named under the earliest one it coincides with
 * ('b and c coincide with a'): one line for four identical curves, not six. `tail(many)` ends each note.
 */
export function coincidenceNotes(p: PlotSpec, tail: (many: boolean) => string = () => ''): string[] {
  const groups = new Map<string, string[]>();
  const placed = new Set<string>();
  for (const [under, over] of coincidentSeries(p)) {
    if (placed.has(over)) continue;
    groups.set(under, [...(groups.get(under) ?? []), over]);
    placed.add(over);
  }
  return [...groups].map(([under, over]) =>
    (over.length === 1 ? `${over[0]} coincides with ${under}` : `${over.slice(0, -1).join(', ')} and ${over.at(-1)} coincide with ${under}`) + tail(over.length > 1),
  );
}

/**
 * The plot with each long series thinned to what `columns` pixel columns can show: in every column
 * (of the x axis, in axis space, over all series) the points of least and greatest y, plus each series'
 * first and last point. The drawn line is then the same to the pixel, and every point kept is a real one
 * (with its band), so hover still shows recorded values. Series of at most 2·columns points are kept whole.
 */
export function thinForDisplay(p: PlotSpec, columns: number): PlotSpec {
  const drawn = drawnPoints(p);
  const xs = drawn.flat().map((q) => q.x);
  if (xs.length === 0) return p;
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of xs) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const width = hi - lo || 1;
  const series = p.series.map((s, i) => {
    const pts = drawn[i]!;
    if (pts.length <= 2 * columns) return s;
    const keep = new Set<number>([0, pts.length - 1]);
    const best = new Map<number, { min: number; max: number }>();
    pts.forEach((q, j) => {
      const col = Math.min(columns - 1, Math.floor(((q.x - lo) / width) * columns));
      const b = best.get(col);
      if (!b) best.set(col, { min: j, max: j });
      else {
        if (q.y < pts[b.min]!.y) b.min = j;
        if (q.y > pts[b.max]!.y) b.max = j;
      }
    });
    for (const b of best.values()) keep.add(b.min).add(b.max);
    return { ...s, points: [...keep].sort((a, b) => a - b).map((j) => pts[j]!.raw) };
  });
  return { ...p, series };
}

function usable(v: number, scale: PlotSpec['xScale']): boolean {
  return Number.isFinite(v) && (scale !== 'log' || v > 0);
}

export interface HistogramSpec {
  title: string;
  subtitle?: string[];
  xLabel: string;
  yLabel: string;
  values: number[];
  /** upper bound on the number of bins (default: 30); on a linear axis Vega-Lite picks round bin edges */
  maxBins?: number;
  /** 'log': bins of equal width in log10(x) (values ≤ 0 are left out) */
  xScale?: 'linear' | 'log';
  width?: number;
  height?: number;
}

/**
 * Vega-Lite spec of a histogram of `values`. A linear one is binned by Vega-Lite, so the spec stays
 * restylable; a log one is binned here (Vega-Lite bins only linearly) into equal widths of log10(x),
 * so that bar areas still compare.
 */
export function histogramSpec(h: HistogramSpec): Record<string, unknown> {
  const values = h.values.filter(Number.isFinite);
  const maxBins = h.maxBins ?? 30;
  const head = {
    $schema: SCHEMA,
    title: h.subtitle && h.subtitle.length > 0 ? { text: h.title, subtitle: h.subtitle } : h.title,
    width: h.width ?? DEFAULT_WIDTH,
    height: h.height ?? DEFAULT_HEIGHT,
  };
  if (h.xScale !== 'log') {
    return {
      ...head,
      data: { values: values.map((value) => ({ value })) },
      mark: { type: 'bar', color: NEUTRAL_COLOR },
      encoding: {
        x: { field: 'value', type: 'quantitative', bin: { maxbins: maxBins }, title: h.xLabel },
        y: { aggregate: 'count', type: 'quantitative', title: h.yLabel },
      },
    };
  }
  return {
    ...head,
    data: { values: logBins(values, maxBins) },
    mark: { type: 'bar', color: NEUTRAL_COLOR, stroke: 'white', strokeWidth: 0.5 },
    encoding: {
      x: { field: 'lo', type: 'quantitative', scale: { type: 'log', nice: false }, title: h.xLabel },
      x2: { field: 'hi' },
      y: { field: 'count', type: 'quantitative', title: h.yLabel },
      y2: { datum: 0 },
      tooltip: [
        { field: 'lo', type: 'quantitative', title: 'from', format: '.4~g' },
        { field: 'hi', type: 'quantitative', title: 'below', format: '.4~g' },
        { field: 'count', type: 'quantitative', title: h.yLabel },
      ],
    },
  };
}

export interface LogBin {
  lo: number;
  hi: number;
  count: number;
}

/**
 * Bins [10^(k/m), 10^((k+1)/m)) over the positive values, m bins per decade with m the largest whole
 * number (at most 10) that keeps the bins spanning the data within `maxBins`; empty bins inside the range
 * are kept, so gaps show.
 */
export function logBins(values: readonly number[], maxBins: number): LogBin[] {
  const pos = values.filter((v) => v > 0 && Number.isFinite(v));
  if (pos.length === 0) return [];
  // A value on an edge belongs to the bin above it despite log10's rounding (log10(1000) may be 2.9999...).
  const slot = (v: number, m: number) => Math.floor(Math.log10(v) * m + 1e-9);
  const lo = Math.min(...pos);
  const hi = Math.max(...pos);
  let m = 10;
  while (m > 1 && slot(hi, m) - slot(lo, m) + 1 > maxBins) m--;
  const first = slot(lo, m);
  const counts = new Array<number>(slot(hi, m) - first + 1).fill(0);
  for (const v of pos) counts[slot(v, m) - first]!++;
  return counts.map((count, i) => ({ lo: 10 ** ((first + i) / m), hi: 10 ** ((first + i + 1) / m), count }));
}
