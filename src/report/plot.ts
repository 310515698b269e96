/**
 * Line plots and histograms (specs in vegalite.ts): a Vega-Lite spec rendered headless to SVG by vega, and
 * to PNG by resvg.
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
import { histogramSpec, vegaLiteSpec, type HistogramSpec, type PlotSpec } from './vegalite.js';

export * from './vegalite.js';

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
