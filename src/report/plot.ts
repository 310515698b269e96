/**
 * Line plots and histograms: a Vega-Lite spec rendered headless to SVG by vega, and to PNG by resvg.
 *
 * The Vega-Lite spec is written beside each plot (`.vl.json`) so users can restyle it in the
 * Vega editor without rerunning experiments. vega and vega-lite load lazily in renderSvg: they
 * take a few hundred milliseconds to import, which commands that draw nothing should not pay.
 */

import { readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import type { TopLevelSpec } from 'vega-lite';
import { writeFileAtomic, writeJsonAtomic } from './io.js';

/** One point of a curve; lo/hi bound the shaded band around it (mean ± standard error). */
export interface PlotPoint {
  x: number;
  y: number;
  lo?: number;
  hi?: number;
}

export interface Series {
  label: string;
  points: PlotPoint[];
  dashed?: boolean;
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xScale?: 'linear' | 'log';
  yScale?: 'linear' | 'log';
  width?: number;
  height?: number;
}

/** Vega's tableau10 scheme, spelled out because bands and lines must agree on each series' colour. */
const PALETTE = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];

const DEFAULT_WIDTH = 480;
const DEFAULT_HEIGHT = 300;
const SOLID = [1, 0];
const DASHED = [6, 4];

interface LineRow {
  series: string;
  x: number;
  y: number;
}

interface BandRow {
  series: string;
  fill: string;
  x: number;
  lo: number;
  hi: number;
}

/**
 * The layered Vega-Lite spec: a translucent band (only where lo/hi are given) under each line,
 * colour and dash pattern keyed by series label, in the order the series were given.
 * Non-finite values are dropped, and so are non-positive ones on a log axis.
 */
export function vegaLiteSpec(p: PlotSpec): Record<string, unknown> {
  const labels = p.series.map((s) => s.label);
  const xScale = axisScale(p.xScale);
  const yScale = axisScale(p.yScale);
  const lines = lineRows(p);
  const bands = bandRows(p);
  const anyDashed = p.series.some((s) => s.dashed);

  const lineLayer = {
    data: { values: lines },
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      y: { field: 'y', type: 'quantitative', title: p.yLabel, scale: yScale },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        scale: { domain: labels, range: labels.map((_, i) => seriesColor(i)) },
      },
      // Left out when every line is solid: it would add nothing but spec noise.
      ...(anyDashed && {
        strokeDash: {
          field: 'series',
          type: 'nominal',
          title: null,
          scale: { domain: labels, range: p.series.map((s) => (s.dashed ? DASHED : SOLID)) },
        },
      }),
    },
  };
  const bandLayer = {
    data: { values: bands },
    mark: { type: 'area', opacity: 0.2 },
    encoding: {
      y: { field: 'lo', type: 'quantitative', title: p.yLabel, scale: yScale },
      y2: { field: 'hi' },
      // The band's colour is a literal (scale: null), not the line's color scale: Vega-Lite merges
      // legends over equal scale domains and would draw the legend with the band's faint disc,
      // or drop it altogether if the band's were hidden. This way the legend shows each line's
      // stroke and dash.
      fill: { field: 'fill', type: 'nominal', scale: null },
      detail: { field: 'series', type: 'nominal' },
    },
  };

  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: p.title,
    width: p.width ?? DEFAULT_WIDTH,
    height: p.height ?? DEFAULT_HEIGHT,
    encoding: {
      x: { field: 'x', type: 'quantitative', title: p.xLabel, scale: xScale },
    },
    // Band first so the lines are drawn over it.
    layer: bands.length > 0 ? [bandLayer, lineLayer] : [lineLayer],
    // Full labels (no ellipsis), and legend strokes long enough to show a dash pattern.
    config: { legend: { labelLimit: 0, symbolSize: 500, symbolStrokeWidth: 2 } },
  };
}

function seriesColor(index: number): string {
  return PALETTE[index % PALETTE.length]!;
}

/** Axes start where the data start; a log scale cannot include zero at all. */
function axisScale(type: PlotSpec['xScale']): Record<string, unknown> {
  return type === 'log' ? { type: 'log' } : { type: 'linear', zero: false };
}

function lineRows(p: PlotSpec): LineRow[] {
  const rows: LineRow[] = [];
  for (const s of p.series) {
    for (const { x, y } of s.points) {
      if (usable(x, p.xScale) && usable(y, p.yScale)) rows.push({ series: s.label, x, y });
    }
  }
  return rows;
}

function bandRows(p: PlotSpec): BandRow[] {
  const rows: BandRow[] = [];
  for (const [i, s] of p.series.entries()) {
    for (const { x, y, lo, hi } of s.points) {
      if (lo === undefined || hi === undefined) continue;
      // A band point only where its line point is drawn, so the band never outruns the curve.
      const ok = usable(x, p.xScale) && usable(y, p.yScale) && usable(lo, p.yScale) && usable(hi, p.yScale);
      if (ok) rows.push({ series: s.label, fill: seriesColor(i), x, lo, hi });
    }
  }
  return rows;
}

function usable(v: number, scale: PlotSpec['xScale']): boolean {
  return Number.isFinite(v) && (scale !== 'log' || v > 0);
}

