/**
 * Hostile and unlucky data files (issue 10, items 7-9 and 11): a line without end, a FIFO or a
 * device, absurd indices, gzip bombs, control characters. Each must give a one-line DataError naming
 * the file (and line) and the limit, at once and in bounded memory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BLOG_COLUMNS, readBlogCsv } from './blogfeedback.js';
import { CIFAR10_RECORD_BYTES, readCifarBatch } from './cifar10.js';
import { FEMNIST_PIXELS, loadFemnist } from './femnist.js';
import { readLeafFile } from './leaf.js';
import { DEFAULT_LIMITS, resolveLimits, type DataLimits } from './limits.js';
import { parseLibsvmText, readLibsvm } from './libsvm.js';
import { loadExperiment } from '../experiment/spec.js';
import { loadServeConfig } from '../net/config.js';

const dir = mkdtempSync(join(tmpdir(), 'hostile-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const LEAF_SHAPE = { features: 4, classes: 3, min: 0, max: 1 };
const leafLimits = resolveLimits();

/** Every reader of a data or config file, as one call that resolves or throws. */
const READERS: [string, (path: string, limits?: Partial<DataLimits>) => Promise<unknown>][] = [
  ['LIBSVM', (p, limits) => readLibsvm(p, limits ? { limits } : {})],
  ['BlogFeedback CSV', (p, limits) => readBlogCsv(p, limits ? { limits } : {})],
  ['CIFAR-10 batch', async (p, limits) => readCifarBatch(p, limits)],
  ['LEAF JSON', async (p, limits) => readLeafFile(p, LEAF_SHAPE, resolveLimits(limits))],
  ['experiment file', async (p) => loadExperiment(p)],
  ['serve config', async (p) => loadServeConfig(p)],
];

/** The error of a call that must fail, with how long it took. */
async function failure(run: () => Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const t0 = performance.now();
  const error = await run().then(
    () => new Error('expected an error, got a result'),
    (e: unknown) => e as Error,
  );
  return { error, ms: performance.now() - t0 };
}

