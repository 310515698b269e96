/** The options of one simulated run, validated, as a plain object (stored in summary.json). */
import { excerpt, UsageError } from '../errors.js';
import { ALGORITHMS, isAlgorithm, methodSpec, type AlgorithmName, type HReference, type MethodSpec, type PruneMode } from '../algorithms/methods.js';
import type { Schedule } from '../algorithms/schedule.js';
import type { TopkScope } from '../core/prune.js';
import { DEFAULT_LIMITS, LIMIT_KEYS, resolveLimits, type DataLimits } from '../data/limits.js';

/** The data limits (src/data/limits.ts) are run options too, so files, configs and the command line set them alike. */
export interface RunConfig extends DataLimits {
  algorithm: AlgorithmName;
  /** 'synthetic', 'synthetic:ALPHA,BETA', 'lsq', 'images[:SIDE]', 'libsvm:PATH', 'blogfeedback[:OPTS]', 'femnist[:OPTS]' (docs/data.md) */
  dataset: string;
  /** held-out data, 'libsvm:PATH' (generated datasets bring their own) */
  test: string | null;
  /** where blogfeedback/ and femnist/ live; null: ../shared/data if it exists, else ./data */
  dataDir: string | null;
  clients: number;
  partition: string;
  /** a convex model (auto: from the labels), or a neural network for image data (src/models/nn) */
  model: 'auto' | 'linear' | 'logistic' | 'cnn' | 'resnet18' | 'femnist-cnn';
  intercept: boolean;
  l2: number;
  sparsity: number;
  topkScope: TopkScope;
  gamma: number | 'auto';
  p: number;
  localSteps: number;
  schedule: Schedule;
  /** at most this many rounds (with stopTol > 0, a cap) */
  rounds: number;
  /**
   * stop once the train loss changed by at most this fraction over the last 10% of rounds (the run
   * has converged); 0: run every round
   */
  stopTol: number;
  seed: number;
  /** l1 weight of randprox-l1; 'auto': found by bisection so the model has K nonzeros (src/sim/lambda.ts) */
  lambda: number | 'auto';
  steDecay: number;
  batchSize: number;
  participation: number;
  workers: number;
  evalEvery: number;
  /** the train loss over the first this many rows of each client, a fixed stated subsample (null: all rows) */
  evalTrainRows: number | null;
  /** start from TopK of x₀ (the seeded init, or --init's model) at the run's sparsity */
  pruneInit: boolean;
  postHocTopk: boolean;
  /**
   * also evaluate TopK of the final plain average at these sparsities (summary.topkAt): the post-hoc
   * pruned models of a dense method, or of randprox-l1, whose training does not depend on K
   */
  topkAt: number[];
  timing: boolean;
  /** keep at most this many samples per client, for quick runs (null: all) */
  maxSamples: number | null;
  /** random crop and horizontal flip of each image minibatch at training time (cifar10) */
  augment: boolean;
  /** keep per-client state (control variates) in files under this directory instead of memory */
  stateDir: string | null;
  /** start from this saved model (model.safetensors) instead of x₀ = 0 or the network's seeded init */
  init: string | null;
  /** switches overriding the algorithm's preset (SPEC §3) */
  pruneMode: Exclude<PruneMode, 'none'> | null;
  pruneAfterAverage: boolean | null;
  hReference: HReference | null;
}

export const MODELS: readonly RunConfig['model'][] = ['auto', 'linear', 'logistic', 'cnn', 'resnet18', 'femnist-cnn'];

export const DEFAULTS: Omit<RunConfig, 'algorithm'> = {
  dataset: 'synthetic',
  test: null,
  dataDir: null,
  clients: 30,
  partition: 'contiguous',
  model: 'auto',
  intercept: false,
  l2: 0,
  sparsity: 0.9,
  topkScope: 'global',
  gamma: 'auto',
  p: 0.1,
  localSteps: 10,
  schedule: 'fixed',
  rounds: 100,
  stopTol: 0,
  seed: 0,
  lambda: 1e-3,
  steDecay: 0,
  batchSize: 0,
  participation: 1,
  workers: 1,
  evalEvery: 1,
  evalTrainRows: null,
  pruneInit: false,
  postHocTopk: false,
  topkAt: [],
  timing: true,
  maxSamples: null,
  augment: false,
  stateDir: null,
  init: null,
  pruneMode: null,
  pruneAfterAverage: null,
  hReference: null,
  ...DEFAULT_LIMITS,
};

