import type { Command } from 'commander';
import { resolveConfig } from '../../sim/config.js';
import { CHECKPOINT_SECONDS, prepareRun, runToDir } from '../../sim/run.js';
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
      .option('--out <dir>', 'output directory (default: runs/ALGORITHM)')
      .option('--resume', 'continue from DIR/checkpoint.bin (saved every 5 minutes and on Ctrl-C) when the same options wrote it; else start at round 0'),
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
      const { summary, resumedAfter } = await runToDir(
        prepared,
        out,
        { onRound: (r) => progress.update(r.round, { loss: r.trainLoss === null ? '' : formatNumber(r.trainLoss) }), shouldStop: stop.requested },
        { checkpointSeconds: CHECKPOINT_SECONDS, resume: o.resume === true },
      );
      if (o.resume === true) console.error(resumedAfter === null ? `no checkpoint of this run in ${out}: started at round 0` : `resumed after round ${resumedAfter} from ${out}/checkpoint.bin`);
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
