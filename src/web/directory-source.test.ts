/** The directory source: runs and experiments found below the PATHs, and their rounds as they are appended. */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runExperiment } from '../experiment/run.js';
import { parseExperiment } from '../experiment/spec.js';
import type { RoundRecord } from '../sim/simulate.js';
import { DirectorySource } from './directory-source.js';
import type { DashboardEvent } from './protocol.js';

const root = mkdtempSync(join(tmpdir(), 'dashboard-dirs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const sources: DirectorySource[] = [];
afterEach(() => {
  for (const s of sources.splice(0)) s.close();
});

/** A source that only moves when the test calls poll() or scan(). */
function manual(paths: string[]): { src: DirectorySource; events: DashboardEvent[] } {
  const src = new DirectorySource(paths, { pollMs: 3_600_000, scanMs: 3_600_000, experimentMs: 0 });
  sources.push(src);
  const events: DashboardEvent[] = [];
  src.subscribe((e) => events.push(e));
  return { src, events };
}

function rec(round: number): RoundRecord {
  return { round, localSteps: 10, trainLoss: 1 / (round + 1), testMetric: null, nnz: 3, sumHNorm: 0, hNormSum: 0, uplinkFloats: 30 * round, uplinkBytes: 300 * round, downlinkFloats: 0, downlinkBytes: 0, seconds: null };
}

const line = (r: RoundRecord) => `${JSON.stringify(r)}\n`;

describe('DirectorySource', () => {
  it('groups the runs of a folder, and reads appended rounds whole lines at a time', () => {
    const cmp = join(root, 'cmp');
    for (const a of ['proxskip', 'sparse-proxskip']) {
      mkdirSync(join(cmp, a), { recursive: true });
      writeFileSync(join(cmp, a, 'rounds.jsonl'), line(rec(0)) + line(rec(1)));
    }
    writeFileSync(join(cmp, 'comparison.json'), '[]');
    const { src, events } = manual([cmp]);
    const { groups, runs } = src.state();
    expect(groups).toEqual([{ id: 'g1', title: 'cmp', kind: 'runs', where: 'cmp' }]);
    expect(runs.map((r) => [r.label, r.algorithm, r.roundsDone, r.status])).toEqual([
      ['proxskip', 'proxskip', 1, 'running'],
      ['sparse-proxskip', 'sparse-proxskip', 1, 'running'],
    ]);
    const id = runs.find((r) => r.label === 'sparse-proxskip')!.id;
    expect(src.records(id)!.map((r) => r.round)).toEqual([0, 1]);

    // half a line: nothing yet; the rest of it: one event from index 2
    const path = join(cmp, 'sparse-proxskip', 'rounds.jsonl');
    const next = line(rec(2));
    appendFileSync(path, next.slice(0, 20));
    events.length = 0;
    src.poll();
    expect(events.filter((e) => e.type === 'rounds')).toEqual([]);
    appendFileSync(path, next.slice(20) + line(rec(3)));
    src.poll();
    expect(events.find((e) => e.type === 'rounds')).toEqual({ type: 'rounds', runId: id, from: 2, records: [rec(2), rec(3)] });
    expect(src.state().runs.find((r) => r.id === id)!.roundsDone).toBe(3);

    // a new run in the same directory starts the file again: read from the start
    writeFileSync(path, line(rec(0)));
    events.length = 0;
    src.poll();
    expect(events.find((e) => e.type === 'rounds')).toEqual({ type: 'rounds', runId: id, from: 0, records: [rec(0)] });
    expect(src.records(id)).toEqual([rec(0)]);
  });

  it('tells finished, interrupted and failed runs from their files, and reads rounds.jsonl.gz', () => {
    const runs = join(root, 'runs');
    const make = (name: string, files: Record<string, string | Buffer>) => {
      mkdirSync(join(runs, name), { recursive: true });
      for (const [f, text] of Object.entries(files)) writeFileSync(join(runs, name, f), text);
    };
    const config = (algorithm: string) => ({ algorithm, rounds: 5 });
    make('done', { 'rounds.jsonl': line(rec(0)), 'summary.json': JSON.stringify({ config: config('fedavg'), interrupted: false, testMetricName: 'r2' }) });
    make('stopped', { 'rounds.jsonl': line(rec(0)), 'summary.json': JSON.stringify({ config: config('fedavg'), interrupted: true, testMetricName: null }) });
    make('broken', { 'rounds.jsonl': line(rec(0)), 'failed.json': JSON.stringify({ config: config('proxskip'), error: 'the run diverged' }) });
    make('packed', { 'rounds.jsonl.gz': gzipSync(line(rec(0)) + line(rec(1))) });
    const { src } = manual([runs]);
    const byLabel = Object.fromEntries(src.state().runs.map((r) => [r.label, r]));
    expect(byLabel['done']).toMatchObject({ status: 'done', algorithm: 'fedavg', rounds: 5, metricName: 'r2', method: 'done' });
    expect(byLabel['stopped']!.status).toBe('interrupted');
    expect(byLabel['broken']).toMatchObject({ status: 'failed', error: 'the run diverged', algorithm: 'proxskip' });
    expect(src.records(byLabel['packed']!.id)!.map((r) => r.round)).toEqual([0, 1]);
    expect(byLabel['packed']!.algorithm).toBeNull();
  });

  it('finds new runs on the next scan, and a PATH that is a run is its own group', () => {
    const solo = join(root, 'solo', 'sparse-proxskip');
    mkdirSync(solo, { recursive: true });
    writeFileSync(join(solo, 'rounds.jsonl'), line(rec(0)));
    const { src } = manual([join(root, 'solo')]);
    expect(src.state().runs).toHaveLength(1);
    const later = join(root, 'solo', 'fedavg');
    mkdirSync(later);
    writeFileSync(join(later, 'rounds.jsonl'), '');
    src.scan();
    src.poll();
    expect(src.state().runs.map((r) => r.label).sort()).toEqual(['fedavg', 'sparse-proxskip']);

    const { src: one } = manual([solo]);
    expect(one.state().groups).toEqual([{ id: 'g1', title: 'sparse-proxskip', kind: 'runs', where: 'sparse-proxskip' }]);
    expect(one.state().runs[0]!.label).toBe('sparse-proxskip');
  });

  it('computes an experiment from its cells, again when a cell changes; a bad experiment.json is the group’s error', async () => {
    const out = join(root, 'exp');
    const spec = parseExperiment({ name: 'tiny', base: { dataset: 'lsq', clients: 2, rounds: 2, timing: false }, methods: ['sparse-proxskip', 'proxskip'], seeds: 1 });
    await runExperiment(spec, out, { only: '*/sparse-proxskip/*' });
    const { src, events } = manual([root]);
    const group = src.state().groups.find((g) => g.kind === 'experiment')!;
    expect(group).toMatchObject({ title: 'exp', where: `${basename(root)}/exp` }); // the PATH's name, then the way down
    expect(src.state().runs.some((r) => r.where.includes('/exp/'))).toBe(false); // cells are not runs of their own
    const data = src.experiment(group.id)!;
    expect(data).toMatchObject({ finished: 1, cells: 2, spec: { name: 'tiny' } });
    expect(data.results.settings[0]!.methods.map((m) => m.seeds)).toEqual([[0], []]);

    await runExperiment(spec, out);
    events.length = 0;
    src.poll();
    expect(events).toContainEqual({ type: 'experiment', group: group.id });
    expect(src.experiment(group.id)!.finished).toBe(2);

    writeFileSync(join(out, 'experiment.json'), '{"nope": 1}');
    src.poll();
    expect(src.state().groups.find((g) => g.id === group.id)!.error).toMatch(/experiment\.json: .*nope/);
  });
});
