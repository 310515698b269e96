/**
 * The convergence section of an experiment report: for every finished run, whether it converged by the
 * stop rule, and its distance to the setting's reference optima (f − f*, f − f_K-ref); the λ path of
 * randprox-l1 (TopK_K of each λ's final average, the best λ by train loss); the dense methods' post-hoc
 * TopK. Written to report.md and, in full, to DIR/analysis.json.
 */
import { formatNumber, markdownTable } from '../report/table.js';
import { hasConverged } from '../sim/convergence.js';
import type { RunSummary } from '../sim/run.js';
import type { RoundRecord } from '../sim/simulate.js';
import { readReferenceFile, type SettingReference } from './references.js';
import { loadCells, type LoadedCell } from './run.js';
import type { Cell, ExperimentSpec } from './spec.js';

/** The tolerance a report judges convergence by when the runs themselves had no stop rule. */
export const REPORT_TOL = 1e-4;

export interface RunRow {
  cell: string;
  method: string;
  algorithm: string;
  seed: number;
  rounds: number;
  /** the stop rule holds at the last round (at the run's stopTol, else REPORT_TOL) */
  converged: boolean;
  /** the first evaluated round from which the rule held at every later evaluated round (null: not at the end) */
  convergedFrom: number | null;
  trainLoss: number | null;
  gapToDense: number | null;
  gapToSparseRef: number | null;
  testMetric: number | null;
  nnz: number | null;
  uplinkFloats: number | null;
  uplinkBytes: number | null;
  sumHNorm: number | null;
  postHocTopk: RunSummary['postHocTopk'];
}

export interface PathRow {
  cell: string;
  lambda: number;
  /** TopK_K of the final average at this setting's sparsity */
  trainLoss: number;
  gapToDense: number | null;
  testMetric: number | null;
  nnz: number;
  rounds: number;
  converged: boolean;
  uplinkFloatsPerRound: number;
  best: boolean;
}

export interface SettingAnalysis {
  setting: string;
  sparsity: number;
  tol: number;
  reference: SettingReference | null;
  runs: RunRow[];
  path: PathRow[];
  /** with several seeds: each method's final values minus the reference method's, seed by seed */
  paired: PairedRow[];
}

/** A method against the reference method over the seeds both finished (methods share a seed: data and coins). */
export interface PairedRow {
  method: string;
  against: string;
  quantity: 'trainLoss' | 'testMetric';
  seeds: number;
  /** mean of the per-seed differences (method − against) */
  mean: number;
  /** the 95% interval of that mean (Student's t with seeds − 1 degrees of freedom) */
  low: number;
  high: number;
}

/** The method other methods are compared with, seed by seed: the paper's method where the grid has it. */
const PAIRED_AGAINST = 'sparse-proxskip';

interface Finished {
  cell: Cell;
  summary: RunSummary;
  records: RoundRecord[];
}

export function analyse(spec: ExperimentSpec, out: string, loaded: LoadedCell[] = loadCells(spec, out)): SettingAnalysis[] {
  const refs = readReferenceFile(out);
  const cells = loaded.map((l) => l.cell);
  const finished: Finished[] = [];
  for (const { cell, state, records } of loaded) if (state.kind === 'done') finished.push({ cell, summary: state.summary, records: records! });
  return spec.settings.map((setting) => {
    const sparsity = (setting.config.sparsity ?? spec.base.sparsity ?? cells.find((c) => c.setting === setting)?.config.sparsity) as number;
    const reference = refs[setting.name] ?? null;
    const mine = finished.filter((f) => f.cell.setting === setting);
    const tol = mine[0]?.cell.config.stopTol || REPORT_TOL;
    const gap = (f: number | null, to: number | undefined): number | null => (f === null || to === undefined ? null : f - to);
    const runs = mine.map(({ cell, summary, records }): RunRow => {
      const last = summary.final;
      return {
        cell: cell.id,
        method: cell.method.name,
        algorithm: cell.method.algorithm,
        seed: cell.seed,
        rounds: summary.roundsDone,
        converged: hasConverged(records, tol),
        convergedFrom: convergedFrom(records, tol),
        trainLoss: last?.trainLoss ?? null,
        gapToDense: gap(last?.trainLoss ?? null, reference?.fStar),
        gapToSparseRef: gap(last?.trainLoss ?? null, reference?.fSparseRef),
        testMetric: last?.testMetric ?? null,
        nnz: last?.nnz ?? null,
        uplinkFloats: last?.uplinkFloats ?? null,
        uplinkBytes: last?.uplinkBytes ?? null,
        sumHNorm: last?.sumHNorm ?? null,
        postHocTopk: summary.postHocTopk,
      };
    });
    // the λ path: randprox-l1 cells with a fixed λ, from any setting (their training does not depend on K)
    const path: PathRow[] = [];
    for (const { cell, summary, records } of finished) {
      if (cell.method.algorithm !== 'randprox-l1' || typeof cell.config.lambda !== 'number') continue;
      const at = summary.topkAt?.find((t) => t.sparsity === sparsity) ?? (cell.setting === setting && summary.final ? { ...summary.final, trainLoss: summary.final.trainLoss! } : null);
      if (!at || at.trainLoss === null) continue;
      path.push({
        cell: cell.id,
        lambda: cell.config.lambda,
        trainLoss: at.trainLoss,
        gapToDense: gap(at.trainLoss, reference?.fStar),
        testMetric: at.testMetric,
        nnz: at.nnz,
        rounds: summary.roundsDone,
        converged: hasConverged(records, tol),
        uplinkFloatsPerRound: summary.roundsDone > 0 ? (summary.final?.uplinkFloats ?? 0) / summary.roundsDone : 0,
        best: false,
      });
    }
    path.sort((a, b) => a.lambda - b.lambda);
    const best = path.reduce<PathRow | null>((b, r) => (b === null || r.trainLoss < b.trainLoss ? r : b), null);
    if (best) best.best = true;
    return { setting: setting.name, sparsity, tol, reference, runs, path, paired: pairedDifferences(runs) };
  });
}

