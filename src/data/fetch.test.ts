/** `data fetch cifar10` against a local HTTP server on 127.0.0.1 serving a tiny archive made here. */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as tarCreate } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli as runCli } from '../cli/testing.js';
import { CIFAR10_RECORD_BYTES, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, loadCifar10 } from './cifar10.js';
import { DataError } from './errors.js';
import { CIFAR10_ARCHIVE_FOLDER, fetchCifar10 } from './fetch.js';

const dir = mkdtempSync(join(tmpdir(), 'fetch-test-'));
let server: Server;
let base = '';
let archive: Buffer;
let badArchive: Buffer;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** n records, labels i mod 10, pixels i. */
function batch(n: number): Uint8Array {
  const out = new Uint8Array(n * CIFAR10_RECORD_BYTES);
  for (let i = 0; i < n; i++) {
    out[i * CIFAR10_RECORD_BYTES] = i % 10;
    out.fill(i, i * CIFAR10_RECORD_BYTES + 1, (i + 1) * CIFAR10_RECORD_BYTES);
  }
  return out;
}

async function makeArchive(name: string, badLabel = false): Promise<Buffer> {
  const src = join(dir, `src-${name}`, CIFAR10_ARCHIVE_FOLDER);
  mkdirSync(src, { recursive: true });
  for (const f of CIFAR10_TRAIN_FILES) writeFileSync(join(src, f), batch(2));
  const test = batch(3);
  if (badLabel) test[0] = 200;
  writeFileSync(join(src, CIFAR10_TEST_FILE), test);
  writeFileSync(join(src, 'batches.meta.txt'), 'airplane\nautomobile\n');
  const file = join(dir, `${name}.tar.gz`);
  await tarCreate({ gzip: true, file, cwd: join(dir, `src-${name}`) }, [CIFAR10_ARCHIVE_FOLDER]);
  return readFileSync(file);
}

beforeAll(async () => {
  archive = await makeArchive('good');
  badArchive = await makeArchive('bad', true);
  server = createServer((req, res) => {
    const body = req.url === '/cifar.tar.gz' ? archive : req.url === '/bad-label.tar.gz' ? badArchive : req.url === '/junk.tar.gz' ? Buffer.from('not a tar file') : null;
    if (!body) {
      res.writeHead(404, 'Not Found').end('no such file');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const fresh = (name: string): string => mkdtempSync(join(dir, `${name}-`));

describe('fetchCifar10', () => {
  it('downloads, verifies md5, unpacks into DATA_DIR/cifar10 and leaves no temp files', async () => {
    const data = fresh('ok');
    const seen: number[] = [];
    const r = await fetchCifar10(data, { url: `${base}/cifar.tar.gz`, md5: md5(archive), onProgress: (b, total) => seen.push(b, total ?? -1) });
    expect(r).toEqual({ dir: join(data, 'cifar10'), downloaded: true, bytes: archive.length, md5: md5(archive), sha256: sha256(archive) });
    expect(seen.at(-2)).toBe(archive.length);
    expect(seen.at(-1)).toBe(archive.length);
    expect(readdirSync(data)).toEqual(['cifar10']);
    expect(readdirSync(join(data, 'cifar10')).sort()).toEqual([...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE, 'batches.meta.txt'].sort());
    const { dataset } = loadCifar10(join(data, 'cifar10'), { clients: 2, partition: { kind: 'contiguous' }, seed: 0 });
    expect(dataset.clients.map((c) => c.y.length)).toEqual([5, 5]);
    expect(Array.from(dataset.test!.y)).toEqual([0, 1, 2]);
    // a second fetch finds it there and downloads nothing
    expect((await fetchCifar10(data, { url: `${base}/cifar.tar.gz`, md5: md5(archive) })).downloaded).toBe(false);
    // --force downloads again and swaps the folder
    expect((await fetchCifar10(data, { url: `${base}/cifar.tar.gz`, sha256: sha256(archive), force: true })).downloaded).toBe(true);
    expect(readdirSync(data)).toEqual(['cifar10']);
  });

  it('rejects a checksum mismatch and writes nothing', async () => {
    const data = fresh('mismatch');
    const url = `${base}/cifar.tar.gz`;
    // the default is the official md5, which the fixture does not have
    await expect(fetchCifar10(data, { url })).rejects.toThrow(`checksum mismatch for ${url}: md5 ${md5(archive)}, expected c32a1d4ab5d03f1284b67883e8d87530`);
    await expect(fetchCifar10(data, { url, sha256: '0'.repeat(64) })).rejects.toThrow(DataError);
    await expect(fetchCifar10(data, { url, sha256: '0'.repeat(64) })).rejects.toThrow(`sha256 ${sha256(archive)}, expected ${'0'.repeat(64)}`);
    expect(readdirSync(data)).toEqual([]);
    await expect(fetchCifar10(data, { url, md5: 'xyz' })).rejects.toThrow("--md5 must be 32 hex digits, got 'xyz'");
  });

  it('reports HTTP errors, refused connections, junk and bad batches clearly', async () => {
    const data = fresh('errors');
    await expect(fetchCifar10(data, { url: `${base}/missing.tar.gz` })).rejects.toThrow(`download of ${base}/missing.tar.gz failed: HTTP 404 Not Found`);
    // a port nobody listens on: bind one, then close it
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(fetchCifar10(data, { url: `http://127.0.0.1:${port}/x.tar.gz` })).rejects.toThrow(/cannot download .*: ECONNREFUSED \(no network/);
    const junk = Buffer.from('not a tar file');
    await expect(fetchCifar10(data, { url: `${base}/junk.tar.gz`, md5: md5(junk) })).rejects.toThrow('is not a readable .tar.gz archive');
    await expect(fetchCifar10(data, { url: `${base}/bad-label.tar.gz`, md5: md5(badArchive) })).rejects.toThrow('record 0 has label 200');
    expect(readdirSync(data)).toEqual([]);
  });
});

describe('sparse-proxskip data fetch cifar10', () => {
  // `data fetch ...args`, its output without the final newline
  const cli = (...args: string[]) =>
    runCli('data', 'fetch', ...args).then((r) => ({ ...r, stdout: r.stdout.trimEnd(), stderr: r.stderr.trimEnd() }));


  it('fetches with --url and --md5, and fails in one line with exit code 2', async () => {
    const data = fresh('cli');
    const ok = await cli('cifar10', '--data-dir', data, '--url', `${base}/cifar.tar.gz`, '--md5', md5(archive));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`-> ${join(data, 'cifar10')}`);
    const again = await cli('cifar10', '--data-dir', data, '--url', `${base}/cifar.tar.gz`);
    expect(again.stdout).toBe(`cifar10 is already in ${join(data, 'cifar10')} (pass --force to download it again)`);
    const bad = await cli('cifar10', '--data-dir', fresh('cli-bad'), '--url', `${base}/cifar.tar.gz`);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^sparse-proxskip: error: checksum mismatch for .*cifar\.tar\.gz: md5 [0-9a-f]{32}, expected c32a1d4ab5d03f1284b67883e8d87530/);
    const other = await cli('mnist', '--data-dir', data);
    expect([other.code, other.stderr]).toEqual([2, "sparse-proxskip: error: data fetch knows cifar10 only, not 'mnist'"]);
  });
});