/** Fills defaults and checks every option; throws UsageError naming the option. */
export function resolveConfig(input: Partial<Omit<RunConfig, 'algorithm'>> & { algorithm: string }): RunConfig {
  if (!isAlgorithm(input.algorithm)) {
    throw new UsageError(`unknown algorithm '${excerpt(String(input.algorithm))}' (choose from: ${ALGORITHMS.join(', ')})`);
  }
  // k = 1/p when only one of them is given
  const p = input.p ?? (input.localSteps !== undefined ? 1 / input.localSteps : DEFAULTS.p);
  const localSteps = input.localSteps ?? (input.p !== undefined ? Math.max(1, Math.round(1 / input.p)) : DEFAULTS.localSteps);
  const c: RunConfig = { ...DEFAULTS, ...definedOnly(input), algorithm: input.algorithm, p, localSteps };
  check(c.sparsity >= 0 && c.sparsity < 1, `--sparsity must be in [0, 1), got ${c.sparsity}`);
  check(c.gamma === 'auto' || (Number.isFinite(c.gamma) && c.gamma > 0), `--gamma must be a positive number or 'auto', got ${c.gamma}`);
  check(Number.isFinite(c.p) && c.p > 0 && c.p <= 1, `--p must be in (0, 1], got ${c.p}`);
  check(isInt(c.localSteps, 1), `--local-steps must be an integer >= 1, got ${c.localSteps}`);
  check(isInt(c.rounds, 0), `--rounds must be an integer >= 0, got ${c.rounds}`);
  check(Number.isFinite(c.stopTol) && c.stopTol >= 0 && c.stopTol < 1, `--stop-tol must be in [0, 1), got ${c.stopTol}`);
  check(
    Array.isArray(c.topkAt) && c.topkAt.every((s) => typeof s === 'number' && s >= 0 && s < 1),
    `--topk-at must be a list of sparsities in [0, 1), got ${JSON.stringify(c.topkAt)}`,
  );
  check(isInt(c.clients, 1), `--clients must be an integer >= 1, got ${c.clients}`);
  check(Number.isSafeInteger(c.seed) && c.seed >= 0, `--seed must be a non-negative integer, got ${c.seed}`);
  check(Number.isFinite(c.l2) && c.l2 >= 0, `--l2 must be >= 0, got ${c.l2}`);
  check(c.lambda === 'auto' || (Number.isFinite(c.lambda) && c.lambda >= 0), `--lambda must be >= 0 or 'auto', got ${c.lambda}`);
  check(Number.isFinite(c.steDecay) && c.steDecay >= 0, `--ste-decay must be >= 0, got ${c.steDecay}`);
  check(isInt(c.batchSize, 0), `--batch-size must be an integer >= 0 (0 = full batch), got ${c.batchSize}`);
  check(c.participation > 0 && c.participation <= 1, `--participation must be in (0, 1], got ${c.participation}`);
  check(isInt(c.workers, 1), `--workers must be an integer >= 1, got ${c.workers}`);
  check(isInt(c.evalEvery, 1), `--eval-every must be an integer >= 1, got ${c.evalEvery}`);
  check(c.evalTrainRows === null || isInt(c.evalTrainRows, 1), `--eval-train-rows must be an integer >= 1, got ${c.evalTrainRows}`);
  check(c.maxSamples === null || isInt(c.maxSamples, 1), `--max-samples must be an integer >= 1, got ${c.maxSamples}`);
  check(c.stateDir === null || c.stateDir !== '', '--state-dir must not be empty');
  check(c.init === null || c.init !== '', '--init must not be empty');
  check(['fixed', 'random'].includes(c.schedule), `--schedule must be 'fixed' or 'random', got '${excerpt(String(c.schedule))}'`);
  check(['global', 'layer'].includes(c.topkScope), `--topk-scope must be 'global' or 'layer', got '${excerpt(String(c.topkScope))}'`);
  check(MODELS.includes(c.model), `--model must be one of ${MODELS.join(', ')}, got '${excerpt(String(c.model))}'`);
  check(c.pruneMode === null || ['prox', 'ste'].includes(c.pruneMode), `--prune-mode must be 'prox' or 'ste', got '${excerpt(String(c.pruneMode))}'`);
  check(
    c.hReference === null || ['sent', 'unprunedAverage', 'recentre'].includes(c.hReference),
    `--h-reference must be sent, unprunedAverage or recentre, got '${excerpt(String(c.hReference))}'`,
  );
  try {
    methodOf(c);
    resolveLimits(c);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return c;
}

/** The algorithm's preset with the config's switches applied. */
export function methodOf(c: RunConfig): MethodSpec {
  return methodSpec(c.algorithm, {
    ...(c.pruneMode !== null ? { pruneMode: c.pruneMode } : {}),
    ...(c.pruneAfterAverage !== null ? { pruneAfterAverage: c.pruneAfterAverage } : {}),
    ...(c.hReference !== null ? { hReference: c.hReference } : {}),
  });
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new UsageError(message);
}

function isInt(x: number, min: number): boolean {
  return Number.isSafeInteger(x) && x >= min;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Options that change neither the results nor what they mean: a cell run with 1 or 4 worker threads,
 * on another copy of the data, or under other data limits (cells finished before the limits existed
 * have none), is the same cell.
 */
const IGNORED_FOR_RESUME = new Set<string>(['workers', 'dataDir', 'stateDir', ...LIMIT_KEYS]);

/** The two configs describe the same run (key order and IGNORED_FOR_RESUME fields do not matter). */
export function sameRun(a: RunConfig, b: RunConfig): boolean {
  return runIdentity(a) === runIdentity(b);
}

/** A run's configuration as a string equal for the same run: fields a config was written without (added to RunConfig later) count as their defaults. */
export function runIdentity(c: RunConfig): string {
  return JSON.stringify(
    Object.entries({ ...DEFAULTS, ...c })
      .filter(([k]) => !IGNORED_FOR_RESUME.has(k))
      .sort(([x], [y]) => x.localeCompare(y)),
  );
}
