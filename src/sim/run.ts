/**
 * One run from options to files: load and split the data, resolve γ, simulate, and write
 * DIR/rounds.jsonl (a line per round, appended as rounds finish) and DIR/summary.json (atomically).
 * Everything that can fail on bad input fails before DIR is touched.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadOptionsOf } from '../data/generated.js';
import { loadFederated, parseDatasetSpec } from '../data/index.js';
import { LIMIT_KEYS } from '../data/limits.js';
import type { FederatedDataset } from '../data/types.js';
import { createModel, defaultModelSpec, evalReferenceOf, initNnBackend, isNeuralNet } from '../models/index.js';
import type { Model, ModelSpec } from '../models/types.js';
import { initialParams, loadModel, MODEL_OUTPUTS, writeModelFiles, type ModelFiles, type RunModelInfo } from '../models/io.js';
import { JsonlWriter, writeFileAtomic, writeJsonAtomic } from '../report/io.js';
import { UsageError } from '../errors.js';
import { VERSION } from '../version.js';
import { DEFAULTS, methodOf, runIdentity, type RunConfig } from './config.js';
import { CHECKPOINT_FILE, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { simulate, smoothnessOf, SimulationError, type RoundRecord, type SimOptions, type SimResult } from './simulate.js';
import type { MethodSpec } from '../algorithms/methods.js';
import { makePruner, type Pruner } from '../core/prune.js';
import { nnz } from '../core/vec.js';
import { findLambda, type LambdaCache, type LambdaProbe, type LambdaSearchResult } from './lambda.js';

export interface PreparedRun {
  config: RunConfig;
  method: MethodSpec;
  dataset: FederatedDataset;
  modelSpec: ModelSpec;
  /** largest smoothness constant over the clients (NaN for a neural network: none exists) */
  L: number;
  gamma: number;
  /** the l1 weight used (config.lambda, or the one `--lambda auto` found) */
  lambda: number;
  lambdaSearch: LambdaSearchResult | null;
  /** x₀ from `--init` (null: the default start) */
  init: Float32Array | null;
  warnings: string[];
}

export interface PrepareOptions {
  /** found λ values by lambdaCacheKey, so a search is done once per configuration */
  lambdaCache?: LambdaCache;
  /** called after each run of a λ search */
  onLambdaProbe?(probe: LambdaProbe, index: number): void;
  /** polled by the runs of a λ search; true aborts the search with SearchInterrupted */
  shouldStop?(): boolean;
}

/** A λ search stopped by shouldStop (Ctrl-C): nothing was decided or written. */
export class SearchInterrupted extends Error {
  override name = 'SearchInterrupted';
}

export type LoadedData = Awaited<ReturnType<typeof loadFederated>>;

/** The federated data a config names (load once, share between runs that use the same data). */
export function loadRunData(config: RunConfig): Promise<LoadedData> {
  return loadFederated(parseDatasetSpec(config.dataset), loadOptionsOf(config));
}

/** Loads the data (unless given) and resolves everything derived from it. Throws UsageError/DataError on bad input. */
export async function prepareRun(config: RunConfig, loaded?: LoadedData, opts: PrepareOptions = {}): Promise<PreparedRun> {
  loaded ??= await loadRunData(config);
  const warnings = [...loaded.warnings];
  const dataset = loaded.dataset;
  if (config.augment && dataset.name !== 'cifar10') throw new UsageError(`--augment needs 32×32 colour images (--dataset cifar10), not ${dataset.name}`);
  const modelSpec = modelSpecFor(config, dataset);
  const neural = isNeuralNet(modelSpec);
  if (neural) await initNnBackend();
  const model = createModel(modelSpec);
  // a neural network has no smoothness constant to derive γ from (SPEC §5: minibatch SGD, tuned γ)
  const L = neural ? NaN : smoothnessOf(model, dataset);
  const gamma = config.gamma !== 'auto' ? config.gamma : neural ? NN_DEFAULT_GAMMA : 1 / L;
  if (neural && config.gamma === 'auto') warnings.push(`--gamma auto: the ${modelSpec.kind} network has no smoothness constant, so γ = ${NN_DEFAULT_GAMMA}; tune --gamma`);
  if (neural && config.batchSize === 0) warnings.push(`full-batch gradients of the ${modelSpec.kind} network are slow: set --batch-size (e.g. 32)`);
  if (config.participation < 1) {
    warnings.push(
      `partial participation (${config.participation}): the convergence theory of ProxSkip and Sparse-ProxSkip assumes every client takes part in every round`,
    );
  }
  const method = methodOf(config);
  const init = config.init === null ? null : initialParams(loadModel(config.init), modelSpec, config.init);
  const prepared: PreparedRun = { config, method, dataset, modelSpec, L, gamma, lambda: 0, lambdaSearch: null, init, warnings };
  if (config.lambda !== 'auto') prepared.lambda = config.lambda;
  else if (method.pruneMode === 'l1') {
    const search = await searchLambda(prepared, opts);
    prepared.lambda = search.lambda;
    prepared.lambdaSearch = search;
    if (search.warning) warnings.push(search.warning);
  }
  return prepared;
}

