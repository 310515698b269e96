import type { Command } from 'commander';
import { DataError } from '../../data/errors.js';
import { loadModel, runConfigOf, type SavedModel } from '../../models/io.js';
import { formatNumber } from '../../report/table.js';
import { resolveConfig, type RunConfig } from '../../sim/config.js';
import { evaluateModel } from '../../sim/evaluate.js';
import { loadRunData } from '../../sim/run.js';
import { int } from '../options.js';

/** The RunConfig fields that decide which data a run saw (and so what its train loss is a mean over). */
const DATA_KEYS = ['dataset', 'test', 'dataDir', 'clients', 'partition', 'seed', 'maxSamples'] as const;
const STRING_KEYS = new Set(['dataset', 'test', 'dataDir', 'partition']);

export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description("score a saved model as a run scores its last round: train loss (mean over the clients), test loss, test metric, nnz")
    .argument('<model>', 'a model file (a run\'s model.safetensors)')
    .option('--dataset <spec>', 'data to score on (default: the run\'s, from the model\'s metadata)')
    .option('--test <spec>', 'held-out data for a libsvm dataset: libsvm:PATH (default: the run\'s)')
    .option('--data-dir <dir>', 'folder holding blogfeedback/, femnist/ and cifar10/ (default: the run\'s)')
    .option('--clients <n>', 'number of clients (default: the run\'s)', int('--clients'))
    .option('--partition <scheme>', 'split over clients (default: the run\'s)')
    .option('--seed <n>', 'seed of the split and of generated data (default: the run\'s)', int('--seed'))
    .option('--max-samples <n>', 'keep at most n samples per client (default: the run\'s)', int('--max-samples'))
    .option('--json', 'print one JSON object, numbers in full precision')
    .action(async (path: string, o: Record<string, unknown>) => {
      const saved = loadModel(path);
      const config = dataConfig(saved, path, o);
      const { dataset } = await loadRunData(config);
      const e = await evaluateModel(saved.spec, saved.params, dataset);
      if (o.json) {
        console.log(JSON.stringify({ model: path, dataset: config.dataset, ...e }));
        return;
      }
      const from = saved.metadata.algorithm ? ` (${saved.metadata.algorithm}, round ${saved.metadata.round ?? '?'})` : '';
      console.log(`${path}: ${saved.spec.kind} model${from}, nnz ${e.nnz}/${e.d}`);
      const test = e.testMetric === null ? ', no test data' : `, test loss ${formatNumber(e.testLoss!)}, test ${e.metricName} ${formatNumber(e.testMetric)}`;
      console.log(`${dataset.name}: train loss ${formatNumber(e.trainLoss)} (mean over ${e.clients} clients)${test}`);
    });
}

/** The run's data options from the model's metadata, overridden by the command line. */
export function dataConfig(saved: SavedModel, path: string, o: Record<string, unknown>): RunConfig {
  const run = runConfigOf(saved);
  const picked: Record<string, unknown> = {};
  for (const k of DATA_KEYS) {
    const v = run[k];
    if (v === undefined) continue;
    const ok = v === null || (STRING_KEYS.has(k) ? typeof v === 'string' : typeof v === 'number');
    if (!ok) throw new DataError(`${path}: metadata config.${k} has the wrong type (${JSON.stringify(v)})`);
    picked[k] = v;
  }
  for (const k of DATA_KEYS) if (o[k] !== undefined) picked[k] = o[k];
  // the algorithm does not change the data; any valid one lets resolveConfig check the rest
  return resolveConfig({ ...(picked as Partial<RunConfig>), algorithm: 'fedavg' });
}
