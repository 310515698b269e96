import type { Command } from 'commander';
import { resolveConfig } from '../../sim/config.js';
import { prepareRun, runToDir } from '../../sim/run.js';
import { addRunOptions, configFromOptions } from '../options.js';
import { createProgress } from '../../report/progress.js';
import { formatNumber } from '../../report/table.js';
import { stopOnSigint } from '../signals.js';

export function registerRun(program: Command): void {
  addRunOptions(
    program
      .command('run')
      .description('simulate one algorithm and write DIR/rounds.jsonl and DIR/summary.json')
      .requiredOption('--algorithm <name>', 'algorithm (see `sparse-proxskip algorithms`)')
      .option('--out <dir>', 'output directory (default: runs/ALGORITHM)'),
  ).action(async (o: Record<string, unknown>) => {
    const config = resolveConfig({ ...configFromOptions(o), algorithm: String(o.algorithm) });
    const stop = stopOnSigint();
    const prepared = await prepareRun(config, undefined, {
      // each probe of the search is a full run: show that something is happening
      onLambdaProbe: (probe, i) => console.error(`λ search, run ${i + 1}: λ = ${formatNumber(probe.lambda)} gives nnz ${probe.nnz}`),
      shouldStop: stop.requested,
    }).catch((e: unknown) => {
      stop.dispose();
      throw e;
    });
    for (const w of prepared.warnings) console.error(`warning: ${w}`);
    if (prepared.lambdaSearch) {
      const l = prepared.lambdaSearch;
      console.error(`--lambda auto: λ = ${formatNumber(l.lambda)} (nnz ${l.nnz}, target ${l.target} ± ${l.tolerance}, ${l.probes.length} runs)`);
    }
    const out = (o.out as string | undefined) ?? `runs/${config.algorithm}`;
    const progress = createProgress({ total: config.rounds, label: config.algorithm });
    try {
      const { summary } = await runToDir(prepared, out, {
        onRound: (r) => progress.update(r.round, { loss: r.trainLoss === null ? '' : formatNumber(r.trainLoss) }),
        shouldStop: stop.requested,
      });
      progress.stop();
      const f = summary.final;
      const metric = f?.testMetric !== null && f?.testMetric !== undefined ? `, test ${summary.testMetricName} ${formatNumber(f.testMetric)}` : '';
      console.log(
        `${config.algorithm}: ${summary.roundsDone} rounds${summary.interrupted ? ' (interrupted)' : ''}, ` +
          `train loss ${formatNumber(f?.trainLoss ?? NaN)}${metric}, nnz ${f?.nnz}/${summary.model.d}, ` +
          `uplink ${formatNumber((f?.uplinkBytes ?? 0) / 1e6)} MB -> ${out}`,
      );
    } finally {
      progress.stop();
      stop.dispose();
    }
  });
}
