import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ALGORITHM_STYLES } from './palette.js';
import { coincidenceNotes, coincidentSeries, findPreferredFamily, wrapLine, histogramSpec, logBins, renderSvg, svgToPng, thinForDisplay, vegaLiteSpec, writePlot, type PlotSpec } from './plot.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function plot(overrides: Partial<PlotSpec> = {}): PlotSpec {
  return {
    title: 'Convergence',
    xLabel: 'round',
    yLabel: 'loss',
    series: [
      {
        label: 'Sparse-ProxSkip',
        method: 'sparse-proxskip',
        points: [
          { x: 0, y: 1, lo: 0.9, hi: 1.1 },
          { x: 1, y: 0.5, lo: 0.4, hi: 0.6 },
          { x: 2, y: 0.25, lo: 0.2, hi: 0.3 },
        ],
      },
      {
        label: 'ProxSkip',
        method: 'proxskip',
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
  encoding: Record<string, { field?: string; scale?: { range?: unknown; type?: string; nice?: boolean } | null }>;
}

function layer(p: PlotSpec, type: string): Layer | undefined {
  return layers(p).find((l) => l.mark.type === type);
}

function layers(p: PlotSpec): Layer[] {
  return vegaLiteSpec(p)['layer'] as Layer[];
}

describe('vegaLiteSpec', () => {
  it('layers a band under the lines, keyed by series label', () => {
    const spec = vegaLiteSpec(plot());
    expect(spec['title']).toBe('Convergence');
    const [band, line] = layers(plot());
    expect(layers(plot()).map((l) => l.mark.type)).toEqual(['area', 'line', 'point']);
    expect(band!.mark).toMatchObject({ type: 'area', opacity: 0.2 });
    expect(band!.encoding['y']!.field).toBe('lo');
    expect(band!.encoding['y2']!.field).toBe('hi');
    expect(band!.data.values).toHaveLength(3);
    expect(band!.data.values.every((r) => r['series'] === 'Sparse-ProxSkip')).toBe(true);
    expect(line!.mark.type).toBe('line');
    expect(line!.encoding['y']!.field).toBe('y');
    expect(line!.encoding['color']!.field).toBe('series');
    // colour and dash from the palette, by method
    expect(line!.encoding['color']!.scale!.range).toEqual([ALGORITHM_STYLES['sparse-proxskip'].color, ALGORITHM_STYLES.proxskip.color]);
    expect(line!.encoding['strokeDash']!.scale!.range).toEqual([ALGORITHM_STYLES['sparse-proxskip'].dash, ALGORITHM_STYLES.proxskip.dash]);
    expect(line!.data.values).toHaveLength(6);
  });

  it('gives a band the colour of its line', () => {
    const [band, line] = layers(plot());
    const colors = line!.encoding['color']!.scale!.range as string[];
    expect(band!.data.values[0]!['fill']).toBe(colors[0]);
  });

  it('has no band layer and no rule layer when nothing asks for them', () => {
    const ls = layers(plot({ series: [{ label: 'a', points: [{ x: 0, y: 1 }] }] }));
    expect(ls.map((l) => l.mark.type)).toEqual(['line', 'point']);
  });

  it('fits log axes to the data instead of widening them to whole decades', () => {
    const line = layer(plot({ yScale: 'log', xScale: 'log' }), 'line')!;
    // x = 0 cannot be drawn; the lines then span y 0.25..0.7 (the band, down to 0.2, does not widen it)
    expect(line.encoding['y']!.scale).toEqual({ type: 'log', nice: false, domain: [0.25, 0.7] });
    expect(line.encoding['x']!.scale).toEqual({ type: 'log', nice: false, domain: [1, 2] });
    expect(layer(plot({ yScale: 'log', rules: [{ y: 0.1, label: 'r' }] }), 'line')!.encoding['y']!.scale).toEqual({ type: 'log', nice: false, domain: [0.1, 1] });
    expect(layer(plot(), 'line')!.encoding['y']!.scale).toEqual({ type: 'linear', zero: false });
  });

  it('puts a few staggered markers on long curves, and one on every point of a sweep', () => {
    const long = (label: string) => ({ label, points: Array.from({ length: 101 }, (_, i) => ({ x: i, y: i })) });
    const p = plot({ series: [long('sparse-proxskip'), long('sparse-proxskip-local')] });
    const marks = layer(p, 'point')!.data.values;
    const xs = (label: string) => marks.filter((r) => r['series'] === label).map((r) => r['x'] as number);
    // 8 markers each over x in [0, 100], at (k + 1/4)/8 and (k + 3/4)/8 of the span: never on the same point
    expect(xs('sparse-proxskip')).toEqual([3, 16, 28, 41, 53, 66, 78, 91]);
    expect(xs('sparse-proxskip-local')).toEqual([9, 22, 34, 47, 59, 72, 84, 97]);
    expect(marks[0]).toMatchObject({ color: ALGORITHM_STYLES['sparse-proxskip'].color, shape: 'circle' });
    expect(layer(plot({ ...p, markers: 'all' }), 'point')!.data.values).toHaveLength(202);
  });

  it('draws solid lines first, so a dashed line over a coinciding one lets it show', () => {
    const p = plot({ series: [{ label: 'proxskip', points: [{ x: 0, y: 1 }] }, { label: 'sparse-proxskip', points: [{ x: 0, y: 1 }] }] });
    expect(layer(p, 'line')!.data.values.map((r) => r['series'])).toEqual(['sparse-proxskip', 'proxskip']);
  });

  it('draws horizontal reference rules with their labels', () => {
    const p = plot({ yScale: 'log', rules: [{ y: 0.3, label: 'reference' }, { y: -1, label: 'not drawable on log' }] });
    const rule = layer(p, 'rule')!;
    expect(rule.data.values).toEqual([{ y: 0.3, label: 'reference' }]);
    expect(rule.encoding['x']).toBeUndefined(); // spans the plot
    expect(layer(p, 'text')!.encoding['text']!.field).toBe('label');
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

describe('coincidentSeries', () => {
  const pts = (ys: number[]) => ys.map((y, x) => ({ x, y }));
  it('finds curves within half a percent of each axis span at every point, and says so in the subtitle', () => {
    const p = plot({
      series: [
        { label: 'a', points: pts([10, 5, 0]) },
        { label: 'b', points: pts([10, 5.04, 0]) }, // 0.4% of the y span off: coincides
        { label: 'c', points: pts([10, 5.1, 0]) }, // 1% off: apart
        { label: 'd', points: pts([10, 5]) }, // shorter: apart
      ],
    });
    expect(coincidentSeries(p)).toEqual([['a', 'b']]);
    expect(vegaLiteSpec(p)['title']).toEqual({ text: 'Convergence', subtitle: ['b coincides with a (its dashes and markers show both)'] });
    expect(vegaLiteSpec(plot())['title']).toBe('Convergence');
  });

  it('notes each group of coinciding curves once, under the earliest of them', () => {
    const same = pts([10, 5, 0]);
    const p = plot({
      series: [
        { label: 'a', points: same },
        { label: 'b', points: same },
        { label: 'c', points: pts([10, 5.04, 0]) }, // 0.4% of the span from a and b
        { label: 'd', points: pts([10, 5.08, 0]) }, // 0.4% from c, 0.8% from a and b
        { label: 'e', points: pts([0, 5, 10]) },
      ],
    });
    expect(coincidentSeries(p)).toEqual([['a', 'b'], ['a', 'c'], ['b', 'c'], ['c', 'd']]);
    expect(coincidenceNotes(p)).toEqual(['b and c coincide with a', 'd coincides with c']);
    expect((vegaLiteSpec(p)['title'] as { subtitle: string[] }).subtitle).toEqual([
      'b and c coincide with a (their dashes and markers show them all)',
      'd coincides with c (its dashes and markers show both)',
    ]);
  });

  it('wraps long subtitle lines to about the plot width', () => {
    expect(wrapLine('aa bb cc dd', 5)).toEqual(['aa bb', 'cc dd']);
    expect(wrapLine('a verylongword b', 4)).toEqual(['a', 'verylongword', 'b']);
    expect(wrapLine('', 4)).toEqual(['']);
    const long = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
    const sub = (vegaLiteSpec(plot({ subtitle: [long] }))['title'] as { subtitle: string[] }).subtitle;
    expect(sub.join(' ')).toBe(long);
    expect(Math.max(...sub.map((l) => l.length))).toBeLessThanOrEqual(96);
  });

  it('measures in axis space on a log axis', () => {
    const p = plot({ yScale: 'log', series: [{ label: 'a', points: pts([1000, 10, 1]) }, { label: 'b', points: pts([1000, 10.05, 1]) }] });
    expect(coincidentSeries(p)).toEqual([['a', 'b']]); // log10(10.05) − 1 = 0.0022 of a span of 3
    expect(coincidentSeries({ ...p, yScale: 'linear' })).toEqual([['a', 'b']]);
    expect(coincidentSeries({ ...p, series: [{ label: 'a', points: pts([1000, 1.2, 1]) }, { label: 'b', points: pts([1000, 1, 1]) }] })).toEqual([]);
  });
});

describe('thinForDisplay', () => {
  it('keeps the lowest and highest point of each pixel column, and the ends', () => {
    const ys = [5, 1, 7, 3, 2, 9, 0, 4, 8, 6];
    const p = plot({ series: [{ label: 'a', points: ys.map((y, x) => ({ x, y, lo: y - 1, hi: y + 1 })) }, { label: 'b', points: [{ x: 0, y: 1 }] }] });
    const thin = thinForDisplay(p, 2); // columns x < 4.5 and x ≥ 4.5
    expect(thin.series[0]!.points.map((q) => q.x)).toEqual([0, 1, 2, 5, 6, 9]);
    expect(thin.series[0]!.points[1]).toEqual({ x: 1, y: 1, lo: 0, hi: 2 }); // real points, bands and all
    expect(thin.series[1]).toBe(p.series[1]); // short series untouched
  });

  it('keeps real points, the ends and the extremes, within 2 per column plus 2 (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 1, maxLength: 300 }), fc.integer({ min: 1, max: 50 }), (ys, columns) => {
        const points = ys.map((y, x) => ({ x, y }));
        const kept = thinForDisplay(plot({ series: [{ label: 'a', points }] }), columns).series[0]!.points;
        expect(kept.every((q) => points[q.x] === q)).toBe(true);
        expect(kept[0]).toBe(points[0]);
        expect(kept.at(-1)).toBe(points.at(-1));
        expect(kept.some((q) => q.y === Math.min(...ys))).toBe(true);
        expect(kept.some((q) => q.y === Math.max(...ys))).toBe(true);
        expect(kept.length).toBeLessThanOrEqual(Math.max(points.length <= 2 * columns ? points.length : 0, 2 * columns + 2));
      }),
    );
  });
});

describe('histogramSpec', () => {
  it('bins in equal steps of log10 on a log axis and carries a subtitle', () => {
    const spec = histogramSpec({ title: 'sizes', subtitle: ['133 dropped'], xLabel: 'n', yLabel: 'clients', values: [1, 3, 4, 10, 0, -2], maxBins: 3, xScale: 'log' });
    expect(spec['title']).toEqual({ text: 'sizes', subtitle: ['133 dropped'] });
    const rows = (spec['data'] as { values: { lo: number; hi: number; count: number }[] }).values;
    // 2 bins per decade (3 would need 4 bins): [1, √10), [√10, 10), [10, 10√10)
    expect(rows.map((r) => r.count)).toEqual([2, 1, 1]);
    expect(rows[1]!.lo).toBeCloseTo(Math.sqrt(10), 12);
    expect((spec['encoding'] as Record<string, { scale?: unknown }>)['x']!.scale).toEqual({ type: 'log', nice: false });
  });

  it('lets Vega-Lite bin a linear one', () => {
    const spec = histogramSpec({ title: 't', xLabel: 'n', yLabel: 'c', values: [1, 2] });
    expect(spec['data']).toEqual({ values: [{ value: 1 }, { value: 2 }] });
  });
});

describe('logBins', () => {
  it('puts a power of ten in the bin it starts', () => {
    expect(logBins([1, 9, 10, 99, 100, 1000], 4).map((b) => [b.lo, b.count])).toEqual([
      [1, 2],
      [10, 2],
      [100, 1],
      [1000, 1],
    ]);
  });

  it('counts every positive value once, in a bin that holds it, within maxBins where one bin a decade allows (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 1e-3, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 50 }), fc.integer({ min: 1, max: 40 }), (values, maxBins) => {
        const bins = logBins(values, maxBins);
        expect(bins.reduce((s, b) => s + b.count, 0)).toBe(values.length);
        for (const v of values) expect(bins.some((b) => b.lo * (1 - 1e-9) <= v && v < b.hi * (1 + 1e-9) && b.count > 0)).toBe(true);
        const decades = Math.floor(Math.log10(Math.max(...values)) + 1e-9) - Math.floor(Math.log10(Math.min(...values)) + 1e-9) + 1;
        expect(bins.length).toBeLessThanOrEqual(Math.max(maxBins, decades));
      }),
    );
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
