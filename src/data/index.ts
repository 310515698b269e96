/**
 * The dataset registry behind the CLI's `--dataset`: a spec string names a source, and the source
 * loads a FederatedDataset. To add a dataset, add a DatasetSpec variant and a SOURCES entry.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Task } from '../models/types.js';
import { BLOG_DEFAULTS, loadBlogFeedback, type BlogOptions } from './blogfeedback.js';
import { loadCifar10 } from './cifar10.js';
import { excerpt } from '../errors.js';
import { DataError } from './errors.js';
import { FEMNIST_DEFAULTS, loadFemnist, type FemnistOptions } from './femnist.js';
import { resolveLimits } from './limits.js';
import { readLibsvm } from './libsvm.js';
import { describePartition, partition } from './partition.js';
import { sizeSummary } from './rows.js';
import { capSamples, GENERATED_SOURCES, type GeneratedSpec, type LoadedDataset, type LoadOptions, type Source } from './generated.js';

import type { FederatedDataset } from './types.js';

export type { LoadedDataset, LoadOptions };

export type DatasetSpec =
  | GeneratedSpec
  | { kind: 'libsvm'; path: string }
  | ({ kind: 'blogfeedback' } & BlogOptions)
  | ({ kind: 'femnist' } & FemnistOptions)
  | { kind: 'cifar10'; testSamples?: number; validation?: number };

type SpecOf<K extends DatasetSpec['kind']> = Extract<DatasetSpec, { kind: K }>;

const SOURCES: { [K in DatasetSpec['kind']]: Source<SpecOf<K>> } = {
  ...GENERATED_SOURCES,
  libsvm: {
    forms: ['libsvm:PATH'],
    parse(arg, text) {
      if (!arg) throw new DataError(`bad dataset '${text}' (expected libsvm:PATH)`);
      return { kind: 'libsvm', path: arg };
    },
    load: loadLibsvm,
  },
  blogfeedback: {
    forms: ['blogfeedback', 'blogfeedback:log1p,min=N,small=drop|merge,scale=zscore|minmax'],
    parse(arg, text) {
      const spec: SpecOf<'blogfeedback'> = { kind: 'blogfeedback', ...BLOG_DEFAULTS };
      for (const [key, value] of specOptions(arg, text, ['log1p', 'min=N', 'small=drop|merge', 'scale=zscore|minmax'])) {
        if (key === 'log1p' && value === undefined) spec.log1p = true;
        else if (key === 'min' && value !== undefined && /^[1-9]\d{0,8}$/.test(value)) spec.minClientSize = Number(value);
        else if (key === 'small' && (value === 'drop' || value === 'merge')) spec.small = value;
        else if (key === 'scale' && (value === 'zscore' || value === 'minmax')) spec.scale = value;
        else throw new DataError(`bad dataset '${text}': option '${excerpt(value === undefined ? key : `${key}=${value}`)}' (valid: log1p, min=N with N >= 1, small=drop|merge, scale=zscore|minmax)`);
      }
      return spec;
    },
    load: (spec, opts) => naturalDataset('blogfeedback', 'regression', opts, () => loadBlogFeedback(dataDirOf(opts), spec, opts.limits)),
  },
  femnist: {
    forms: ['femnist', 'femnist:drop-truncated', 'femnist:leaf=DIR'],
    parse(arg, text) {
      const spec: SpecOf<'femnist'> = { kind: 'femnist', ...FEMNIST_DEFAULTS };
      for (const [key, value] of specOptions(arg, text, ['drop-truncated', 'leaf=DIR'])) {
        if (key === 'drop-truncated' && value === undefined) spec.dropTruncated = true;
        else if (key === 'leaf' && value) spec.leaf = value;
        else throw new DataError(`bad dataset '${text}': option '${excerpt(value === undefined ? key : `${key}=${value}`)}' (valid: drop-truncated, leaf=DIR)`);
      }
      return spec;
    },
    load: (spec, opts) => naturalDataset('femnist', 'multiclass', opts, () => loadFemnist(dataDirOf(opts), spec, opts.limits)),
  },
  cifar10: {
    forms: ['cifar10', 'cifar10:test=N', 'cifar10:validation=N'],
    parse(arg, text) {
      const spec: SpecOf<'cifar10'> = { kind: 'cifar10' };
      for (const [key, value] of specOptions(arg, text, ['test=N', 'validation=N'])) {
        // A test subset makes frequent evaluation affordable on CPU (10,000 images take ~20-40 s with the cnn).
        const n = value !== undefined && /^[1-9][0-9]*$/.test(value) ? Number(value) : NaN;
        if (key === 'test' && n <= 10000) spec.testSamples = n;
        // tuning (γ, say) on held-out training images, never on the test set
        else if (key === 'validation' && n <= 25000) spec.validation = n;
        else {
          throw new DataError(
            `bad dataset '${text}': option '${excerpt(value === undefined ? key : `${key}=${value}`)}' (valid: test=N with 1 <= N <= 10000, the first N test images; validation=N with 1 <= N <= 25000, the last N training images as the test set)`,
          );
        }
      }
      if (spec.testSamples !== undefined && spec.validation !== undefined) throw new DataError(`bad dataset '${text}': give test=N or validation=N, not both`);
      return spec;
    },
    async load(spec, opts) {
      if (opts.test !== undefined) throw new DataError(`test data '${opts.test}' can only go with a libsvm dataset; cifar10 brings its own test set`);
      if (opts.task !== undefined && opts.task !== 'multiclass') throw new DataError(`cifar10 is multiclass, not ${opts.task}`);
      const { clients, partition, seed, maxSamples, limits } = opts;
      const { testSamples, validation } = spec;
      return loadCifar10(join(dataDirOf(opts), 'cifar10'), {
        clients,
        partition,
        seed,
        ...(limits !== undefined ? { limits } : {}),
        ...(maxSamples !== undefined ? { maxSamples } : {}),
        ...(testSamples !== undefined ? { testSamples } : {}),
        ...(validation !== undefined ? { validation } : {}),
      });
    },
  },
};

/**
 * `KEY` / `KEY=VALUE` options separated by commas; the `leaf=` option (a path) takes the rest of
 * the text, commas included, so it must come last.
 */
