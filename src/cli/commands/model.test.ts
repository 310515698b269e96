/**
 * Trained models out and back in, end to end: every run writes its final model; `evaluate` reproduces the
 * run's last round from the file; `predict` writes predictions; `--init` starts a run from a saved model.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES } from '../../data/cifar10.js';
import { loadModel } from '../../models/io.js';
import { resolveConfig } from '../../sim/config.js';
import { prepareRun, runToDir, type RunSummary } from '../../sim/run.js';
import { cli } from '../testing.js';

const dir = mkdtempSync(join(tmpdir(), 'model-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const lines = (path: string): Record<string, unknown>[] => readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const SMALL = ['--dataset', 'lsq', '--clients', '4', '--rounds', '3', '--seed', '7'];

describe('run writes its model; evaluate reproduces the last round from the file', () => {
  const out = join(dir, 'lsq');

  it('model.safetensors, model.wire and their sizes in summary.json', async () => {
    expect((await cli('run', '--algorithm', 'sparse-proxskip', ...SMALL, '--out', out)).code).toBe(0);
    const summary = readJson<RunSummary>(join(out, 'summary.json'));
    expect(summary.model).toMatchObject({ d: 20, k: 2, file: 'model.safetensors', encodedFile: 'model.wire', tfjs: null });
    expect(summary.model.bytes).toBe(statSync(join(out, 'model.safetensors')).size);
    expect(summary.model.encodedBytes).toBe(statSync(join(out, 'model.wire')).size);
    // 2 nonzeros of 20: the smallest encoding is well under the 9 + 80 bytes of a dense message
    expect(summary.model.encodedBytes).toBeLessThan(30);
    const m = loadModel(join(out, 'model.safetensors'));
    expect(m.metadata).toMatchObject({ algorithm: 'sparse-proxskip', sparsity: '0.9', d: '20', K: '2', nnz: '2', dataset: 'lsq', round: '3', version: summary.version });
  });

  it('evaluate --json: the same train loss, test metric and nnz as the last line of rounds.jsonl, to the bit', async () => {
    const r = await cli('evaluate', join(out, 'model.safetensors'), '--json');
    expect(r.code).toBe(0);
    const e = JSON.parse(r.stdout) as Record<string, unknown>;
    const last = lines(join(out, 'rounds.jsonl')).at(-1)!;
    expect(e).toMatchObject({ trainLoss: last.trainLoss, testMetric: last.testMetric, nnz: last.nnz, metricName: 'r2', d: 20, clients: 4 });
    expect(typeof e.testLoss).toBe('number');
    const text = await cli('evaluate', join(out, 'model.safetensors'));
    expect(text.stdout).toMatch(/^.*model\.safetensors: linear model \(sparse-proxskip, round 3\), nnz 2\/20\nlsq: train loss \S+ \(mean over 4 clients\), test loss \S+, test r2 \S+\n$/);
  });

  it('evaluate on other data: the options override the run\'s, and a model that does not fit is refused in one line', async () => {
    const other = await cli('evaluate', join(out, 'model.safetensors'), '--json', '--seed', '8');
    expect(JSON.parse(other.stdout).trainLoss).not.toBe(lines(join(out, 'rounds.jsonl')).at(-1)!.trainLoss);
    const wrong = await cli('evaluate', join(out, 'model.safetensors'), '--dataset', 'synthetic');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toBe('sparse-proxskip: error: the linear model takes 20 features, synthetic(1,1) has 60\n');
  });
});

describe('predict', () => {
  // 3 classes with labels 2, 5, 9 in LIBSVM files, 4 features; train 60 rows, test 15
  const row = (i: number): string => {
    const c = i % 3;
    const f = [1, 2, 3, 4].map((j) => `${j}:${(((i * 13 + j * 7) % 10) / 10 + (j === c + 1 ? 2 : 0)).toFixed(2)}`);
    return `${[2, 5, 9][c]} ${f.join(' ')}`;
  };
  const train = join(dir, 'train.svm');
  const test = join(dir, 'test.svm');
  writeFileSync(train, Array.from({ length: 60 }, (_, i) => row(i)).join('\n') + '\n');
  writeFileSync(test, Array.from({ length: 15 }, (_, i) => row(i + 100)).join('\n') + '\n');
  const out = join(dir, 'svm');

  it('CSV and JSONL predictions of a test file: original labels, and their accuracy is the run\'s test accuracy', async () => {
    const run = await cli('run', '--algorithm', 'sparse-proxskip', '--dataset', `libsvm:${train}`, '--test', `libsvm:${test}`, '--clients', '3', '--rounds', '5', '--sparsity', '0.5', '--out', out);
    expect(run.code).toBe(0);
    const r = await cli('predict', join(out, 'model.safetensors'), '--input', test, '--out', join(out, 'pred.jsonl'));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`15 predictions -> ${join(out, 'pred.jsonl')}\n`);
    const preds = lines(join(out, 'pred.jsonl')) as { row: number; prediction: number; probabilities: number[] }[];
    const labels = readFileSync(test, 'utf8').trimEnd().split('\n').map((l) => Number(l.split(' ')[0]));
    expect(new Set(preds.map((p) => p.prediction)).size).toBeGreaterThan(1);
    for (const p of preds) {
      expect([2, 5, 9]).toContain(p.prediction);
      expect(p.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
    const accuracy = preds.filter((p, i) => p.prediction === labels[i]).length / labels.length;
    expect(accuracy).toBe(readJson<RunSummary>(join(out, 'summary.json')).final!.testMetric);
    expect((await cli('predict', join(out, 'model.safetensors'), '--input', test, '--out', join(out, 'pred.csv'))).code).toBe(0);
    const csv = readFileSync(join(out, 'pred.csv'), 'utf8').split('\r\n');
    expect(csv[0]).toBe('row,prediction,p_2,p_5,p_9');
    expect(csv[1]!.split(',').slice(0, 2).map(Number)).toEqual([0, preds[0]!.prediction]);
  });

  it('bad output name or input: exit 2, one line, no file', async () => {
    const model = join(out, 'model.safetensors');
    for (const [args, message] of [
      [['--input', test, '--out', join(dir, 'p.txt')], /--out must name a \.csv or \.jsonl file/],
      [['--input', join(dir, 'rows.dat'), '--out', join(dir, 'p.csv')], /cannot tell the format of .*rows\.dat/],
      [['--input', join(dir, 'missing.svm'), '--out', join(dir, 'p.csv')], /missing\.svm: no such file/],
    ] as [string[], RegExp][]) {
      const r = await cli('predict', model, ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^sparse-proxskip: error: [^\n]+\n$/);
      expect(r.stderr).toMatch(message);
      expect(existsSync(join(dir, 'p.csv')) || existsSync(join(dir, 'p.txt'))).toBe(false);
    }
  });
});

describe('--init', () => {
  const a = join(dir, 'init-a');
  const b = join(dir, 'init-b');

  it('starts from a saved model: round 0 of the new run evaluates the old run\'s final model', async () => {
    expect((await cli('run', '--algorithm', 'fedavg', ...SMALL, '--out', a)).code).toBe(0);
    const r = await cli('run', '--algorithm', 'sparse-proxskip', ...SMALL, '--rounds', '2', '--init', join(a, 'model.safetensors'), '--out', b);
    expect(r.code).toBe(0);
    const last = lines(join(a, 'rounds.jsonl')).at(-1)!;
    const first = lines(join(b, 'rounds.jsonl'))[0]!;
    expect(first).toMatchObject({ round: 0, trainLoss: last.trainLoss, testMetric: last.testMetric, nnz: last.nnz });
    expect(readJson<RunSummary>(join(b, 'summary.json')).config.init).toBe(join(a, 'model.safetensors'));
  });

  it('a model of another shape, or not a model: exit 2, one line, no output directory', async () => {
    const garbage = join(dir, 'garbage.safetensors');
    writeFileSync(garbage, 'this is not a model, just text that is long enough');
    for (const [init, message] of [
      [join(a, 'model.safetensors'), /--init .*: tensor 'weights' is \[20, 1\] in the saved linear model, this run's multinomial model needs \[60, 10\]/],
      [garbage, /garbage\.safetensors: safetensors header length \d+ exceeds the limit of 4194304 bytes/],
    ] as [string, RegExp][]) {
      const out = join(dir, 'init-bad');
      const r = await cli('run', '--algorithm', 'fedavg', '--dataset', 'synthetic', '--rounds', '1', '--init', init, '--out', out);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^sparse-proxskip: error: [^\n]+\n$/);
      expect(r.stderr).toMatch(message);
      expect(existsSync(out)).toBe(false);
    }
    const ev = await cli('evaluate', garbage);
    expect(ev.code).toBe(2);
    expect(ev.stderr).toMatch(/^sparse-proxskip: error: .*garbage\.safetensors: safetensors header length [^\n]+\n$/);
  });
});

describe('every run writes its model: compare, experiment, Ctrl-C', () => {
  it('compare: one model per algorithm', async () => {
    const out = join(dir, 'compare');
    expect((await cli('compare', '--algorithms', 'fedavg,sparse-proxskip', ...SMALL, '--rounds', '1', '--out', out)).code).toBe(0);
    for (const a of ['fedavg', 'sparse-proxskip']) expect(loadModel(join(out, a, 'model.safetensors')).metadata.algorithm).toBe(a);
  });

  it('experiment: one model per cell, and init is a valid experiment field', async () => {
    const file = join(dir, 'exp.json');
    const init = join(dir, 'lsq', 'model.safetensors');
    writeFileSync(file, JSON.stringify({ base: { dataset: 'lsq', clients: 4, rounds: 1, init }, methods: ['proxskip'], seeds: [7], report: { plots: [] } }));
    const out = join(dir, 'exp');
    const r = await cli('experiment', file, '--out', out);
    expect(r.code).toBe(0);
    const cell = join(out, 'cells/default/proxskip/seed-7');
    expect(loadModel(join(cell, 'model.safetensors')).metadata.algorithm).toBe('proxskip');
    expect(lines(join(cell, 'rounds.jsonl'))[0]!.trainLoss).toBe(lines(join(dir, 'lsq', 'rounds.jsonl')).at(-1)!.trainLoss);
  });

  it('a run stopped after round 1 (Ctrl-C) leaves that round\'s model beside summary.json', async () => {
    const out = join(dir, 'stopped');
    const prepared = await prepareRun(resolveConfig({ algorithm: 'sparse-proxskip', dataset: 'lsq', clients: 4, rounds: 5 }));
    let rounds = 0;
    const { summary, result } = await runToDir(prepared, out, { onRound: () => rounds++, shouldStop: () => rounds > 1 });
    expect(summary).toMatchObject({ interrupted: true, roundsDone: 1 });
    const m = loadModel(join(out, 'model.safetensors'));
    expect(m.metadata.round).toBe('1');
    expect(Array.from(m.params)).toEqual(Array.from(result.model));
  });
});

describe('networks: the TF.js export beside the model, and predict on CIFAR-style images', () => {
  // a CIFAR-10 directory of 5 × 4 training and 6 test images
  const data = join(dir, 'data');
  mkdirSync(join(data, 'cifar10'), { recursive: true });
  const batch = (r0: number, n: number): Uint8Array =>
    Uint8Array.from(Array.from({ length: n }, (_, k) => [(r0 + k) % 10, ...Array.from({ length: 3072 }, (_, i) => ((r0 + k) * 37 + i * 11) % 256)]).flat());
  CIFAR10_TRAIN_FILES.forEach((f, i) => writeFileSync(join(data, 'cifar10', f), batch(4 * i, 4)));
  writeFileSync(join(data, 'cifar10', CIFAR10_TEST_FILE), batch(40, 6));

  it('cnn: evaluate reproduces the run, predict on the test batch gives the run\'s test accuracy', { timeout: 30_000 }, async () => {
    const out = join(dir, 'cnn');
    const run = await cli('run', '--algorithm', 'sparse-proxskip', '--dataset', 'cifar10', '--data-dir', data, '--model', 'cnn', '--clients', '2', '--rounds', '1', '--local-steps', '2', '--batch-size', '2', '--gamma', '0.05', '--out', out);
    expect(run.code).toBe(0);
    const summary = readJson<RunSummary>(join(out, 'summary.json'));
    expect(summary.model.tfjs).toBe('tfjs/model.json');
    expect(readJson<{ format: string; weightsManifest: { paths: string[] }[] }>(join(out, 'tfjs/model.json'))).toMatchObject({ format: 'layers-model', weightsManifest: [{ paths: ['weights.bin'] }] });
    // every parameter once in weights.bin (the cnn has no BatchNorm statistics)
    expect(statSync(join(out, 'tfjs/weights.bin')).size).toBe(4 * summary.model.d);
    const e = JSON.parse((await cli('evaluate', join(out, 'model.safetensors'), '--json')).stdout) as Record<string, unknown>;
    expect(e).toMatchObject({ trainLoss: summary.final!.trainLoss, testMetric: summary.final!.testMetric, nnz: summary.final!.nnz });
    expect((await cli('predict', join(out, 'model.safetensors'), '--input', join(data, 'cifar10', CIFAR10_TEST_FILE), '--out', join(out, 'p.jsonl'))).code).toBe(0);
    const preds = lines(join(out, 'p.jsonl')) as { prediction: number }[];
    const labels = [0, 1, 2, 3, 4, 5].map((k) => (40 + k) % 10);
    expect(preds.filter((p, i) => p.prediction === labels[i]).length / 6).toBe(summary.final!.testMetric);
  });
});

describe('results from before --init existed', () => {
  it('an experiment cell whose summary has no init still counts as finished; λ caches keep their keys', async () => {
    const { sameRun } = await import('../../sim/config.js');
    const { lambdaCacheKey } = await import('../../sim/run.js');
    const now = resolveConfig({ algorithm: 'randprox-l1', dataset: 'lsq', lambda: 'auto' });
    const { init: _init, ...before } = now;
    expect(sameRun(before as typeof now, now)).toBe(true);
    expect(sameRun(now, { ...now, init: 'm.safetensors' })).toBe(false);
    expect(lambdaCacheKey(now)).not.toContain('init');
    expect(lambdaCacheKey({ ...now, init: 'm.safetensors' })).toContain('"init","m.safetensors"');
  });
});
