/**
 * One real round of `sparse-proxskip` as the paper experiments run it: FEMNIST (306 writers, multinomial,
 * d = 48,670 with the intercepts, 99% sparsity) and BlogFeedback (421 blogs, linear regression, d = 282),
 * 10 local full-batch steps per client and the evaluation of every round (train loss on every client,
 * test metric), with 2 worker threads as in experiments/*.json. Wall time and the process's CPU time
 * (all threads) per round: on a shared machine the CPU time is the steadier figure.
 * Needs ../shared/data (skipped with a note without it). Standalone: npx tsx bench/round-real.ts
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../src/sim/config.js';
import { prepareRun, simOptions } from '../src/sim/run.js';
import { simulate } from '../src/sim/simulate.js';
import type { BenchResult } from './types.js';
import { isMain, median, printResults } from './util.js';

const DATA = fileURLToPath(new URL('../../shared/data', import.meta.url));
/** rounds left untimed first: the workers' kernels compile and V8 optimises during the first rounds */
const WARMUP = 2;
/** timed rounds after them (each evaluates, as a run does by default); the median is reported */
const ROUNDS = 5;
const WORKERS = 2;

interface Case {
  label: string;
  dataset: string;
  sparsity: number;
  note?: string;
  /** the issue's target for the round's wall time */
  targetMs?: number;
}

const CASES: Case[] = [
  { label: 'FEMNIST (306 clients, multinomial, d = 48,670, 99% sparsity)', dataset: 'femnist', sparsity: 0.99,
    // the issue's target is the whole grid, timed end to end instead: 48 min (docs/reproduction.md)
    note: '; experiments/femnist.json runs 500 such rounds per cell' },
  { label: 'BlogFeedback (421 clients, linear, d = 281, min-max scaled, 90% sparsity)', dataset: 'blogfeedback:scale=minmax', sparsity: 0.9, targetMs: 100 },
];

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(DATA)) {
    console.error(`round-real: skipped, ${DATA} is absent`);
    return [];
  }
  const results: BenchResult[] = [];
  for (const c of CASES) results.push(await measure(c));
  return results;
}

async function measure(c: Case): Promise<BenchResult> {
  const config = resolveConfig({
    algorithm: 'sparse-proxskip',
    dataset: c.dataset,
    dataDir: DATA,
    intercept: true,
    sparsity: c.sparsity,
    p: 0.1,
    localSteps: 10,
    schedule: 'fixed',
    rounds: WARMUP + ROUNDS,
    workers: WORKERS,
    timing: false,
  });
  const t0 = performance.now();
  const prepared = await prepareRun(config); // load, split, γ = 1/L (the smoothness of every client)
  const setupMs = performance.now() - t0;
  const wall: number[] = [];
  const cpu: number[] = [];
  let last = { t: performance.now(), cpu: process.cpuUsage() };
  await simulate(prepared.dataset, simOptions(prepared, prepared.lambda), {
    onRound: (r) => {
      const now = { t: performance.now(), cpu: process.cpuUsage() };
      if (r.round > WARMUP) {
        wall.push(now.t - last.t);
        cpu.push((now.cpu.user + now.cpu.system - last.cpu.user - last.cpu.system) / 1000);
      }
      last = now;
    },
  });
  const ms = median(wall);
  const result: BenchResult = {
    name: `one round of sparse-proxskip on ${c.label}, ${WORKERS} workers`,
    value: ms,
    unit: 'ms',
    ...(c.targetMs !== undefined ? { target: `<= ${c.targetMs} ms`, pass: ms <= c.targetMs } : {}),
    note:
      `10 local full-batch steps per client + evaluation; median of ${ROUNDS} rounds after ${WARMUP} untimed ones; CPU time per round ` +
      `(all threads) ${median(cpu).toFixed(0)} ms; setup (load, split, smoothness) ${(setupMs / 1000).toFixed(1)} s${c.note ?? ''}`,
  };
  return result;
}

if (isMain(import.meta.url)) printResults(await run());
