/** The figures of an experiment report: both uplink units, the convergence plots, one style per method. */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError } from '../data/errors.js';
import { methodStyle } from '../report/palette.js';
import { readReferences, writeReport } from './report.js';
import { readResults } from './results-file.js';
import { runExperiment } from './run.js';
import { parseExperiment } from './spec.js';

// 3 methods (one a named variant) × 2 sparsities × 1 seed, 3 rounds of a tiny least-squares problem.
const raw = {
  name: 'figs',
  base: { dataset: 'lsq', clients: 2, rounds: 3, timing: false },
  methods: ['sparse-proxskip', 'proxskip', { algorithm: 'proxskip', name: 'proxskip-topk', label: 'proxskip, pruned', config: { postHocTopk: true } }],
  seeds: 1,
  sweep: { field: 'sparsity', values: [0.5, 0.8] },
};
const spec = parseExperiment(raw);

let out: string;
beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'experiment-figures-'));
  await runExperiment(spec, out);
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface VlLayer {
  mark: { type: string };
  data: { values: Record<string, unknown>[] };
  encoding: Record<string, { scale?: { domain: string[]; range: unknown[] } }>;
}

function vl(path: string, dir = out): { title: unknown; layer: VlLayer[] } {
  return JSON.parse(readFileSync(join(dir, path), 'utf8'));
}

function vlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.vl.json'));
}

