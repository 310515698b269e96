/**
 * The report of an experiment, from the files of its finished cells: DIR/report.md (tables and plots),
 * DIR/results.json (everything, machine-readable), DIR/final.csv and DIR/curves.csv, and the plots under
 * DIR/plots as SVG, PNG and Vega-Lite. Nothing in it depends on wall-clock time, so the same cells give
 * byte-identical reports.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../data/errors.js';
import { metricLabel, type Reference } from '../report/figures.js';
import { toCsv, writeFileAtomic, writeJsonAtomic } from '../report/io.js';
import { coincidenceNotes, writePlot } from '../report/plot.js';
import { formatNumber, markdownTable } from '../report/table.js';
import type { RoundRecord } from '../sim/simulate.js';
import type { RunSummary } from '../sim/run.js';
import { formatStat, meanCurve, meanSeOf, type CurvePoint, type Stat } from './aggregate.js';
import { analyse, analysisMarkdown, type SettingAnalysis } from './analysis.js';
import { REFERENCES_FILE } from './references.js';
import { resultsJson } from './results-file.js';
import { experimentFigures } from './figures.js';
import { loadCells, type LoadedCell } from './run.js';
import { sameRun, type RunConfig } from '../sim/config.js';
import type { Cell, ExperimentSpec, MethodEntry } from './spec.js';

const MB = 1e6;

export interface FinalStats {
  trainLoss: Stat | null;
  testMetric: Stat | null;
  nnz: Stat | null;
  sumHNorm: Stat | null;
  rounds: Stat | null;
  uplinkFloats: Stat | null;
  uplinkMB: Stat | null;
  uplinkFloatsPerRound: Stat | null;
  uplinkMBPerRound: Stat | null;
}

export interface MethodResult {
  name: string;
  label: string;
  algorithm: string;
  /** seeds with a finished run (the statistics are over these) */
  seeds: number[];
  failed: { seed: number; error: string }[];
  missing: number[];
  d: number | null;
  /** the l1 weight per finished seed (l1 methods only) */
  lambda: number[] | null;
  /** λ was found by `--lambda auto` */
  lambdaAuto: boolean;
  /** searches that stopped without reaching the target nnz, as 'seed N: warning' */
  lambdaWarnings: string[];
  final: FinalStats;
  /** dense methods at sparsity > 0: the final model pruned to K after training */
  postHocTopk: { trainLoss: Stat | null; testMetric: Stat | null; nnz: Stat | null } | null;
  controlVariates: boolean;
  curve: CurvePoint[];
}

export interface SettingResult {
  name: string;
  label: string;
  /** the sweep field's value in this setting (null without a sweep) */
  sweepValue: number | null;
  metricName: 'r2' | 'accuracy' | null;
  datasetName: string | null;
  /** the sparsity of the setting's runs (of the first finished one) */
  sparsity: number | null;
  /** what the "test" metric is measured on when it is not the dataset's test set (e.g. a validation split) */
  evaluationSet: string | null;
  methods: MethodResult[];
}

export interface ExperimentResults {
  name: string;
  description: string;
  seeds: number[];
  sweepField: string | null;
  uplinkUnit: 'floats' | 'MB';
  settings: SettingResult[];
  /** ids of cells with no finished run */
  missing: string[];
  failed: string[];
}

interface Loaded {
  cell: Cell;
  summary: RunSummary;
  records: RoundRecord[];
}

