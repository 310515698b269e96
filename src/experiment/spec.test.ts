import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { expandCells, loadExperiment, MAX_CELLS, parseExperiment } from './spec.js';

const minimal = { methods: ['proxskip'] };

function error(json: unknown): string {
  try {
    parseExperiment(json, 'x.json');
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('parseExperiment', () => {
  it('fills defaults: three seeds, one setting, every applicable plot, uplink in floats', () => {
    const s = parseExperiment(minimal);
    expect(s.name).toBe('experiment');
    expect(s.seeds).toEqual([0, 1, 2]);
    expect(s.settings).toEqual([{ name: 'default', label: 'default', config: {} }]);
    expect(s.methods).toEqual([{ name: 'proxskip', label: 'proxskip', algorithm: 'proxskip', config: {}, settings: null }]);
    expect(s.report).toEqual({ uplink: 'floats', uplinkScale: 'linear', plots: ['loss-vs-uplink', 'metric-vs-uplink', 'sum-h-vs-rounds'] });
    expect(s.sweepField).toBeNull();
  });

  it('expands a sweep into named settings and a count of seeds into 0..n−1', () => {
    const s = parseExperiment({ ...minimal, seeds: 2, sweep: { field: 'sparsity', values: [0.5, 0.99] } });
    expect(s.seeds).toEqual([0, 1]);
    expect(s.settings.map((x) => [x.name, x.config])).toEqual([
      ['sparsity-0.5', { sparsity: 0.5 }],
      ['sparsity-0.99', { sparsity: 0.99 }],
    ]);
    expect(s.sweepField).toBe('sparsity');
    expect(s.report.plots).toContain('sweep');
  });

  it('names the field in every error', () => {
    expect(error([])).toBe('x.json: (top level): must be an object, got a list');
    expect(error({ ...minimal, colour: 1 })).toMatch(/^x\.json: colour: unknown field \(valid: name, description, base/);
    expect(error({})).toMatch(/^x\.json: methods: must be a non-empty list/);
    expect(error({ methods: ['proxskip', { algorithm: 'fedprox' }] })).toMatch(/^x\.json: methods\[1\]\.algorithm: unknown algorithm 'fedprox' \(choose from: fedavg,/);
    expect(error({ methods: [{ algorithm: 'proxskip', config: { sparsity: '0.9' } }] })).toBe('x.json: methods[0].config.sparsity: must be a number, got "0.9"');
    expect(error({ ...minimal, base: { rounds: 10, sparsty: 0.9 } })).toMatch(/^x\.json: base\.sparsty: unknown run option \(valid: dataset,/);
    expect(error({ ...minimal, base: { seed: 3 } })).toBe("x.json: base.seed: set seeds with the top-level 'seeds' list");
    expect(error({ ...minimal, base: { gamma: 'big' } })).toBe("x.json: base.gamma: must be a number or 'auto', got \"big\"");
    expect(error({ ...minimal, base: { pruneMode: 1 } })).toBe('x.json: base.pruneMode: must be a string or null, got 1');
    expect(error({ methods: ['proxskip', 'proxskip'] })).toBe("x.json: methods: name 'proxskip' is used twice (give each entry its own 'name')");
    expect(error({ methods: [{ algorithm: 'proxskip', name: 'a b' }] })).toMatch(/^x\.json: methods\[0\]\.name: use letters, digits/);
    expect(error({ ...minimal, seeds: [0, -1] })).toBe('x.json: seeds[1]: must be a non-negative integer, got -1');
    expect(error({ ...minimal, seeds: [] })).toMatch(/^x\.json: seeds: must be a count >= 1 or a non-empty list/);
    expect(error({ ...minimal, settings: [{ name: 's', config: {} }], sweep: { field: 'p', values: [0.1] } })).toBe(
      "x.json: sweep: give either 'settings' or 'sweep', not both",
    );
    expect(error({ ...minimal, sweep: { field: 'dataset', values: [1] } })).toMatch(/^x\.json: sweep\.field: must be a numeric run option/);
    expect(error({ ...minimal, settings: [{ label: 'no name' }] })).toBe('x.json: settings[0].name: must be a string, got nothing');
    expect(error({ ...minimal, report: { plots: ['sweep'] } })).toBe("x.json: report.plots[0]: 'sweep' needs a top-level 'sweep'");
    expect(error({ ...minimal, report: { uplink: 'GB' } })).toBe('x.json: report.uplink: must be \'floats\' or \'MB\', got "GB"');
  });

  it('checks every cell as a run, naming the cell', () => {
    expect(error({ methods: ['proxskip'], settings: [{ name: 'dense', config: { sparsity: 2 } }] })).toBe(
      'x.json: cell dense/proxskip/seed-0: --sparsity must be in [0, 1), got 2',
    );
    expect(error({ methods: ['proxskip'], base: { dataset: 'mnist' } })).toMatch(/^x\.json: cell default\/proxskip\/seed-0: unknown dataset 'mnist'/);
  });
});

describe('absurd sizes and hostile files', () => {
  it('a count of seeds or a grid past MAX_CELLS is refused before any list is built', () => {
    const t0 = performance.now();
    expect(error({ ...minimal, seeds: 2147483648 })).toBe(`x.json: seeds: 2147483648 seeds make more than the ${MAX_CELLS} cells an experiment may have`);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(error({ ...minimal, seeds: 1e300 })).toBe(`x.json: seeds: 1e+300 seeds make more than the ${MAX_CELLS} cells an experiment may have`);
    expect(error({ ...minimal, seeds: 1e999 })).toBe('x.json: seeds: must be a count >= 1 or a list of seeds, got Infinity');
    const grid = { methods: ['proxskip', 'fedavg'], seeds: 100, sweep: { field: 'sparsity', values: Array.from({ length: 51 }, (_, i) => i / 100) } };
    expect(error(grid)).toBe(`x.json: 51 settings × 100 seeds × 2 methods = 10200 cells, more than the ${MAX_CELLS} an experiment may have`);
    expect(MAX_CELLS).toBe(10_000);
  });

  it('the data limits are run options with their types', () => {
    expect(parseExperiment({ ...minimal, base: { maxLineBytes: 1000, maxDimension: 50, maxDecompressedMb: 2.5 } }).base).toEqual({
      maxLineBytes: 1000,
      maxDimension: 50,
      maxDecompressedMb: 2.5,
    });
    expect(error({ ...minimal, base: { maxDimension: '50' } })).toBe('x.json: base.maxDimension: must be a number, got "50"');
    expect(error({ ...minimal, base: { maxLineBytes: 0 } })).toBe('x.json: cell default/proxskip/seed-0: --max-line-bytes must be an integer in 1..268435456, got 0');
  });

  it('a JSON syntax error is one line with its line and column; a FIFO or directory is refused at once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-test-'));
    try {
      const path = join(dir, 'e.json');
      writeFileSync(path, '{\n  "methods": ["proxskip"],\n  "seeds": }\n');
      expect(() => loadExperiment(path)).toThrow(new UsageError(`${path}: not valid JSON: Unexpected token '}'`));
      writeFileSync(path, '{\n  "methods": ["proxskip"]\n  "seeds": 3\n}\n');
      expect(() => loadExperiment(path)).toThrow(new UsageError(`${path}: not valid JSON: Expected ',' or '}' after property value (line 3, column 3)`));
      expect(() => loadExperiment(dir)).toThrow(new UsageError(`experiment file ${dir}: is a directory, not a regular file`));
      expect(() => loadExperiment('/dev/zero')).toThrow(new UsageError('experiment file /dev/zero: is a character device, not a regular file'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('expandCells', () => {
  it('orders cells settings × seeds × methods; method fields override setting fields, which override base', () => {
    const s = parseExperiment({
      base: { dataset: 'lsq', rounds: 7, sparsity: 0.5 },
      methods: ['proxskip', { algorithm: 'proxskip', name: 'ph', label: 'post hoc', config: { postHocTopk: true, sparsity: 0.7 } }],
      seeds: [4, 5],
      settings: [{ name: 'a', config: { sparsity: 0.9, rounds: 3 } }],
    });
    const cells = expandCells(s, { workers: 2 });
    expect(cells.map((c) => c.id)).toEqual(['a/proxskip/seed-4', 'a/ph/seed-4', 'a/proxskip/seed-5', 'a/ph/seed-5']);
    expect(cells.map((c) => [c.config.sparsity, c.config.rounds, c.config.seed, c.config.postHocTopk, c.config.workers])).toEqual([
      [0.9, 3, 4, false, 2],
      [0.7, 3, 4, true, 2],
      [0.9, 3, 5, false, 2],
      [0.7, 3, 5, true, 2],
    ]);
  });
});

describe('experiments/*.json', () => {
  const dir = join(import.meta.dirname, '../../experiments');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    it(`${f} is a valid experiment with at least 3 seeds, or fewer for a setting it states is deterministic, a tuning grid, or a single seed with no error bars`, () => {
      const s = loadExperiment(join(dir, f));
      if (s.seeds.length < 3) expect(s.description).toMatch(/deterministic|a tuning grid|single seed, so (?:its|the) report has no error bars/);
      expect(s.description.length).toBeGreaterThan(0);
    });
  }

  it('reports an unreadable file in one line', () => {
    expect(() => loadExperiment(join(dir, 'no-such.json'))).toThrow(/^experiment file .*no-such\.json: no such file$/);
  });
});

describe('method settings', () => {
  const base = { base: { dataset: 'lsq' }, seeds: [0], sweep: { field: 'sparsity', values: [0.5, 0.9] } };
  it('runs a method only in the settings it names', () => {
    const s = parseExperiment({ ...base, methods: ['sparse-proxskip', { algorithm: 'randprox-l1', settings: ['sparsity-0.9'] }] });
    expect(expandCells(s).map((c) => c.id)).toEqual([
      'sparsity-0.5/sparse-proxskip/seed-0',
      'sparsity-0.9/sparse-proxskip/seed-0',
      'sparsity-0.9/randprox-l1/seed-0',
    ]);
  });
  it('refuses a setting name that does not exist', () => {
    expect(() => parseExperiment({ ...base, methods: [{ algorithm: 'randprox-l1', settings: ['sparsity-0.7'] }] })).toThrow(
      /methods\[0\]\.settings\[0\]: no setting is named 'sparsity-0.7'/,
    );
  });
});
