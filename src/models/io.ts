/**
 * Trained models as files: `model.safetensors` (one float32 tensor per named parameter segment, with the
 * ModelSpec and the run's facts as metadata), read back bit for bit with every field of a possibly
 * hostile file checked; and the files a run leaves next to it (the wire encoding, the TF.js export).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { chooseEncoding, encode, type EncodingName } from '../core/encoding.js';
import { toSparse } from '../core/sparse.js';
import { nnz } from '../core/vec.js';
import { DataError } from '../data/errors.js';
import type { InputTransform } from '../data/types.js';
import { writeFileAtomic } from '../report/io.js';
import { VERSION } from '../version.js';
import { checkSpec, paramLayout } from './glm.js';
import { NN_KINDS, networkOf } from './nn/arch.js';
import { initNnBackend, isNeuralNet } from './nn/registry.js';
import { encodeSafetensors, headerLength, parseHeader, quoted, shown, type SafetensorsHeader, type Tensor } from './safetensors.js';
import type { Dataset, ModelSpec } from './types.js';

/** A model as a file holds it: the spec that rebuilds it, its flat parameters, and string metadata. */
export interface SavedModel {
  spec: ModelSpec;
  params: Float32Array;
  /**
   * Written by saveModel: library, version, modelSpec, d, nnz; by a run also algorithm, sparsity, K,
   * dataset, round, config, and where known input and labelMap (see README "Trained models").
   */
  metadata: Record<string, string>;
}

