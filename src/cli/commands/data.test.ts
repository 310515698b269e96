/** `sparse-proxskip data describe` and `run --dataset femnist|blogfeedback --data-dir`, in-process on tiny fixtures. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../testing.js';
import { droppedNote } from './data.js';

const dir = mkdtempSync(join(tmpdir(), 'data-cli-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


/** A compact FEMNIST with writers of 2, 3 and 1 training images (all background) under DIR/femnist. */
function femnistFixture(): string {
  const root = join(dir, 'data');
  const f = join(root, 'femnist');
  mkdirSync(f, { recursive: true });
  const rows = ['writer\ttrain_start\ttrain_count\ttest_start\ttest_count\tmaybe_truncated', 'a\t0\t2\t0\t1\t0', 'b\t2\t3\t1\t1\t1', 'c\t5\t1\t2\t0\t0'];
  writeFileSync(join(f, 'writers.tsv'), rows.join('\n') + '\n');
  writeFileSync(join(f, 'train_images.u8.gz'), gzipSync(new Uint8Array(6 * 784).fill(255)));
  writeFileSync(join(f, 'train_labels.u8.gz'), gzipSync(Uint8Array.from([0, 1, 2, 3, 4, 5])));
  writeFileSync(join(f, 'test_images.u8.gz'), gzipSync(new Uint8Array(2 * 784).fill(200)));
  writeFileSync(join(f, 'test_labels.u8.gz'), gzipSync(Uint8Array.from([1, 2])));
  return root;
}

describe('sparse-proxskip data describe', () => {
  it('prints the counts and writes describe.json and the client-size histogram', async () => {
    const data = femnistFixture();
    const out = join(dir, 'describe');
    const r = await cli('data', 'describe', 'femnist', '--data-dir', data, '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^dataset +femnist \(multiclass, 62 classes, 784 features\)$/m);
    expect(r.stdout).toMatch(/^clients +3$/m);
    expect(r.stdout).toMatch(/^test samples +2$/m);
    expect(r.stdout).toMatch(/^per client +min 1, median 2, mean 2, max 3$/m);
    const json = JSON.parse(readFileSync(join(out, 'describe.json'), 'utf8'));
    expect(json).toMatchObject({ spec: 'femnist', clients: 3, trainSamples: 6, testSamples: 2, clientSizes: [2, 3, 1] });
    expect(json.clientSize).toEqual({ min: 1, median: 2, mean: 2, max: 3 });
    for (const ext of ['svg', 'png', 'vl.json']) expect(existsSync(join(out, `client_sizes.${ext}`)), ext).toBe(true);
    const spec = JSON.parse(readFileSync(join(out, 'client_sizes.vl.json'), 'utf8'));
    expect(spec.mark.type).toBe('bar');
    expect(spec.encoding.x.scale).toEqual({ type: 'log', nice: false });
    // sizes 2, 3, 1 in tenths of a decade from 1: [1, 1.26), ..., [2, 2.51), [2.51, 3.16)
    expect(spec.data.values.map((b: { count: number }) => b.count)).toEqual([1, 0, 0, 1, 1]);
    expect(spec.title).toBe('femnist: training samples per client (3 clients)'); // nothing dropped: no subtitle
  });

  it('states the dropped sources or writers under the title', () => {
    expect(droppedNote({ sources: 554, droppedSources: 133, droppedRows: 705, minClientSize: 10, pooledClients: 0 })).toBe(
      '133 of 554 sources dropped: under 10 rows (705 rows in all)',
    );
    expect(droppedNote({ sources: 554, droppedSources: 0, droppedRows: 0, minClientSize: 10, pooledClients: 14 })).toBe('sources under 10 rows pooled into 14 clients');
    expect(droppedNote({ droppedTruncated: 56 })).toBe('56 writers flagged maybe_truncated dropped');
    expect(droppedNote({ droppedTruncated: 0 })).toBeNull();
  });

  it('missing data: one line saying where it looked, exit code 2, nothing written', async () => {
    const out = join(dir, 'never');
    const r = await cli('data', 'describe', 'blogfeedback', '--data-dir', join(dir, 'empty'), '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sparse-proxskip: error: blogfeedback: no blogData_train\.csv\(\.gz\) in .*empty\/blogfeedback or .*; .*--data-dir DIR\n$/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('sparse-proxskip run on a natural dataset', () => {
  it('trains multinomial logistic regression on the writers (d = 784 * 62 + 62 with --intercept)', async () => {
    const out = join(dir, 'run');
    const r = await cli('run', '--algorithm', 'proxskip', '--dataset', 'femnist', '--data-dir', femnistFixture(), '--intercept', '--rounds', '1', '--local-steps', '2', '--out', out);
    expect(r.code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.dataset).toMatchObject({ name: 'femnist', clients: 3, trainSamples: 6, testSamples: 2, nClasses: 62 });
    expect(summary.model.d).toBe(784 * 62 + 62);
    expect(summary.config.dataDir).toMatch(/data$/);
  });
});
