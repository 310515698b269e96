/**
 * Runs the cells of an experiment into DIR/cells/SETTING/METHOD/seed-N (rounds.jsonl + summary.json,
 * through runToDir), skipping cells already finished, so a killed run resumes where it stopped.
 *
 * A cell is finished when its summary.json (or failed.json, for a run that diverged) was written for
 * exactly the cell's configuration and the run was not interrupted; an unfinished cell continues from its
 * checkpoint.bin (saved every few minutes and on Ctrl-C) when it has one. Cells run in grid order (settings ×
 * seeds × methods), so settings complete one by one; consecutive cells sharing their data (same dataset,
 * split and seed) use one loaded copy.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonl, writeJsonAtomic } from '../report/io.js';
import type { LambdaCache, LambdaProbe, LambdaSearchResult } from '../sim/lambda.js';
import { CHECKPOINT_SECONDS, loadRunData, prepareRun, runToDir, SearchInterrupted, type LoadedData, type RunFailure, type RunSummary } from '../sim/run.js';
import { SimulationError, type RoundRecord } from '../sim/simulate.js';
import { sameRun, type RunConfig } from '../sim/config.js';
import { expandCells, type Cell, type ConfigOverrides, type ExperimentSpec } from './spec.js';

export interface ExperimentOptions {
  /** set on every cell after the experiment's own fields (e.g. workers from the command line) */
  extra?: ConfigOverrides;
  /** run only cells whose id matches (see cellFilter) */
  only?: string;
}

export interface ExperimentHooks {
  /** before anything runs: every cell of the grid, and the ones that will run now */
  onPlan?(plan: { cells: Cell[]; pending: Cell[] }): void;
  onCellStart?(cell: Cell, index: number): void;
  onRound?(cell: Cell, record: RoundRecord): void;
  onLambdaProbe?(cell: Cell, probe: LambdaProbe, index: number): void;
  onCellDone?(cell: Cell, outcome: CellOutcome): void;
  warn?(message: string): void;
  shouldStop?(): boolean;
}

export type CellOutcome = { kind: 'done'; summary: RunSummary } | { kind: 'failed'; error: string };

/** failed.json (written by runToDir): the run diverged; rerunning would only repeat it. */
export type CellFailure = RunFailure;

export interface ExperimentResult {
  cells: Cell[];
  ran: Cell[];
  skipped: Cell[];
  interrupted: boolean;
}

export const CELLS_DIR = 'cells';
export const LAMBDA_CACHE_FILE = 'lambda-cache.json';

export function cellDir(out: string, cell: Cell): string {
  return join(out, CELLS_DIR, ...cell.id.split('/'));
}

/** What a cell's directory holds: a finished run, a deterministic failure, or nothing usable. */
export function cellState(out: string, cell: Cell): { kind: 'done'; summary: RunSummary } | { kind: 'failed'; failure: CellFailure } | { kind: 'pending' } {
  const dir = cellDir(out, cell);
  const summary = readJson<RunSummary>(join(dir, 'summary.json'));
  if (summary && !summary.interrupted && summary.config && sameRun(summary.config, cell.config) && (existsSync(join(dir, 'rounds.jsonl')) || existsSync(join(dir, 'rounds.jsonl.gz')))) {
    return { kind: 'done', summary };
  }
  const failure = readJson<CellFailure>(join(dir, 'failed.json'));
  if (failure && failure.config && sameRun(failure.config, cell.config)) return { kind: 'failed', failure };
  return { kind: 'pending' };
}

export type CellState = ReturnType<typeof cellState>;

/** A cell with its state and, for a finished run, its records. */
export interface LoadedCell {
  cell: Cell;
  state: CellState;
  records: RoundRecord[] | null;
}

/** Every cell of `spec` under `out`, each finished run's records read once (the report and its analysis share them). */
export function loadCells(spec: ExperimentSpec, out: string): LoadedCell[] {
  return expandCells(spec).map((cell) => {
    const state = cellState(out, cell);
    return { cell, state, records: state.kind === 'done' ? readJsonl<RoundRecord>(join(cellDir(out, cell), 'rounds.jsonl')).records : null };
  });
}

