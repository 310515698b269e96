/**
 * One run from options to files: load and split the data, resolve γ, simulate, and write
 * DIR/rounds.jsonl (a line per round, appended as rounds finish) and DIR/summary.json (atomically).
 * Everything that can fail on bad input fails before DIR is touched.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadFederated, parseDatasetSpec } from '../data/index.js';
import { parsePartition } from '../data/partition.js';
import type { FederatedDataset } from '../data/types.js';
import { createModel, defaultModelSpec } from '../models/index.js';
import type { ModelSpec } from '../models/types.js';
import { JsonlWriter, writeJsonAtomic } from '../report/io.js';
import { UsageError } from '../errors.js';
import { VERSION } from '../version.js';
import { methodOf, type RunConfig } from './config.js';
import { simulate, smoothnessOf, type RoundRecord, type SimResult } from './simulate.js';
import type { MethodSpec } from '../algorithms/methods.js';

export interface PreparedRun {
  config: RunConfig;
  method: MethodSpec;
  dataset: FederatedDataset;
  modelSpec: ModelSpec;
  /** largest smoothness constant over the clients */
  L: number;
  gamma: number;
  warnings: string[];
}

export type LoadedData = Awaited<ReturnType<typeof loadFederated>>;

/** The federated data a config names (load once, share between runs that use the same data). */
export function loadRunData(config: RunConfig): Promise<LoadedData> {
  return loadFederated(parseDatasetSpec(config.dataset), {
    clients: config.clients,
    partition: parsePartition(config.partition),
    seed: config.seed,
    ...(config.test ? { test: config.test } : {}),
  });
}

/** Loads the data (unless given) and resolves everything derived from it. Throws UsageError/DataError on bad input. */
export async function prepareRun(config: RunConfig, loaded?: LoadedData): Promise<PreparedRun> {
  loaded ??= await loadRunData(config);
  const warnings = [...loaded.warnings];
  const dataset = loaded.dataset;
  const modelSpec = modelSpecFor(config, dataset);
  const model = createModel(modelSpec);
  const L = smoothnessOf(model, dataset);
  const gamma = config.gamma === 'auto' ? 1 / L : config.gamma;
  if (config.participation < 1) {
    warnings.push(
      `partial participation (${config.participation}): the convergence theory of ProxSkip and Sparse-ProxSkip assumes every client takes part in every round`,
    );
  }
  return { config, method: methodOf(config), dataset, modelSpec, L, gamma, warnings };
}

function modelSpecFor(config: RunConfig, data: FederatedDataset): ModelSpec {
  if (config.model === 'linear' && data.task === 'multiclass') {
    throw new UsageError(`--model linear needs a regression or binary dataset; ${data.name} has ${data.nClasses} classes`);
  }
  if (config.model === 'logistic' && data.task === 'regression') {
    throw new UsageError(`--model logistic needs class labels; ${data.name} is a regression dataset`);
  }
  const task = config.model === 'linear' ? 'regression' : data.task;
  return defaultModelSpec(task, data.nFeatures, data.nClasses, { intercept: config.intercept, l2: config.l2 });
}

export interface RunSummary {
  version: string;
  algorithm: string;
  config: RunConfig;
  method: MethodSpec;
  dataset: { name: string; task: string; clients: number; nFeatures: number; nClasses: number; trainSamples: number; testSamples: number; meta: Record<string, unknown> };
  model: { spec: ModelSpec; d: number; k: number };
  gamma: number;
  L: number;
  roundsDone: number;
  interrupted: boolean;
  /** the last evaluated round */
  final: RoundRecord | null;
  /** dense methods: the final model after post-hoc TopK */
  postHocTopk: SimResult['postHocTopk'];
  testMetricName: 'r2' | 'accuracy' | null;
  communication: {
    uplinkFloatsPerRoundDense: number;
    encodings: ReturnType<SimResult['ledger']['encodingCounts']>;
    perClient: ReturnType<SimResult['ledger']['perClient']>;
  };
  warnings: string[];
}

export interface RunHooks {
  onRound?(record: RoundRecord, prepared: PreparedRun): void;
  shouldStop?(): boolean;
}

/** Runs a prepared run and writes its files into `outDir`. */
export async function runToDir(prepared: PreparedRun, outDir: string, hooks: RunHooks = {}): Promise<{ summary: RunSummary; result: SimResult }> {
  const { config, dataset } = prepared;
  mkdirSync(outDir, { recursive: true });
  const writer = new JsonlWriter(join(outDir, 'rounds.jsonl'));
  let result: SimResult;
  try {
    result = await simulate(
      dataset,
      {
        method: prepared.method,
        modelSpec: prepared.modelSpec,
        sparsity: config.sparsity,
        topkScope: config.topkScope,
        step: { gamma: prepared.gamma, p: config.p, lambda: config.lambda, steDecay: config.steDecay, batchSize: config.batchSize, seed: config.seed },
        localSteps: config.localSteps,
        schedule: config.schedule,
        rounds: config.rounds,
        participation: config.participation,
        workers: config.workers,
        evalEvery: config.evalEvery,
        postHocTopk: config.postHocTopk,
        timing: config.timing,
      },
      {
        onRound: (rec) => {
          writer.write(rec);
          hooks.onRound?.(rec, prepared);
        },
        ...(hooks.shouldStop ? { shouldStop: hooks.shouldStop } : {}),
      },
    );
  } finally {
    writer.close();
  }
  const summary = summarize(prepared, result);
  writeJsonAtomic(join(outDir, 'summary.json'), summary);
  return { summary, result };
}

function summarize(prepared: PreparedRun, result: SimResult): RunSummary {
  const { config, dataset } = prepared;
  const evaluated = result.records.filter((r) => r.trainLoss !== null);
  const rows = (d: { y: Float32Array }): number => d.y.length;
  return {
    version: VERSION,
    algorithm: config.algorithm,
    config,
    method: prepared.method,
    dataset: {
      name: dataset.name,
      task: dataset.task,
      clients: dataset.clients.length,
      nFeatures: dataset.nFeatures,
      nClasses: dataset.nClasses,
      trainSamples: dataset.clients.reduce((s, c) => s + rows(c), 0),
      testSamples: dataset.test ? rows(dataset.test) : 0,
      meta: dataset.meta,
    },
    model: { spec: prepared.modelSpec, d: result.d, k: result.k },
    gamma: prepared.gamma,
    L: prepared.L,
    roundsDone: result.records.length - 1,
    interrupted: result.interrupted,
    final: evaluated.at(-1) ?? null,
    postHocTopk: result.postHocTopk,
    testMetricName: result.testMetricName,
    communication: {
      uplinkFloatsPerRoundDense: result.d * dataset.clients.length,
      encodings: result.ledger.encodingCounts(),
      perClient: result.ledger.perClient(),
    },
    warnings: prepared.warnings,
  };
}
