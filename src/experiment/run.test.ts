import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJsonl } from '../report/io.js';
import type { RunSummary } from '../sim/run.js';
import type { RoundRecord } from '../sim/simulate.js';
import { writeReport, type ExperimentResults } from './report.js';
import { cellDir, cellFilter, runExperiment, type ExperimentHooks } from './run.js';
import { sameRun } from '../sim/config.js';
import { expandCells, parseExperiment } from './spec.js';

// 3 methods × 3 seeds × 1 setting on a tiny least-squares problem: a few seconds in all.
const spec = parseExperiment({
  name: 'tiny',
  description: 'resume test',
  base: { dataset: 'lsq', clients: 3, rounds: 4, sparsity: 0.8, lambda: 'auto', timing: false },
  methods: ['proxskip', 'sparse-proxskip', 'randprox-l1'],
  seeds: [0, 1, 2],
});
const REPORT_FILES = ['report.md', 'results.json', 'final.csv', 'curves.csv'];

let out: string;
beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'experiment-'));
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

function counting(): { hooks: ExperimentHooks; started: string[]; probes: number } {
  const r = { started: [] as string[], probes: 0, hooks: {} as ExperimentHooks };
  r.hooks = { onCellStart: (c) => void r.started.push(c.id), onLambdaProbe: () => void r.probes++ };
  return r;
}

function snapshot(): Record<string, string> {
  return Object.fromEntries(REPORT_FILES.map((f) => [f, readFileSync(join(out, f), 'utf8')]));
}

