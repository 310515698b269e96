import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BLOG_DEFAULTS, BLOG_FEATURES, groupClients, loadBlogFeedback, readBlogCsv, type BlogOptions } from './blogfeedback.js';
import { DataError } from './errors.js';
import { loadFederated, parseDatasetSpec } from './index.js';
import type { Dataset, DenseMatrix } from '../models/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'blogfeedback-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const SHARED = fileURLToPath(new URL('../../../shared/data', import.meta.url));

/**
 * A CSV row: features 1-50 all equal `source`, feature 51 = f51, features 52-280 zero except
 * feature 63 = 1 on odd `f51`, then the target.
 */
function row(source: number, f51: number, target: number): string {
  const cells = new Array<number>(281).fill(0);
  for (let c = 0; c < 50; c++) cells[c] = source;
  cells[50] = f51;
  cells[62] = f51 % 2;
  cells[280] = target;
  return cells.join(',');
}

/** Writes a BlogFeedback copy in UCI's flat layout under tmp/NAME and returns that folder. */
function copy(name: string, train: string, tests: Record<string, string | Uint8Array>, gzipTrain = false): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, gzipTrain ? 'blogData_train.csv.gz' : 'blogData_train.csv'), gzipTrain ? gzipSync(train) : train);
  for (const [file, content] of Object.entries(tests)) writeFileSync(join(dir, file), content);
  return dir;
}

function file(name: string, content: string | Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, content);
  return path;
}

// sources 7 (3 rows), 8 (1 row), 9 (2 rows), in this interleaved order
const TRAIN = [row(7, 1, 0), row(8, 2, 5), row(7, 3, 1), row(9, 4, 2), row(7, 5, 3), row(9, 6, 9)].join('\n') + '\n';
const TEST = [row(7, 3, 4), row(5, 13, 0)].join('\n') + '\n';

describe('readBlogCsv', () => {
  it('reads plain and gzip alike (gzip told by its magic bytes, not the name), grouping rows by features 1-50', async () => {
    const plain = await readBlogCsv(file('plain.csv', TRAIN), { sources: true });
    const gz = await readBlogCsv(file('gzip-without-gz-name.csv', gzipSync(TRAIN)), { sources: true });
    expect(plain.rows).toBe(6);
    expect(plain.x.length).toBe(6 * BLOG_FEATURES);
    expect(Array.from(plain.y)).toEqual([0, 5, 1, 2, 3, 9]);
    expect(Array.from(plain.group!)).toEqual([0, 1, 0, 2, 0, 2]);
    expect(plain.groups).toBe(3);
    expect(plain.x[BLOG_FEATURES + 50]).toBe(2); // row 2, feature 51
    expect(gz).toEqual(plain);
  });

  it('parses decimals exactly as Number() does, with CRLF and no final newline', async () => {
    const cells = ['-0.5', '1e3', '.25', '2.', '+7', '0.1', '123456789.123456789', '-3.4028234e38', '40.30467'];
    const line = [...cells, ...new Array<string>(281 - cells.length).fill('0')].join(',');
    const r = await readBlogCsv(file('numbers.csv', `${line}\r\n${line}`));
    expect(r.rows).toBe(2);
    expect(Array.from(r.x.subarray(0, cells.length))).toEqual(cells.map((c) => Math.fround(Number(c))));
  });

  it('names the file and line of wrong column counts, non-numbers, bad targets', async () => {
    const good = row(1, 1, 1);
    const cases: [string, string, RegExp][] = [
      ['short.csv', `${good}\n${good.slice(0, good.lastIndexOf(','))}\n`, /short\.csv:2: expected 281 columns, found 280$/],
      ['long.csv', `${good},4\n`, /long\.csv:1: expected 281 columns, found 282$/],
      ['cut-after-comma.csv', `${good}\n${good.slice(0, 20)}`, /cut-after-comma\.csv:2: expected 281 columns, found 11$/],
      ['cut-in-number.csv', `${good}\n${good.slice(0, 21)}`, /cut-in-number\.csv:2: expected 281 columns, found 11$/],
      ['word.csv', `${good}\n${good}\n${good.replace(/^1,1,1,1,1,1,1/, '1,1,1,1,1,1,abc')}\n`, /word\.csv:3: column 7: 'abc' is not a number$/],
      ['nan.csv', `${good.replace(/^1,/, 'NaN,')}\n`, /nan\.csv:1: column 1: 'NaN' is not a number$/],
      ['empty-cell.csv', `${good.replace(/^1,/, ',')}\n`, /empty-cell\.csv:1: column 1: '' is not a number$/],
      ['huge.csv', `${good.replace(/^1,/, '1e999,')}\n`, /huge\.csv:1: column 1: 1e999 is out of range$/],
      ['negative.csv', `${row(1, 1, -1)}\n`, /negative\.csv:1: target \(column 281\) is -1, must be >= 0$/],
      ['blank.csv', '\n\n', /blank\.csv: empty file/],
    ];
    for (const [name, content, message] of cases) {
      const err = await readBlogCsv(file(name, content)).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(DataError);
      expect((err as Error).message, name).toMatch(message);
    }
  });

  it('reports a truncated gzip as such, and a missing file', async () => {
    const whole = gzipSync(Array.from({ length: 200 }, (_, i) => row(i, i, i)).join('\n'));
    const path = file('truncated.csv.gz', whole.subarray(0, whole.length >> 1));
    await expect(readBlogCsv(path)).rejects.toThrow(/truncated\.csv\.gz: corrupt or truncated gzip \(unexpected end of file\)/);
    await expect(readBlogCsv(join(tmp, 'nope.csv'))).rejects.toThrow(/nope\.csv: no such file/);
  });
});

