/**
 * `predict`: rows of a file turned into the model's input (with the transform the training data got,
 * saved in the model's metadata), and the model's outputs turned into predictions.
 *
 * Inputs: LIBSVM rows and CSV rows are raw features as the training files had them (the model's 'features'
 * transform, if any, is applied: BlogFeedback's scaling); CIFAR-style records (a label byte, then the
 * channel planes of the image) are normalised with the model's 'image-bytes' transform.
 */
import { DataError } from '../data/errors.js';
import { readMaybeGzip } from '../data/files.js';
import { DEFAULT_LIMITS } from '../data/limits.js';
import { readLibsvm } from '../data/libsvm.js';
import { parseDecimal } from '../data/parse.js';
import type { InputTransform } from '../data/types.js';
import { UsageError } from '../errors.js';
import type { DenseMatrix, Matrix, ModelSpec } from './types.js';

export type InputFormat = 'libsvm' | 'csv' | 'images';
export const INPUT_FORMATS: readonly InputFormat[] = ['libsvm', 'csv', 'images'];

/** The input format a file name implies (a trailing .gz aside): .csv, .bin (CIFAR batches), .libsvm/.svm/.txt. */
export function inputFormatOf(path: string): InputFormat {
  const name = path.toLowerCase().replace(/\.gz$/, '');
  if (name.endsWith('.csv')) return 'csv';
  if (name.endsWith('.bin')) return 'images';
  if (/\.(libsvm|svm|txt)$/.test(name)) return 'libsvm';
  throw new UsageError(`cannot tell the format of ${path} from its name (.csv, .bin, .libsvm, .svm, .txt): give --format ${INPUT_FORMATS.join('|')}`);
}

/** The rows of `path` as the model's input: nFeatures columns, transformed as the training data was. */
export async function readInputRows(path: string, format: InputFormat, spec: ModelSpec, transform: InputTransform | null): Promise<Matrix> {
  const n = spec.nFeatures;
  let x: Matrix;
  if (format === 'images') x = readImages(path, spec, transform);
  else {
    x = format === 'csv' ? readCsvRows(path, n) : (await readLibsvm(path, { nFeatures: n, task: 'regression' })).data.x;
    if (transform?.kind === 'features') x = scaleFeatures(dense(x), transform);
  }
  if (x.rows === 0) throw new DataError(`${path}: no rows to predict`);
  return x;
}

/** CSV rows of nFeatures numbers, or nFeatures + 1 with a target last (ignored); a first line of names only is skipped. */
function readCsvRows(path: string, n: number): DenseMatrix {
  const values: number[] = [];
  let rows = 0;
  let first = true;
  readMaybeGzip(path, DEFAULT_LIMITS)
    .toString('utf8')
    .split('\n')
    .forEach((raw, i) => {
      if (raw.trim() === '') return;
      const fields = raw.split(',').map((f) => parseDecimal(f.trim()));
      const header = first && fields.every((f) => f === null);
      first = false;
      if (header) return;
      if (fields.length !== n && fields.length !== n + 1) {
        throw new DataError(`${path}:${i + 1}: ${fields.length} columns; the model takes ${n} features (or ${n + 1} with a target last)`);
      }
      const bad = fields.findIndex((f, j) => f === null && j < n);
      if (bad >= 0) throw new DataError(`${path}:${i + 1}: column ${bad + 1} is not a finite decimal number`);
      for (let j = 0; j < n; j++) values.push(fields[j]!);
      rows++;
    });
  return { kind: 'dense', rows, cols: n, data: Float32Array.from(values) };
}

/**
 * CIFAR-style binary records: a label byte (ignored), then the image as channel planes (all of channel
 * 0, then 1, ...), row-major; normalised with the model's image transform into NHWC rows.
 */