/** Gathers the finished cells of `spec` under `out` into mean ± SE statistics. */
export function collectResults(spec: ExperimentSpec, out: string, loaded: LoadedCell[] = loadCells(spec, out)): ExperimentResults {
  const cells = loaded.map((l) => l.cell);
  const missing: string[] = [];
  const failed: string[] = [];
  const settings = spec.settings.map((setting): SettingResult => {
    let anySummary: RunSummary | null = null;
    const methods = spec.methods.filter((m) => !m.settings || m.settings.includes(setting.name)).map((method) => {
      const mine = cells.filter((c) => c.setting === setting && c.method === method);
      const done: Loaded[] = [];
      const failures: MethodResult['failed'] = [];
      const absent: number[] = [];
      for (const { cell, state, records } of loaded.filter((l) => l.cell.setting === setting && l.cell.method === method)) {
        if (state.kind === 'done') {
          done.push({ cell, summary: state.summary, records: records! });
          anySummary ??= state.summary;
        } else if (state.kind === 'failed') {
          failures.push({ seed: cell.seed, error: state.failure.error });
          failed.push(cell.id);
        } else {
          absent.push(cell.seed);
          missing.push(cell.id);
        }
      }
      const result = methodResult(method, done, failures, absent);
      // The post-hoc row repeats the final values of a method run with postHocTopk (same run, evaluated pruned).
      if (mine.length > 0 && cells.some((c) => c.method !== method && c.setting === setting && isPostHocTwin(c.config, mine[0]!.config))) result.postHocTopk = null;
      return result;
    });
    const summary = anySummary as RunSummary | null; // (TypeScript does not see the assignment in the closure)
    return {
      name: setting.name,
      label: setting.label,
      sweepValue: spec.sweepField === null ? null : (setting.config[spec.sweepField] as number),
      metricName: summary?.testMetricName ?? null,
      datasetName: summary?.dataset.name ?? null,
      sparsity: summary?.config.sparsity ?? null,
      evaluationSet: (summary?.dataset.meta?.['testSet'] as string | undefined) ?? null,
      methods,
    };
  });
  return {
    name: spec.name,
    description: spec.description,
    seeds: spec.seeds,
    sweepField: spec.sweepField,
    uplinkUnit: spec.report.uplink,
    settings,
    missing,
    failed,
  };
}

/** `a` is `b` evaluated with post-hoc TopK at every round. */
function isPostHocTwin(a: RunConfig, b: RunConfig): boolean {
  return a.postHocTopk && !b.postHocTopk && a.seed === b.seed && sameRun({ ...a, postHocTopk: false }, b);
}

function methodResult(method: MethodEntry, done: Loaded[], failed: MethodResult['failed'], missing: number[]): MethodResult {
  const sums = done.map((l) => l.summary);
  const fin = sums.map((s) => s.final);
  const per = (f: (s: RunSummary) => number | null | undefined) => meanSeOf(sums.map(f));
  const perRound = (x: number | undefined, s: RunSummary) => (x === undefined || s.roundsDone === 0 ? null : x / s.roundsDone);
  const ph = sums.map((s) => s.postHocTopk);
  const first = sums[0];
  return {
    name: method.name,
    label: method.label,
    algorithm: method.algorithm,
    seeds: done.map((l) => l.cell.seed),
    failed,
    missing,
    d: first?.model.d ?? null,
    lambda: first && first.lambda !== null ? sums.map((s) => s.lambda!) : null,
    lambdaAuto: first?.config.lambda === 'auto',
    lambdaWarnings: done.flatMap((l) => (l.summary.lambdaSearch?.warning ? [`seed ${l.cell.seed}: ${l.summary.lambdaSearch.warning}`] : [])),
    final: {
      trainLoss: meanSeOf(fin.map((f) => f?.trainLoss)),
      testMetric: meanSeOf(fin.map((f) => f?.testMetric)),
      nnz: meanSeOf(fin.map((f) => f?.nnz)),
      sumHNorm: meanSeOf(fin.map((f) => f?.sumHNorm)),
      rounds: per((s) => s.roundsDone),
      uplinkFloats: meanSeOf(fin.map((f) => f?.uplinkFloats)),
      uplinkMB: meanSeOf(fin.map((f) => (f ? f.uplinkBytes / MB : null))),
      uplinkFloatsPerRound: per((s) => perRound(s.final?.uplinkFloats, s)),
      uplinkMBPerRound: per((s) => perRound(s.final ? s.final.uplinkBytes / MB : undefined, s)),
    },
    postHocTopk:
      ph.length > 0 && ph.every((p) => p !== null)
        ? { trainLoss: meanSeOf(ph.map((p) => p!.trainLoss)), testMetric: meanSeOf(ph.map((p) => p!.testMetric)), nnz: meanSeOf(ph.map((p) => p!.nnz)) }
        : null,
    controlVariates: first?.method.controlVariates ?? false,
    // the rounds the runs evaluated (--eval-every): the other rounds' points would only repeat the curves in
    // results.json and the plots at ten times their size. Round 1 stays too: ‖Σh‖ after it is the pruned mass
    // of the dense initialisation (Figure 4's spike), which the next evaluated round no longer shows.
    curve: meanCurve(done.map((l) => l.records)).filter((p, i, all) => p.trainLoss !== null || p.round === 1 || i === all.length - 1),
  };
}

/**
 * Writes report.md, results.json, final.csv, curves.csv, the plots and experiment.json (the spec the report
 * describes: a report rewritten after the experiment file changed must not sit beside the old copy). Returns the
 * results and the written report path. `references` (default: DIR/references.json when it exists) adds the
 * convergence plots.
 */