describe('groupClients', () => {
  // groups: 0 -> rows 0,2,5; 1 -> rows 1,4; 2 -> row 3; 3 -> rows 6,7,8,9
  const group = Uint32Array.from([0, 1, 0, 2, 1, 0, 3, 3, 3, 3]);
  const rows = (g: ReturnType<typeof groupClients>) => g.clients.map((c) => Array.from(c));

  it('drop: one client per group of >= min rows, in order of first appearance', () => {
    const g = groupClients(group, 4, 3, 'drop');
    expect(rows(g)).toEqual([[0, 2, 5], [6, 7, 8, 9]]);
    expect(g).toMatchObject({ natural: 2, pooled: 0, droppedGroups: 2, droppedRows: 3 });
  });

  it('merge: small groups pooled in order until a pool has min rows; a short last pool joins the one before', () => {
    const three = groupClients(group, 4, 3, 'merge');
    expect(rows(three)).toEqual([[0, 2, 5], [6, 7, 8, 9], [1, 3, 4]]);
    expect(three).toMatchObject({ natural: 2, pooled: 1, droppedRows: 0 });
    // min 4: group 0 (3 rows) + group 1 (2) close a pool of 5; group 2's single row joins it
    const four = groupClients(group, 4, 4, 'merge');
    expect(rows(four)).toEqual([[6, 7, 8, 9], [0, 1, 2, 3, 4, 5]]);
    // min 2: only group 2 is small; its single row is the only pool, so it stands alone
    expect(rows(groupClients(group, 4, 2, 'merge'))).toEqual([[0, 2, 5], [1, 4], [6, 7, 8, 9], [3]]);
  });
});