function readImages(path: string, spec: ModelSpec, transform: InputTransform | null): DenseMatrix {
  if (transform?.kind !== 'image-bytes') {
    throw new UsageError(`the model holds no image normalisation (it was not trained on images from bytes, e.g. cifar10 or femnist): give its rows as CSV or LIBSVM`);
  }
  const channels = transform.mean.length;
  const n = spec.nFeatures;
  if (spec.inputShape && spec.inputShape[2] !== channels) throw new DataError(`the model's image transform has ${channels} channels, its input ${spec.inputShape[2]}`);
  if (n % channels !== 0) throw new DataError(`the model's ${n} features are not ${channels}-channel pixels`);
  const bytes = readMaybeGzip(path, DEFAULT_LIMITS);
  const record = 1 + n;
  if (bytes.length === 0 || bytes.length % record !== 0) {
    throw new DataError(`${path}: ${bytes.length} bytes is not a whole number of ${record}-byte records (a label byte and ${n} pixel bytes)`);
  }
  const rows = bytes.length / record;
  const plane = n / channels;
  // byte value -> normalised float per channel, computed as the loaders do: (b/255 − mean) / std, once in
  // float64; + 0 turns the −0 of a negative std into the +0 that FEMNIST's 1 − b/255 gives
  const lut = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) for (let b = 0; b < 256; b++) lut[c * 256 + b] = (b / 255 - transform.mean[c]!) / transform.std[c]! + 0;
  const data = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const off = r * record + 1;
    for (let c = 0; c < channels; c++) {
      for (let p = 0; p < plane; p++) data[r * n + p * channels + c] = lut[c * 256 + bytes[off + c * plane + p]!]!;
    }
  }
  return { kind: 'dense', rows, cols: n, data };
}

function dense(x: Matrix): DenseMatrix {
  if (x.kind === 'dense') return x;
  const data = new Float32Array(x.rows * x.cols);
  for (let r = 0; r < x.rows; r++) for (let k = x.indptr[r]!; k < x.indptr[r + 1]!; k++) data[r * x.cols + x.indices[k]!] = x.values[k]!;
  return { kind: 'dense', rows: x.rows, cols: x.cols, data };
}

/** (x − shift)·factor per column, in float64 from the float32 value, as BlogFeedback's loader scales. */
function scaleFeatures(x: DenseMatrix, t: Extract<InputTransform, { kind: 'features' }>): DenseMatrix {
  if (t.shift.length !== x.cols || t.factor.length !== x.cols) throw new DataError(`the model's feature transform has ${t.shift.length} columns, the model ${x.cols}`);
  const data = new Float32Array(x.data.length);
  for (let i = 0; i < data.length; i++) {
    const c = i % x.cols;
    data[i] = (x.data[i]! - t.shift[c]!) * t.factor[c]!;
  }
  return { ...x, data };
}

/** The rows a model needs: dense for a network (its rows are images), as given for a convex model. */
export function rowsFor(spec: ModelSpec, x: Matrix): Matrix {
  return spec.kind === 'linear' || spec.kind === 'logistic' || spec.kind === 'multinomial' ? x : dense(x);
}

export interface Prediction {
  row: number;
  /** regression: the value; classification: the class (the original label where the model keeps a label map) */
  prediction: number;
  /** binary: the probability of the positive class */
  probability?: number;
  /** multiclass: the probability of each class, in class order */
  probabilities?: number[];
}

/** Predictions from the model's outputs (rows × C): the value, or the most probable class (ties: the lower) and the probabilities. */
export function predictionsOf(spec: ModelSpec, outputs: Float64Array, labelMap: number[] | null): Prediction[] {
  const C = spec.kind === 'linear' || spec.kind === 'logistic' ? 1 : spec.nClasses;
  const label = (k: number): number => (labelMap ? labelMap[k]! : k);
  const out: Prediction[] = [];
  for (let r = 0; r < outputs.length / C; r++) {
    if (spec.kind === 'linear') out.push({ row: r, prediction: outputs[r]! });
    else if (spec.kind === 'logistic') {
      const s = outputs[r]!;
      // labels are ±1 in training; a label map names the original labels of −1 and +1
      out.push({ row: r, prediction: labelMap ? label(s > 0 ? 1 : 0) : s > 0 ? 1 : -1, probability: 1 / (1 + Math.exp(-s)) });
    } else {
      const z = outputs.subarray(r * C, (r + 1) * C);
      let best = 0;
      for (let c = 1; c < C; c++) if (z[c]! > z[best]!) best = c;
      const e = Array.from(z, (v) => Math.exp(v - z[best]!));
      const total = e.reduce((a, b) => a + b, 0);
      out.push({ row: r, prediction: label(best), probabilities: e.map((v) => v / total) });
    }
  }
  return out;
}