/** A damaged or missing file reads as absent: the cell is then simply run again. */
function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** `*` matches anything (slashes included); commas separate alternatives. */
export function cellFilter(pattern: string): (id: string) => boolean {
  const res = pattern
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`));
  return (id) => res.some((re) => re.test(id));
}

/**
 * The config fields that only shape training: cells that agree on everything else load the same data.
 * Listing these (rather than the data fields) errs on the safe side when a data option is added.
 */
const TRAINING_ONLY = new Set<string>([
  'algorithm', 'model', 'intercept', 'l2', 'sparsity', 'topkScope', 'gamma', 'p', 'localSteps', 'schedule', 'rounds', 'stopTol', 'lambda',
  'steDecay', 'batchSize', 'participation', 'workers', 'evalEvery', 'evalTrainRows', 'pruneInit', 'postHocTopk', 'topkAt', 'timing', 'init', 'pruneMode', 'pruneAfterAverage', 'hReference',
]);

function dataKey(c: RunConfig): string {
  return JSON.stringify(Object.entries(c).filter(([k]) => !TRAINING_ONLY.has(k)));
}

/** Runs the pending cells of `spec` into `out`. Ctrl-C (shouldStop) ends after the current round with valid files. */
export async function runExperiment(spec: ExperimentSpec, out: string, opts: ExperimentOptions = {}, hooks: ExperimentHooks = {}): Promise<ExperimentResult> {
  const cells = expandCells(spec, opts.extra ?? {});
  const selected = opts.only ? cells.filter((c) => cellFilter(opts.only!)(c.id)) : cells;
  const skipped = selected.filter((c) => cellState(out, c).kind !== 'pending');
  const pending = selected.filter((c) => !skipped.includes(c));
  hooks.onPlan?.({ cells, pending });
  writeJsonAtomic(join(out, 'experiment.json'), spec);

  const lambdaCache = fileLambdaCache(join(out, LAMBDA_CACHE_FILE));
  const ran: Cell[] = [];
  const current: { key: string | null; data: LoadedData | null } = { key: null, data: null };
  let interrupted = false;
  for (const [index, cell] of pending.entries()) {
    if (hooks.shouldStop?.()) {
      interrupted = true;
      break;
    }
    hooks.onCellStart?.(cell, index);
    const dir = cellDir(out, cell);
    // A stale result must not outlive the run that replaces it.
    for (const f of ['summary.json', 'failed.json']) rmSync(join(dir, f), { force: true });
    const key = dataKey(cell.config);
    if (current.key !== key) {
      current.data = null; // let the previous data go before loading the next
      current.data = await loadRunData(cell.config);
      current.key = key;
    }
    let outcome: CellOutcome;
    try {
      const prepared = await prepareRun(cell.config, current.data!, {
        lambdaCache,
        ...(hooks.onLambdaProbe ? { onLambdaProbe: (p: LambdaProbe, i: number) => hooks.onLambdaProbe!(cell, p, i) } : {}),
        ...(hooks.shouldStop ? { shouldStop: hooks.shouldStop } : {}),
      });
      for (const w of prepared.warnings) hooks.warn?.(`${cell.id}: ${w}`);
      const { summary } = await runToDir(
        prepared,
        dir,
        { onRound: (r) => hooks.onRound?.(cell, r), ...(hooks.shouldStop ? { shouldStop: hooks.shouldStop } : {}) },
        { checkpointSeconds: CHECKPOINT_SECONDS, resume: true },
      );
      if (summary.interrupted) {
        interrupted = true;
        break;
      }
      outcome = { kind: 'done', summary };
    } catch (e) {
      if (e instanceof SearchInterrupted) {
        interrupted = true;
        break;
      }
      if (!(e instanceof SimulationError)) throw e;
      hooks.warn?.(`${cell.id}: ${e.message}`);
      outcome = { kind: 'failed', error: e.message };
    }
    ran.push(cell);
    hooks.onCellDone?.(cell, outcome);
  }
  return { cells, ran, skipped, interrupted };
}

/** λ values found by `--lambda auto`, kept in DIR/lambda-cache.json so resumed runs do not search again. */
export function fileLambdaCache(path: string): LambdaCache {
  const entries = readJson<Record<string, LambdaSearchResult>>(path) ?? {};
  return {
    get: (k) => entries[k],
    set: (k, v) => {
      entries[k] = v;
      writeJsonAtomic(path, entries);
    },
  };
}
