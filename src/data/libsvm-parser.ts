/**
 * The LIBSVM / SVMlight parser: `label index:value index:value ...`, 1-based increasing indices, `#`
 * comments, blank lines; line by line, so large files never sit in memory as text; lines and indices
 * are bounded by DataLimits. Files are read by libsvm.ts (readLibsvm); a browser's Blob by
 * readLibsvmChunks, through the same parser. Imports nothing from `node:`.
 */
import { excerpt } from '../errors.js';
import type { Dataset, Matrix, ModelSpec, Task } from '../models/types.js';
import { DataError } from './errors.js';
import { LIMIT_OPTIONS, resolveLimits, type DataLimits } from './limits.js';
import { forEachLineOf, utf8Text } from './lines.js';
import { parseDecimal } from './parse.js';

export interface LibsvmOptions {
  /** expected feature count: an index beyond it is an error; the result has at least this many columns */
  nFeatures?: number;
  /** skip task inference */
  task?: Task;
  /**
   * With task 'binary' or 'multiclass': the original labels in class order (binary: [-1 label, +1 label]),
   * as returned for the training file, so a test file maps the same way; other labels are errors.
   */
  labelMap?: number[];
  /** line length, largest index, decompressed size (defaults: DEFAULT_LIMITS) */
  limits?: Partial<DataLimits>;
}

export interface LibsvmData {
  data: Dataset;
  task: Task;
  nFeatures: number;
  /** 1 for regression and binary */
  nClasses: number;
  /** for classification: original label of each class (binary: [label of -1, label of +1]) */
  labelMap?: number[];
}

/** Below this share of nonzeros the features are stored as CSR. */
const CSR_DENSITY = 0.25;
/** Inferred multiclass tasks have at most this many classes; more distinct integers read as regression. */
const MAX_INFERRED_CLASSES = 1000;
/** The parser over a stream of bytes (a Blob's, in the browser client); `name` stands for the path in messages. */
export async function readLibsvmChunks(chunks: AsyncIterable<Uint8Array>, name: string, opts: LibsvmOptions = {}): Promise<LibsvmData> {
  const limits = resolveLimits(opts.limits);
  const parser = new LibsvmParser(name, opts, limits.maxDimension);
  await forEachLineOf(chunks, name, limits.maxLineBytes, (buf, start, end, lineNo) => parser.line(utf8Text(buf, start, end), lineNo));
  return parser.finish();
}

/**
 * A client's own data (`client --own-data FILE`, a file picked in the browser client, own-data.ts): LIBSVM
 * data (or CSV rows) in the model's coding (labels -1/+1, 0..C-1 or real; indices up to the model's
 * nFeatures), read by `read`.
 */
export async function ownData(spec: ModelSpec, file: string, read: (opts: LibsvmOptions) => Promise<LibsvmData>): Promise<Dataset> {
  const task = TASK_OF_KIND[spec.kind];
  if (!task) throw new DataError(`${file}: a client's own data in this format is for the linear models only (this run's model is ${spec.kind})`);
  const labelMap = task === 'binary' ? [-1, 1] : task === 'multiclass' ? Array.from({ length: spec.nClasses }, (_, c) => c) : undefined;
  const own = await read({ nFeatures: spec.nFeatures, task, ...(labelMap ? { labelMap } : {}) });
  if (own.nFeatures !== spec.nFeatures) throw new DataError(`${file} has ${own.nFeatures} features, the model ${spec.nFeatures}`);
  return own.data;
}

const TASK_OF_KIND: Partial<Record<ModelSpec['kind'], Task>> = { linear: 'regression', logistic: 'binary', multinomial: 'multiclass' };

/** The same parser over text already in memory; `name` stands for the path in messages. */
export function parseLibsvmText(text: string, name: string, opts: LibsvmOptions = {}): LibsvmData {
  const parser = new LibsvmParser(name, opts, resolveLimits(opts.limits).maxDimension);
  text.split('\n').forEach((line, i) => parser.line(line, i + 1));
  return parser.finish();
}


/** Accumulates parsed lines; `finish` builds the dataset. */
export class LibsvmParser {
  private lineNo = 0;
  private largestIndex = 0;
  private readonly labels = new Growable((n) => new Float64Array(n));
  private readonly indptr = new Growable((n) => new Uint32Array(n));
  private readonly indices = new Growable((n) => new Uint32Array(n));
  private readonly values = new Growable((n) => new Float32Array(n));
  private readonly known: Set<number> | null;

  constructor(
    private readonly name: string,
    private readonly opts: LibsvmOptions,
    /** largest accepted index (limits.maxDimension) */
    private readonly maxDimension: number,
  ) {
    this.indptr.push(0);
    this.known = opts.labelMap && opts.task !== 'regression' ? new Set(opts.labelMap) : null;
  }

  /** Line `lineNo` of the file. */
  line(raw: string, lineNo: number): void {
    this.lineNo = lineNo;
    const hash = raw.indexOf('#');
    const text = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (text === '') return;
    const tokens = text.split(/\s+/);
    const label = parseNumber(tokens[0]!);
    if (label === null) this.fail(`label '${excerpt(tokens[0]!)}' is not a finite number`);
    if (this.known && !this.known.has(label)) this.fail(`label ${label} is not one of the known labels (${listValues(this.opts.labelMap!)})`);
    let prev = 0;
    for (let t = 1; t < tokens.length; t++) prev = this.feature(tokens[t]!, prev);
    this.labels.push(label);
    this.indptr.push(this.indices.length);
    this.largestIndex = Math.max(this.largestIndex, prev);
  }