export async function writeReport(
  spec: ExperimentSpec,
  out: string,
  opts: { references?: Record<string, Reference> } = {},
): Promise<{ results: ExperimentResults; reportPath: string }> {
  const references = opts.references ?? readReferences(spec, out) ?? {};
  const loaded = loadCells(spec, out);
  const results = collectResults(spec, out, loaded);
  const plots = await writePlots(spec, results, out, references);
  writeFileAtomic(join(out, 'results.json'), resultsJson(results));
  writeFileAtomic(join(out, 'final.csv'), toCsv(finalRows(results)));
  writeFileAtomic(join(out, 'curves.csv'), toCsv(curveRows(results)));
  const analysis = analyse(spec, out, loaded);
  writeJsonAtomic(join(out, 'analysis.json'), analysis);
  const reportPath = join(out, 'report.md');
  writeFileAtomic(reportPath, markdown(spec, results, plots, analysis));
  writeJsonAtomic(join(out, 'experiment.json'), spec);
  return { results, reportPath };
}

// ---- plots ----

/** A figure of the report: its title, its path relative to DIR without extension, the same figure in
 * the other uplink unit (if any) and notes for its caption. */
interface PlotEntry {
  title: string;
  base: string;
  variant?: { unit: string; base: string };
  notes: string[];
}

/** The figures by setting name ('' for the sweep plots), in order. */
type PlotIndex = Map<string, PlotEntry[]>;

/** The references file of an experiment's output directory: reference optima per setting name. */
/**
 * The plotted values of DIR/references.json, `{ SETTING: { "fStar": f*, "fSparseRef": f_sparse, ... } }`
 * (fSparseRef optional; `experiment` writes more about how they were found, see references.ts), checked
 * against the experiment's settings; undefined when the file does not exist.
 */
