/**
 * The browser client (issue 12, item 2): tabs of headless Chromium join a federation over WebSocket and
 * train in a Web Worker with the project's own code, next to Node clients over gRPC; the run equals the
 * simulator's. Skipped without chromium, except under CI, where that fails (dashboard.browser.test.ts).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR10_RECORD_BYTES } from '../data/cifar-records.js';
import { runClients } from '../net/client.js';
import { SERVER_DEFAULTS } from '../net/config.js';
import { FederationServer } from '../net/server.js';
import { simulatedJsonl } from '../net/testing.js';
import { resolveConfig } from '../sim/config.js';
import type { RunPayload } from './protocol.js';
import { buildPage } from './build.js';
import { CHROMIUM_ARGS, findChromium } from './chromium.js';

const chromium = findChromium();
const SHOTS = join(import.meta.dirname, '../../test-output/browser-client');

describe.skipIf(!chromium)(`browser clients in Chromium${chromium ? '' : ' (skipped: no chromium here; scripts/install-browser.sh installs it)'}`, () => {
  const root = mkdtempSync(join(tmpdir(), 'browser-client-'));
  let browser: Browser;
  let assets: string;
  const problems: string[] = [];

  beforeAll(async () => {
    const [{ default: puppeteer }, built] = await Promise.all([import('puppeteer-core'), buildPage(join(root, 'page'))]);
    assets = built.dir;
    browser = await puppeteer.launch({ executablePath: chromium!, headless: true, args: CHROMIUM_ARGS });
    mkdirSync(SHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function tab(url: string): Promise<Page> {
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${(e as Error).message}`));
    await page.goto(url, { waitUntil: 'load' });
    return page;
  }

  const cases = [
    ['sparse-proxskip', {}, false],
    ['proxskip', { sparsity: 0.5, dataset: 'lsq' }, true],
  ] as const;
  for (const [algorithm, extra, withTokens] of cases) {
    it(`${algorithm}: 2 tabs and 2 Node clients write the simulator's rounds.jsonl${withTokens ? ' (with tokens)' : ''}`, { timeout: 120_000 }, async () => {
      const config = resolveConfig({ algorithm, clients: 4, rounds: 4, timing: false, ...extra });
      const out = join(root, `out-${algorithm}`);
      const tokens = { '0': 'token-zero-0123456789', '1': 'token-one-0123456789', '2': 'token-two-0123456789', '3': 'token-three-0123456789' };
      if (withTokens) writeFileSync(join(root, 'tokens.json'), JSON.stringify(tokens));
      const srv = await FederationServer.start({
        config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 60, http: '127.0.0.1:0', tokens: withTokens ? join(root, 'tokens.json') : null } },
        log: () => {},
        dashboardAssets: assets,
      });
      const pages: Page[] = [];
      try {
        const hash = (id: 0 | 1) => (withTokens ? `#token=${tokens[id]}` : '');
        // one tab takes the server's dataset, the other names it
        pages.push(await tab(`${srv.dashboardUrl}client?id=0${hash(0)}`));
        pages.push(await tab(`${srv.dashboardUrl}client?id=1&data=${config.dataset}${hash(1)}`));
        const node = runClients({ server: `127.0.0.1:${srv.port}`, ids: [2, 3], data: null, stateDir: null, tls: null, tokens: withTokens ? new Map([[2, tokens['2']], [3, tokens['3']]]) : null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 30, log: () => {} });
        await Promise.all([srv.done, node]);
        expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
        for (const page of pages) {
          await page.waitForFunction(`document.body.dataset.state === 'done'`, { timeout: 10_000 });
          const shown = (await page.evaluate(`[...document.querySelectorAll('td')].map((td) => td.textContent)`)) as string[];
          const [id, data, round, loss, sent, received, density] = shown;
          expect(data).toMatch(new RegExp(`^${config.dataset}\\S*, \\d+ samples$`));
          expect([id, round]).toEqual([String(pages.indexOf(page)), '4']);
          expect(Number(loss)).toBeGreaterThan(0);
          expect(Number(sent)).toBeGreaterThan(0);
          expect(Number(received)).toBeGreaterThan(Number(sent)); // the broadcasts (dense for proxskip) outweigh the updates
          expect(Number(density)).toBeGreaterThan(0);
          expect(Number(density)).toBeLessThanOrEqual(1);
        }
        // (a tab in the background draws no frames to take)
        await pages[0]!.bringToFront();
        await pages[0]!.screenshot({ path: join(SHOTS, `${algorithm}.png`) });
        expect(problems).toEqual([]);
      } finally {
        for (const p of pages) await p.close();
        srv.stop('test over');
        await srv.done.catch(() => {});
      }
    });
  }

  it('a small CNN: 2 tabs (TensorFlow.js wasm backend in the Web Worker) and 2 Node clients write the simulator\'s rounds.jsonl', { timeout: 120_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', dataset: 'images', model: 'cnn', clients: 4, rounds: 2, localSteps: 4, batchSize: 8, timing: false });
    const out = join(root, 'out-cnn');
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 60, http: '127.0.0.1:0' } },
      log: () => {},
      dashboardAssets: assets,
    });
    const pages: Page[] = [];
    try {
      pages.push(await tab(`${srv.dashboardUrl}client?id=0`), await tab(`${srv.dashboardUrl}client?id=1&data=images`));
      const node = runClients({ server: `127.0.0.1:${srv.port}`, ids: [2, 3], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 30, log: () => {} });
      await Promise.all([srv.done, node]);
      expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
      for (const page of pages) await page.waitForFunction(`document.body.dataset.state === 'done'`, { timeout: 10_000 });
      expect(await pages[1]!.$eval('#data', (d) => d.textContent)).toBe('images, 32 samples');
      // the binary Node runs too (one thread: the threaded one would need a worker from a blob: URL)
      expect(await pages[1]!.$eval('#log', (l) => l.textContent)).toMatch(/a cnn network on TensorFlow\.js 4\.22\.0 wasm backend \(SIMD, 1 thread\)/);
      expect(problems).toEqual([]);
    } finally {
      for (const p of pages) await p.close();
      srv.stop('test over');
      await srv.done.catch(() => {});
    }
  });

  it('Leave closes the connection cleanly: the server counts the client as gone and the tab does not come back', { timeout: 60_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 2, rounds: 2, timing: false });
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(root, 'out-leave'), roundTimeout: 60, http: '127.0.0.1:0' } },
      log: () => {},
      dashboardAssets: assets,
    });
    const page = await tab(`${srv.dashboardUrl}client?id=0`);
    try {
      const row = async () => ((await (await fetch(`${srv.dashboardUrl}api/runs/net`)).json()) as RunPayload).clients[0]!;
      await page.waitForFunction(`document.body.dataset.state === 'joined'`, { timeout: 10_000 });
      for (let i = 0; i < 100 && !(await row()).connected; i++) await new Promise((r) => setTimeout(r, 50));
      expect((await row()).connected).toBe(true);
      await page.click('#leave');
      await page.waitForFunction(`document.body.dataset.state === 'stopped'`, { timeout: 10_000 });
      for (let i = 0; i < 100 && (await row()).connected; i++) await new Promise((r) => setTimeout(r, 50));
      expect((await row()).connected).toBe(false);
      expect(await page.$eval('#log', (l) => l.textContent)).toMatch(/left the federation/);
      await new Promise((r) => setTimeout(r, 500)); // it would have reconnected by now
      expect((await row()).connected).toBe(false);
      expect(problems).toEqual([]);
    } finally {
      await page.close();
      srv.stop('test over');
      await srv.done.catch(() => {});
    }
  });

  it('a tab reloaded mid-round resumes from IndexedDB (its update of the round in flight kept) and the run equals the simulator', { timeout: 60_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 3, rounds: 4, timing: false });
    const out = join(root, 'out-reload');
    const logs: string[] = [];
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 60, http: '127.0.0.1:0' } },
      log: (l) => logs.push(l),
      dashboardAssets: assets,
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const page = await tab(`${srv.dashboardUrl}client?id=0`);
    let node: Promise<void> | null = null;
    try {
      const payload = async () => (await (await fetch(`${srv.dashboardUrl}api/runs/net`)).json()) as RunPayload;
      // client 2 holds round 2 back, so the round is still open when the tab has sent its update of it
      node = runClients({ server: `127.0.0.1:${srv.port}`, ids: [1, 2], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 30, log: () => {}, onStep: (id, step, round) => (id === 2 && step === 'train' && round === 2 ? gate : undefined) });
      for (let i = 0; i < 400 && (await payload()).clients[0]!.lastRound !== 2; i++) await new Promise((r) => setTimeout(r, 25));
      expect((await payload()).clients[0]!.lastRound).toBe(2);
      await page.reload({ waitUntil: 'load' });
      await page.waitForFunction(`document.querySelector('#log').textContent.includes('resumed from')`, { timeout: 20_000 });
      expect(await page.$eval('#log', (l) => l.textContent)).toContain("client 0: resumed from this browser's IndexedDB (round 1, update of round 2 in flight)");
      release();
      await Promise.all([srv.done, node]);
      expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
      await page.waitForFunction(`document.body.dataset.state === 'done'`, { timeout: 10_000 });
      expect(logs).toContain('client 0 is back with its update of round 2, which the server holds: kept');
      expect(problems).toEqual([]);
    } finally {
      release();
      await page.close();
      srv.stop('test over');
      await Promise.all([srv.done.catch(() => {}), node?.catch(() => {})]);
    }
  });

  it('a tab that closes is a client that disconnects: with allowPartial the run goes on without it after the round timeout', { timeout: 60_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 3, rounds: 4, timing: false });
    const logs: string[] = [];
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(root, 'out-close'), roundTimeout: 1, allowPartial: true, http: '127.0.0.1:0' } },
      log: (l) => logs.push(l),
      dashboardAssets: assets,
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const page = await tab(`${srv.dashboardUrl}client?id=0`);
    let node: Promise<void> | null = null;
    try {
      node = runClients({ server: `127.0.0.1:${srv.port}`, ids: [1, 2], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 30, log: () => {}, onStep: (id, step, round) => (id === 2 && step === 'train' && round === 2 ? gate : undefined) });
      const row = async () => ((await (await fetch(`${srv.dashboardUrl}api/runs/net`)).json()) as RunPayload).clients[0]!;
      for (let i = 0; i < 400 && ((await row()).lastRound ?? 0) < 1; i++) await new Promise((r) => setTimeout(r, 25));
      await page.close();
      release();
      const result = await srv.done;
      await node;
      expect(result.records.at(-1)!.round).toBe(4);
      expect(logs.some((l) => /^client 0 disconnected/.test(l))).toBe(true);
      expect(logs.some((l) => /^round \d: going on without client 0 \(no (update|loss) within 1 s, --allow-partial\)$/.test(l))).toBe(true);
    } finally {
      release();
      if (!page.isClosed()) await page.close();
      srv.stop('test over');
      await Promise.all([srv.done.catch(() => {}), node?.catch(() => {})]);
    }
  });

  it('data=file: a gzipped CIFAR-10 batch picked in the tab trains the CNN there; the run equals the one where a Node client reads that file (--own-data)', { timeout: 120_000 }, async () => {
    // 2 clients × 12 records; the server's dataset only gives the model's shape and the test set (images:32 is 32×32×3, 10 classes)
    const batch = (k: number): Uint8Array => {
      const out = new Uint8Array(12 * CIFAR10_RECORD_BYTES);
      for (let i = 0; i < 12; i++) {
        out[i * CIFAR10_RECORD_BYTES] = (i * 3 + k) % 10;
        for (let p = 1; p < CIFAR10_RECORD_BYTES; p++) out[i * CIFAR10_RECORD_BYTES + p] = (i * 31 + p * 7 + k * 101 + ((p * p) >> 5)) % 256;
      }
      return out;
    };
    const files = [join(root, 'own0.bin.gz'), join(root, 'own1.bin')];
    writeFileSync(files[0]!, gzipSync(batch(0)));
    writeFileSync(files[1]!, batch(1));
    const config = resolveConfig({ algorithm: 'sparse-proxskip', dataset: 'images:32', model: 'cnn', gamma: 0.05, clients: 2, rounds: 2, localSteps: 2, batchSize: 6, timing: false });
    const run = async (inTab: boolean): Promise<string> => {
      const out = join(root, `out-cifar-${inTab ? 'tab' : 'node'}`);
      const srv = await FederationServer.start({
        config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 60, http: '127.0.0.1:0' } },
        log: () => {},
        dashboardAssets: assets,
      });
      const client = (id: number) => runClients({ server: `127.0.0.1:${srv.port}`, ids: [id], ownData: files[id]!, data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 30, log: () => {} });
      const page = inTab ? await tab(`${srv.dashboardUrl}client?id=0&data=file`) : null;
      try {
        if (page) await (await page.waitForSelector('#file', { timeout: 10_000 }))!.uploadFile(files[0]!);
        await Promise.all([srv.done, client(1), ...(page ? [] : [client(0)])]);
        if (page) {
          await page.waitForFunction(`document.body.dataset.state === 'done'`, { timeout: 10_000 });
          expect(await page.$eval('#data', (d) => d.textContent)).toBe('own0.bin.gz, 12 samples');
        }
        return readFileSync(join(out, 'rounds.jsonl'), 'utf8');
      } finally {
        await page?.close();
        srv.stop('test over');
        await srv.done.catch(() => {});
      }
    };
    expect(await run(true)).toBe(await run(false));
    expect(problems).toEqual([]);
  });

  it('data=file: a gzip bomb picked in the tab is refused at the run\'s maxDecompressedMb with the file reader\'s message', { timeout: 60_000 }, async () => {
    const bomb = join(root, 'bomb.csv.gz');
    writeFileSync(bomb, gzipSync(new Uint8Array(3 * 2 ** 20).fill(0x30))); // 3 MB of '0' in 3 kB
    const config = resolveConfig({ algorithm: 'sparse-proxskip', dataset: 'lsq', clients: 1, rounds: 1, maxDecompressedMb: 1, timing: false });
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(root, 'out-bomb'), roundTimeout: 60, http: '127.0.0.1:0' } },
      log: () => {},
      dashboardAssets: assets,
    });
    const page = await tab(`${srv.dashboardUrl}client?id=0&data=file`);
    try {
      await (await page.waitForSelector('#file', { timeout: 10_000 }))!.uploadFile(bomb);
      await page.waitForFunction(`document.body.dataset.state === 'stopped'`, { timeout: 20_000 });
      expect(await page.$eval('#log', (l) => l.textContent)).toContain('client 0: bomb.csv.gz: decompresses to more than 1 MB, the limit (--max-decompressed-mb; a gzip bomb, or raise it)');
      expect(problems).toEqual([]);
    } finally {
      await page.close();
      srv.stop('test over');
      await srv.done.catch(() => {});
    }
  });

  // the tab picks client 0's rows as LIBSVM, or as CSV (features, then the label): the same data
  for (const ext of ['txt', 'csv'] as const) {
    it(`data=file: a ${ext === 'txt' ? 'LIBSVM' : 'CSV'} file picked in the tab is its data (read there by the file readers' parser); the run equals the simulator on the concatenated file`, { timeout: 60_000 }, async () => {
      // 2 clients × 12 rows of binary data with 5 features, as src/net/net.test.ts's --own-data test
      const row = (i: number): string => `${i % 3 === 0 ? -1 : 1} ${[1, 2, 3, 4, 5].map((j) => `${j}:${(((i * 7 + j * 3) % 11) / 10).toFixed(1)}`).join(' ')}`;
      const rows = Array.from({ length: 24 }, (_, i) => row(i));
      const files = [0, 1].map((k) => join(root, `own${k}.txt`));
      files.forEach((f, k) => writeFileSync(f, rows.slice(12 * k, 12 * k + 12).join('\n') + '\n'));
      writeFileSync(join(root, 'own-all.txt'), rows.join('\n') + '\n');
      const csv = join(root, 'own0.csv');
      const csvRow = (r: string): string => {
        const [label, ...features] = r.split(' ');
        return [...features.map((f) => f.split(':')[1]), label].join(',');
      };
      writeFileSync(csv, rows.slice(0, 12).map(csvRow).join('\n') + '\n');
      const picked = ext === 'txt' ? files[0]! : csv;
      const config = resolveConfig({ algorithm: 'sparse-proxskip', dataset: `libsvm:${join(root, 'own-all.txt')}`, clients: 2, rounds: 3, sparsity: 0.4, timing: false });
      const out = join(root, `out-file-${ext}`);
      const srv = await FederationServer.start({
        config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 60, http: '127.0.0.1:0' } },
        log: () => {},
        dashboardAssets: assets,
      });
      const page = await tab(`${srv.dashboardUrl}client?id=0&data=file`);
      try {
        const input = await page.waitForSelector('#file', { timeout: 10_000 });
        await input!.uploadFile(picked);
        const node = runClients({ server: `127.0.0.1:${srv.port}`, ids: [1], ownData: files[1]!, data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 30, log: () => {} });
        await Promise.all([srv.done, node]);
        expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
        await page.waitForFunction(`document.body.dataset.state === 'done'`, { timeout: 10_000 });
        expect(await page.$eval('#data', (d) => d.textContent)).toBe(`own0.${ext}, 12 samples`);
        expect(problems).toEqual([]);
      } finally {
        await page.close();
        srv.stop('test over');
        await srv.done.catch(() => {});
      }
    });
  }
});
