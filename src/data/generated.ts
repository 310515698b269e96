/**
 * The generated datasets of `--dataset` (synthetic, lsq, images): made from the seed and the number of
 * clients, no files. Imports nothing from `node:`, so the browser client makes exactly the data a Node
 * client makes (loadGenerated); index.ts registers these sources with the file-based ones.
 */
import { excerpt } from '../errors.js';
import type { Task } from '../models/types.js';
import type { RunConfig } from '../sim/config.js';
import { DataError } from './errors.js';
import { pickLimits, type DataLimits } from './limits.js';
import { parseDecimal } from './parse.js';
import { describePartition, parsePartition, type PartitionScheme } from './partition.js';
import { sizeSummary, subset } from './rows.js';
import { heterogeneousLeastSquares, syntheticImages, syntheticLogistic } from './synthetic.js';
import type { FederatedDataset } from './types.js';

export type GeneratedSpec = { kind: 'synthetic'; alpha: number; beta: number } | { kind: 'lsq' } | { kind: 'images'; side: number };

export interface LoadOptions {
  clients: number;
  /** how a single-file dataset is split; generated datasets have natural clients and ignore it */
  partition: PartitionScheme;
  seed: number;
  /** held-out data for a libsvm dataset, 'libsvm:PATH' (generated datasets make their own) */
  test?: string;
  /** skip task inference (libsvm), or check the generator's task */
  task?: Task;
  /** where the named real datasets (blogfeedback, femnist) live; default: defaultDataDir() */
  dataDir?: string;
  /** keep at most this many samples per client (each client's first rows), for quick runs */
  maxSamples?: number;
  /** what a data file may make the readers hold (defaults: DEFAULT_LIMITS) */
  limits?: Partial<DataLimits>;
}

export interface LoadedDataset {
  dataset: FederatedDataset;
  warnings: string[];
}

/** One kind of dataset spec: its forms, its parser, its loader. */
export interface Source<S> {
  /** the accepted spec forms, shown in errors */
  forms: string[];
  /** `arg` is the text after the first ':', undefined when there is no ':' */
  parse(arg: string | undefined, text: string): S;
  load(spec: S, opts: LoadOptions): Promise<LoadedDataset>;
}

type GenSpecOf<K extends GeneratedSpec['kind']> = Extract<GeneratedSpec, { kind: K }>;

export const GENERATED_SOURCES: { [K in GeneratedSpec['kind']]: Source<GenSpecOf<K>> } = {
  synthetic: {
    forms: ['synthetic', 'synthetic:ALPHA,BETA'],
    parse(arg, text) {
      if (arg === undefined) return { kind: 'synthetic', alpha: 1, beta: 1 };
      const [alpha, beta, ...rest] = arg.split(',').map((t) => parseDecimal(t.trim()));
      if (alpha == null || beta == null || alpha < 0 || beta < 0 || rest.length > 0) {
        throw new DataError(`bad dataset '${text}' (expected synthetic:ALPHA,BETA with ALPHA, BETA >= 0, e.g. synthetic:0.5,0.5)`);
      }
      return { kind: 'synthetic', alpha, beta };
    },
    load: async (spec, opts) =>
      generated('multiclass', opts, () => syntheticLogistic({ alpha: spec.alpha, beta: spec.beta, clients: opts.clients, seed: opts.seed })),
  },
  lsq: {
    forms: ['lsq'],
    parse(arg, text) {
      if (arg !== undefined) throw new DataError(`bad dataset '${text}' (lsq takes no arguments)`);
      return { kind: 'lsq' };
    },
    load: async (_spec, opts) => generated('regression', opts, () => heterogeneousLeastSquares({ clients: opts.clients, seed: opts.seed })),
  },
  images: {
    forms: ['images', 'images:SIDE'],
    parse(arg, text) {
      if (arg === undefined) return { kind: 'images', side: 8 };
      // 8 at least: the cnn halves the side three times
      if (!/^[1-9]\d?$/.test(arg) || Number(arg) < 8 || Number(arg) > 64) throw new DataError(`bad dataset '${text}' (expected images:SIDE with SIDE an integer in 8..64, e.g. images:16)`);
      return { kind: 'images', side: Number(arg) };
    },
    load: async (spec, opts) => generated('multiclass', opts, () => syntheticImages({ clients: opts.clients, seed: opts.seed, side: spec.side })),
  },
};

/** The load options of a run's config (clients, partition, seed, test data, data dir, sample cap, limits). */
export function loadOptionsOf(config: RunConfig): LoadOptions {
  return {
    clients: config.clients,
    partition: parsePartition(config.partition),
    seed: config.seed,
    ...(config.test ? { test: config.test } : {}),
    ...(config.dataDir ? { dataDir: config.dataDir } : {}),
    ...(config.maxSamples !== null ? { maxSamples: config.maxSamples } : {}),
    limits: pickLimits(config),
  };
}

/** A generated dataset from its spec (`synthetic`, `synthetic:ALPHA,BETA`, `lsq`, `images[:SIDE]`), as loadFederated makes it. */
export async function loadGenerated(text: string, opts: LoadOptions): Promise<LoadedDataset> {
  const colon = text.indexOf(':');
  const name = colon < 0 ? text : text.slice(0, colon);
  const shown = excerpt(text, 200);
  if (!Object.hasOwn(GENERATED_SOURCES, name)) {
    throw new DataError(`dataset '${shown}' is not generated (here: ${Object.values(GENERATED_SOURCES).flatMap((x) => x.forms).join(', ')})`);
  }
  const source = GENERATED_SOURCES[name as GeneratedSpec['kind']] as Source<GeneratedSpec>;
  const loaded = await source.load(source.parse(colon < 0 ? undefined : text.slice(colon + 1), shown), opts);
  return opts.maxSamples === undefined ? loaded : capSamples(loaded, opts.maxSamples);
}

/** Keeps each client's first `max` rows (cifar10 caps before converting its images; this covers every source). */
export function capSamples(loaded: LoadedDataset, max: number): LoadedDataset {
  const first = Uint32Array.from({ length: max }, (_, i) => i);
  const clients = loaded.dataset.clients.map((c) => (c.y.length <= max ? c : subset(c, first)));
  const meta = { ...loaded.dataset.meta, maxSamples: max, samplesPerClient: sizeSummary(clients) };
  return { ...loaded, dataset: { ...loaded.dataset, clients, meta } };
}

/** Generates a dataset with natural clients after checking the options it cannot honour. */
function generated(task: Task, opts: LoadOptions, make: () => FederatedDataset): LoadedDataset {
  if (opts.test !== undefined) {
    throw new DataError(`test data '${opts.test}' can only go with a libsvm dataset; generated datasets make their own test set`);
  }
  if (opts.task !== undefined && opts.task !== task) throw new DataError(`this generated dataset is ${task}, not ${opts.task}`);
  const dataset = make();
  const warnings =
    opts.partition.kind === 'contiguous'
      ? []
      : [`partition ${describePartition(opts.partition)} ignored: ${dataset.name} has natural clients (one generated distribution each)`];
  return { dataset, warnings };
}