function expectOneLine(error: Error, pattern: RegExp): void {
  expect(['DataError', 'UsageError']).toContain(error.name);
  expect(error.message).toMatch(pattern);
  expect(error.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
}

describe('a line without end', () => {
  const limits = { maxLineBytes: 1000 };

  it('is refused at the line limit, naming file, line and limit, for each text format', async () => {
    // a first good line, then 100 kB without a newline
    const cases: [string, string, (p: string) => Promise<unknown>][] = [
      ['libsvm.txt', '1 1:1\n', (p) => readLibsvm(p, { limits })],
      ['blog.csv', `${Array(BLOG_COLUMNS).fill('1').join(',')}\n`, (p) => readBlogCsv(p, { limits })],
    ];
    for (const [name, first, read] of cases) {
      for (const gz of [false, true]) {
        const body = Buffer.from(first + '7'.repeat(100_000));
        const path = file(`${name}${gz ? '.gz' : ''}`, gz ? gzipSync(body) : body);
        const { error } = await failure(() => read(path));
        expectOneLine(error, new RegExp(`^${path}:2: line longer than 1000 bytes, the limit \\(--max-line-bytes`));
      }
    }
  });

  it('FEMNIST writers.tsv: the same limit', async () => {
    const root = join(dir, 'femnist-long');
    mkdirSync(join(root, 'femnist'), { recursive: true });
    file('femnist-long/femnist/writers.tsv', `writer\ttrain_start\ttrain_count\ttest_start\ttest_count\tmaybe_truncated\n${'w'.repeat(5000)}`);
    const { error } = await failure(() => loadFemnist(root, undefined, limits));
    expectOneLine(error, /femnist\/writers\.tsv:2: line longer than 1000 bytes, the limit \(--max-line-bytes/);
  });

  it('LEAF JSON (one line by nature) is bounded by its size instead', async () => {
    const path = file('big.json', `{"users": [${' '.repeat(3 << 20)}]}`);
    const { error } = await failure(async () => readLeafFile(path, LEAF_SHAPE, resolveLimits({ maxDecompressedMb: 1 })));
    expectOneLine(error, new RegExp(`^${path}: 3(\\.0)? MB, more than 1 MB \\(the limit, --max-decompressed-mb 1\\)$`));
  });

  it('with the default limit (16 MiB): 20 MB of digits without a newline fail fast, not inside readline', async () => {
    const path = file('endless.svm', Buffer.alloc(20 << 20, '1'));
    const { error, ms } = await failure(() => readLibsvm(path));
    expectOneLine(error, new RegExp(`^${path}:1: line longer than ${DEFAULT_LIMITS.maxLineBytes} bytes`));
    expect(ms).toBeLessThan(5000);
  });

  it('BlogFeedback: 64 MB without a newline take linear time (the old parser re-copied its carry on every chunk)', async () => {
    const path = file('endless.csv.gz', gzipSync(Buffer.alloc(64 << 20, '1')));
    const { error, ms } = await failure(() => readBlogCsv(path, { limits: { maxLineBytes: 48 << 20 } }));
    expectOneLine(error, /endless\.csv\.gz:1: line longer than 50331648 bytes/);
    expect(ms).toBeLessThan(5000);
  });
});

describe('not a regular file', () => {
  it('/dev/zero and a directory are refused at once by every reader', async () => {
    for (const [what, read] of READERS) {
      for (const [path, kind] of [
        ['/dev/zero', 'a character device'],
        [dir, 'a directory'],
      ]) {
        const { error, ms } = await failure(() => read(path!));
        expectOneLine(error, new RegExp(`${path}: is ${kind}, not a regular file`));
        expect(ms, what).toBeLessThan(1000);
      }
    }
  });

  it('FEMNIST: writers.tsv or an image file linked to /dev/zero is refused at once', async () => {
    const root = join(dir, 'femnist-zero');
    mkdirSync(join(root, 'femnist'), { recursive: true });
    symlinkSync('/dev/zero', join(root, 'femnist', 'writers.tsv'));
    const { error, ms } = await failure(() => loadFemnist(root));
    expectOneLine(error, /femnist\/writers\.tsv: is a character device, not a regular file$/);
    expect(ms).toBeLessThan(1000);
    rmSync(join(root, 'femnist', 'writers.tsv'));
    file('femnist-zero/femnist/writers.tsv', 'writer\ttrain_start\ttrain_count\ttest_start\ttest_count\tmaybe_truncated\nw\t0\t1\t0\t0\t0\n');
    file('femnist-zero/femnist/train_labels.u8.gz', gzipSync(Uint8Array.of(1)));
    symlinkSync('/dev/zero', join(root, 'femnist', 'train_images.u8.gz'));
    const second = await failure(() => loadFemnist(root));
    expectOneLine(second.error, /train_images\.u8\.gz: is a character device, not a regular file$/);
    expect(second.ms).toBeLessThan(1000);
  });

  const mkfifo = spawnSync('mkfifo', ['--version']).error === undefined;
  const writers: ChildProcess[] = [];
  afterEach(() => {
    for (const w of writers.splice(0)) w.kill();
  });

  it.skipIf(!mkfifo)('a FIFO is refused at once by every reader, never waited on (skipped where mkfifo is absent)', async () => {
    for (const [what, read] of READERS) {
      const fifo = join(dir, `fifo-${what.replace(/\W/g, '')}`);
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      // Safety net for a regression: a reader that blocks in open() (even synchronously) is released
      // after 3 s by a writer that opens and closes the FIFO, so the test fails instead of hanging.
      writers.push(spawn('sh', ['-c', `sleep 3; : > '${fifo}'`], { stdio: 'ignore' }));
      const { error, ms } = await failure(() => read(fifo));
      expectOneLine(error, new RegExp(`${fifo}: is a FIFO \\(named pipe\\), not a regular file`));
      expect(ms, what).toBeLessThan(1000);
    }
  });
});

describe('absurd sizes are refused before allocating', () => {
  it('a LIBSVM index above the maximum dimension (default 2^24), at once', async () => {
    const path = file('wide.svm', '1 1:1\n-1 2147483647:1\n');
    const { error, ms } = await failure(() => readLibsvm(path));
    expectOneLine(error, new RegExp(`^${path}:2: feature index 2147483647 is above the maximum dimension 16777216 \\(--max-dimension\\)$`));
    expect(ms).toBeLessThan(1000);
    expect(() => parseLibsvmText('1 11:1\n', 't', { limits: { maxDimension: 10 } })).toThrow('t:1: feature index 11 is above the maximum dimension 10 (--max-dimension)');
    expect(parseLibsvmText('1 10:1\n', 't', { limits: { maxDimension: 10 } }).nFeatures).toBe(10);
  });

  /** `copies` gzip members of 4 MB of zeros each: (copies × 4) MB from a few kB. */
  function bomb(copies: number): Buffer {
    const member = gzipSync(Buffer.alloc(4 << 20));
    return Buffer.concat(Array.from({ length: copies }, () => member));
  }

  it('gzip bombs are stopped past the decompressed limit, with a message that says so, for every format', async () => {
    const limits = { maxDecompressedMb: 8 };
    const gz = bomb(4); // 16 MB
    expect(gz.length).toBeLessThan(100_000);
    const said = (path: string) => new RegExp(`^${path}: decompresses to more than 8 MB, the limit \\(--max-decompressed-mb; a gzip bomb, or raise it\\)$`);
    for (const [what, read] of READERS.slice(0, 4)) {
      const path = file(`bomb-${what.replace(/\W/g, '')}.gz`, gz);
      const { error } = await failure(() => read(path, limits));
      expectOneLine(error, said(path));
    }
    const root = join(dir, 'femnist-bomb');
    mkdirSync(join(root, 'femnist'), { recursive: true });
    file('femnist-bomb/femnist/writers.tsv', 'writer\ttrain_start\ttrain_count\ttest_start\ttest_count\tmaybe_truncated\nw\t0\t1\t0\t0\t0\n');
    file('femnist-bomb/femnist/train_labels.u8.gz', gzipSync(Uint8Array.of(1)));
    const images = file('femnist-bomb/femnist/train_images.u8.gz', gz);
    const { error } = await failure(() => loadFemnist(root, undefined, limits));
    expectOneLine(error, said(images));
  });

  it('a plain file read whole is refused above the limit before it is read', async () => {
    const path = file('big.bin', Buffer.alloc(2 * CIFAR10_RECORD_BYTES * 200));
    expect(() => readCifarBatch(path, { maxDecompressedMb: 1 })).toThrow(`${path}: 1.2 MB, more than 1 MB (the limit, --max-decompressed-mb 1)`);
  });

  it('the limits themselves are checked', () => {
    expect(() => resolveLimits({ maxLineBytes: 0 })).toThrow('--max-line-bytes must be an integer in 1..268435456, got 0');
    expect(() => resolveLimits({ maxDimension: 2 ** 32 })).toThrow('--max-dimension must be an integer in 1..2147483648, got 4294967296');
    expect(() => resolveLimits({ maxDecompressedMb: -1 })).toThrow('--max-decompressed-mb must be a number in (0, 1048576], got -1');
    expect(resolveLimits()).toEqual({ maxLineBytes: 16 * 2 ** 20, maxDimension: 2 ** 24, maxDecompressedMb: 1024 });
    expect(FEMNIST_PIXELS).toBe(784);
  });
});

describe('errors are one line', () => {
  it('a CSV cell with a lone CR is escaped, so the file name stays visible', async () => {
    const row = Array(BLOG_COLUMNS).fill('1');
    row[3] = '12\r34';
    const path = file('cr.csv', row.join(',') + '\n');
    const { error } = await failure(() => readBlogCsv(path));
    expect(error.message).toBe(`${path}:1: column 4: '12\\r34' is not a number`);
  });

  it('a LIBSVM token with control characters is escaped and cut short', () => {
    expect(() => parseLibsvmText(`1 a\u0000\u001b[2J${'x'.repeat(100)}\n`, 'f.svm')).toThrow(
      /^f\.svm:1: malformed token 'a\\u0000\\u001b\[2Jx+\.\.\. \(106 characters\)' \(expected INDEX:VALUE\)$/,
    );
  });

  it('a JSON syntax error in a multi-line LEAF file gives its line and column and does not quote the input', async () => {
    const path = file('bad.json', '{\n  "users": ["a"],\n  "user_data": }\n');
    const { error } = await failure(async () => readLeafFile(path, LEAF_SHAPE, leafLimits));
    expect(error.message).toBe(`${path}: not valid JSON: Unexpected token '}'`);
    const path2 = file('bad2.json', '{\n  "users": ["a"]\n  "user_data": {}\n}');
    const { error: error2 } = await failure(async () => readLeafFile(path2, LEAF_SHAPE, leafLimits));
    expect(error2.message).toBe(`${path2}: not valid JSON: Expected ',' or '}' after property value (line 3, column 3)`);
  });
});