describe('runExperiment', () => {
  let first: Record<string, string>;
  let results: ExperimentResults;

  it('runs every cell once, then writes the report', async () => {
    const c = counting();
    const r = await runExperiment(spec, out, {}, c.hooks);
    expect(r.interrupted).toBe(false);
    expect(c.started).toHaveLength(9);
    // cells sharing data (same seed) run together, methods in their order
    expect(c.started.slice(0, 3)).toEqual(['default/proxskip/seed-0', 'default/sparse-proxskip/seed-0', 'default/randprox-l1/seed-0']);
    expect(c.probes).toBeGreaterThan(0); // one λ search per seed
    for (const cell of r.cells) {
      const dir = cellDir(out, cell);
      const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;
      expect(sameRun(summary.config, cell.config)).toBe(true);
      // a summary written before a RunConfig field existed matches when the cell has that field's default
      const { topkAt: _unused, ...older } = summary.config;
      expect(sameRun(older as RunSummary['config'], cell.config)).toBe(true);
      expect(sameRun(older as RunSummary['config'], { ...cell.config, topkAt: [0.5] })).toBe(false);
      expect(readJsonl<RoundRecord>(join(dir, 'rounds.jsonl')).records).toHaveLength(5);
    }
    ({ results } = await writeReport(spec, out));
    first = snapshot();
  });

  it('writes report.md with the tables and plots, results.json, CSV, SVG and PNG', () => {
    const md = first['report.md']!;
    expect(md).toMatch(/^# Experiment: tiny\n\nresume test\n/);
    expect(md).toContain('| method ');
    expect(md).toContain('| proxskip + post-hoc TopK ');
    expect(md).toContain('found by `--lambda auto`');
    expect(md).toContain('![lsq, sparsity 0.8: train loss](plots/default/loss-vs-uplink.png)');
    for (const kind of ['loss-vs-uplink', 'metric-vs-uplink', 'sum-h-vs-rounds']) {
      for (const ext of ['svg', 'png', 'vl.json']) expect(existsSync(join(out, 'plots/default', `${kind}.${ext}`))).toBe(true);
    }
    expect(readFileSync(join(out, 'plots/default/loss-vs-uplink.svg'), 'utf8')).toMatch(/^<svg/);
    expect([...readFileSync(join(out, 'plots/default/loss-vs-uplink.png')).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);

    const ps = results.settings[0]!.methods[0]!;
    expect(ps.seeds).toEqual([0, 1, 2]);
    // proxskip sends d = 20 floats per client per round: 3 clients × 4 rounds × 20
    expect(ps.final.uplinkFloats).toEqual({ mean: 240, se: 0, n: 3 });
    expect(ps.final.uplinkFloatsPerRound).toEqual({ mean: 60, se: 0, n: 3 });
    expect(ps.curve).toHaveLength(5);
    const sp = results.settings[0]!.methods[1]!;
    expect(sp.final.nnz).toEqual({ mean: 4, se: 0, n: 3 }); // K = 20 × 0.2
    expect(sp.final.uplinkFloatsPerRound!.mean).toBeLessThan(60);

    const csv = first['final.csv']!.split('\r\n');
    expect(csv[0]).toMatch(/^setting,method,label,algorithm,seeds,failed,trainLoss,trainLossSe,/);
    expect(csv.filter((l) => l.startsWith('default,'))).toHaveLength(4); // 3 methods + proxskip's post-hoc row
    expect(first['curves.csv']!.split('\r\n').filter((l) => l.startsWith('default,'))).toHaveLength(15);
  });

  it('resumes: reruns only a deleted, an interrupted and a reconfigured cell, and the report is the same', async () => {
    const cells = expandCells(spec);
    const byId = (id: string) => cells.find((c) => c.id === id)!;
    const untouched = cellDir(out, byId('default/proxskip/seed-0'));
    const mtime = statSync(join(untouched, 'summary.json')).mtimeMs;

    rmSync(join(cellDir(out, byId('default/proxskip/seed-1')), 'summary.json'));
    const interruptedPath = join(cellDir(out, byId('default/sparse-proxskip/seed-2')), 'summary.json');
    const s = JSON.parse(readFileSync(interruptedPath, 'utf8')) as RunSummary;
    writeFileSync(interruptedPath, JSON.stringify({ ...s, interrupted: true }));
    const otherPath = join(cellDir(out, byId('default/randprox-l1/seed-1')), 'summary.json');
    const o = JSON.parse(readFileSync(otherPath, 'utf8')) as RunSummary;
    writeFileSync(otherPath, JSON.stringify({ ...o, config: { ...o.config, rounds: 3 } }));
    writeFileSync(join(cellDir(out, byId('default/proxskip/seed-2')), 'summary.json'), '{"trunc');

    const c = counting();
    const r = await runExperiment(spec, out, { extra: { workers: 1 } }, c.hooks);
    expect(new Set(c.started)).toEqual(
      new Set(['default/proxskip/seed-1', 'default/sparse-proxskip/seed-2', 'default/randprox-l1/seed-1', 'default/proxskip/seed-2']),
    );
    expect(r.skipped).toHaveLength(5);
    expect(c.probes).toBe(0); // λ came from DIR/lambda-cache.json
    expect(statSync(join(untouched, 'summary.json')).mtimeMs).toBe(mtime);

    await writeReport(spec, out);
    expect(snapshot()).toEqual(first);

    // nothing left to do
    const again = counting();
    await runExperiment(spec, out, {}, again.hooks);
    expect(again.started).toEqual([]);
  });

  it('reports missing cells and runs only the cells --only selects', async () => {
    rmSync(join(cellDir(out, expandCells(spec)[0]!), 'summary.json'));
    const { results: partial } = await writeReport(spec, out);
    expect(partial.missing).toEqual(['default/proxskip/seed-0']);
    expect(partial.settings[0]!.methods[0]!.seeds).toEqual([1, 2]);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('**Incomplete:** 1 cell(s)');

    const c = counting();
    await runExperiment(spec, out, { only: '*/sparse-proxskip/*' }, c.hooks);
    expect(c.started).toEqual([]);
    await runExperiment(spec, out, { only: '*/proxskip/seed-0,nothing' }, c.hooks);
    expect(c.started).toEqual(['default/proxskip/seed-0']);
  });

  it('stops between rounds when asked, and the rerun continues from the checkpoint to the same records', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'experiment-stop-'));
    const cell = join(dir, 'cells/default/proxskip/seed-0');
    try {
      let rounds = 0;
      const r = await runExperiment(spec, dir, { only: '*/proxskip/seed-0' }, { onRound: () => void rounds++, shouldStop: () => rounds >= 3 });
      expect(r.interrupted).toBe(true);
      expect(r.ran).toEqual([]);
      const summary = JSON.parse(readFileSync(join(cell, 'summary.json'), 'utf8')) as RunSummary;
      expect(summary.interrupted).toBe(true);
      expect(existsSync(join(cell, 'checkpoint.bin'))).toBe(true);
      const c = counting();
      const resumed: number[] = [];
      await runExperiment(spec, dir, { only: '*/proxskip/seed-0' }, { ...c.hooks, onRound: (_, rec) => void resumed.push(rec.round) });
      expect(c.started).toEqual(['default/proxskip/seed-0']);
      expect(resumed).toEqual([3, 4]); // rounds 0–2 came from the checkpoint
      expect(existsSync(join(cell, 'checkpoint.bin'))).toBe(false);
      const straight = readJsonl<RoundRecord>(join(cellDir(out, expandCells(spec)[0]!), 'rounds.jsonl')).records;
      expect(readJsonl<RoundRecord>(join(cell, 'rounds.jsonl')).records).toEqual(straight);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a diverging run', () => {
  it('is recorded in failed.json, not rerun, and listed in the report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'experiment-diverge-'));
    try {
      const bad = parseExperiment({ base: { dataset: 'lsq', clients: 2, rounds: 30, gamma: 1e6, timing: false }, methods: ['fedavg'], seeds: 1 });
      const warnings: string[] = [];
      const r = await runExperiment(bad, dir, {}, { warn: (m) => void warnings.push(m) });
      expect(r.ran).toHaveLength(1);
      expect(warnings[0]).toMatch(/^default\/fedavg\/seed-0: .*non-finite/);
      expect(JSON.parse(readFileSync(join(dir, 'cells/default/fedavg/seed-0/failed.json'), 'utf8')).error).toMatch(/diverged/);
      const again = counting();
      await runExperiment(bad, dir, {}, again.hooks);
      expect(again.started).toEqual([]);
      const { results: res } = await writeReport({ ...bad, report: { ...bad.report, plots: [] } }, dir);
      expect(res.failed).toEqual(['default/fedavg/seed-0']);
      expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain('**Diverged:** `default/fedavg/seed-0`');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the report', () => {
  it('leaves out the post-hoc row of a dense method also run with postHocTopk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'experiment-posthoc-'));
    try {
      const twin = parseExperiment({
        base: { dataset: 'lsq', clients: 2, rounds: 2, sparsity: 0.5, timing: false },
        methods: ['proxskip', { algorithm: 'proxskip', name: 'topk', label: 'proxskip, pruned', config: { postHocTopk: true } }, 'fedavg'],
        seeds: 1,
        report: { plots: [] },
      });
      await runExperiment(twin, dir);
      const { results: res } = await writeReport(twin, dir);
      const [dense, pruned, fedavg] = res.settings[0]!.methods;
      expect(dense!.postHocTopk).toBeNull();
      expect(fedavg!.postHocTopk).not.toBeNull();
      expect(pruned!.final.nnz!.mean).toBe(10);
      const rows = readFileSync(join(dir, 'final.csv'), 'utf8').split('\r\n').filter((l) => l.startsWith('default,'));
      expect(rows.map((l) => l.split(',')[1])).toEqual(['proxskip', 'topk', 'fedavg', 'fedavg+post-hoc-topk']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cellFilter', () => {
  it('matches ids with * wildcards and comma alternatives', () => {
    const f = cellFilter('sparsity-0.9*/*,*/randprox-l1/seed-0');
    expect(f('sparsity-0.99/proxskip/seed-1')).toBe(true);
    expect(f('sparsity-0.5/randprox-l1/seed-0')).toBe(true);
    expect(f('sparsity-0.5/randprox-l1/seed-1')).toBe(false);
    expect(cellFilter('a.b/x/seed-1')('aXb/x/seed-1')).toBe(false);
  });
});

describe('sameRun', () => {
  it('ignores the data limits: a cell finished before they existed, or under others, is the same cell', () => {
    const cell = expandCells(spec)[0]!.config;
    const { maxLineBytes: _a, maxDimension: _b, maxDecompressedMb: _c, ...older } = cell;
    expect(sameRun(older as typeof cell, cell)).toBe(true);
    expect(sameRun({ ...cell, maxLineBytes: 100 }, cell)).toBe(true);
    expect(sameRun({ ...cell, rounds: 5 }, cell)).toBe(false);
  });
});
