import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findPreferredFamily, renderSvg, svgToPng, vegaLiteSpec, writePlot, type PlotSpec } from './plot.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function plot(overrides: Partial<PlotSpec> = {}): PlotSpec {
  return {
    title: 'Convergence',
    xLabel: 'round',
    yLabel: 'loss',
    series: [
      {
        label: 'Sparse-ProxSkip',
        points: [
          { x: 0, y: 1, lo: 0.9, hi: 1.1 },
          { x: 1, y: 0.5, lo: 0.4, hi: 0.6 },
          { x: 2, y: 0.25, lo: 0.2, hi: 0.3 },
        ],
      },
      {
        label: 'ProxSkip',
        dashed: true,
        points: [
          { x: 0, y: 1 },
          { x: 1, y: 0.7 },
          { x: 2, y: 0.5 },
        ],
      },
    ],
    ...overrides,
  };
}

interface Layer {
  mark: { type: string };
  data: { values: Record<string, unknown>[] };
  encoding: Record<string, { field?: string; scale?: { range?: unknown; type?: string } | null }>;
}

function layers(p: PlotSpec): Layer[] {
  return vegaLiteSpec(p)['layer'] as Layer[];
}

describe('vegaLiteSpec', () => {
  it('layers a band under the lines, keyed by series label', () => {
    const spec = vegaLiteSpec(plot());
    expect(spec['title']).toBe('Convergence');
    const [band, line] = layers(plot());
    expect(band!.mark).toMatchObject({ type: 'area', opacity: 0.2 });
    expect(band!.encoding['y']!.field).toBe('lo');
    expect(band!.encoding['y2']!.field).toBe('hi');
    expect(band!.data.values).toHaveLength(3);
    expect(band!.data.values.every((r) => r['series'] === 'Sparse-ProxSkip')).toBe(true);
    expect(line!.mark.type).toBe('line');
    expect(line!.encoding['y']!.field).toBe('y');
    expect(line!.encoding['color']!.field).toBe('series');
    expect(line!.encoding['strokeDash']!.scale!.range).toEqual([
      [1, 0],
      [6, 4],
    ]);
    expect(line!.data.values).toHaveLength(6);
  });

  it('gives a band the colour of its line', () => {
    const [band, line] = layers(plot());
    const colors = line!.encoding['color']!.scale!.range as string[];
    expect(band!.data.values[0]!['fill']).toBe(colors[0]);
  });

  it('has no band layer and no dash channel when nothing asks for them', () => {
    const ls = layers(plot({ series: [{ label: 'a', points: [{ x: 0, y: 1 }] }] }));
    expect(ls.map((l) => l.mark.type)).toEqual(['line']);
    expect(ls[0]!.encoding['strokeDash']).toBeUndefined();
  });

  it('drops non-finite points, and non-positive ones on log axes', () => {
    const p = plot({
      yScale: 'log',
      xScale: 'log',
      series: [
        {
          label: 's',
          points: [
            { x: 0, y: 1 },
            { x: 1, y: Number.NaN },
            { x: 2, y: 0 },
            { x: 3, y: 2, lo: -1, hi: 3 },
            { x: Number.POSITIVE_INFINITY, y: 1 },
            { x: 4, y: 0.5, lo: 0.25, hi: 1 },
          ],
        },
      ],
    });
    const [band, line] = layers(p);
    expect(line!.data.values.map((r) => r['x'])).toEqual([3, 4]);
    expect(band!.data.values.map((r) => r['x'])).toEqual([4]);
    expect(line!.encoding['y']!.scale!.type).toBe('log');
  });
});

describe('renderSvg', () => {
  it('draws labels, axis titles, a band only when asked and survives NaN', async () => {
    const svg = await renderSvg(plot({ series: [...plot().series, { label: 'Broken', points: [{ x: Number.NaN, y: 1 }] }] }));
    expect(svg).toContain('<svg');
    for (const text of ['Convergence', 'round', 'loss', 'Sparse-ProxSkip', 'ProxSkip', 'Broken']) expect(svg).toContain(text);
    expect(svg).toContain('mark-area');

    const noBand = await renderSvg(plot({ series: [{ label: 'a', points: [{ x: 0, y: 1 }, { x: 1, y: 2 }] }] }));
    expect(noBand).not.toContain('mark-area');
    expect(noBand).toContain('mark-line');
  });

  it('renders a log-scale plot', async () => {
    const svg = await renderSvg(plot({ yScale: 'log' }));
    expect(svg).toContain('<svg');
  });
});

describe('svgToPng', () => {
  it('produces PNG bytes at the requested width', async () => {
    const png = svgToPng(await renderSvg(plot()), 400);
    expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    // IHDR width, big-endian at byte 16.
    expect(Buffer.from(png).readUInt32BE(16)).toBe(400);
  });
});

describe('writePlot', () => {
  const dir = mkdtempSync(join(tmpdir(), 'report-plot-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes SVG, Vega-Lite JSON and PNG', async () => {
    const base = join(dir, 'sub', 'fig');
    const paths = await writePlot(base, plot());
    expect(paths).toEqual([`${base}.svg`, `${base}.vl.json`, `${base}.png`]);
    expect(readdirSync(join(dir, 'sub')).sort()).toEqual(['fig.png', 'fig.svg', 'fig.vl.json']);
    expect(JSON.parse(readFileSync(`${base}.vl.json`, 'utf8'))).toEqual(vegaLiteSpec(plot()));
    expect([...readFileSync(`${base}.png`).subarray(0, 8)]).toEqual(PNG_SIGNATURE);
  });

  it('skips the PNG when asked', async () => {
    const base = join(dir, 'nopng');
    expect(await writePlot(base, plot(), { png: false })).toEqual([`${base}.svg`, `${base}.vl.json`]);
  });
});

describe('findPreferredFamily', () => {
  it('picks the first preferred family present, or none', () => {
    expect(findPreferredFamily(['a/NotoSans-Regular.ttf', 'b/DejaVuSans.ttf'])).toBe('DejaVu Sans');
    expect(findPreferredFamily(['x/LiberationSans-Regular.ttf'])).toBe('Liberation Sans');
    expect(findPreferredFamily(['x/Symbola.ttf'])).toBeUndefined();
  });
});