/**
 * The configuration a found λ belongs to: everything that shapes the final average, i.e. the whole
 * config except λ itself and options that only change speed or what is recorded.
 */
export function lambdaCacheKey(config: RunConfig): string {
  return configKey(config, NOT_SHAPING_LAMBDA);
}

/** Options that do not change a run's final average (or are λ itself). */
const NOT_SHAPING_LAMBDA = ['lambda', 'workers', 'timing', 'evalEvery', 'evalTrainRows', 'topkAt', 'dataDir', 'stateDir', ...LIMIT_KEYS];

/**
 * The cache entry a search starts from: the λ found last for the same configuration with another seed.
 * Other seeds shuffle the data and coins, not the problem, so their λ is close and a search from it
 * takes a few runs instead of a bracket grown from λ_max.
 */
function lambdaHintKey(config: RunConfig): string {
  return `any seed: ${configKey(config, [...NOT_SHAPING_LAMBDA, 'seed'])}`;
}

/** Options newer than λ caches on disk: left out of the key while at their default, so those caches still match. */
const NEWER_OPTIONS: (keyof RunConfig)[] = ['init', 'stopTol', 'pruneInit'];

function configKey(config: RunConfig, ignored: string[]): string {
  const atDefault = (k: string, v: unknown): boolean => NEWER_OPTIONS.includes(k as keyof RunConfig) && JSON.stringify(v) === JSON.stringify(DEFAULTS[k as keyof typeof DEFAULTS]);
  const kept = Object.entries(config).filter(([k, v]) => !ignored.includes(k) && !atDefault(k, v));
  return JSON.stringify(kept.sort(([a], [b]) => a.localeCompare(b)));
}

/** Bracket growth from another seed's λ (from λ_max/10 it is a decade a step). */
const HINT_EXPAND = 2;

/**
 * `--lambda auto`: the λ whose final plain average (the model before the evaluated TopK) has K
 * nonzero prunable weights, each probe a full run of this very configuration. The search starts from the λ found for
 * another seed where the cache has one, else a decade below λ_max = ‖∇f(0)‖∞, the smallest λ for
 * which 0 is the optimum of the centralised ℓ1 problem.
 */
