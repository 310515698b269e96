import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { createProgress, type Progress } from '../../report/progress.js';
import { formatNumber } from '../../report/table.js';
import { writeReport } from '../../experiment/report.js';
import { runExperiment } from '../../experiment/run.js';
import { ensureReferences } from '../../experiment/references.js';
import { loadExperiment, type ConfigOverrides, type ExperimentSpec } from '../../experiment/spec.js';
import { stopOnSigint } from '../signals.js';

export function registerExperiment(program: Command): void {
  program
    .command('experiment')
    .description('run an experiment file (methods × seeds × settings), resuming finished cells, and write its report')
    .argument('<file>', 'experiment JSON (see experiments/ and docs/experiments.md)')
    .option('--out <dir>', 'output directory (default: results/NAME, NAME the file name without .json)')
    .option('--workers <n>', 'worker threads per run (default: the file\'s, else 1)', (v: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`--workers must be an integer >= 1, got '${v}'`);
      return n;
    })
    .option('--data-dir <dir>', 'where the datasets are (for file datasets such as blogfeedback and femnist)')
    .option('--only <pattern>', "run only cells SETTING/METHOD/seed-N matching the pattern ('*' wildcards, ',' alternatives)")
    .option('--report-only', 'run nothing (no cells, no reference optima); write the report from the finished cells and the references already computed')
    .action(async (file: string, o: { out?: string; workers?: number; dataDir?: string; only?: string; reportOnly?: boolean }) => {
      const spec = loadExperiment(file);
      const out = o.out ?? join('results', basename(file, extname(file)));
      const extra: ConfigOverrides = {};
      if (o.workers !== undefined) extra.workers = o.workers;
      if (o.dataDir !== undefined) extra.dataDir = o.dataDir;
      if (!o.reportOnly) {
        const finished = await run(spec, out, extra, o.only);
        if (!finished) return;
      }
      // references are computation too (minutes on FEMNIST): --report-only uses those already in DIR
      if (spec.reference && !o.reportOnly) await ensureReferences(spec, out, extra, (line) => console.error(line));
      const { results, reportPath } = await writeReport(spec, out);
      const missing = results.missing.length > 0 ? ` (${results.missing.length} cell(s) missing)` : '';
      console.log(`report: ${reportPath}${missing}; tables: ${join(out, 'final.csv')}; plots: ${join(out, 'plots')}/`);
    });
}

/** Runs the pending cells with a progress bar; false when interrupted. */
async function run(spec: ExperimentSpec, out: string, extra: ConfigOverrides, only: string | undefined): Promise<boolean> {
  const stop = stopOnSigint();
  let progress: Progress | null = null;
  let total = 0;
  let roundsBefore = 0;
  let position = '';
  try {
    const result = await runExperiment(
      spec,
      out,
      { extra, ...(only !== undefined ? { only } : {}) },
      {
        onPlan: ({ cells, pending }) => {
          total = pending.length;
          const done = cells.length - pending.length;
          console.error(`experiment ${spec.name}: ${cells.length} cells, ${done} finished or not selected, ${pending.length} to run -> ${out}`);
          // ETA by rounds: cells differ in length; the status counts cells
          progress = createProgress({ total: pending.reduce((s, c) => s + c.config.rounds, 0), label: spec.name });
        },
        onCellStart: (cell, i) => {
          position = `${i + 1}/${total}`;
          progress?.update(roundsBefore, { cell: position, run: cell.id });
        },
        onLambdaProbe: (cell, p, i) =>
          progress?.update(roundsBefore, { cell: position, run: cell.id, λsearch: `${i + 1} λ=${formatNumber(p.lambda, 3)} nnz=${p.nnz}` }),
        onRound: (cell, r) => {
          if (r.round > 0) progress?.update(roundsBefore + r.round, { cell: position, run: cell.id });
        },
        onCellDone: (cell) => {
          roundsBefore += cell.config.rounds;
        },
        warn: (m) => console.error(`\nwarning: ${m}`),
        shouldStop: stop.requested,
      },
    );
    (progress as Progress | null)?.stop();
    if (result.interrupted) {
      console.error(`interrupted: ${result.ran.length} cell(s) finished in this run; run the same command again to resume`);
      return false;
    }
    return true;
  } finally {
    (progress as Progress | null)?.stop();
    stop.dispose();
  }
}
