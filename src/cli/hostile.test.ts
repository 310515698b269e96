/**
 * Hostile files end to end (issue 10, items 7-11): each command gives one line on stderr, exit code 2
 * and no output files; the data limits are command-line options and run options.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './testing.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-hostile-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const svm = file('ok.svm', Array.from({ length: 20 }, (_, i) => `${i % 2 ? 1 : -1} 1:${i} 3:1`).join('\n') + '\n');
const RUN = ['run', '--algorithm', 'fedavg', '--clients', '2', '--rounds', '1'];

describe('one line, exit 2, no output', () => {
  const longLine = file('long.svm', `1 1:1\n${'1 '.repeat(600)}\n`);
  const cases: [string, string[], RegExp][] = [
    ['a line over --max-line-bytes', [...RUN, '--dataset', `libsvm:${longLine}`, '--max-line-bytes', '1000'], /long\.svm:2: line longer than 1000 bytes, the limit \(--max-line-bytes/],
    ['an index over --max-dimension', [...RUN, '--dataset', `libsvm:${svm}`, '--max-dimension', '2'], /ok\.svm:1: feature index 3 is above the maximum dimension 2 \(--max-dimension\)/],
    ['a bad limit', [...RUN, '--max-decompressed-mb', '0'], /--max-decompressed-mb must be a number in \(0, 1048576\], got 0/],
    ['/dev/zero as data', [...RUN, '--dataset', 'libsvm:/dev/zero'], /\/dev\/zero: is a character device, not a regular file/],
    ['a directory as data', ['data', 'describe', `libsvm:${dir}`], /: is a directory, not a regular file/],
    ['a control character in a spec', [...RUN, '--dataset', 'nope\r\u001b[2K'], /unknown dataset 'nope\\r\\u001b\[2K'/],
  ];
  it.each(cases)('%s', async (_what, args, message) => {
    const out = join(dir, `out-${_what.replace(/\W/g, '')}`);
    const r = await cli(...args, '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sparse-proxskip: error: [^\n\r]+\n$/);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('experiment --report-only with "seeds": 2147483648 is refused before any list is built', async () => {
    const path = file('huge.json', JSON.stringify({ methods: ['fedavg'], seeds: 2147483648 }));
    const out = join(dir, 'huge');
    const t0 = performance.now();
    const r = await cli('experiment', path, '--report-only', '--out', out);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`sparse-proxskip: error: ${path}: seeds: 2147483648 seeds make more than the 10000 cells an experiment may have\n`);
    expect(existsSync(out)).toBe(false);
  });

  it('serve with a mistyped config key names the key and the type', async () => {
    const path = file('serve.json', JSON.stringify({ algorithm: 'fedavg', host: '127.0.0.1', port: 0, tls: { cert: 'c', key: 'k', ca: 'a', requireClientCert: 'true' } }));
    const r = await cli('serve', '--config', path);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`sparse-proxskip: error: ${path}: tls.requireClientCert: must be true or false, got "true"\n`);
  });

  it('a multi-line JSON syntax error is one line', async () => {
    const path = file('bad.json', '{\n  "methods": ["fedavg"],\n  "seeds": \n}\n');
    const r = await cli('experiment', path, '--report-only', '--out', join(dir, 'bad'));
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`sparse-proxskip: error: ${path}: not valid JSON: Unexpected token '}'\n`);
  });
});

describe('the limits as options', () => {
  it('run takes them, records them in summary.json, and loads data within them', async () => {
    const out = join(dir, 'limits-run');
    const r = await cli(...RUN, '--dataset', `libsvm:${svm}`, '--max-line-bytes', '100', '--max-dimension', '3', '--max-decompressed-mb', '1', '--no-timing', '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { config: Record<string, unknown> };
    expect(summary.config).toMatchObject({ maxLineBytes: 100, maxDimension: 3, maxDecompressedMb: 1 });
  });

  it('--help lists them with their defaults', async () => {
    const r = await cli('run', '--help');
    const help = r.stdout.replace(/\s+/g, ' ');
    expect(help).toContain('--max-line-bytes <n> longest line of a text data file (default: 16777216)');
    expect(help).toContain('--max-dimension <n> largest LIBSVM feature index (default: 16777216)');
    expect(help).toContain('--max-decompressed-mb <mb> most content of one data file after gunzip, in MB (default: 1024)');
  });
});