/** Per-seed differences to PAIRED_AGAINST (by method name) with 95% intervals; none with fewer than 2 shared seeds. */
export function pairedDifferences(runs: readonly RunRow[]): PairedRow[] {
  const against = runs.filter((r) => r.method === PAIRED_AGAINST);
  const rows: PairedRow[] = [];
  const methods = [...new Set(runs.map((r) => r.method))].filter((m) => m !== PAIRED_AGAINST);
  for (const method of methods) {
    for (const quantity of ['trainLoss', 'testMetric'] as const) {
      const diffs: number[] = [];
      for (const r of runs.filter((x) => x.method === method)) {
        const a = against.find((x) => x.seed === r.seed);
        if (a && r[quantity] !== null && a[quantity] !== null) diffs.push(r[quantity]! - a[quantity]!);
      }
      if (diffs.length < 2) continue;
      const n = diffs.length;
      const mean = diffs.reduce((s, v) => s + v, 0) / n;
      const sd = Math.sqrt(diffs.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
      const half = tQuantile975(n - 1) * (sd / Math.sqrt(n));
      rows.push({ method, against: PAIRED_AGAINST, quantity, seeds: n, mean, low: mean - half, high: mean + half });
    }
  }
  return rows;
}

/** Student's t 0.975 quantile for df degrees of freedom (table to 30, then the normal 1.96 with a 1/df correction). */
export function tQuantile975(df: number): number {
  const T = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];
  if (!(df >= 1)) throw new RangeError(`t quantile needs df >= 1, got ${df}`);
  return df <= 30 ? T[df - 1]! : 1.96 + 2.4 / df;
}

/** The first evaluated round from which hasConverged held at every evaluated round up to the last; null if not at the last. */
export function convergedFrom(records: readonly RoundRecord[], tol: number): number | null {
  let from: number | null = null;
  for (let i = 0; i < records.length; i++) {
    if (records[i]!.trainLoss === null) continue;
    if (hasConverged(records.slice(0, i + 1), tol)) from ??= records[i]!.round;
    else from = null;
  }
  return from;
}

/** '23 starts gave f from lo (best) to hi' (or the one start's f), then the swap search's value when it refined the best. */
function startsSummary(starts: { name: string; f: number }[]): string {
  const swap = starts.find((x) => x.name.startsWith('1-swap'));
  const plain = starts.filter((x) => x !== swap);
  const fs = plain.map((x) => x.f);
  const best = plain.reduce((b, x) => (x.f < b.f ? x : b), plain[0]!);
  const range =
    plain.length === 1
      ? `its one start, ${best.name}, gave f = ${num(best.f, 6)}`
      : `${plain.length} starts gave f from ${num(Math.min(...fs), 6)} (${best.name}) to ${num(Math.max(...fs), 6)}`;
  return swap ? `${range}; a 1-swap search from the best then reached ${num(swap.f, 6)}` : range;
}

/** '; cut by its time limit: …' when the search of a non-linear model ran out of time */
function notReached(sparse: { starts: { name: string; cut?: true }[]; timeLimit?: { seconds: number; notRun: string[] } }): string {
  const cut = sparse.starts.filter((x) => x.cut).map((x) => x.name);
  const left = sparse.timeLimit?.notRun ?? [];
  if (cut.length === 0 && left.length === 0) return '';
  return `; the ${sparse.timeLimit?.seconds ?? '?'} s limit cut ${cut.length > 0 ? cut.join(', ') : 'no start'} short` + (left.length > 0 ? ` and left ${left.join(', ')} not run` : '');
}

