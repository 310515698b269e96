/**
 * The dashboard in a real browser: Debian's chromium (scripts/install-browser.sh) driven by
 * puppeteer-core, against `view`'s server and source on loopback. Screenshots go to
 * test-output/dashboard/. Without chromium these tests are skipped, except under CI, where that fails.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { experimentFigures } from '../experiment/figures.js';
import { collectResults } from '../experiment/report.js';
import { runExperiment } from '../experiment/run.js';
import { parseExperiment } from '../experiment/spec.js';
import { runClients } from '../net/client.js';
import { SERVER_DEFAULTS } from '../net/config.js';
import { FederationServer } from '../net/server.js';
import { runFigures } from '../report/figures.js';
import { resolveConfig } from '../sim/config.js';
import type { RoundRecord } from '../sim/simulate.js';
import { buildPage } from './build.js';
import { CHROMIUM_ARGS, findChromium } from './chromium.js';
import { DirectorySource } from './directory-source.js';
import { MemorySource } from './memory-source.js';
import { startDashboard, type DashboardServer } from './server.js';

const chromium = findChromium();
const SHOTS = join(import.meta.dirname, '../../test-output/dashboard');
const ROUNDS = 20;

interface Drawn {
  id: string;
  series: number;
  points: number;
}

function rec(round: number, scale = 1): RoundRecord {
  return {
    round,
    localSteps: 10,
    trainLoss: scale * (1 + 1 / (round + 1)),
    testMetric: 0.5 + round / 100,
    nnz: round === 0 ? 0 : 6,
    sumHNorm: 0.1 * (round + 1),
    hNormSum: 1,
    uplinkFloats: 60 * round * scale,
    uplinkBytes: 480 * round * scale,
    downlinkFloats: 60 * round,
    downlinkBytes: 500 * round,
    seconds: round * 0.25,
  };
}
const lines = (rs: RoundRecord[]) => rs.map((r) => `${JSON.stringify(r)}\n`).join('');

describe('chromium for the browser tests', () => {
  it.runIf(!chromium && process.env['CI'])('is installed under CI (scripts/install-browser.sh)', () => {
    throw new Error('no chromium: .ci/run should have installed it with scripts/install-browser.sh');
  });
});

describe.skipIf(!chromium)(`the dashboard in Chromium${chromium ? '' : ' (skipped: no chromium here; scripts/install-browser.sh installs it)'}`, () => {
  const root = mkdtempSync(join(tmpdir(), 'dashboard-browser-'));
  let browser: Browser;
  let page: Page;
  let source: DirectorySource;
  let server: DashboardServer;
  let assets: string;
  const problems: string[] = [];
  const exp = parseExperiment({
    name: 'tiny',
    base: { dataset: 'lsq', clients: 2, rounds: 3, timing: false },
    methods: ['sparse-proxskip', 'proxskip'],
    seeds: [0, 1],
    sweep: { field: 'sparsity', values: [0.5, 0.8] },
  });

  beforeAll(async () => {
    const [{ default: puppeteer }, built] = await Promise.all([import('puppeteer-core'), buildPage(join(root, 'page'))]);
    assets = built.dir;
    // a finished comparison of three methods, a run still being written, and an experiment
    for (const [i, a] of ['fedavg', 'proxskip', 'sparse-proxskip'].entries()) {
      const dir = join(root, 'data', 'cmp', a);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'rounds.jsonl'), lines(Array.from({ length: ROUNDS + 1 }, (_, r) => rec(r, 1 + i))));
      writeFileSync(join(dir, 'summary.json'), JSON.stringify({ config: { algorithm: a, rounds: ROUNDS }, interrupted: false, testMetricName: 'accuracy' }));
    }
    const live = join(root, 'data', 'live', 'sparse-proxskip');
    mkdirSync(live, { recursive: true });
    writeFileSync(join(live, 'rounds.jsonl'), lines(Array.from({ length: 11 }, (_, r) => rec(r))));
    await runExperiment(exp, join(root, 'data', 'exp'));

    source = new DirectorySource([join(root, 'data')], { pollMs: 250, scanMs: 1000, experimentMs: 500 });
    server = await startDashboard({ source, port: 0, assetsDir: assets });
    browser = await puppeteer.launch({ executablePath: chromium!, headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${(e as Error).message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    mkdirSync(SHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    source?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const hooks = 'window.__dashboard';
  const groupId = (title: string) => source.state().groups.find((g) => g.title === title)!.id;
  const charts = () => page.evaluate(`${hooks}.charts()`) as Promise<Drawn[]>;
  const idle = () => page.evaluate(`${hooks}.idle()`);
  async function show(title: string): Promise<void> {
    await page.evaluate(`${hooks}.select(${JSON.stringify(groupId(title))})`);
    await idle();
  }

  it('loads without console errors and draws each figure of a comparison with its series and points', async () => {
    await page.goto(`${server.url}#${groupId('cmp')}`, { waitUntil: 'load' });
    await page.waitForFunction(`${hooks} && ${hooks}.renders() > 0`, { timeout: 30_000 });
    await idle();
    const runs = ['fedavg', 'proxskip', 'sparse-proxskip'].map((label) => ({ label, records: Array.from({ length: ROUNDS + 1 }, (_, r) => rec(r)) }));
    const expected = runFigures(runs, 'accuracy').map((f) => f.id);
    const drawn = await charts();
    expect(drawn.map((c) => c.id)).toEqual(expected);
    // round 0 (no uplink yet) cannot sit on a log uplink axis; a per-round difference starts at round 1
    const points: Record<string, number> = { 'sum-h-vs-rounds': ROUNDS + 1, 'nnz-vs-rounds': ROUNDS + 1 };
    for (const c of drawn) expect(c, c.id).toEqual({ id: c.id, series: 3, points: 3 * (points[c.id] ?? ROUNDS) });
    expect(await page.$$eval('table.data tbody tr', (rows) => rows.length)).toBe(3);
    expect(await page.evaluate(`${hooks}.svg('loss-vs-uplink-bytes')`)).toMatch(/^<svg[\s\S]*sparse-proxskip[\s\S]*<\/svg>$/);
    // hover: the exact values of a point under the pointer. The pointer sweeps across proxskip's curve
    // near its round-7 point (2 × 60 × 7 floats, loss 2 × (1 + 1/8)) until a tooltip shows
    const at = (await page.evaluate(`${hooks}.pixel('loss-vs-uplink-floats', 840, 2.25)`)) as { x: number; y: number };
    let tip = '';
    for (let dx = -24; dx <= 24 && !tip; dx += 3) {
      for (let dy = -12; dy <= 12 && !tip; dy += 3) {
        await page.mouse.move(at.x + dx, at.y + dy);
        tip = (await page.evaluate(`document.querySelector('#vg-tooltip-element.visible')?.textContent ?? ''`)) as string;
      }
    }
    const m = /^method(.+)cumulative uplink \(floats\)([\d,.e+-]+)train loss([\d.e+-]+)$/.exec(tip);
    expect(m, tip).not.toBeNull();
    const round = Number(m![2]!.replaceAll(',', '')) / 120;
    expect(m![1]).toBe('proxskip');
    expect(Number.isInteger(round)).toBe(true);
    expect(Number(m![3])).toBeCloseTo(2 * (1 + 1 / (round + 1)), 5); // the values of one recorded round
    await page.screenshot({ path: join(SHOTS, 'compare.png') });
    expect(problems).toEqual([]);
  });

  it('draws a round appended to a run’s rounds.jsonl within 2 s', async () => {
    await show('live');
    const loss = async () => (await charts()).find((c) => c.id === 'loss-vs-uplink-floats')!;
    expect(await loss()).toMatchObject({ series: 1, points: 10 });
    const t0 = Date.now();
    appendFileSync(join(root, 'data', 'live', 'sparse-proxskip', 'rounds.jsonl'), lines([rec(11)]));
    await page.waitForFunction(`${hooks}.charts().find((c) => c.id === 'loss-vs-uplink-floats').points === 11`, { timeout: 10_000, polling: 50 });
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(2000);
    expect(await page.$eval('table.data tbody tr', (row) => row.textContent)).toContain('11');
    await page.screenshot({ path: join(SHOTS, 'live.png') });
    expect(problems).toEqual([]);
  });

  it('shows an experiment: the final tables and every figure of its report, with bands and sweep markers', async () => {
    await show('exp');
    const results = collectResults(exp, join(root, 'data', 'exp'));
    const expected = experimentFigures(exp, results).flatMap((f) => [f, ...(f.variant ? [{ ...f, base: `${f.base}${f.variant.suffix}`, plot: f.variant.plot }] : [])]);
    const drawn = new Map((await charts()).map((c) => [c.id, c]));
    const idOf = (base: string) => base.replace(/^plots\//, '').replaceAll('/', '--');
    expect([...drawn.keys()].sort()).toEqual(expected.map((f) => idOf(f.base)).sort());
    for (const f of expected) {
      // what a line can show: finite values, and positive ones on a log axis
      const ok = (v: number, scale: 'linear' | 'log' | undefined) => Number.isFinite(v) && (scale !== 'log' || v > 0);
      const counts = f.plot.series.map((s) => s.points.filter((p) => ok(p.x, f.plot.xScale) && ok(p.y, f.plot.yScale)).length).filter((n) => n > 0);
      expect(drawn.get(idOf(f.base)), f.base).toMatchObject({ series: counts.length, points: counts.reduce((a, b) => a + b, 0) });
    }
    expect(await page.$$eval('table.data', (t) => t.length)).toBe(2); // one per setting
    await page.screenshot({ path: join(SHOTS, 'experiment.png') });
    expect(problems).toEqual([]);
  });

  it('stays usable at 1280×800: no sideways scrolling, charts two abreast, methods toggled in every chart', async () => {
    await show('cmp');
    // (a string: this file is type-checked without the DOM's types)
    const layout = (await page.evaluate(`(() => {
      const figs = [...document.querySelectorAll('figure.chart')].map((f) => f.getBoundingClientRect());
      const nav = document.querySelector('nav').getBoundingClientRect();
      return { scrollWidth: document.documentElement.scrollWidth, tops: figs.slice(0, 2).map((r) => Math.round(r.top)), right: Math.max(...figs.map((r) => r.right)), nav: nav.width };
    })()`)) as { scrollWidth: number; tops: number[]; right: number; nav: number };
    expect(layout.scrollWidth).toBeLessThanOrEqual(1280);
    expect(layout.tops[0]).toBe(layout.tops[1]);
    expect(layout.right).toBeLessThanOrEqual(1280);
    expect(layout.nav).toBeGreaterThan(100);
    await page.click('input[data-method="fedavg"]');
    await page.waitForFunction(`${hooks}.charts().every((c) => c.series === 2)`, { timeout: 5000 });
    await page.click('input[data-method="fedavg"]');
    await page.waitForFunction(`${hooks}.charts().every((c) => c.series === 3)`, { timeout: 5000 });
    // the group list switches views
    await page.click(`nav button[data-group="${groupId('live')}"]`);
    await page.waitForFunction(`${hooks}.charts().length > 0 && ${hooks}.charts().every((c) => c.series === 1)`, { timeout: 5000 });
    expect(problems).toEqual([]);
  });

  it('shows a networked run’s clients and events, and a client that joins', async () => {
    const mem = new MemorySource();
    mem.setGroups([{ id: 'g1', title: 'net', kind: 'runs', where: '127.0.0.1:50051' }]);
    mem.putRun({ id: 'r1', group: 'g1', label: 'sparse-proxskip', method: 'sparse-proxskip', algorithm: 'sparse-proxskip', status: 'running', rounds: 50, roundsDone: 2, metricName: null, where: '127.0.0.1:50051' });
    mem.appendRounds('r1', [rec(0), rec(1), rec(2)]);
    const client = (id: number) => ({ id, connected: true, address: `127.0.0.1:${40000 + id}`, lastRound: 2, uplinkBytes: 960, downlinkBytes: 1000, refusals: [], lastRoundTrip: 0.01 });
    mem.setClients('r1', [client(0)]);
    const net = await startDashboard({ source: mem, port: 0, assetsDir: assets });
    try {
      await page.goto(net.url, { waitUntil: 'load' });
      await page.waitForFunction(`${hooks} && ${hooks}.renders() > 0`, { timeout: 30_000 });
      await idle();
      const clientRows = () => page.$$eval('table.data', (ts) => (ts[1] ? ts[1].querySelectorAll('tbody tr').length : 0));
      expect(await clientRows()).toBe(1);
      expect(await page.$eval('table.data tbody tr', (row) => row.textContent)).toMatch(/2 of 50/);
      const t0 = Date.now();
      mem.setClients('r1', [client(0), client(1)]);
      mem.addLog('r1', [{ time: '2026-01-01T00:00:00Z', kind: 'join', message: 'client 1 joined from 127.0.0.1:40001' }]);
      await page.waitForFunction(`document.querySelectorAll('table.data')[1]?.querySelectorAll('tbody tr').length === 2`, { timeout: 5000, polling: 50 });
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(await page.$eval('.log', (l) => l.textContent)).toContain('client 1 joined');
      await page.screenshot({ path: join(SHOTS, 'network.png') });
      expect(problems).toEqual([]);
    } finally {
      await net.close();
    }
  });

  it('serve --http: a networked run live: a client joins, then the rounds advance in the table and the charts', { timeout: 60_000 }, async () => {
    const rounds = 4;
    const srv = await FederationServer.start({
      config: {
        run: resolveConfig({ algorithm: 'sparse-proxskip', clients: 2, rounds, timing: false }),
        server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(root, 'serve-out'), roundTimeout: 30, http: '127.0.0.1:0' },
      },
      log: () => {},
      dashboardAssets: assets,
    });
    const base = { server: `127.0.0.1:${srv.port}`, data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const clients: Promise<unknown>[] = [];
    try {
      await page.goto(srv.dashboardUrl!, { waitUntil: 'load' });
      await page.waitForFunction(`document.querySelectorAll('table.data')[1]?.querySelectorAll('tbody tr').length === 2`, { timeout: 30_000, polling: 50 });
      const row = (i: number) => page.evaluate(`document.querySelectorAll('table.data')[1].querySelectorAll('tbody tr')[${i}].textContent`);
      expect(await row(0)).toMatch(/^0no/);
      expect(await page.$eval('table.data tbody tr', (r) => r.textContent)).toMatch(/0 of 4/);
      clients.push(runClients({ ...base, ids: [0] }));
      await page.waitForFunction(`/^0yes/.test(document.querySelectorAll('table.data')[1].querySelectorAll('tbody tr')[0].textContent)`, { timeout: 10_000, polling: 50 });
      expect(await page.$eval('.log', (l) => l.textContent)).toMatch(/client 0 joined from/);
      // client 1 completes the federation; it holds round 3 back until the page has shown rounds 1 and 2
      clients.push(runClients({ ...base, ids: [1], onStep: (_id, step, round) => (step === 'train' && round === 3 ? gate : undefined) }));
      await page.waitForFunction(`/2 of 4/.test(document.querySelector('table.data tbody tr').textContent)`, { timeout: 10_000, polling: 50 });
      await page.waitForFunction(`${hooks}.charts().find((c) => c.id === 'loss-vs-uplink-floats')?.points === 2`, { timeout: 10_000, polling: 50 });
      expect(await row(1)).toMatch(/^1yes127\.0\.0\.1:\d+2/); // connected, its address, last round 2
      await page.screenshot({ path: join(SHOTS, 'serve-live.png') });
      expect(problems).toEqual([]);
    } finally {
      release();
      await Promise.all([srv.done, ...clients]);
    }
  });
});
