import { join } from 'node:path';
import type { Command } from 'commander';
import { resolveConfig, type RunConfig } from '../../sim/config.js';
import { FAILED_FILE, loadRunData, prepareRun, runToDir, type RunSummary } from '../../sim/run.js';
import { SimulationError, type RoundRecord } from '../../sim/simulate.js';
import { addRunOptions, configFromOptions } from '../options.js';
import { createProgress } from '../../report/progress.js';
import { formatNumber, formatTable } from '../../report/table.js';
import { toCsv, writeFileAtomic, writeJsonAtomic } from '../../report/io.js';
import { writePlot } from '../../report/plot.js';
import { lossVsUplink, metricVsUplink, sumHVsRounds, type LabelledRun } from '../../report/figures.js';
import { stopOnSigint } from '../signals.js';
import { UsageError } from '../../errors.js';

/** The comparison `npm start` runs (issue: the main job on the embedded default). */
export const DEFAULT_COMPARISON = [
  'fedavg',
  'proxskip',
  'accelerated-server-pruning',
  'randprox-l1',
  'sparse-proxskip',
  'sparse-proxskip-local',
];

export function registerCompare(program: Command): void {
  addRunOptions(
    program
      .command('compare')
      .description('run several algorithms on the same data; print a table, write results and plots')
      .option('--algorithms <list>', 'comma-separated algorithms', DEFAULT_COMPARISON.join(','))
      .option('--out <dir>', 'output directory', 'results/compare'),
  ).action(async (o: Record<string, unknown>) => {
    const names = String(o.algorithms).split(',').map((s) => s.trim()).filter(Boolean);
    if (names.length === 0) throw new UsageError('--algorithms is empty');
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new UsageError(`--algorithms names '${twice}' twice (each algorithm writes its own directory)`);
    const configs = names.map((algorithm) => resolveConfig({ ...configFromOptions(o), algorithm }));
    await compare(configs, String(o.out));
  });
}

interface Row {
  summary: RunSummary;
  records: RoundRecord[];
}

async function compare(configs: RunConfig[], out: string): Promise<void> {
  const loaded = await loadRunData(configs[0]!); // every config shares the data options
  const prepared = await Promise.all(configs.map((c) => prepareRun(c, loaded)));
  for (const w of new Set(prepared.flatMap((p) => p.warnings))) console.error(`warning: ${w}`);
  const first = prepared[0]!;
  console.error(
    `${first.dataset.name}: ${first.dataset.clients.length} clients, d = ${first.modelSpec.nFeatures * first.modelSpec.nClasses}` +
      `, sparsity ${first.config.sparsity}, γ = ${formatNumber(first.gamma)} (L = ${formatNumber(first.L)}), p = ${first.config.p}`,
  );
  const total = configs.reduce((s, c) => s + c.rounds, 0);
  const progress = createProgress({ total, label: 'compare' });
  const stop = stopOnSigint();
  const rows: Row[] = [];
  const failed: string[] = [];
  let done = 0;
  try {
    for (const p of prepared) {
      if (stop.requested()) break;
      const records: RoundRecord[] = [];
      const dir = join(out, p.config.algorithm);
      const base = done;
      try {
        const { summary } = await runToDir(p, dir, {
          onRound: (r) => {
            records.push(r);
            if (r.round > 0) progress.update(++done, { status: p.config.algorithm });
          },
          shouldStop: stop.requested,
        });
        rows.push({ summary, records });
      } catch (e) {
        // one diverging method should not cost the others' results
        if (!(e instanceof SimulationError)) throw e;
        failed.push(`${p.config.algorithm}: ${e.message} (see ${join(dir, FAILED_FILE)})`);
        done = base + p.config.rounds;
        progress.update(done, { status: p.config.algorithm });
      }
    }
  } finally {
    progress.stop();
    stop.dispose();
  }
  for (const f of failed) console.error(`warning: diverged, left out of the comparison: ${f}`);
  await writeComparison(rows, out);
}

async function writeComparison(rows: Row[], out: string): Promise<void> {
  if (rows.length === 0) return;
  const metricName = rows[0]!.summary.testMetricName;
  const table = rows.flatMap(({ summary: s }) => {
    const row = {
      algorithm: s.algorithm,
      rounds: s.roundsDone,
      trainLoss: s.final?.trainLoss ?? null,
      testMetric: s.final?.testMetric ?? null,
      nnz: s.final?.nnz ?? null,
      d: s.model.d,
      uplinkMB: (s.final?.uplinkBytes ?? 0) / 1e6,
      uplinkFloats: s.final?.uplinkFloats ?? 0,
      downlinkMB: (s.final?.downlinkBytes ?? 0) / 1e6,
      sumHNorm: s.final?.sumHNorm ?? 0,
      seconds: s.final?.seconds ?? null,
    };
    // a dense method's final model pruned after training: the post-hoc baseline (SPEC §3)
    const ph = s.postHocTopk;
    return ph ? [row, { ...row, algorithm: `${s.algorithm} + post-hoc TopK`, trainLoss: ph.trainLoss, testMetric: ph.testMetric, nnz: ph.nnz }] : [row];
  });
  const metricHeader = metricName ? `test ${metricName}` : 'test metric';
  console.log(
    formatTable(
      ['algorithm', 'train loss', metricHeader, 'nnz', 'uplink MB', 'downlink MB', '‖Σh‖'],
      table.map((t) => [
        t.algorithm,
        formatNumber(t.trainLoss ?? NaN),
        t.testMetric === null ? '—' : formatNumber(t.testMetric),
        `${t.nnz}/${t.d}`,
        formatNumber(t.uplinkMB),
        formatNumber(t.downlinkMB),
        formatNumber(t.sumHNorm),
      ]),
      { align: ['left', 'right', 'right', 'right', 'right', 'right', 'right'] },
    ),
  );
  writeFileAtomic(join(out, 'comparison.csv'), toCsv(table));
  writeJsonAtomic(join(out, 'comparison.json'), table);
  const runs: LabelledRun[] = rows.map((r) => ({ label: r.summary.algorithm, records: r.records }));
  const name = rows[0]!.summary.dataset.name;
  const sparsity = rows[0]!.summary.config.sparsity;
  // Each uplink figure in encoded bytes (MB) and, with the suffix -floats, in floats carried.
  const written: string[] = [];
  for (const unit of ['MB', 'floats'] as const) {
    const suffix = unit === 'MB' ? '' : '-floats';
    written.push(...(await writePlot(join(out, `loss-vs-uplink${suffix}`), lossVsUplink(runs, `${name}: train loss, ${sparsity * 100}% sparsity`, unit))));
    if (metricName) written.push(...(await writePlot(join(out, `metric-vs-uplink${suffix}`), metricVsUplink(runs, `${name}: test ${metricName}`, metricName, unit))));
  }
  written.push(...(await writePlot(join(out, 'sum-h-vs-rounds'), sumHVsRounds(runs, `${name}: ‖Σᵢ hᵢ‖ per round`))));
  console.log(`results: ${join(out, 'comparison.csv')}; per-algorithm runs in ${out}/<algorithm>/; plots: ${written.filter((f) => f.endsWith('.svg')).join(', ')}`);
}