function specOptions(arg: string | undefined, text: string, valid: string[]): [string, string | undefined][] {
  if (arg === undefined) return [];
  const out: [string, string | undefined][] = [];
  let rest = arg;
  while (rest !== '') {
    const path = rest.startsWith('leaf=');
    const comma = path ? -1 : rest.indexOf(',');
    const token = comma < 0 ? rest : rest.slice(0, comma);
    rest = comma < 0 ? '' : rest.slice(comma + 1);
    if (token === '') throw new DataError(`bad dataset '${text}': empty option (valid: ${valid.join(', ')})`);
    const eq = token.indexOf('=');
    out.push(eq < 0 ? [token, undefined] : [token.slice(0, eq), token.slice(eq + 1)]);
  }
  if (out.length === 0) throw new DataError(`bad dataset '${text}': empty option list (valid: ${valid.join(', ')})`);
  return out;
}

/** The data directory: ../shared/data when it exists (this project's checkout layout), else ./data. */
export function defaultDataDir(cwd: string = process.cwd()): string {
  const shared = resolve(cwd, '../shared/data');
  return existsSync(shared) ? shared : resolve(cwd, 'data');
}

function dataDirOf(opts: LoadOptions): string {
  return opts.dataDir ?? defaultDataDir();
}

/** Every accepted dataset spec form. */
export const DATASET_FORMS: string[] = Object.values(SOURCES).flatMap((s) => s.forms);

/** Parses a dataset spec, one of DATASET_FORMS (e.g. `lsq`, `libsvm:PATH`, `blogfeedback:log1p`). */
export function parseDatasetSpec(s: string): DatasetSpec {
  const colon = s.indexOf(':');
  const name = colon < 0 ? s : s.slice(0, colon);
  // messages quote the spec: cut short, as it may come from a file
  const shown = excerpt(s, 200);
  if (!Object.hasOwn(SOURCES, name)) throw new DataError(`unknown dataset '${shown}' (valid: ${DATASET_FORMS.join(', ')})`);
  return sourceOf(name as DatasetSpec['kind']).parse(colon < 0 ? undefined : s.slice(colon + 1), shown);
}

/** Loads the dataset `spec` names, split over `opts.clients` clients unless it has natural clients. */
export async function loadFederated(spec: DatasetSpec, opts: LoadOptions): Promise<LoadedDataset> {
  resolveLimits(opts.limits); // a bad limit is an error even for data that has no files
  const loaded = await sourceOf(spec.kind).load(spec, opts);
  return opts.maxSamples === undefined ? loaded : capSamples(loaded, opts.maxSamples);
}

function sourceOf<K extends DatasetSpec['kind']>(kind: K): Source<SpecOf<K>> {
  return SOURCES[kind];
}

/** A real dataset with its own clients and test set, after checking the options it cannot honour. */
async function naturalDataset(name: string, task: Task, opts: LoadOptions, load: () => Promise<LoadedDataset>): Promise<LoadedDataset> {
  if (opts.test !== undefined) throw new DataError(`test data '${opts.test}' can only go with a libsvm dataset; ${name} brings its own test set`);
  if (opts.task !== undefined && opts.task !== task) throw new DataError(`${name} is ${task}, not ${opts.task}`);
  const loaded = await load();
  const warnings = [...loaded.warnings];
  if (opts.partition.kind !== 'contiguous') warnings.push(`partition ${describePartition(opts.partition)} ignored: ${name} has natural clients`);
  return { dataset: loaded.dataset, warnings };
}

async function loadLibsvm(spec: SpecOf<'libsvm'>, opts: LoadOptions): Promise<LoadedDataset> {
  const testPath = opts.test === undefined ? undefined : testFilePath(opts.test);
  const limits = opts.limits ?? {};
  const train = await readLibsvm(spec.path, { limits, ...(opts.task ? { task: opts.task } : {}) });
  const split = partition(train.data, opts.clients, opts.partition, opts.seed, train.task);
  // the test file must fit the training model: same width, task and label coding
  const test =
    testPath === undefined
      ? undefined
      : await readLibsvm(testPath, {
          nFeatures: train.nFeatures,
          task: train.task,
          limits,
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