export interface HistogramSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  values: number[];
  /** upper bound on the number of bins; Vega-Lite picks round bin edges (default: 30) */
  maxBins?: number;
  width?: number;
  height?: number;
}

/** Vega-Lite spec of a histogram of `values` (binned by Vega-Lite, so the spec stays restylable). */
export function histogramSpec(h: HistogramSpec): Record<string, unknown> {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: h.title,
    width: h.width ?? DEFAULT_WIDTH,
    height: h.height ?? DEFAULT_HEIGHT,
    data: { values: h.values.filter(Number.isFinite).map((value) => ({ value })) },
    mark: { type: 'bar', color: PALETTE[0] },
    encoding: {
      x: { field: 'value', type: 'quantitative', bin: { maxbins: h.maxBins ?? 30 }, title: h.xLabel },
      y: { aggregate: 'count', type: 'quantitative', title: h.yLabel },
    },
  };
}

/** Renders the plot to an SVG document (no canvas needed: vega's SVG string renderer). */
export async function renderSvg(p: PlotSpec): Promise<string> {
  return renderVegaLite(vegaLiteSpec(p));
}

async function renderVegaLite(spec: Record<string, unknown>): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vl.compile(spec as unknown as TopLevelSpec);
  const view = new vega.View(vega.parse(compiled.spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Rasterises an SVG to PNG bytes, `width` pixels wide (default: twice the SVG's own size, for
 * sharp text on high-density screens).
 *
 * Vega writes font-family "sans-serif", which resvg maps to Arial unless told otherwise; where
 * Arial is missing it falls back to the first system font, often a symbol or math face. So the
 * generic family is pointed at a known readable font found on this machine. If none of those
 * exists, resvg still uses whatever font it finds; with no font at all the PNG is still produced,
 * but without any text (resvg skips text it cannot shape).
 */
export function svgToPng(svg: string, width?: number): Uint8Array {
  const family = sansFamily();
  const resvg = new Resvg(svg, {
    fitTo: width === undefined ? { mode: 'zoom', value: 2 } : { mode: 'width', value: width },
    font: {
      loadSystemFonts: true,
      ...(family !== undefined && { defaultFontFamily: family, sansSerifFamily: family }),
    },
  });
  return resvg.render().asPng();
}

/**
 * Writes `basePath.svg`, `basePath.vl.json` and (unless `png: false`) `basePath.png`, each
 * atomically. Returns the written paths.
 */
export async function writePlot(basePath: string, p: PlotSpec, opts: { png?: boolean } = {}): Promise<string[]> {
  return writeVegaLite(basePath, vegaLiteSpec(p), opts);
}

/** writePlot for a histogram. */
export async function writeHistogram(basePath: string, h: HistogramSpec, opts: { png?: boolean } = {}): Promise<string[]> {
  return writeVegaLite(basePath, histogramSpec(h), opts);
}

async function writeVegaLite(basePath: string, spec: Record<string, unknown>, opts: { png?: boolean }): Promise<string[]> {
  const svg = await renderVegaLite(spec);
  const written: string[] = [];
  const put = (path: string, data: string | Uint8Array) => {
    writeFileAtomic(path, data);
    written.push(path);
  };
  put(`${basePath}.svg`, svg);
  writeJsonAtomic(`${basePath}.vl.json`, spec);
  written.push(`${basePath}.vl.json`);
  if (opts.png ?? true) put(`${basePath}.png`, svgToPng(svg));
  return written;
}

/** Readable sans-serif families in order of preference, recognised by their regular face's file name. */
const PREFERRED_FONTS: { family: string; file: RegExp }[] = [
  { family: 'DejaVu Sans', file: /^DejaVuSans\.ttf$/i },
  { family: 'Liberation Sans', file: /^LiberationSans-Regular\.ttf$/i },
  { family: 'Noto Sans', file: /^NotoSans-Regular\.[ot]tf$/i },
  { family: 'Arial', file: /^arial\.ttf$/i },
  { family: 'Helvetica', file: /^Helvetica\.ttc$/i },
  { family: 'FreeSans', file: /^FreeSans\.[ot]tf$/i },
];

let cachedFamily: { family: string | undefined } | undefined;

/** The first preferred family installed here, or undefined (resvg then picks a font itself). Scanned once per process. */
function sansFamily(): string | undefined {
  cachedFamily ??= { family: findPreferredFamily(fontFileNames()) };
  return cachedFamily.family;
}

export function findPreferredFamily(fileNames: readonly string[]): string | undefined {
  const names = fileNames.map((f) => basename(f));
  const match = PREFERRED_FONTS.find(({ file }) => names.some((n) => file.test(n)));
  return match?.family;
}

/** File names under the usual font directories of Linux, macOS and Windows. */
function fontFileNames(): string[] {
  const dirs = [
    '/usr/share/fonts',
    '/usr/local/share/fonts',
    join(homedir(), '.fonts'),
    join(homedir(), '.local/share/fonts'),
    '/System/Library/Fonts',
    '/Library/Fonts',
    join(process.env['WINDIR'] ?? 'C:\\Windows', 'Fonts'),
  ];
  return dirs.flatMap((dir) => {
    try {
      return readdirSync(dir, { recursive: true, encoding: 'utf8' });
    } catch {
      return []; // a directory that does not exist on this system
    }
  });
}
