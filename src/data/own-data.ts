/**
 * A client's own data read from a stream of bytes (`client --own-data FILE`, a file picked in the browser client), in the model's
 * coding, by the parsers the file readers use: LIBSVM (libsvm-parser.ts) or CSV rows of the model's
 * features and the target last (csv-parser.ts, BlogFeedback's row parser) for the linear models, a
 * CIFAR-10 binary batch (cifar-records.ts) for the image networks. Imports nothing from `node:`.
 */
import type { Dataset, ModelSpec } from '../models/types.js';
import { IMAGE_SIZE } from './augment.js';
import { channelStats, cifarImages, CIFAR10_RECORD_BYTES, readCifarChunks } from './cifar-records.js';
import { readCsvChunks } from './csv-parser.js';
import { DataError } from './errors.js';
import type { DataLimits } from './limits.js';
import { ownData, readLibsvmChunks, resolveLabels, type LibsvmData, type LibsvmOptions } from './libsvm-parser.js';

export type OwnFormat = 'libsvm' | 'csv' | 'cifar10';

/** The format a file's name implies, after any .gz: .csv is CSV rows, .bin a CIFAR-10 batch, anything else LIBSVM. */
export function ownFormatOf(name: string): OwnFormat {
  const lower = name.toLowerCase().replace(/\.gz$/, '');
  return lower.endsWith('.csv') ? 'csv' : lower.endsWith('.bin') ? 'cifar10' : 'libsvm';
}

/** The data of one client from the (decompressed) bytes `chunks()` gives (called once), named `name` in messages. */
export async function ownDataChunks(spec: ModelSpec, name: string, chunks: () => AsyncIterable<Uint8Array>, limits: Partial<DataLimits> = {}): Promise<Dataset> {
  const format = ownFormatOf(name);
  if (format === 'libsvm') return ownData(spec, name, (opts) => readLibsvmChunks(chunks(), name, { ...opts, limits }));
  if (format === 'csv') {
    return ownData(spec, name, async (opts) => csvData(await readCsvChunks(chunks(), name, { columns: spec.nFeatures + 1 }, limits), spec.nFeatures, name, opts));
  }
  if (spec.nFeatures !== IMAGE_SIZE || spec.nClasses !== 10 || !spec.inputShape) {
    throw new DataError(`${name}: a CIFAR-10 batch is the data of an image network of 32x32x3 inputs and 10 classes (this run's model is ${spec.kind}, ${spec.nFeatures} features)`);
  }
  const bytes = await readCifarChunks(chunks(), name, limits);
  const records = { batches: [bytes], n: bytes.length / CIFAR10_RECORD_BYTES };
  // normalised with this batch's own channel statistics: the tab has no other images to take them from
  return cifarImages(records, Array.from({ length: records.n }, (_, i) => i), channelStats(records));
}

/** CSV rows as LibsvmData in the coding `opts` asks for; a label outside opts.labelMap is an error. */
function csvData(rows: { rows: number; x: Float32Array; y: Float64Array }, nFeatures: number, name: string, opts: LibsvmOptions): LibsvmData {
  const known = opts.labelMap && opts.task !== 'regression' ? new Set(opts.labelMap) : null;
  const bad = known ? rows.y.findIndex((v) => !known.has(v)) : -1;
  if (bad >= 0) throw new DataError(`${name}: row ${bad + 1} has target ${rows.y[bad]}, not one of the model's labels (${opts.labelMap!.slice(0, 10).join(', ')}${opts.labelMap!.length > 10 ? ', ...' : ''})`);
  const { task, y, labelMap } = resolveLabels(rows.y, opts, name);
  return { data: { x: { kind: 'dense', rows: rows.rows, cols: nFeatures, data: rows.x }, y }, task, nFeatures, nClasses: task === 'multiclass' ? labelMap!.length : 1, ...(labelMap ? { labelMap } : {}) };
}
