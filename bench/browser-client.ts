/**
 * The browser client (issue 12, item 6): the weight of its scripts, and one round's time of a browser
 * client against a Node client on the same data, for a convex model and for a small CNN. Two runs of
 * sparse-proxskip with 2 clients over loopback each: a headless-Chromium tab as client 0 and a Node client
 * as client 1, then the other way round, so client 0's data are trained once in the tab and once in Node.
 * A client's round time is what the server's dashboard shows as its round trip: from Train sent to Update
 * received (local training, encoding, both messages), the median over the rounds after the first. Both
 * clients speak WebSocket, each in a process of its own (the tab's renderer, a `sparse-proxskip client
 * --server ws://…` process). Needs chromium (scripts/install-browser.sh). Standalone: npx tsx bench/browser-client.ts
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser } from 'puppeteer-core';
import { SERVER_DEFAULTS } from '../src/net/config.js';
import { FederationServer } from '../src/net/server.js';
import { spawnCli } from '../src/net/testing.js';
import { resolveConfig } from '../src/sim/config.js';
import type { RunConfig } from '../src/sim/config.js';
import { buildPage, bytesOf } from '../src/web/build.js';
import { CHROMIUM_ARGS, findChromium } from '../src/web/chromium.js';
import type { DashboardEvent } from '../src/web/protocol.js';
import type { BenchResult } from './types.js';
import { isMain, median, printResults } from './util.js';

/** The convex model's runs, and the CNN's (32×32×3 images, as CIFAR-10's; fewer rounds: each takes seconds); the first rounds warm up (the tab compiles its WebAssembly, the JIT its code). */
const CASES = [
  { config: resolveConfig({ algorithm: 'sparse-proxskip', dataset: 'synthetic', clients: 2, rounds: 30, localSteps: 20, timing: false }), warmup: 5, what: 'multinomial logistic' },
  { config: resolveConfig({ algorithm: 'sparse-proxskip', dataset: 'images:32', model: 'cnn', gamma: 0.05, clients: 2, rounds: 8, localSteps: 10, batchSize: 16, timing: false }), warmup: 2, what: 'cnn, batches of 16' },
];

/** Each client's round trips over a run (seconds), from the dashboard's client table after every round. */
async function roundTrips(browser: Browser, assets: string, out: string, tabId: 0 | 1, config: RunConfig): Promise<[number[], number[]]> {
  const srv = await FederationServer.start({
    config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 120, http: '127.0.0.1:0' } },
    log: () => {},
    dashboardAssets: assets,
  });
  const seen: [number[], number[]] = [[], []];
  const events = new Promise<void>((resolve, reject) => {
    get(`${srv.dashboardUrl}api/events`, (res) => {
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const data = /^data: (.*)$/m.exec(buf.slice(0, end))?.[1];
          buf = buf.slice(end + 2);
          const e = data ? (JSON.parse(data) as DashboardEvent) : null;
          if (e?.type !== 'clients') continue;
          for (const c of e.clients) {
            const list = seen[c.id as 0 | 1];
            if (c.lastRoundTrip !== null && c.lastRoundTrip !== list.at(-1)) list.push(c.lastRoundTrip);
          }
        }
      });
      res.on('end', resolve);
    }).on('error', reject);
  });
  const tab = await browser.newPage();
  try {
    await tab.goto(`${srv.dashboardUrl}client?id=${tabId}`, { waitUntil: 'load' });
    // the Node client over WebSocket too (the same transport), in a process of its own, as the tab has one
    // (in this process it would wait on the server's work)
    const node = spawnCli(['client', '--server', srv.dashboardUrl!.replace(/^http/, 'ws'), '--client-id', String(1 - tabId)], out, new Set());
    await Promise.all([node.exit, srv.done]);
    await events;
  } finally {
    await tab.close();
  }
  return seen;
}

export async function run(): Promise<BenchResult[]> {
  const chromium = findChromium();
  if (!chromium) throw new Error('no chromium: run scripts/install-browser.sh (or set CHROMIUM_PATH)');
  const root = mkdtempSync(join(tmpdir(), 'bench-browser-client-'));
  try {
    const page = await buildPage(join(root, 'page'));
    const gzipped = (files: string[]) => files.reduce((n, f) => n + gzipSync(readFileSync(join(page.dir, f))).length, 0);
    const { default: puppeteer } = await import('puppeteer-core');
    const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: CHROMIUM_ARGS });
    const rounds: BenchResult[] = [];
    try {
      for (const [k, { config, warmup, what }] of CASES.entries()) {
        for (const d of [`tab${k}`, `node${k}`]) mkdirSync(join(root, d));
        const inTab = (await roundTrips(browser, page.dir, join(root, `tab${k}`), 0, config))[0];
        const inNode = (await roundTrips(browser, page.dir, join(root, `node${k}`), 1, config))[0];
        rounds.push({
          name: `one round in a Chromium tab (Web Worker), client 0 of ${config.dataset} (${what}, sparse-proxskip, ${config.localSteps} local steps)`,
          value: median(inTab.slice(warmup)) * 1000,
          unit: 'ms',
          reference: { name: 'the same client in Node (over WebSocket too)', value: median(inNode.slice(warmup)) * 1000, unit: 'ms' },
          note: `Train sent to Update received, as the server measures it (local steps, encoding, both messages over WebSocket on loopback, each client a process of its own); median of rounds ${warmup + 1}–${config.rounds}`,
        });
      }
    } finally {
      await browser.close();
    }
    return [
      { name: 'browser client scripts for a convex model (client.js, client-worker.js and the chunks it imports at once; minified)', value: bytesOf(page.dir, page.clientFiles) / 1024, unit: 'KiB', note: `the session, algorithm, model and encoding code, bundled by esbuild: ${page.clientFiles.length} files` },
      { name: 'the same, gzipped as served', value: gzipped(page.clientFiles) / 1024, unit: 'KiB' },
      { name: "what a network adds (the worker's chunks loaded for one, and tfjs-backend-wasm-simd.wasm)", value: bytesOf(page.dir, page.networkFiles) / 1024, unit: 'KiB', note: "TensorFlow.js (tfjs-core, its gradients, the wasm backend) and the project's network code, and the backend's SIMD binary; loaded only by a run with a network" },
      { name: 'the same, gzipped as served', value: gzipped(page.networkFiles) / 1024, unit: 'KiB' },
      ...rounds,
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) printResults(await run());