describe('the report figures', () => {
  it('draw every uplink figure in floats and in bytes, and convergence plots where references.json gives f*', async () => {
    writeFileSync(join(out, 'references.json'), JSON.stringify({ 'sparsity-0.5': { fStar: 0.01, fSparseRef: 0.2 } }));
    await writeReport(spec, out);
    const files = vlFiles(join(out, 'plots')).sort();
    expect(files.filter((f) => f.startsWith('sparsity-0.5/'))).toEqual(
      [
        'convergence-vs-rounds',
        'convergence-vs-uplink',
        'convergence-vs-uplink-bytes',
        'loss-vs-uplink',
        'loss-vs-uplink-bytes',
        'metric-vs-uplink',
        'metric-vs-uplink-bytes',
        'sum-h-vs-rounds',
      ]
        .map((k) => `sparsity-0.5/${k}.vl.json`)
        .sort(),
    );
    expect(files.filter((f) => f.startsWith('sparsity-0.8/convergence'))).toEqual([]); // no reference for it
    expect(JSON.stringify(vl('plots/sparsity-0.5/loss-vs-uplink-bytes.vl.json'))).toContain('cumulative uplink (MB, encoded)');

    const conv = vl('plots/sparsity-0.5/convergence-vs-rounds.vl.json');
    const rule = conv.layer.find((l) => l.mark.type === 'rule')!;
    expect(rule.data.values).toEqual([{ y: 0.2 - 0.01, label: 'centralised K-sparse reference' }]);
    const line = conv.layer.find((l) => l.mark.type === 'line')!;
    const results = readResults(readFileSync(join(out, 'results.json'), 'utf8'));
    const first = results.settings[0]!.methods[0]!.curve[0]!.trainLoss!.mean;
    expect(line.data.values[0]).toEqual({ series: 'sparse-proxskip', x: 0, y: first - 0.01 });

    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('[in bytes](plots/sparsity-0.5/loss-vs-uplink-bytes.png)');
    expect(md).toContain('(plots/sparsity-0.5/convergence-vs-rounds.png)');
  });

  it('give each method one colour and dash in every figure, the palette’s, by method name', () => {
    const seen = new Map<string, string>();
    for (const f of vlFiles(join(out, 'plots'))) {
      const line = vl(join('plots', f)).layer.find((l) => l.mark.type === 'line')!;
      const { domain, range } = line.encoding['color']!.scale!;
      const dashes = line.encoding['strokeDash']!.scale!.range;
      domain.forEach((label, i) => {
        const style = `${range[i]} ${JSON.stringify(dashes[i])}`;
        expect(seen.get(label) ?? style, `${label} in ${f}`).toBe(style);
        seen.set(label, style);
      });
    }
    const expected = (name: string, algo: string) => `${methodStyle(name, algo).color} ${JSON.stringify(methodStyle(name, algo).dash)}`;
    expect(seen.get('sparse-proxskip')).toBe(expected('sparse-proxskip', 'sparse-proxskip'));
    expect(seen.get('proxskip, pruned')).toBe(expected('proxskip-topk', 'proxskip'));
    expect(seen.get('proxskip, pruned')).not.toBe(seen.get('proxskip'));
  });

  it('mark the measured points of a sweep, every one', () => {
    const sweep = vl('plots/sweep-loss.vl.json');
    const points = sweep.layer.find((l) => l.mark.type === 'point')!.data.values;
    expect(points.filter((r) => r['series'] === 'proxskip').map((r) => r['x'])).toEqual([0.5, 0.8]);
  });

  it('list a sweep in the order of its values, whatever order the file runs its settings in', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'experiment-reversed-'));
    try {
      cpSync(join(out, 'cells'), join(copy, 'cells'), { recursive: true });
      const reversed = parseExperiment({ ...raw, sweep: { field: 'sparsity', values: [0.8, 0.5] } });
      await writeReport(reversed, copy);
      expect(readFileSync(join(copy, 'report.md'), 'utf8')).toMatch(/\| method +\| sparsity 0\.5 \| sparsity 0\.8 \|/);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('say what the "test" values were measured on when it is not the test set (a validation split)', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'experiment-validation-'));
    try {
      cpSync(join(out, 'cells'), join(copy, 'cells'), { recursive: true });
      for (const m of ['sparse-proxskip', 'proxskip', 'proxskip-topk']) {
        const file = join(copy, 'cells', 'sparsity-0.5', m, 'seed-0', 'summary.json');
        const summary = JSON.parse(readFileSync(file, 'utf8'));
        summary.dataset.meta = { ...summary.dataset.meta, testSet: 'validation: the last 5 training rows' };
        writeFileSync(file, JSON.stringify(summary));
      }
      await writeReport(spec, copy);
      expect(readFileSync(join(copy, 'report.md'), 'utf8')).toContain('**Evaluation set:** every "test" value and figure below is measured on validation: the last 5 training rows.');
      expect(readFileSync(join(out, 'report.md'), 'utf8')).not.toContain('Evaluation set');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('reject a bad references.json with one line naming the file and the key, before writing anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'experiment-refs-'));
    try {
      const bad = (refs: unknown) => {
        writeFileSync(join(dir, 'references.json'), typeof refs === 'string' ? refs : JSON.stringify(refs));
        return () => readReferences(spec, dir);
      };
      expect(readReferences(spec, dir)).toBeUndefined();
      expect(bad({ 'sparsity-0.5': { fStar: 1 } })()).toEqual({ 'sparsity-0.5': { fStar: 1 } });
      expect(bad('{')).toThrow(/references\.json: not valid JSON/);
      expect(bad({ nope: { fStar: 1 } })).toThrow(/'nope' is no setting of figs \(settings: sparsity-0\.5, sparsity-0\.8\)/);
      expect(bad({ 'sparsity-0.5': { fStar: 'x' } })).toThrow(/sparsity-0\.5\.fStar must be a finite number, got "x"/);
      // what `experiment` writes besides the plotted values (how they were found) is kept out of the plots
      expect(bad({ 'sparsity-0.5': { fStar: 1, key: '…', dense: {} } })()).toEqual({ 'sparsity-0.5': { fStar: 1 } });
      expect(bad([])).toThrow(DataError);
      await expect(writeReport(spec, dir)).rejects.toThrow(DataError);
      expect(existsSync(join(dir, 'report.md'))).toBe(false);
      expect(existsSync(join(dir, 'plots'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the report curves', () => {
  it('keep the evaluated rounds, round 1 (‖Σh‖ of the pruned initialisation) and the last', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'experiment-curve-'));
    try {
      const s = parseExperiment({
        name: 'curve',
        base: { dataset: 'lsq', clients: 2, rounds: 7, evalEvery: 3, sparsity: 0.5, timing: false },
        methods: ['accelerated-server-pruning'],
        seeds: 1,
      });
      await runExperiment(s, dir);
      await writeReport(s, dir);
      const m = readResults(readFileSync(join(dir, 'results.json'), 'utf8')).settings[0]!.methods[0]!;
      expect(m.curve.map((p) => p.round)).toEqual([0, 1, 3, 6, 7]);
      expect(m.curve[1]!.trainLoss).toBeNull();
      expect(m.curve[1]!.sumHNorm.mean).toBeGreaterThan(0);
      const sumH = vl('plots/default/sum-h-vs-rounds.vl.json', dir);
      expect(sumH.layer.find((l) => l.mark.type === 'line')!.data.values.map((v) => v.x)).toContain(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
