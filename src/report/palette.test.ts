import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ALGORITHMS } from '../algorithms/methods.js';
import { ALGORITHM_STYLES, algorithmOf, methodStyle, shade } from './palette.js';
import { vegaLiteSpec, type PlotSpec } from './plot.js';

const styles = ALGORITHMS.map((a) => ALGORITHM_STYLES[a]);

/** The colour, dash and marker shape a Vega-Lite spec gives each series label. */
function drawnStyles(p: PlotSpec): Map<string, { color: string; dash: unknown; shape: string }> {
  const layers = vegaLiteSpec(p)['layer'] as { mark: { type: string }; data: { values: Record<string, unknown>[] }; encoding: Record<string, { scale?: { domain: string[]; range: unknown[] } }> }[];
  const line = layers.find((l) => l.mark.type === 'line')!;
  const points = layers.find((l) => l.mark.type === 'point')!;
  const { domain, range: colors } = line.encoding['color']!.scale!;
  const dashes = line.encoding['strokeDash']!.scale!.range;
  return new Map(
    domain.map((label, i) => {
      const row = points.data.values.find((r) => r['series'] === label)!;
      expect(row['color']).toBe(colors[i]); // markers in their line's colour
      return [label, { color: colors[i] as string, dash: dashes[i], shape: row['shape'] as string }];
    }),
  );
}

function figure(labels: string[]): PlotSpec {
  return { title: 't', xLabel: 'x', yLabel: 'y', series: labels.map((label, i) => ({ label, points: [{ x: 1, y: 1 + i }, { x: 2, y: 2 + i }] })) };
}

describe('the palette', () => {
  it('gives every algorithm its own colour, dash pattern and marker', () => {
    for (const key of ['color', 'shape'] as const) expect(new Set(styles.map((s) => s[key])).size).toBe(ALGORITHMS.length);
    expect(new Set(styles.map((s) => s.dash.join(','))).size).toBe(ALGORITHMS.length);
    for (const s of styles) expect(s.color).toMatch(/^#[0-9a-f]{6}$/);
  });

  it('gives a method the same style in every figure, whichever methods share it and in any order', () => {
    const a = drawnStyles(figure(['sparse-proxskip', 'proxskip', 'randprox-l1']));
    const b = drawnStyles(figure(['fedavg', 'randprox-l1', 'sparse-proxskip-local', 'sparse-proxskip']));
    for (const name of ['sparse-proxskip', 'randprox-l1']) {
      expect(a.get(name)).toEqual(b.get(name));
      expect(a.get(name)).toEqual({ color: ALGORITHM_STYLES[name as 'proxskip'].color, dash: ALGORITHM_STYLES[name as 'proxskip'].dash, shape: ALGORITHM_STYLES[name as 'proxskip'].shape });
    }
  });

  it('keys by method name, not legend text: a relabelled method keeps its style', () => {
    const p = figure(['Sparse-ProxSkip (ours)']);
    p.series[0]!.method = 'sparse-proxskip';
    expect(drawnStyles(p).get('Sparse-ProxSkip (ours)')!.color).toBe(ALGORITHM_STYLES['sparse-proxskip'].color);
  });

  it('derives a named variant from its algorithm: a shade of its colour, another dash, its marker', () => {
    for (const [name, algo] of [
      ['proxskip-topk', 'proxskip'],
      ['accelerated-server-pruning-sparse-init', 'accelerated-server-pruning'],
      ['randprox-l1-old-rule', 'randprox-l1'],
      ['sparse-proxskip-random', 'sparse-proxskip'],
    ] as const) {
      const base = ALGORITHM_STYLES[algo];
      const v = methodStyle(name);
      expect(v, name).toEqual(methodStyle(name, algo));
      expect(v.color).not.toBe(base.color);
      expect(v.dash).not.toEqual(base.dash);
      expect(v.shape).toBe(base.shape);
      expect(hue(v.color)).toBeCloseTo(hue(base.color), 0);
    }
    // two variants of one algorithm differ from each other too
    expect(methodStyle('accelerated-server-pruning-sparse-init')).not.toEqual(methodStyle('accelerated-server-pruning-old'));
    // an explicit algorithm wins over the name
    expect(methodStyle('topk', 'proxskip').shape).toBe(ALGORITHM_STYLES.proxskip.shape);
  });

  it('gives every variant of a sweep (a λ path, ×4 or ×2 apart) its own style', () => {
    for (const values of [
      ['0.001', '0.004', '0.016', '0.063', '0.25', '1', '4', '16'],
      ['1e-05', '4e-05', '0.00016', '0.00064', '0.00256', '0.01', '0.04', '0.16'],
      ['0.125', '0.25', '0.5', '1', '2', '4', '8', '16', '32', '64', '128', '256'],
    ]) {
      const styles = values.map((v) => JSON.stringify(methodStyle(`randprox-l1-lambda-${v}`)));
      expect(new Set(styles).size, values.join(' ')).toBe(values.length);
      for (const v of values) expect(methodStyle(`randprox-l1-lambda-${v}`).dash).not.toEqual(ALGORITHM_STYLES['randprox-l1'].dash);
    }
  });

  it('finds the algorithm of a name by its longest prefix', () => {
    expect(algorithmOf('sparse-proxskip-local')).toBe('sparse-proxskip-local');
    expect(algorithmOf('sparse-proxskip-local-x')).toBe('sparse-proxskip-local');
    expect(algorithmOf('sparse-proxskip-lo')).toBe('sparse-proxskip');
    expect(algorithmOf('fedavg+post-hoc-topk')).toBe('fedavg');
    expect(algorithmOf('proxskipper')).toBeUndefined();
  });

  it('is a function of the name alone (property)', () => {
    fc.assert(
      fc.property(fc.string(), (name) => {
        const s = methodStyle(name);
        expect(s).toEqual(methodStyle(name));
        expect(s.color).toMatch(/^#[0-9a-f]{6}$/);
        expect(s.dash.length).toBeGreaterThan(0);
      }),
    );
  });

  it('shades towards black or white', () => {
    expect(shade('#808080', -0.5)).toBe('#404040');
    expect(shade('#000000', 0.5)).toBe('#808080');
    expect(shade('#d55e00', 0)).toBe('#d55e00');
  });
});

/** Hue in sixths of a turn (0..6), enough to tell colour families apart. */
function hue(color: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(color.slice(i, i + 2), 16) / 255) as [number, number, number];
  const max = Math.max(r, g, b);
  const d = max - Math.min(r, g, b);
  if (d === 0) return 0;
  if (max === r) return ((g - b) / d + 6) % 6;
  if (max === g) return (b - r) / d + 2;
  return (r - g) / d + 4;
}