  /** Parses one `index:value` token, stores a nonzero value, returns the index. */
  private feature(token: string, prev: number): number {
    const colon = token.indexOf(':');
    const indexText = colon < 0 ? '' : token.slice(0, colon);
    if (indexText === 'qid') this.fail(`qid tokens (ranking data) are not supported: '${excerpt(token)}'`);
    if (!/^\d+$/.test(indexText)) this.fail(`malformed token '${excerpt(token)}' (expected INDEX:VALUE)`);
    const index = Number(indexText);
    if (index < 1) this.fail(`feature index ${index} in '${excerpt(token)}': indices start at 1`);
    if (index > this.maxDimension) {
      this.fail(`feature index ${excerpt(indexText)} is above the maximum dimension ${this.maxDimension} (${LIMIT_OPTIONS.maxDimension})`);
    }
    if (index <= prev) this.fail(`feature index ${index} after ${prev}: indices must increase`);
    const max = this.opts.nFeatures;
    if (max !== undefined && index > max) this.fail(`feature index ${index} is beyond the expected ${max} features`);
    const value = parseNumber(token.slice(colon + 1));
    if (value === null) this.fail(`value '${excerpt(token.slice(colon + 1))}' of feature ${index} is not a finite number`);
    if (value !== 0) {
      this.indices.push(index - 1);
      this.values.push(value);
    }
    return index;
  }

  finish(): LibsvmData {
    const rows = this.labels.length;
    if (rows === 0) throw new DataError(`${this.name}: empty file (no samples)`);
    const nFeatures = Math.max(this.opts.nFeatures ?? 0, this.largestIndex);
    if (nFeatures === 0) throw new DataError(`${this.name}: no sample has any feature`);
    const { task, y, labelMap } = resolveLabels(this.labels.toArray(), this.opts, this.name);
    const x = this.matrix(rows, nFeatures);
    return { data: { x, y }, task, nFeatures, nClasses: task === 'multiclass' ? labelMap!.length : 1, ...(labelMap ? { labelMap } : {}) };
  }

  private matrix(rows: number, cols: number): Matrix {
    const indptr = this.indptr.toArray();
    const indices = this.indices.toArray();
    const values = this.values.toArray();
    if (indices.length < CSR_DENSITY * rows * cols) return { kind: 'csr', rows, cols, indptr, indices, values };
    const data = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let k = indptr[r]!; k < indptr[r + 1]!; k++) data[r * cols + indices[k]!] = values[k]!;
    }
    return { kind: 'dense', rows, cols, data };
  }

  private fail(message: string): never {
    throw new DataError(`${this.name}:${this.lineNo}: ${message}`);
  }
}

/**
 * The task and y. Inferred when not given: integer labels with 2 distinct values are binary (smaller
 * -> -1), with 3..1000 multiclass (classes in sorted label order), anything else regression.
 */
export function resolveLabels(labels: Float64Array, opts: LibsvmOptions, name: string): { task: Task; y: Float32Array; labelMap?: number[] } {
  if (opts.task === 'regression') return { task: 'regression', y: Float32Array.from(labels) };
  const labelMap = opts.labelMap ?? classLabels(labels, opts.task, name);
  if (labelMap === null) return { task: 'regression', y: Float32Array.from(labels) };
  const task: Task = opts.task ?? (labelMap.length === 2 ? 'binary' : 'multiclass');
  const classOf = new Map(labelMap.map((label, c) => [label, c]));
  const y = new Float32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const c = classOf.get(labels[i]!)!;
    y[i] = task === 'binary' ? 2 * c - 1 : c;
  }
  return { task, y, labelMap };
}

/** Sorted distinct labels as classes for `task` (inferred when undefined), or null for regression. */
function classLabels(labels: Float64Array, task: Task | undefined, name: string): number[] | null {
  const distinct = [...new Set(labels)].sort((a, b) => a - b);
  const integers = distinct.every(Number.isInteger);
  if (task === undefined) {
    const classification = integers && distinct.length >= 2 && distinct.length <= MAX_INFERRED_CLASSES;
    return classification ? distinct : null;
  }
  if (task === 'binary') {
    if (distinct.length === 2) return distinct;
    if (distinct.length === 1 && Math.abs(distinct[0]!) === 1) return [-1, 1]; // already ±1, one class present
    throw new DataError(`${name}: task 'binary' needs 2 distinct labels, found ${distinct.length} (${listValues(distinct)})`);
  }
  if (!integers) throw new DataError(`${name}: task 'multiclass' needs integer labels, found ${distinct.find((v) => !Number.isInteger(v))}`);
  if (distinct.length < 2) throw new DataError(`${name}: task 'multiclass' needs at least 2 distinct labels, found ${distinct.length}`);
  return distinct;
}

/** A decimal number whose float32 value (as stored) is finite, or null. */
function parseNumber(text: string): number | null {
  const v = parseDecimal(text);
  return v !== null && Number.isFinite(Math.fround(v)) ? v : null;
}

function listValues(values: readonly number[]): string {
  const shown = values.slice(0, 10).join(', ');
  return values.length > 10 ? `${shown}, ... ${values.length} in all` : shown;
}

type Typed = Float64Array | Float32Array | Uint32Array;

/** An append-only typed array that doubles its capacity. */
class Growable<A extends Typed> {
  private data: A;
  length = 0;

  constructor(private readonly make: (n: number) => A) {
    this.data = make(1024);
  }

  push(v: number): void {
    if (this.length === this.data.length) {
      const next = this.make(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }

  toArray(): A {
    return this.data.slice(0, this.length) as A;
  }
}