async function searchLambda(prepared: PreparedRun, opts: PrepareOptions): Promise<LambdaSearchResult> {
  const key = lambdaCacheKey(prepared.config);
  const cached = opts.lambdaCache?.get(key);
  if (cached) return cached;
  const model = createModel(prepared.modelSpec);
  const pruner = makePruner(model.layout, prepared.config.sparsity, prepared.config.topkScope);
  const stop = opts.shouldStop ? { shouldStop: opts.shouldStop } : {};
  // Only the final average matters here: evaluate no round but the last, record no time.
  const probeOptions = { evalEvery: Math.max(1, prepared.config.rounds), timing: false };
  const hintKey = lambdaHintKey(prepared.config);
  const hint = opts.lambdaCache?.get(hintKey);
  const fromLambdaMax = (): { start?: number } => {
    const lambdaMax = gradientInfNorm(prepared, model, pruner);
    return lambdaMax > 0 ? { start: lambdaMax / 10 } : {};
  };
  const start = hint ? { start: hint.lambda, expand: HINT_EXPAND } : fromLambdaMax();
  const result = await findLambda(
    async (lambda) => {
      const sim = await simulate(prepared.dataset, { ...simOptions(prepared, lambda), ...probeOptions }, stop);
      if (sim.interrupted) throw new SearchInterrupted('λ search interrupted');
      return prunableNnz(sim.average, pruner);
    },
    {
      target: pruner.k,
      ...start,
      ...(opts.onLambdaProbe ? { onProbe: opts.onLambdaProbe } : {}),
    },
  );
  opts.lambdaCache?.set(key, result);
  opts.lambdaCache?.set(hintKey, result);
  return result;
}

/** Nonzeros among the prunable coordinates: K counts only those (an intercept is dense and never pruned). */
function prunableNnz(x: Float32Array, pruner: Pruner): number {
  let count = 0;
  pruner.mapPrunable(x, (block) => {
    count += nnz(block);
  });
  return count;
}

/** ‖∇f(0)‖∞ over the prunable coordinates, f the mean of the clients' losses. */
function gradientInfNorm(prepared: PreparedRun, model: Model, pruner: Pruner): number {
  const d = model.layout.d;
  const zero = new Float32Array(d);
  const g = new Float32Array(d);
  const sum = new Float64Array(d);
  for (const c of prepared.dataset.clients) {
    model.lossGrad(zero, c, g);
    for (let j = 0; j < d; j++) sum[j]! += g[j]!;
  }
  const mean = Float32Array.from(sum, (v) => v / prepared.dataset.clients.length);
  let max = 0;
  pruner.mapPrunable(mean, (block) => {
    for (const v of block) max = Math.max(max, Math.abs(v));
  });
  return max;
}

/** γ for a neural network under --gamma auto. */
export const NN_DEFAULT_GAMMA = 0.05;

function modelSpecFor(config: RunConfig, data: FederatedDataset): ModelSpec {
  if (config.model === 'cnn' || config.model === 'resnet18' || config.model === 'femnist-cnn') return networkSpecFor(config.model, config, data);
  if (config.model === 'linear' && data.task === 'multiclass') {
    throw new UsageError(`--model linear needs a regression or binary dataset; ${data.name} has ${data.nClasses} classes`);
  }
  if (config.model === 'logistic' && data.task === 'regression') {
    throw new UsageError(`--model logistic needs class labels; ${data.name} is a regression dataset`);
  }
  const task = config.model === 'linear' ? 'regression' : data.task;
  return defaultModelSpec(task, data.nFeatures, data.nClasses, { intercept: config.intercept, l2: config.l2 });
}

/** A network for square images: n = s·s·3 colour or s·s grey pixels per row, NHWC (cifar10, femnist). */
function networkSpecFor(kind: 'cnn' | 'resnet18' | 'femnist-cnn', config: RunConfig, data: FederatedDataset): ModelSpec {
  if (data.task !== 'multiclass') throw new UsageError(`--model ${kind} needs class labels; ${data.name} is a ${data.task} dataset`);
  if (data.clients.some((c) => c.x.kind !== 'dense')) throw new UsageError(`--model ${kind} needs dense image rows; ${data.name} is sparse`);
  const n = data.nFeatures;
  const side = (m: number): number => (Number.isInteger(Math.sqrt(m)) ? Math.sqrt(m) : 0);
  const inputShape: [number, number, number] | null =
    n % 3 === 0 && side(n / 3) > 0 ? [side(n / 3), side(n / 3), 3] : side(n) > 0 ? [side(n), side(n), 1] : null;
  if (!inputShape) throw new UsageError(`--model ${kind} needs square images (s·s·3 or s·s values per row); ${data.name} has ${n}`);
  return { kind, nFeatures: n, nClasses: data.nClasses, intercept: false, l2: config.l2, inputShape };
}

