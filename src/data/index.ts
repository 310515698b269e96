/**
 * The dataset registry behind the CLI's `--dataset`: a spec string names a source, and the source
 * loads a FederatedDataset. To add a dataset, add a DatasetSpec variant and a SOURCES entry.
 */
import { basename } from 'node:path';
import type { Task } from '../models/types.js';
import { DataError } from './errors.js';
import { readLibsvm } from './libsvm.js';
import { parseDecimal } from './parse.js';
import { describePartition, partition, type PartitionScheme } from './partition.js';
import { sizeSummary } from './rows.js';
import { heterogeneousLeastSquares, syntheticLogistic } from './synthetic.js';
import type { FederatedDataset } from './types.js';

export type DatasetSpec =
  | { kind: 'synthetic'; alpha: number; beta: number }
  | { kind: 'lsq' }
  | { kind: 'libsvm'; path: string };

export interface LoadOptions {
  clients: number;
  /** how a single-file dataset is split; generated datasets have natural clients and ignore it */
  partition: PartitionScheme;
  seed: number;
  /** held-out data for a libsvm dataset, 'libsvm:PATH' (generated datasets make their own) */
  test?: string;
  /** skip task inference (libsvm), or check the generator's task */
  task?: Task;
}

export interface LoadedDataset {
  dataset: FederatedDataset;
  warnings: string[];
}

type SpecOf<K extends DatasetSpec['kind']> = Extract<DatasetSpec, { kind: K }>;

interface Source<K extends DatasetSpec['kind']> {
  /** the accepted spec forms, shown in errors */
  forms: string[];
  /** `arg` is the text after the first ':', undefined when there is no ':' */
  parse(arg: string | undefined, text: string): SpecOf<K>;
  load(spec: SpecOf<K>, opts: LoadOptions): Promise<LoadedDataset>;
}

const SOURCES: { [K in DatasetSpec['kind']]: Source<K> } = {
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
  libsvm: {
    forms: ['libsvm:PATH'],
    parse(arg, text) {
      if (!arg) throw new DataError(`bad dataset '${text}' (expected libsvm:PATH)`);
      return { kind: 'libsvm', path: arg };
    },
    load: loadLibsvm,
  },
};

/** Every accepted dataset spec form. */
export const DATASET_FORMS: string[] = Object.values(SOURCES).flatMap((s) => s.forms);

/** Parses `synthetic`, `synthetic:ALPHA,BETA`, `lsq` or `libsvm:PATH`. */
export function parseDatasetSpec(s: string): DatasetSpec {
  const colon = s.indexOf(':');
  const name = colon < 0 ? s : s.slice(0, colon);
  if (!Object.hasOwn(SOURCES, name)) throw new DataError(`unknown dataset '${s}' (valid: ${DATASET_FORMS.join(', ')})`);
  return sourceOf(name as DatasetSpec['kind']).parse(colon < 0 ? undefined : s.slice(colon + 1), s);
}

/** Loads the dataset `spec` names, split over `opts.clients` clients. */
export function loadFederated(spec: DatasetSpec, opts: LoadOptions): Promise<LoadedDataset> {
  return sourceOf(spec.kind).load(spec, opts);
}

function sourceOf<K extends DatasetSpec['kind']>(kind: K): Source<K> {
  return SOURCES[kind];
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

async function loadLibsvm(spec: SpecOf<'libsvm'>, opts: LoadOptions): Promise<LoadedDataset> {
  const testPath = opts.test === undefined ? undefined : testFilePath(opts.test);
  const train = await readLibsvm(spec.path, opts.task ? { task: opts.task } : {});
  const split = partition(train.data, opts.clients, opts.partition, opts.seed, train.task);
  // the test file must fit the training model: same width, task and label coding
  const test =
    testPath === undefined
      ? undefined
      : await readLibsvm(testPath, {
          nFeatures: train.nFeatures,
          task: train.task,
          ...(train.labelMap ? { labelMap: train.labelMap } : {}),
        });
  const dataset: FederatedDataset = {
    name: basename(spec.path),
    task: train.task,
    nFeatures: train.nFeatures,
    nClasses: train.nClasses,
    clients: split.clients,
    ...(test ? { test: test.data } : {}),
    meta: {
      source: spec.path,
      storage: train.data.x.kind,
      partition: describePartition(opts.partition),
      samplesPerClient: sizeSummary(split.clients),
      ...(train.labelMap ? { labelMap: train.labelMap } : {}),
      ...(testPath ? { test: testPath } : {}),
    },
  };
  return { dataset, warnings: split.warnings };
}

function testFilePath(text: string): string {
  const spec = parseDatasetSpec(text);
  if (spec.kind !== 'libsvm') throw new DataError(`test data '${text}' must be libsvm:PATH`);
  return spec.path;
}
