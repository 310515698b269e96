/**
 * The JSON files users write (experiment files, serve configs): reading them safely, and one
 * mechanism for their types, so every file format gives the same one-line errors
 * `SOURCE: FIELD: must be TYPE, got VALUE`. A format is a table of field types (its schema); value
 * ranges a type does not state are checked where the values are used (resolveConfig for run options).
 */
import { excerpt, UsageError } from '../errors.js';
import { DataError } from '../data/errors.js';
import { readRegularFile } from '../data/files.js';
import { describeValue, parseJson } from '../data/parse.js';
import type { RunConfig } from './config.js';

/** Throws the format's one-line error; an empty field means the file as a whole. */
export type Fail = (field: string, message: string) => never;

/** A JSON type: what a message says is wanted, and the test. */
export interface FieldType {
  want: string;
  test(v: unknown): boolean;
}

export const STRING: FieldType = { want: 'a string', test: (v) => typeof v === 'string' };
export const NON_EMPTY_STRING: FieldType = { want: 'a non-empty string', test: (v) => typeof v === 'string' && v !== '' };
export const NUMBER: FieldType = { want: 'a number', test: (v) => typeof v === 'number' && Number.isFinite(v) };
export const NUMBER_LIST: FieldType = { want: 'a list of numbers', test: (v) => Array.isArray(v) && v.every((x) => NUMBER.test(x)) };
export const BOOLEAN: FieldType = { want: 'true or false', test: (v) => typeof v === 'boolean' };

export function integer(min: number, max: number): FieldType {
  return { want: `an integer in ${min}..${max}`, test: (v) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max };
}

export const POSITIVE: FieldType = { want: 'a positive number', test: (v) => NUMBER.test(v) && (v as number) > 0 };

export function literal(value: string): FieldType {
  return { want: `'${value}'`, test: (v) => v === value };
}

/** Either type (e.g. a number or 'auto'). */
export function or(a: FieldType, b: FieldType): FieldType {
  return { want: `${a.want} or ${b.want}`, test: (v) => a.test(v) || b.test(v) };
}

export const nullable = (t: FieldType): FieldType => or(t, { want: 'null', test: (v) => v === null });

export function check(t: FieldType, v: unknown, field: string, fail: Fail): void {
  if (!t.test(v)) fail(field, `must be ${t.want}, got ${describeValue(v)}`);
}

export function object(v: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, `must be an object, got ${describeValue(v)}`);
  return v as Record<string, unknown>;
}

export function string(v: unknown, field: string, fail: Fail): string {
  check(STRING, v, field, fail);
  return v as string;
}

export function unknownKeys(o: Record<string, unknown>, allowed: readonly string[], prefix: string, fail: Fail): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) fail(`${prefix}${excerpt(k)}`, `unknown field (valid: ${allowed.join(', ')})`);
  }
}

/** Checks the fields of `o` that `types` knows (unknown fields are the caller's: formats word that differently). */
export function checkFields(o: Record<string, unknown>, types: Record<string, FieldType>, prefix: string, fail: Fail): void {
  for (const [k, v] of Object.entries(o)) if (Object.hasOwn(types, k)) check(types[k]!, v, `${prefix}${k}`, fail);
}

/**
 * The JSON type of every run option (RunConfig): one table for experiment files and serve configs.
 * Which strings and numbers are valid is resolveConfig's check, shared with the command line.
 */
export const RUN_OPTION_TYPES: { readonly [K in keyof RunConfig]: FieldType } = {
  algorithm: STRING,
  dataset: STRING,
  test: nullable(STRING),
  dataDir: nullable(STRING),
  clients: NUMBER,
  partition: STRING,
  model: STRING,
  intercept: BOOLEAN,
  l2: NUMBER,
  sparsity: NUMBER,
  topkScope: STRING,
  gamma: or(NUMBER, literal('auto')),
  p: NUMBER,
  localSteps: NUMBER,
  schedule: STRING,
  rounds: NUMBER,
  stopTol: NUMBER,
  seed: NUMBER,
  lambda: or(NUMBER, literal('auto')),
  steDecay: NUMBER,
  batchSize: NUMBER,
  participation: NUMBER,
  workers: NUMBER,
  evalEvery: NUMBER,
  evalTrainRows: nullable(NUMBER),
  pruneInit: BOOLEAN,
  postHocTopk: BOOLEAN,
  topkAt: NUMBER_LIST,
  timing: BOOLEAN,
  maxSamples: nullable(NUMBER),
  augment: BOOLEAN,
  stateDir: nullable(STRING),
  init: nullable(STRING),
  pruneMode: nullable(STRING),
  pruneAfterAverage: nullable(BOOLEAN),
  hReference: nullable(STRING),
  maxLineBytes: NUMBER,
  maxDimension: NUMBER,
  maxDecompressedMb: NUMBER,
};

/** Config files are small; this bounds what a wrong path (a data file, /dev/zero) can make us read. */
export const MAX_CONFIG_BYTES = 16 * 2 ** 20;

/**
 * The parsed JSON of a config file `what` (e.g. 'experiment file'): only a regular file of at most
 * MAX_CONFIG_BYTES is read (a FIFO or device is refused at once); every failure is a one-line UsageError.
 */
export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readRegularFile(path, MAX_CONFIG_BYTES, 'the limit for a config file').toString('utf8');
  } catch (e) {
    throw e instanceof DataError ? new UsageError(`${what} ${e.message}`) : e;
  }
  return parseJson(text, path, (m) => new UsageError(m));
}