export interface RunSummary {
  version: string;
  algorithm: string;
  config: RunConfig;
  method: MethodSpec;
  dataset: { name: string; task: string; clients: number; nFeatures: number; nClasses: number; trainSamples: number; testSamples: number; meta: Record<string, unknown> };
  /** the model and its files (model.safetensors, model.wire, tfjs/ for networks) */
  model: { spec: ModelSpec; d: number; k: number } & ModelFiles;
  gamma: number;
  L: number;
  /** the l1 weight used by l1 methods (null for the others) */
  lambda: number | null;
  /** how `--lambda auto` found it (null when λ was given) */
  lambdaSearch: LambdaSearchResult | null;
  roundsDone: number;
  interrupted: boolean;
  /** stopped by the stop rule (config.stopTol) before config.rounds */
  converged: boolean;
  /** the last evaluated round */
  final: RoundRecord | null;
  /** dense methods: the final model after post-hoc TopK */
  postHocTopk: SimResult['postHocTopk'];
  /** TopK of the final plain average at config.topkAt's sparsities */
  topkAt: SimResult['topkAt'];
  testMetricName: 'r2' | 'accuracy' | null;
  communication: {
    uplinkFloatsPerRoundDense: number;
    encodings: ReturnType<SimResult['ledger']['encodingCounts']>;
    perClient: ReturnType<SimResult['ledger']['perClient']>;
  };
  warnings: string[];
}

export const SUMMARY_FILE = 'summary.json';
/** Written instead of summary.json when a run stops with a SimulationError (it diverged). */
export const FAILED_FILE = 'failed.json';

export interface RunFailure {
  version: string;
  config: RunConfig;
  error: string;
  /** the last round written to rounds.jsonl */
  roundsDone: number;
}

export interface RunHooks {
  onRound?(record: RoundRecord, prepared: PreparedRun): void;
  shouldStop?(): boolean;
}

/**
 * How often `run` and an experiment's cells save their state (and on Ctrl-C), so a killed run continues
 * from there: an hour-long ResNet18 run loses at most this much; its state (≈ 0.6 GB) takes a second or two to write.
 */
export const CHECKPOINT_SECONDS = 300;

export interface RunDirOptions {
  /**
   * Save the run's state to DIR/checkpoint.bin every this many seconds (at the end of a round) and when
   * stopped; it is removed once the run has finished or diverged. Absent: no checkpoints.
   */
  checkpointSeconds?: number;
  /** continue from DIR/checkpoint.bin when it belongs to this run (else start at round 0) */
  resume?: boolean;
}

/** Runs a prepared run and writes its files into `outDir`. */
export async function runToDir(
  prepared: PreparedRun,
  outDir: string,
  hooks: RunHooks = {},
  opts: RunDirOptions = {},
): Promise<{ summary: RunSummary; result: SimResult; resumedAfter: number | null }> {
  const { dataset } = prepared;
  mkdirSync(outDir, { recursive: true });
  const checkpointPath = join(outDir, CHECKPOINT_FILE);
  const identity = runIdentity(prepared.config);
  const resume = opts.resume ? readCheckpoint(checkpointPath, identity) : null;
  // files of an earlier run in the same directory would describe rounds this run overwrites
  for (const f of [SUMMARY_FILE, FAILED_FILE, ...MODEL_OUTPUTS, ...(resume ? [] : [CHECKPOINT_FILE])]) rmSync(join(outDir, f), { force: true });
  const roundsPath = join(outDir, 'rounds.jsonl');
  // a resumed run's records up to its checkpoint are the checkpoint's (rounds.jsonl may have gone further)
  if (resume) writeFileAtomic(roundsPath, resume.records.map((r) => JSON.stringify(r) + '\n').join(''));
  const writer = new JsonlWriter(roundsPath, { append: resume !== null });
  let result: SimResult;
  let roundsDone = resume?.round ?? 0;
  let lastSave = performance.now();
  try {
    result = await simulate(
      dataset,
      { ...simOptions(prepared, prepared.lambda), resume },
      {
        onRound: (rec) => {
          writer.write(rec);
          roundsDone = rec.round;
          hooks.onRound?.(rec, prepared);
        },
        ...(hooks.shouldStop ? { shouldStop: hooks.shouldStop } : {}),
        ...(opts.checkpointSeconds !== undefined && {
          checkpoint: (state, stopping) => {
            if (!stopping && performance.now() - lastSave < opts.checkpointSeconds! * 1000) return;
            writeCheckpoint(checkpointPath, identity, state());
            lastSave = performance.now();
          },
        }),
      },
    );
  } catch (e) {
    if (e instanceof SimulationError) {
      // rounds.jsonl keeps the rounds before the failure; failed.json says why there is no summary.json
      writeJsonAtomic(join(outDir, FAILED_FILE), { version: VERSION, config: prepared.config, error: e.message, roundsDone } satisfies RunFailure);
      rmSync(checkpointPath, { force: true });
    }
    throw e;
  } finally {
    writer.close();
  }
  const files = await writeModelFiles(outDir, result.model, runModelInfo(prepared, result.records.at(-1)!.round, result.k));
  const summary = summarize(prepared, result, files);
  writeJsonAtomic(join(outDir, SUMMARY_FILE), summary);
  // an interrupted run keeps its checkpoint, to continue from it
  if (!result.interrupted) rmSync(checkpointPath, { force: true });
  return { summary, result, resumedAfter: resume?.round ?? null };
}