/** One named parameter tensor of a model and where it sits in the flat vector. */
export interface TensorDef {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export const MODEL_FILE = 'model.safetensors';
/** The evaluated model encoded as the wire would carry it (src/core/encoding.ts). */
export const WIRE_FILE = 'model.wire';
/** The TF.js LayersModel of a network: TFJS_DIR/model.json and TFJS_DIR/weights.bin. */
export const TFJS_DIR = 'tfjs';

const MODEL_KINDS: readonly string[] = ['linear', 'logistic', 'multinomial', ...NN_KINDS];
const SPEC_KEYS = ['kind', 'nFeatures', 'nClasses', 'intercept', 'l2', 'inputShape', 'pruneAll'];

/**
 * The tensors of a model in flat order: convex models 'weights' [nFeatures, nClasses] and, with an
 * intercept, 'bias' [nClasses]; networks their layers' parameters (conv [kh, kw, in, out], dense
 * [in, out], as TF.js stores them). Throws a RangeError for an invalid spec.
 */
export function tensorLayout(spec: ModelSpec): TensorDef[] {
  if (isNeuralNet(spec)) {
    const net = networkOf(spec);
    return net.params.map((p, i) => {
      const seg = net.layout.segments[i]!;
      return { name: p.name, shape: p.shape, offset: seg.offset, size: seg.size };
    });
  }
  checkSpec(spec);
  const shapes: Record<string, number[]> = { weights: [spec.nFeatures, spec.nClasses], bias: [spec.nClasses] };
  return paramLayout(spec).segments.map((s) => ({ name: s.name, shape: shapes[s.name]!, offset: s.offset, size: s.size }));
}

/** The safetensors bytes of a model; the metadata gains library, version, modelSpec, d and nnz. */
export function modelBytes(m: SavedModel): Uint8Array {
  const defs = tensorLayout(m.spec);
  const d = defs.reduce((s, t) => s + t.size, 0);
  if (m.params.length !== d) throw new RangeError(`parameters have length ${m.params.length}, the ${m.spec.kind} model has d = ${d}`);
  const tensors: Tensor[] = defs.map((t) => ({ name: t.name, shape: t.shape, data: m.params.subarray(t.offset, t.offset + t.size) }));
  const metadata = {
    ...m.metadata,
    library: 'sparse-proxskip',
    version: VERSION,
    modelSpec: JSON.stringify(m.spec),
    d: String(d),
    nnz: String(nnz(m.params)),
  };
  return encodeSafetensors(tensors, metadata);
}

/** Writes `path` (model.safetensors format) atomically; returns its size in bytes. */
export function saveModel(path: string, m: SavedModel): number {
  const bytes = modelBytes(m);
  writeFileAtomic(path, bytes);
  return bytes.length;
}

/**
 * Reads a model file, checking it before reading further: the header length against a bound and the
 * file size, the header's fields, the spec in its metadata, and that the tensors are exactly the
 * spec's (names, F32, shapes) tiling the rest of the file. Bad files: a DataError naming the file.
 */
export function loadModel(path: string): SavedModel {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new DataError(`cannot read model ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    let header: SafetensorsHeader;
    let spec: ModelSpec;
    let defs: TensorDef[];
    try {
      const n = headerLength(readAt(fd, 0, Math.min(8, size)), size);
      header = parseHeader(readAt(fd, 8, n), size);
      spec = specFromMetadata(header.metadata);
      defs = checkTensors(header, spec);
    } catch (e) {
      if (e instanceof DataError) throw new DataError(`${path}: ${e.message}`);
      throw e;
    }
    const data = readAt(fd, header.dataStart, size - header.dataStart);
    const params = new Float32Array(defs.reduce((s, t) => s + t.size, 0));
    const raw = new Uint8Array(params.buffer);
    const offsetOf = new Map(defs.map((t) => [t.name, t.offset]));
    // bytes as stored (little-endian; every platform Node runs on in practice): bit-exact, NaN payloads too
    for (const t of header.tensors) raw.set(data.subarray(t.begin, t.end), 4 * offsetOf.get(t.name)!);
    return { spec, params, metadata: header.metadata };
  } finally {
    closeSync(fd);
  }
}

function readAt(fd: number, position: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const k = readSync(fd, buf, got, length - got, position + got);
    if (k === 0) throw new DataError(`file ended after ${position + got} bytes (changed while being read?)`);
    got += k;
  }
  return buf;
}

/** The ModelSpec in a model file's metadata, every field type-checked, and buildable. */
export function specFromMetadata(metadata: Record<string, string>): ModelSpec {
  const text = metadata.modelSpec;
  if (text === undefined) throw new DataError('no modelSpec in the metadata: not a sparse-proxskip model file');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DataError(`metadata modelSpec is not valid JSON: ${(e as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new DataError(`metadata modelSpec: ${what}`);
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('not a JSON object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!SPEC_KEYS.includes(k)) bad(`unknown field ${quoted(k)}`);
  if (typeof o.kind !== 'string' || !MODEL_KINDS.includes(o.kind)) bad(`kind must be one of ${MODEL_KINDS.join(', ')}, got ${shown(o.kind)}`);
  for (const k of ['nFeatures', 'nClasses'] as const) if (!(Number.isSafeInteger(o[k]) && (o[k] as number) >= 1)) bad(`${k} must be a positive integer, got ${shown(o[k])}`);
  if (typeof o.intercept !== 'boolean') bad(`intercept must be true or false, got ${shown(o.intercept)}`);
  if (!(typeof o.l2 === 'number' && Number.isFinite(o.l2) && o.l2 >= 0)) bad(`l2 must be a number >= 0, got ${shown(o.l2)}`);
  const shape = o.inputShape;
  if (shape !== undefined && !(Array.isArray(shape) && shape.length === 3 && shape.every((s) => Number.isSafeInteger(s) && s >= 1))) {
    bad(`inputShape must be [height, width, channels] of positive integers, got ${shown(shape)}`);
  }
  if (o.pruneAll !== undefined && typeof o.pruneAll !== 'boolean') bad(`pruneAll must be true or false, got ${shown(o.pruneAll)}`);
  const spec = o as unknown as ModelSpec;
  try {
    tensorLayout(spec);
  } catch (e) {
    bad((e as Error).message);
  }
  return spec;
}

/** The header's tensors must be the spec's: the same names and shapes (in any data order). */
function checkTensors(header: SafetensorsHeader, spec: ModelSpec): TensorDef[] {
  const defs = tensorLayout(spec);
  const stored = new Map(header.tensors.map((t) => [t.name, t]));
  for (const t of defs) {
    const s = stored.get(t.name);
    if (!s) throw new DataError(`no tensor '${t.name}', which the ${spec.kind} model in its metadata has`);
    if (!sameShape(s.shape, t.shape)) throw new DataError(`tensor '${t.name}' has shape [${s.shape.join(', ')}], the ${spec.kind} model in its metadata needs [${t.shape.join(', ')}]`);
  }
  if (header.tensors.length !== defs.length) {
    const extra = header.tensors.find((t) => !defs.some((d) => d.name === t.name))!;
    throw new DataError(`tensor ${quoted(extra.name)} is not a parameter of the ${spec.kind} model in its metadata`);
  }
  return defs;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * x₀ for `--init`: the saved model's parameters laid out for `spec`, after checking that both have the
 * same tensors with the same shapes (the kinds may differ: a logistic model can start a linear one).
 */
export function initialParams(saved: SavedModel, spec: ModelSpec, path: string): Float32Array {
  const want = tensorLayout(spec);
  const have = new Map(tensorLayout(saved.spec).map((t) => [t.name, t]));
  const fail = (why: string): never => {
    throw new DataError(`--init ${path}: ${why}`);
  };
  for (const t of want) {
    const h = have.get(t.name);
    if (!h) fail(`the saved ${saved.spec.kind} model has no tensor '${t.name}', which this run's ${spec.kind} model needs`);
    else if (!sameShape(h.shape, t.shape)) fail(`tensor '${t.name}' is [${h.shape.join(', ')}] in the saved ${saved.spec.kind} model, this run's ${spec.kind} model needs [${t.shape.join(', ')}]`);
  }
  if (have.size !== want.length) fail(`the saved ${saved.spec.kind} model has tensor '${[...have.keys()].find((n) => !want.some((t) => t.name === n))}', which this run's ${spec.kind} model lacks`);
  const x = new Float32Array(want.reduce((s, t) => s + t.size, 0));
  for (const t of want) x.set(saved.params.subarray(have.get(t.name)!.offset, have.get(t.name)!.offset + t.size), t.offset);
  return x;
}

/** What a run knows about the model it writes. */
export interface RunModelInfo {
  spec: ModelSpec;
  algorithm: string;
  sparsity: number;
  /** kept prunable entries */
  k: number;
  /** the dataset spec string */
  dataset: string;
  /** the round the model is from */
  round: number;
  /** the RunConfig, so `evaluate` can load the same data */
  config: object;
  input?: InputTransform;
  /** a libsvm classification dataset's original labels, per class */
  labelMap?: number[];
  /** networks with BatchNorm: rows whose statistics become the TF.js export's moving statistics */
  calibration?: Dataset;
}

/** What summary.json says about the written model files (names relative to the run directory). */
export interface ModelFiles {
  file: string;
  bytes: number;
  /** the model as the wire carries it: the smallest encoding, and its exact size */
  encodedFile: string;
  encodedBytes: number;
  encoding: EncodingName;
  /** a network's TF.js LayersModel (model.json, beside it weights.bin); null for convex models */
  tfjs: string | null;
}

/**
 * Writes a run's model files into `dir`, each atomically: model.safetensors, model.wire and, for a
 * network, tfjs/weights.bin then tfjs/model.json.
 */
export async function writeModelFiles(dir: string, x: Float32Array, info: RunModelInfo): Promise<ModelFiles> {
  const metadata: Record<string, string> = {
    algorithm: info.algorithm,
    sparsity: String(info.sparsity),
    K: String(info.k),
    dataset: info.dataset,
    round: String(info.round),
    config: JSON.stringify(info.config),
    ...(info.input ? { input: JSON.stringify(info.input) } : {}),
    ...(info.labelMap ? { labelMap: JSON.stringify(info.labelMap) } : {}),
  };
  const bytes = saveModel(join(dir, MODEL_FILE), { spec: info.spec, params: x, metadata });
  const sparse = toSparse(x);
  const enc = chooseEncoding(sparse);
  writeFileAtomic(join(dir, WIRE_FILE), encode(sparse, enc.kind));
  let tfjs: string | null = null;
  if (isNeuralNet(info.spec)) {
    await initNnBackend();
    const { writeTfjsModel } = await import('./nn/export.js'); // TF.js only for networks
    await writeTfjsModel(join(dir, TFJS_DIR), info.spec, x, info.calibration);
    tfjs = join(TFJS_DIR, 'model.json');
  }
  return { file: MODEL_FILE, bytes, encodedFile: WIRE_FILE, encodedBytes: enc.bytes, encoding: enc.kind, tfjs };
}

/** The model files a run writes (removed when a run starts, so none outlives the run that replaces it). */
export const MODEL_OUTPUTS = [MODEL_FILE, WIRE_FILE, join(TFJS_DIR, 'model.json'), join(TFJS_DIR, 'weights.bin')];

/** A metadata field holding JSON, parsed; absent: null. */
function metadataJson(metadata: Record<string, string>, key: string): unknown {
  const text = metadata[key];
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DataError(`metadata ${key} is not valid JSON: ${(e as Error).message}`);
  }
}

const finiteList = (v: unknown, n: number): v is number[] => Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number' && Number.isFinite(x));

/** The transform the training data's raw input got (metadata 'input'), checked against the model; null if none. */
export function inputTransformOf(m: SavedModel): InputTransform | null {
  const v = metadataJson(m.metadata, 'input') as Record<string, unknown> | null;
  if (v === null) return null;
  const n = m.spec.nFeatures;
  if (v?.kind === 'features' && finiteList(v.shift, n) && finiteList(v.factor, n)) return { kind: 'features', shift: v.shift, factor: v.factor };
  if (v?.kind === 'image-bytes' && Array.isArray(v.mean)) {
    const c = v.mean.length;
    if (c >= 1 && n % c === 0 && finiteList(v.mean, c) && finiteList(v.std, c) && v.std.every((s) => s !== 0)) return { kind: 'image-bytes', mean: v.mean, std: v.std };
  }
  throw new DataError(`metadata input must be {"kind": "features", shift, factor} with ${n} numbers each, or {"kind": "image-bytes", mean, std} per channel with std ≠ 0`);
}

/** The original label of each class (metadata 'labelMap'; binary: of −1 and +1); null if none. */
export function labelMapOf(m: SavedModel): number[] | null {
  const v = metadataJson(m.metadata, 'labelMap');
  if (v === null) return null;
  const n = m.spec.kind === 'logistic' ? 2 : m.spec.nClasses;
  if (m.spec.kind === 'linear' || !finiteList(v, n)) throw new DataError(`metadata labelMap must be a list of ${n} numbers for a ${m.spec.kind} model`);
  return v;
}

/** The RunConfig the model was trained with (metadata 'config'), as a plain object; {} if none. */
export function runConfigOf(m: SavedModel): Record<string, unknown> {
  const v = metadataJson(m.metadata, 'config');
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new DataError('metadata config must be a JSON object');
  return v as Record<string, unknown>;
}