const num = (x: number | null | undefined, digits = 4): string => (x === null || x === undefined ? '—' : formatNumber(x, digits));

/** The report.md section of one setting. */
export function analysisMarkdown(a: SettingAnalysis): string[] {
  const lines: string[] = [`### Convergence and reference optima (${a.setting})`, ''];
  const ref = a.reference;
  if (ref) {
    // references.json may also be written by hand with the values alone
    const how = ref.dense ? ` (${ref.dense.method}; ‖∇f‖∞ = ${num(ref.dense.gradInf, 2)}${ref.dense.rank !== null ? `; the normal equations have rank ${ref.dense.rank}` : ''})` : '';
    const sparse = ref.fSparseRef === undefined ? '' : ` K-sparse reference f_K-ref = ${num(ref.fSparseRef, 7)}` +
      (ref.sparse ? ` at K = ${ref.sparse.k} (${ref.sparse.method}; ${startsSummary(ref.sparse.starts)}${notReached(ref.sparse)}; every start in references.json)` : '') + '.';
    lines.push(`Dense optimum f* = ${num(ref.fStar, 7)}${how}.${sparse}${ref.seconds !== undefined ? ` Computed in ${num(ref.seconds, 2)} s.` : ''}`, '');
  } else {
    lines.push('No reference optima for this setting (DIR/references.json has none; set `"reference": true`).', '');
  }
  lines.push(
    `A run has converged when its train loss changed by less than ${a.tol} (relative) over its last 10% of rounds (src/sim/convergence.ts); ` +
      '"from R": the rule held at every evaluated round from R to the last.',
    '',
  );
  const rows = a.runs.map((r) => [
    r.method,
    String(r.seed),
    String(r.rounds),
    r.convergedFrom !== null ? `from ${r.convergedFrom}` : 'no',
    num(r.trainLoss, 7),
    num(r.gapToDense, 4),
    num(r.gapToSparseRef, 4),
    num(r.testMetric, 4),
    num(r.nnz, 6),
    num(r.uplinkFloats, 4),
    num(r.uplinkBytes, 4),
    num(r.sumHNorm, 3),
  ]);
  for (const r of a.runs) {
    if (r.postHocTopk) {
      rows.push([`${r.method} + post-hoc TopK`, String(r.seed), String(r.rounds), r.converged ? 'yes' : 'no', num(r.postHocTopk.trainLoss, 7), num(ref ? r.postHocTopk.trainLoss - ref.fStar : null), num(ref?.fSparseRef !== undefined ? r.postHocTopk.trainLoss - ref.fSparseRef : null), num(r.postHocTopk.testMetric), num(r.postHocTopk.nnz, 6), num(r.uplinkFloats), num(r.uplinkBytes), '']);
    }
  }
  lines.push(markdownTable(['method', 'seed', 'rounds', 'converged', 'train loss f', 'f − f*', 'f − f_K-ref', 'test metric', 'nnz', 'uplink floats', 'uplink bytes', '‖Σh‖'], rows), '');
  if (a.paired.length > 0) {
    lines.push(
      `Paired differences to ${a.paired[0]!.against} (each method's final value minus ${a.paired[0]!.against}'s with the same seed, which fixes the data split and the coins; mean and 95% interval over the seeds):`,
      '',
      markdownTable(
        ['method', 'quantity', 'seeds', 'mean difference', '95% interval'],
        a.paired.map((p) => [p.method, p.quantity === 'trainLoss' ? 'train loss' : 'test metric', String(p.seeds), num(p.mean), `[${num(p.low)}, ${num(p.high)}]`]),
      ),
      '',
    );
  }
  if (a.path.length > 0) {
    lines.push(
      `RandProx-ℓ1 λ path at sparsity ${a.sparsity}: TopK_K of each λ's final average (from the run's topkAt, or its own evaluation in this setting); **bold** is the best λ by train loss.`,
      '',
      markdownTable(
        ['λ', 'train loss of TopK_K', 'f − f*', 'test metric', 'nnz', 'rounds', 'converged', 'uplink floats / round', 'cell'],
        a.path.map((p) => [p.best ? `**${num(p.lambda)}**` : num(p.lambda), num(p.trainLoss, 7), num(p.gapToDense), num(p.testMetric), num(p.nnz, 6), String(p.rounds), p.converged ? 'yes' : 'no', num(p.uplinkFloatsPerRound), `\`${p.cell}\``]),
      ),
      '',
    );
  }
  return lines;
}
