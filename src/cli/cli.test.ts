/**
 * The command line end to end: `main` called in-process with captured output (fast), and the real entry
 * spawned once to check what a shell sees (the exit code and stderr of a process).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ALGORITHMS } from '../algorithms/methods.js';
import { cli } from './testing.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));



const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
const readLines = (path: string): Record<string, unknown>[] =>
  readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

// lsq: 20 features, 50 samples per client of which 40 train; 3 rounds of 10 local steps.
const SMALL = ['--dataset', 'lsq', '--clients', '4', '--rounds', '3', '--seed', '7'];

describe('sparse-proxskip run', () => {
  it('writes rounds.jsonl and summary.json with every field of the contract', async () => {
    const out = join(dir, 'run-sps');
    const r = await cli('run', '--algorithm', 'sparse-proxskip', ...SMALL, '--sparsity', '0.9', '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sparse-proxskip: 3 rounds, train loss .*nnz 2\/20, .* -> /);
    const rounds = readLines(join(out, 'rounds.jsonl'));
    expect(rounds.map((x) => x.round)).toEqual([0, 1, 2, 3]);
    for (const rec of rounds) {
      for (const key of ['round', 'trainLoss', 'testMetric', 'nnz', 'sumHNorm', 'uplinkFloats', 'uplinkBytes', 'downlinkFloats', 'downlinkBytes', 'seconds']) {
        expect(typeof rec[key], key).toBe('number');
      }
    }
    // K = ⌈0.1 · 20⌉ = 2: each of 4 clients sends 2 floats per round, and the evaluated model has 2 nonzeros
    expect(rounds.map((x) => x.uplinkFloats)).toEqual([0, 8, 16, 24]);
    expect(rounds.map((x) => x.nnz)).toEqual([0, 2, 2, 2]);
    for (const rec of rounds.slice(1)) {
      expect(rec.uplinkBytes as number).toBeGreaterThan(4 * (rec.uplinkFloats as number)); // values plus the support
      expect(rec.sumHNorm as number).toBeLessThan(1e-3 * (rec.hNormSum as number)); // Σh = 0 up to rounding
    }
    const summary = readJson(join(out, 'summary.json'));
    expect(summary).toMatchObject({
      algorithm: 'sparse-proxskip',
      roundsDone: 3,
      interrupted: false,
      model: { d: 20, k: 2 },
      dataset: { name: 'lsq', clients: 4, trainSamples: 160 },
      testMetricName: 'r2',
      final: rounds[3],
    });
    expect((summary.config as Record<string, unknown>).seed).toBe(7);
  });

  it('gives byte-identical rounds.jsonl for the same seed with --no-timing, on 1 or 2 workers', async () => {
    const outs = ['a', 'b', 'w2'].map((name) => join(dir, `same-${name}`));
    const args = ['run', '--algorithm', 'proxskip', ...SMALL, '--no-timing'];
    expect((await cli(...args, '--out', outs[0]!)).code).toBe(0);
    expect((await cli(...args, '--out', outs[1]!)).code).toBe(0);
    expect((await cli(...args, '--workers', '2', '--out', outs[2]!)).code).toBe(0);
    const [a, b, w2] = outs.map((o) => readFileSync(join(o, 'rounds.jsonl'), 'utf8'));
    expect(a).toContain('"seconds":null');
    expect(b).toBe(a);
    expect(w2).toBe(a);
  });
});

describe('sparse-proxskip run --resume', () => {
  it('continues an interrupted run from its checkpoint to the records of a run that was never stopped', async () => {
    const args = ['run', '--algorithm', 'accelerated-server-pruning', '--dataset', 'lsq', '--clients', '4', '--rounds', '3000', '--sparsity', '0.8', '--seed', '7', '--no-timing'];
    const straight = join(dir, 'straight');
    expect((await cli(...args, '--out', straight)).code).toBe(0);
    const out = join(dir, 'resumed');
    // Ctrl-C part-way: the run finishes its round, saves its state and marks itself interrupted
    setTimeout(() => process.emit('SIGINT'), 150);
    const first = await cli(...args, '--out', out);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('(interrupted)');
    expect(existsSync(join(out, 'checkpoint.bin'))).toBe(true);
    const stoppedAt = readLines(join(out, 'rounds.jsonl')).at(-1)!.round as number;
    expect(stoppedAt).toBeLessThan(3000);
    const again = await cli(...args, '--out', out, '--resume');
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`resumed after round ${stoppedAt} from ${out}/checkpoint.bin`);
    expect(existsSync(join(out, 'checkpoint.bin'))).toBe(false);
    expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(readFileSync(join(straight, 'rounds.jsonl'), 'utf8'));
    expect(readFileSync(join(out, 'model.safetensors'))).toEqual(readFileSync(join(straight, 'model.safetensors')));
    // other options: not this run's checkpoint, so a fresh start
    const other = await cli(...args.map((a) => (a === '7' ? '8' : a)), '--out', straight, '--resume');
    expect(other.stderr).toContain(`no checkpoint of this run in ${straight}: started at round 0`);
  });
});

describe('sparse-proxskip compare', () => {
  it('writes comparison.csv/json, a run per algorithm and the plots', async () => {
    const out = join(dir, 'compare');
    const r = await cli('compare', '--algorithms', 'fedavg,sparse-proxskip', ...SMALL, '--rounds', '2', '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('sparse-proxskip');
    const table = JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8')) as { algorithm: string; rounds: number }[];
    // fedavg is dense: its final model pruned afterwards is reported too
    expect(table.map((t) => t.algorithm)).toEqual(['fedavg', 'fedavg + post-hoc TopK', 'sparse-proxskip']);
    expect(table.every((t) => t.rounds === 2)).toBe(true);
    const csv = readFileSync(join(out, 'comparison.csv'), 'utf8').trimEnd().split('\n');
    expect(csv).toHaveLength(4);
    expect(csv[0]).toMatch(/^algorithm,/);
    for (const f of ['fedavg/summary.json', 'sparse-proxskip/rounds.jsonl', 'loss-vs-uplink.svg', 'loss-vs-uplink-floats.svg', 'metric-vs-uplink.svg', 'metric-vs-uplink-floats.svg', 'sum-h-vs-rounds.svg']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    expect(readFileSync(join(out, 'loss-vs-uplink.svg'), 'utf8')).toMatch(/^<svg/);
  });
});

describe('a run that diverges', () => {
  it('run: exit code 2, complete rounds.jsonl lines and failed.json instead of summary.json', async () => {
    const out = join(dir, 'diverge');
    const r = await cli('run', '--algorithm', 'fedavg', ...SMALL, '--gamma', '1000', '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sparse-proxskip: error: .*diverged/);
    expect(existsSync(join(out, 'summary.json'))).toBe(false);
    const failed = readJson(join(out, 'failed.json'));
    expect(failed.error).toMatch(/diverged/);
    const rounds = readLines(join(out, 'rounds.jsonl'));
    expect(failed.roundsDone).toBe(rounds.at(-1)!.round);
  });
});

describe('help', () => {
  it('prints the options of run with their defaults on stdout, exit code 0', async () => {
    const r = await cli('run', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--sparsity <s>');
    expect(r.stdout).toContain('(default: 0.9)');
    expect(r.stderr).toBe('');
  });
});

describe('sparse-proxskip algorithms', () => {
  it('lists every algorithm with its switches', async () => {
    const r = await cli('algorithms');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual([...ALGORITHMS]);
    expect(lines.find((l) => l.startsWith('sparse-proxskip '))).toContain('"pruneMode":"ste"');
  });
});

describe('bad input: exit code 2, one line on stderr, no output directory', () => {
  const small = join(dir, 'small.svm');
  const malformed = join(dir, 'malformed.svm');
  writeFileSync(small, '1 1:0.5 2:1\n-1 1:0.1 3:2\n1 2:0.3\n');
  writeFileSync(malformed, '1 1:0.5 2:1\n-1 1:0.1 3:2\n1 2:abc\n');

  const cases: [string, string[], RegExp][] = [
    ['unknown algorithm', ['run', '--algorithm', 'nope'], /unknown algorithm 'nope'/],
    ['unknown algorithm in compare', ['compare', '--algorithms', 'fedavg,nope'], /unknown algorithm 'nope'/],
    ['an algorithm twice in compare', ['compare', '--algorithms', 'fedavg,proxskip,fedavg'], /'fedavg' twice/],
    ['unknown option', ['run', '--algorithm', 'fedavg', '--bogus'], /unknown option '--bogus'/],
    ['sparsity 1', ['run', '--algorithm', 'fedavg', '--sparsity', '1'], /--sparsity must be in \[0, 1\), got 1/],
    ['negative gamma', ['run', '--algorithm', 'fedavg', '--gamma', '-1'], /--gamma must be a positive number/],
    ['p = 0', ['run', '--algorithm', 'fedavg', '--p', '0'], /--p must be in \(0, 1\], got 0/],
    ['not a number', ['run', '--algorithm', 'fedavg', '--rounds', 'x'], /--rounds must be a number, got 'x'/],
    ['more clients than samples', ['run', '--algorithm', 'fedavg', '--dataset', `libsvm:${small}`, '--clients', '5'], /3 samples over 5 clients/],
    ['malformed LIBSVM line', ['run', '--algorithm', 'fedavg', '--dataset', `libsvm:${malformed}`, '--clients', '1'], /malformed\.svm:3: /],
    ['missing file', ['run', '--algorithm', 'fedavg', '--dataset', `libsvm:${join(dir, 'missing.svm')}`], /missing\.svm: no such file/],
  ];
  it.each(cases)('%s', async (_what, args, message) => {
    const out = join(dir, `bad-${args.join('_').replace(/[^\w.-]/g, '')}`.slice(0, 100));
    const r = await cli(...args, '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sparse-proxskip: error: [^\n]+\n$/);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('--out naming a file', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'mine\n');
    for (const out of [file, join(file, 'sub')]) {
      const r = await cli('run', '--algorithm', 'fedavg', ...SMALL, '--out', out);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^sparse-proxskip: error: .*a-file.*: a file is in the way[^\n]*\n$/);
    }
    expect(readFileSync(file, 'utf8')).toBe('mine\n');
  });

  it('reaches the shell as exit code 2 and one stderr line from the real entry point', () => {
    const tsx = join(import.meta.dirname, '../../node_modules/.bin/tsx');
    const entry = join(import.meta.dirname, 'main.ts');
    const r = spawnSync(tsx, [entry, 'run', '--algorithm', 'fedavg', '--p', '0', '--out', join(dir, 'spawned')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('sparse-proxskip: error: --p must be in (0, 1], got 0\n');
    expect(existsSync(join(dir, 'spawned'))).toBe(false);
  });
});