export function simOptions(prepared: PreparedRun, lambda: number): SimOptions {
  const { config } = prepared;
  return {
    method: prepared.method,
    modelSpec: prepared.modelSpec,
    sparsity: config.sparsity,
    topkScope: config.topkScope,
    step: {
      gamma: prepared.gamma,
      p: config.p,
      lambda,
      steDecay: config.steDecay,
      batchSize: config.batchSize,
      seed: config.seed,
      ...(config.augment ? { augment: true } : {}),
    },
    localSteps: config.localSteps,
    schedule: config.schedule,
    rounds: config.rounds,
    stopTol: config.stopTol,
    participation: config.participation,
    workers: config.workers,
    evalEvery: config.evalEvery,
    evalTrainRows: config.evalTrainRows,
    pruneInit: config.pruneInit,
    postHocTopk: config.postHocTopk,
    topkAt: config.topkAt,
    timing: config.timing,
    stateDir: config.stateDir,
    init: prepared.init,
  };
}

/** What a run's model files record (shared with the networked server). */
export function runModelInfo(prepared: PreparedRun, round: number, k: number): RunModelInfo {
  const { config, dataset } = prepared;
  const labelMap = dataset.meta.labelMap;
  // the TF.js export's moving statistics: those our evaluation normalises with (a fixed training sample)
  const calibration = evalReferenceOf(prepared.modelSpec, dataset.clients);
  return {
    spec: prepared.modelSpec,
    algorithm: config.algorithm,
    sparsity: config.sparsity,
    k,
    dataset: config.dataset,
    round,
    config,
    ...(dataset.input ? { input: dataset.input } : {}),
    ...(Array.isArray(labelMap) ? { labelMap: labelMap as number[] } : {}),
    ...(calibration ? { calibration } : {}),
  };
}

function summarize(prepared: PreparedRun, result: SimResult, files: ModelFiles): RunSummary {
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
    model: { spec: prepared.modelSpec, d: result.d, k: result.k, ...files },
    gamma: prepared.gamma,
    L: prepared.L,
    lambda: prepared.method.pruneMode === 'l1' ? prepared.lambda : null,
    lambdaSearch: prepared.lambdaSearch,
    roundsDone: result.records.length - 1,
    interrupted: result.interrupted,
    converged: result.converged,
    final: evaluated.at(-1) ?? null,
    postHocTopk: result.postHocTopk,
    topkAt: result.topkAt,
    testMetricName: result.testMetricName,
    communication: {
      uplinkFloatsPerRoundDense: result.d * dataset.clients.length,
      encodings: result.ledger.encodingCounts(),
      perClient: result.ledger.perClient(),
    },
    warnings: prepared.warnings,
  };
}