describe('loadBlogFeedback', () => {
  const opts = (o: Partial<BlogOptions>): BlogOptions => ({ ...BLOG_DEFAULTS, ...o });

  it('one client per source, z-scored with statistics of the federated training rows only', async () => {
    const dir = copy('flat', TRAIN, { 'blogData_test-2012.02.01.00_00.csv': TEST });
    const { dataset } = await loadBlogFeedback(dir, opts({ minClientSize: 2 }));
    // source 8 has one row: dropped; kept rows: source 7 (f51 = 1, 3, 5), source 9 (f51 = 4, 6)
    expect(dataset.clients.map((c) => c.y.length)).toEqual([3, 2]);
    expect(dataset.meta).toMatchObject({ sources: 3, naturalClients: 2, droppedSources: 1, droppedRows: 1 });
    // feature 51 over the kept rows 1, 3, 5, 4, 6: mean 3.8, population variance 2.96
    const z = (v: number) => Math.fround((v - 3.8) / Math.sqrt(2.96));
    const f51 = (d: Dataset, r: number) => (d.x as DenseMatrix).data[r * BLOG_FEATURES + 50];
    expect(f51(dataset.clients[0]!, 1)).toBeCloseTo(z(3), 6);
    expect(f51(dataset.clients[1]!, 0)).toBeCloseTo(z(4), 6);
    // the test rows use the training statistics: f51 = 13 lies far outside
    expect(dataset.test!.y.length).toBe(2);
    expect(f51(dataset.test!, 1)).toBeCloseTo(z(13), 5);
    // features 52-62 are zero on every kept row: constant, so 0 everywhere (also in the test set)
    expect(dataset.meta.constantColumns).toContain(52);
    expect(f51(dataset.test!, 0)).toBeCloseTo(z(3), 6);
    expect(Array.from(dataset.clients[1]!.y)).toEqual([2, 9]);
  });

  it('options: log1p target, min-max scaling, merge', async () => {
    const dir = copy('nested/blogfeedback', TRAIN, {}, true);
    mkdirSync(join(dir, 'test'));
    writeFileSync(join(dir, 'test', 'part-1.csv.gz'), gzipSync(TEST));
    const root = join(tmp, 'nested'); // found as ROOT/blogfeedback with its test/ folder
    const { dataset } = await loadBlogFeedback(root, opts({ minClientSize: 2, log1p: true, scale: 'minmax', small: 'merge' }));
    expect(dataset.clients.map((c) => c.y.length)).toEqual([3, 2, 1]); // the single row of source 8 pooled alone
    expect(Array.from(dataset.clients[0]!.y)).toEqual([0, 1, 3].map((v) => Math.fround(Math.log1p(v))));
    // min-max of feature 51 over all six rows (1..6): (v - 1) / 5
    expect(dataset.clients[1]!.x.kind === 'dense' && dataset.clients[1]!.x.data[50]).toBeCloseTo(0.6, 6);
  });

  it('says where it looked and what to pass when the files are missing', async () => {
    await expect(loadBlogFeedback(join(tmp, 'empty'))).rejects.toThrow(/no blogData_train\.csv\(\.gz\) in .*empty\/blogfeedback or .*empty; .* --data-dir DIR/);
    const noTests = copy('no-tests', TRAIN, {});
    await expect(loadBlogFeedback(noTests)).rejects.toThrow(/has no test files beside it/);
  });

  it('is selected by --dataset with options, and rejects bad options and --test', async () => {
    expect(parseDatasetSpec('blogfeedback:log1p,min=5,small=merge,scale=minmax')).toEqual({
      kind: 'blogfeedback', log1p: true, minClientSize: 5, small: 'merge', scale: 'minmax',
    });
    for (const bad of ['blogfeedback:min=0', 'blogfeedback:log', 'blogfeedback:small=keep', 'blogfeedback:', 'blogfeedback:log1p,,min=2']) {
      expect(() => parseDatasetSpec(bad), bad).toThrow(/bad dataset/);
    }
    const dir = copy('flat', TRAIN, { 'blogData_test-2012.02.01.00_00.csv': TEST });
    const base = { clients: 30, partition: { kind: 'iid' as const }, seed: 0, dataDir: dir };
    const { dataset, warnings } = await loadFederated(parseDatasetSpec('blogfeedback:min=1'), base);
    expect(dataset.clients).toHaveLength(3);
    expect(warnings).toEqual(['partition iid ignored: blogfeedback has natural clients']);
    await expect(loadFederated(parseDatasetSpec('blogfeedback'), { ...base, test: 'libsvm:x' })).rejects.toThrow(/brings its own test set/);
  });
});

describe.skipIf(!existsSync(join(SHARED, 'blogfeedback')))('real BlogFeedback (../shared/data)', () => {
  it('52,397 train rows in 554 sources, 421 clients of >= 10 rows, 7,624 test rows, 281 columns', async () => {
    const { dataset } = await loadBlogFeedback(SHARED);
    expect(dataset.nFeatures + 1).toBe(281);
    expect(dataset.meta).toMatchObject({ sources: 554, naturalClients: 421, droppedSources: 133, droppedRows: 705, testFiles: 60 });
    expect(dataset.clients).toHaveLength(421);
    expect(dataset.clients.reduce((n, c) => n + c.y.length, 0) + 705).toBe(52_397);
    expect(dataset.test!.y.length).toBe(7_624);
  });
});
