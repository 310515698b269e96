/** Command-line options shared by `run` and `compare`, mapped onto RunConfig. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_LIMITS } from '../data/limits.js';
import { MODELS, type RunConfig } from '../sim/config.js';

const num = (name: string) => (v: string): number => {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new InvalidArgumentError(`${name} must be a number, got '${v}'`);
  return x;
};
export const int = (name: string) => (v: string): number => {
  const x = num(name)(v);
  if (!Number.isInteger(x)) throw new InvalidArgumentError(`${name} must be an integer, got '${v}'`);
  return x;
};
const bool = (name: string) => (v: string): boolean => {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new InvalidArgumentError(`${name} must be true or false, got '${v}'`);
};
const gamma = (v: string): number | 'auto' => (v === 'auto' ? 'auto' : num('--gamma')(v));
const lambda = (v: string): number | 'auto' => (v === 'auto' ? 'auto' : num('--lambda')(v));

/** Adds every simulation option (no defaults here: RunConfig's DEFAULTS apply, and --help shows them). */
export function addRunOptions(cmd: Command): Command {
  cmd
    .option('--dataset <spec>', 'data: synthetic | synthetic:ALPHA,BETA | lsq | libsvm:PATH | blogfeedback[:OPTS] | femnist[:OPTS] | cifar10[:test=N] (see docs/data.md; default: synthetic)')
    .option('--test <spec>', 'held-out data for the test metric: libsvm:PATH')
    .option('--data-dir <dir>', 'folder holding blogfeedback/, femnist/ and cifar10/ (default: ../shared/data if it exists, else ./data)')
    .option('--clients <n>', 'number of clients (default: 30; ignored by blogfeedback and femnist, which have natural clients)', int('--clients'))
    .option('--partition <scheme>', 'split of file data over clients: contiguous | iid | dirichlet:ALPHA (default: contiguous)')
    .addOption(new Option('--model <kind>', 'model (default: auto, from the labels); cnn, resnet18, femnist-cnn: neural networks for image data (docs/nn.md)').choices([...MODELS]))
    .option('--intercept', 'learn an intercept (off by default, as in LIBLINEAR)')
    .option('--l2 <l2>', 'L2 regularisation (default: 0)', num('--l2'))
    .option('--sparsity <s>', 'fraction of prunable weights set to zero, in [0, 1) (default: 0.9)', num('--sparsity'))
    .addOption(new Option('--topk-scope <scope>', 'one K over all prunable weights, or one per layer (default: global)').choices(['global', 'layer']))
    .option('--gamma <g>', "step size, or 'auto' for 1/L (default: auto)", gamma)
    .option('--p <p>', 'communication probability (default: 0.1, or 1/local-steps)', num('--p'))
    .option('--local-steps <k>', 'local steps per round with --schedule fixed (default: 1/p)', int('--local-steps'))
    .addOption(new Option('--schedule <s>', 'fixed: every k steps; random: a shared coin each step (default: fixed)').choices(['fixed', 'random']))
    .option('--rounds <r>', 'communication rounds (default: 100)', int('--rounds'))
    .option('--stop-tol <t>', 'stop once the train loss changed by at most this fraction over the last 10% of rounds; --rounds is then a cap (default: 0, off)', num('--stop-tol'))
    .option('--seed <n>', 'random seed (default: 0)', int('--seed'))
    .option('--lambda <l>', "l1 weight of randprox-l1, or 'auto': the λ whose model has the target sparsity (default: 0.001)", lambda)
    .option('--ste-decay <d>', 'SR-STE decay on pruned weights (default: 0)', num('--ste-decay'))
    .option('--batch-size <b>', 'minibatch size, 0 = full batch (default: 0)', int('--batch-size'))
    .option('--participation <q>', 'fraction of clients per round (default: 1; the theory assumes 1)', num('--participation'))
    .option('--workers <n>', 'worker threads for the clients (default: 1)', int('--workers'))
    .option('--eval-every <n>', 'evaluate every n rounds (default: 1)', int('--eval-every'))
    .option('--eval-train-rows <n>', 'the train loss over the first n rows of each client, to keep evaluation cheap (default: all rows)', int('--eval-train-rows'))
    .option('--prune-init', 'start from TopK of the initial model at --sparsity (networks start dense otherwise)')
    .option('--post-hoc-topk', 'dense methods: evaluate TopK of the model')
    .option('--topk-at <list>', 'also evaluate TopK of the final average at these sparsities, e.g. 0.5,0.9 (summary.json topkAt)', (v: string) => v.split(',').map((x) => num('--topk-at')(x)))
    .option('--no-timing', 'write seconds as null, so equal seeds give byte-identical rounds.jsonl')
    .option('--max-samples <n>', 'keep at most n samples per client, for quick runs (default: all)', int('--max-samples'))
    .option('--augment', 'random crop (pad 4) and horizontal flip of each training minibatch (cifar10)')
    .option('--state-dir <dir>', 'keep per-client state in files under DIR instead of memory (same results; for large models)')
    .option('--init <model>', 'start from a saved model (a run\'s model.safetensors) instead of x₀ = 0 or the seeded init')
    .addOption(new Option('--prune-mode <m>', 'override the preset: prox | ste').choices(['prox', 'ste']))
    .option('--prune-after-average <bool>', 'override the preset: continue from TopK(average)', bool('--prune-after-average'))
    .addOption(new Option('--h-reference <r>', 'override the preset').choices(['sent', 'unprunedAverage', 'recentre']));
  return addLimitOptions(cmd);
}

/** The data limits (src/data/limits.ts; docs/data.md, "Limits"): for every command that reads data files. */
export function addLimitOptions(cmd: Command): Command {
  return cmd
    .option('--max-line-bytes <n>', `longest line of a text data file (default: ${DEFAULT_LIMITS.maxLineBytes})`, int('--max-line-bytes'))
    .option('--max-dimension <n>', `largest LIBSVM feature index (default: ${DEFAULT_LIMITS.maxDimension})`, int('--max-dimension'))
    .option('--max-decompressed-mb <mb>', `most content of one data file after gunzip, in MB (default: ${DEFAULT_LIMITS.maxDecompressedMb})`, num('--max-decompressed-mb'));
}

/** The RunConfig fields set on the command line (commander's camelCase names match RunConfig's). */
export function configFromOptions(o: Record<string, unknown>): Partial<Omit<RunConfig, 'algorithm'>> {
  const keys: (keyof RunConfig)[] = [
    'dataset', 'test', 'dataDir', 'clients', 'partition', 'model', 'intercept', 'l2', 'sparsity', 'topkScope', 'gamma', 'p',
    'localSteps', 'schedule', 'rounds', 'stopTol', 'seed', 'lambda', 'steDecay', 'batchSize', 'participation', 'workers',
    'evalEvery', 'evalTrainRows', 'pruneInit', 'postHocTopk', 'topkAt', 'timing', 'maxSamples', 'augment', 'stateDir', 'init', 'pruneMode', 'pruneAfterAverage', 'hReference',
    'maxLineBytes', 'maxDimension', 'maxDecompressedMb',
  ];
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out as Partial<Omit<RunConfig, 'algorithm'>>;
}
