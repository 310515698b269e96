/**
 * The dashboard with a large experiment: 100 runs (5 methods × 10 seeds × 2 sparsities) of 2,000
 * rounds each, in headless Chromium at 1280×800. Measures the page's JavaScript (minified, and gzipped
 * as the server sends it), the server's statistics over the 100 runs (collectResults, once), and the
 * page: from navigation to every figure drawn (the target: ≤ 2 s), the median of RUNS loads.
 * The runs are written synthetically (finished cells with summary.json and rounds.jsonl), not trained.
 * Needs chromium (scripts/install-browser.sh). Standalone: npx tsx bench/dashboard.ts
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { writeJsonAtomic } from '../src/report/io.js';
import { cellDir } from '../src/experiment/run.js';
import { expandCells, parseExperiment, type Cell } from '../src/experiment/spec.js';
import type { RoundRecord } from '../src/sim/simulate.js';
import { buildPage } from '../src/web/build.js';
import { CHROMIUM_ARGS, findChromium } from '../src/web/chromium.js';
import { DirectorySource } from '../src/web/directory-source.js';
import { startDashboard } from '../src/web/server.js';
import type { BenchResult } from './types.js';
import { isMain, median, printResults } from './util.js';

const ROUNDS = 2000;
const SEEDS = 10;
const RUNS = 5;

const spec = parseExperiment({
  name: 'dashboard-bench',
  base: { dataset: 'lsq', clients: 10, rounds: ROUNDS, timing: false },
  methods: ['fedavg', 'proxskip', 'accelerated-server-pruning', 'sparse-proxskip', 'sparse-proxskip-local'],
  seeds: Array.from({ length: SEEDS }, (_, i) => i),
  sweep: { field: 'sparsity', values: [0.9, 0.99] },
});

/** A run's records: a loss falling towards a method- and seed-dependent floor, uplink growing by round. */
function records(cell: Cell, m: number): RoundRecord[] {
  const floor = 0.2 + 0.05 * m + 0.001 * cell.seed;
  return Array.from({ length: ROUNDS + 1 }, (_, r) => ({
    round: r,
    localSteps: r === 0 ? 0 : 10,
    trainLoss: floor + Math.exp(-r / (200 + 40 * m)),
    testMetric: 0.9 - floor / 2 - 0.3 * Math.exp(-r / 300),
    nnz: r === 0 ? 0 : 5,
    sumHNorm: m === 2 ? 1 + r / 1000 : 1e-6 * (r + 1),
    hNormSum: 1,
    uplinkFloats: r * (m < 2 ? 500 : 50),
    uplinkBytes: r * (m < 2 ? 2009 : 409),
    downlinkFloats: r * 500,
    downlinkBytes: r * 2009,
    seconds: null,
  }));
}

export function writeExperiment(out: string): void {
  writeJsonAtomic(join(out, 'experiment.json'), spec);
  for (const cell of expandCells(spec)) {
    const m = spec.methods.indexOf(cell.method);
    const recs = records(cell, m);
    const dir = cellDir(out, cell);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'rounds.jsonl'), recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
    writeJsonAtomic(join(dir, 'summary.json'), {
      algorithm: cell.method.algorithm,
      config: cell.config,
      method: { controlVariates: cell.method.algorithm !== 'fedavg' },
      dataset: { name: 'synthetic-bench' },
      model: { d: 50, k: 5 },
      lambda: null,
      lambdaSearch: null,
      roundsDone: ROUNDS,
      interrupted: false,
      final: recs.at(-1),
      postHocTopk: null,
      testMetricName: 'accuracy',
    });
  }
}

export async function run(): Promise<BenchResult[]> {
  const chromium = findChromium();
  if (!chromium) throw new Error('no chromium: run scripts/install-browser.sh (or set CHROMIUM_PATH)');
  const root = mkdtempSync(join(tmpdir(), 'bench-dashboard-'));
  try {
    const page = await buildPage(join(root, 'page'));
    const script = readFileSync(join(page.dir, 'app.js'));
    const gzipped = gzipSync(script).length;
    const out = join(root, 'exp');
    writeExperiment(out);

    const t0 = performance.now();
    const source = new DirectorySource([root], { pollMs: 60_000, scanMs: 60_000 }); // reads and aggregates once, now
    const serverMs = performance.now() - t0;
    const group = source.state().groups.find((g) => g.kind === 'experiment')!;
    const server = await startDashboard({ source, port: 0, assetsDir: page.dir });
    const { default: puppeteer } = await import('puppeteer-core');
    const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: CHROMIUM_ARGS });
    const times: number[] = [];
    let drawn: { id: string; series: number; points: number }[] = [];
    try {
      for (let i = 0; i < RUNS + 1; i++) {
        const tab = await browser.newPage();
        await tab.setViewport({ width: 1280, height: 800 });
        const start = performance.now();
        await tab.goto(`${server.url}#${group.id}`, { waitUntil: 'load' });
        await tab.waitForFunction('window.__dashboard && window.__dashboard.renders() > 0', { timeout: 60_000, polling: 10 });
        await tab.evaluate('window.__dashboard.idle()');
        const ms = performance.now() - start;
        if (i > 0) times.push(ms); // the first load warms the browser's caches
        drawn = (await tab.evaluate('window.__dashboard.charts()')) as typeof drawn;
        await tab.close();
      }
    } finally {
      await browser.close();
      await server.close();
      source.close();
    }
    const ms = median(times);
    const points = drawn.reduce((n, c) => n + c.points, 0);
    return [
      { name: 'page JavaScript (app.js, minified)', value: script.length / 1024, unit: 'KiB', note: 'vega, vega-lite, vega-embed and the page, bundled by esbuild' },
      { name: 'page JavaScript, gzipped as served', value: gzipped / 1024, unit: 'KiB' },
      {
        name: `server: read and aggregate ${SEEDS * 2 * spec.methods.length} runs × ${ROUNDS} rounds`,
        value: serverMs,
        unit: 'ms',
        note: 'collectResults over the cells, once when view starts (and when cells change)',
      },
      {
        name: `page: navigation to every figure drawn, ${drawn.length} figures`,
        value: ms,
        unit: 'ms',
        target: '<= 2000 ms',
        pass: ms <= 2000,
        note:
          `median of ${RUNS} loads after one warm-up; the figures hold the mean curves of ${SEEDS} seeds per method (${spec.methods.length} × ${ROUNDS + 1} points a figure), ` +
          `drawn as ${points} line points in all (each curve thinned to the lowest and highest point of every 2-pixel column); canvas renderer, Chromium headless at 1280×800`,
      },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) printResults(await run());