export function readReferences(spec: ExperimentSpec, out: string): Record<string, Reference> | undefined {
  const path = join(out, REFERENCES_FILE);
  if (!existsSync(path)) return undefined;
  const fail = (what: string): never => {
    throw new DataError(`${path}: ${what}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('must be an object keyed by setting name');
  const refs: Record<string, Reference> = {};
  for (const [name, v] of Object.entries(raw)) {
    if (!spec.settings.some((s) => s.name === name)) fail(`'${name}' is no setting of ${spec.name} (settings: ${spec.settings.map((s) => s.name).join(', ')})`);
    const o = (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : fail(`${name} must be an object { fStar, fSparseRef? }`)) as Record<string, unknown>;
    const num = (k: string) => (typeof o[k] === 'number' && Number.isFinite(o[k]) ? (o[k] as number) : fail(`${name}.${k} must be a finite number, got ${JSON.stringify(o[k])}`));
    refs[name] = { fStar: num('fStar'), ...(o.fSparseRef !== undefined && { fSparseRef: num('fSparseRef') }) };
  }
  return refs;
}

async function writePlots(spec: ExperimentSpec, results: ExperimentResults, out: string, references: Record<string, Reference>): Promise<PlotIndex> {
  const index: PlotIndex = new Map();
  for (const f of experimentFigures(spec, results, references)) {
    await writePlot(join(out, f.base), f.plot);
    if (f.variant) await writePlot(join(out, `${f.base}${f.variant.suffix}`), f.variant.plot);
    const notes = coincidenceNotes(f.plot).map((n) => `${n}.`);
    const entry: PlotEntry = { title: f.plot.title, base: f.base, notes, ...(f.variant && { variant: { unit: f.variant.unit, base: `${f.base}${f.variant.suffix}` } }) };
    index.set(f.setting, [...(index.get(f.setting) ?? []), entry]);
  }
  return index;
}

/** A figure in Markdown: the PNG, links to its SVG, its Vega-Lite spec and its other-unit variant, and its notes. */
function plotLines(p: PlotEntry): string[] {
  const links = [`[SVG](${p.base}.svg)`, `[Vega-Lite](${p.base}.vl.json)`, ...(p.variant ? [`[in ${p.variant.unit}](${p.variant.base}.png)`] : [])];
  return [`![${p.title}](${p.base}.png)`, '', [...links, ...p.notes].join(' · '), ''];
}

// ---- tables ----

interface TableRow {
  setting: string;
  method: string;
  label: string;
  m: MethodResult;
  trainLoss: Stat | null;
  testMetric: Stat | null;
  nnz: Stat | null;
}

/** One row per method, plus one per dense method pruned post hoc. */
function tableRows(s: SettingResult): TableRow[] {
  return s.methods.flatMap((m) => {
    const row = { setting: s.name, method: m.name, label: m.label, m, trainLoss: m.final.trainLoss, testMetric: m.final.testMetric, nnz: m.final.nnz };
    const ph = m.postHocTopk;
    return ph ? [row, { ...row, method: `${m.name}+post-hoc-topk`, label: `${m.label} + post-hoc TopK`, ...ph }] : [row];
  });
}

function finalRows(results: ExperimentResults): Record<string, unknown>[] {
  return results.settings.flatMap((s) =>
    tableRows(s).map((r) => {
      const f = r.m.final;
      const cols: Record<string, unknown> = {
        setting: s.name,
        ...(results.sweepField ? { [results.sweepField]: s.sweepValue } : {}),
        method: r.method,
        label: r.label,
        algorithm: r.m.algorithm,
        seeds: r.m.seeds.length,
        failed: r.m.failed.length,
      };
      const stat = (name: string, st: Stat | null) => {
        cols[name] = st?.mean ?? null;
        cols[`${name}Se`] = st?.se ?? null;
      };
      stat('trainLoss', r.trainLoss);
      stat('testMetric', r.testMetric);
      stat('nnz', r.nnz);
      cols.d = r.m.d;
      stat('rounds', f.rounds);
      stat('uplinkFloats', f.uplinkFloats);
      stat('uplinkMB', f.uplinkMB);
      stat('uplinkFloatsPerRound', f.uplinkFloatsPerRound);
      stat('uplinkMBPerRound', f.uplinkMBPerRound);
      stat('sumHNorm', f.sumHNorm);
      stat('lambda', r.m.lambda ? meanSeOf(r.m.lambda) : null);
      return cols;
    }),
  );
}

function curveRows(results: ExperimentResults): Record<string, unknown>[] {
  return results.settings.flatMap((s) =>
    s.methods.flatMap((m) =>
      m.curve.map((p) => ({
        setting: s.name,
        method: m.name,
        round: p.round,
        uplinkFloats: p.uplinkFloats,
        uplinkMB: p.uplinkBytes / MB,
        trainLoss: p.trainLoss?.mean ?? null,
        trainLossSe: p.trainLoss?.se ?? null,
        testMetric: p.testMetric?.mean ?? null,
        testMetricSe: p.testMetric?.se ?? null,
        nnz: p.nnz.mean,
        sumHNorm: p.sumHNorm.mean,
        sumHNormSe: p.sumHNorm.se,
      })),
    ),
  );
}

// ---- Markdown ----

const fmt = (x: number) => formatNumber(x);
const fmtInt = (x: number) => (Number.isInteger(x) && Math.abs(x) < 1e9 ? String(x) : formatNumber(x));

function markdown(spec: ExperimentSpec, results: ExperimentResults, plots: PlotIndex, analysis: SettingAnalysis[]): string {
  const lines: string[] = [`# Experiment: ${spec.name}`, ''];
  if (spec.description) lines.push(spec.description, '');
  lines.push(
    `Seeds ${spec.seeds.join(', ')}. Every value is the mean ± standard error over the seeds (sample standard deviation / √n), ` +
      'and the shaded bands in the plots are the same. Curves are averaged round by round; their x is the mean cumulative uplink ' +
      'over the seeds at that round (exact for every method but randprox-l1, whose message size depends on the data).',
    '',
    'Base configuration (the settings and methods below change some fields):',
    '',
    '```json',
    JSON.stringify(spec.base, null, 2),
    '```',
    '',
  );
  const evaluationSets = [...new Set(results.settings.map((s) => s.evaluationSet).filter((e) => e !== null))];
  if (evaluationSets.length > 0) lines.push(`**Evaluation set:** every "test" value and figure below is measured on ${evaluationSets.join('; ')}.`, '');
  if (results.missing.length > 0) {
    lines.push(`**Incomplete:** ${results.missing.length} cell(s) have no finished run and are left out: ${idList(results.missing)}.`, '');
  }
  if (results.failed.length > 0) {
    lines.push(`**Diverged:** ${idList(results.failed)} (see failed.json in each cell; left out of the statistics).`, '');
  }
  if (results.sweepField) lines.push(...sweepSection(results, plots.get('') ?? []));
  for (const s of results.settings) {
    lines.push(...settingSection(spec, s, plots.get(s.name) ?? []));
    const a = analysis.find((x) => x.setting === s.name);
    if (a) lines.push(...analysisMarkdown(a));
  }
  lines.push('Files: `analysis.json` (convergence, reference optima and λ paths of every run), `results.json` (everything above, with the mean curves), `final.csv` (the tables), `curves.csv` (the curves), `plots/` (SVG, PNG and Vega-Lite specs), `cells/SETTING/METHOD/seed-N/` (each run).', '');
  return lines.join('\n');
}

/** Cell ids as code, the first dozen only (results.json has them all). */
function idList(ids: string[]): string {
  const shown = ids.slice(0, 12).map((c) => `\`${c}\``).join(', ');
  return ids.length > 12 ? `${shown} and ${ids.length - 12} more` : shown;
}

function settingSection(spec: ExperimentSpec, s: SettingResult, plots: PlotEntry[]): string[] {
  const metric = s.metricName ? metricLabel(s.metricName) : 'test metric';
  const rows = tableRows(s).map((r) => {
    const f = r.m.final;
    const total = spec.seeds.length;
    const seeds = r.m.seeds.length === total ? String(total) : `${r.m.seeds.length} of ${total}${r.m.failed.length ? ` (${r.m.failed.length} diverged)` : ''}`;
    return [
      r.label,
      seeds,
      formatStat(r.trainLoss, fmt),
      formatStat(r.testMetric, fmt),
      r.nnz && r.m.d !== null ? `${formatStat(r.nnz, fmt)} / ${r.m.d}` : '—',
      formatStat(f.uplinkFloatsPerRound, fmtInt),
      formatStat(f.uplinkMBPerRound, fmt),
      formatStat(f.uplinkFloats, fmtInt),
      formatStat(f.uplinkMB, fmt),
      formatStat(f.sumHNorm, fmt),
    ];
  });
  const lines = [`## ${s.label}`, ''];
  const overrides = Object.entries(spec.settings.find((x) => x.name === s.name)!.config);
  if (overrides.length > 0) lines.push(`Setting \`${s.name}\`: ${overrides.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')}.`, '');
  lines.push(
    markdownTable(
      ['method', 'seeds', 'train loss', metric, 'nnz / d', 'uplink floats / round', 'uplink MB / round', 'uplink floats', 'uplink MB', '‖Σh‖'],
      rows,
      { align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'] },
    ),
  );
  lines.push('Final values at the last round; uplink totals are cumulative over all clients. Post-hoc TopK rows: the dense final model pruned to K after training.', '');
  for (const m of s.methods) {
    if (m.lambda && m.lambda.length > 0) {
      lines.push(`${m.label}: λ = ${m.lambda.map(fmt).join(', ')} (seeds ${m.seeds.join(', ')}${m.lambdaAuto ? '; found by `--lambda auto`' : ''}).`, '');
      for (const w of m.lambdaWarnings) lines.push(`- ${w}`);
      if (m.lambdaWarnings.length > 0) lines.push('');
    }
  }
  for (const p of plots) lines.push(...plotLines(p));
  return lines;
}

function sweepSection(results: ExperimentResults, plots: PlotEntry[]): string[] {
  const field = results.sweepField!;
  const metricName = results.settings.find((s) => s.metricName)?.metricName ?? null;
  // every method of any setting, in order; a method that does not run in a setting (methods[].settings) shows '—'
  const methods = [...new Map(results.settings.flatMap((s) => s.methods.map((m) => [m.name, { name: m.name, label: m.label }] as const))).values()];
  // columns in the sweep's order of values, whatever order the file runs the settings in
  const settings = [...results.settings].sort((a, b) => a.sweepValue! - b.sweepValue!);
  const table = (title: string, stat: (m: MethodResult) => Stat | null) => [
    `Final ${title} by ${field}:`,
    '',
    markdownTable(
      ['method', ...settings.map((s) => `${field} ${s.sweepValue}`)],
      methods.map((mm) => [mm.label, ...settings.map((s) => {
        const m = s.methods.find((x) => x.name === mm.name);
        return m ? formatStat(stat(m), fmt) : '—';
      })]),
      { align: ['left', ...settings.map(() => 'right' as const)] },
    ),
  ];
  return [
    `## Sweep over ${field}`,
    '',
    ...(metricName ? table(metricLabel(metricName), (m) => m.final.testMetric) : []),
    ...table('train loss', (m) => m.final.trainLoss),
    ...plots.flatMap(plotLines),
  ];
}
