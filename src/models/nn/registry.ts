/**
 * The entry point for neural-network models that does not load TensorFlow.js: convex-model runs never
 * pay for it. `createModel` is synchronous, so the backend is set up beforehand by `initNnBackend()`.
 */
import type { Dataset, Model, ModelSpec } from '../types.js';
import { NN_KINDS, networkOf, type NnKind } from './arch.js';

let factory: ((spec: ModelSpec, evalReference?: Dataset) => Model) | null = null;
let wasmPaths: string | undefined;

export function isNeuralNet(spec: Pick<ModelSpec, 'kind'>): boolean {
  return NN_KINDS.includes(spec.kind as NnKind);
}

/**
 * Where the wasm backend fetches its .wasm files: in a browser, a URL folder (the browser client's
 * server, `serve --http`, serves them beside the page); Node needs none. Before initNnBackend().
 */
export function setNnWasmPaths(prefix: string): void {
  wasmPaths = prefix;
}

/** Loads TensorFlow.js and selects its wasm backend (once per process or worker thread); says which. */
export async function initNnBackend(): Promise<string> {
  const m = await import('./model.js');
  const backend = await m.setupWasmBackend(wasmPaths);
  factory ??= (spec, evalReference) => new m.NnModel(spec, evalReference);
  return backend;
}

/** The neural network a spec describes; throws unless initNnBackend() has finished. */
export function createNnModel(spec: ModelSpec, evalReference?: Dataset): Model {
  if (!factory) throw new Error(`a ${spec.kind} model needs the TensorFlow.js backend: await initNnBackend() before createModel()`);
  return factory(spec, evalReference);
}

/**
 * The training images whose BatchNorm statistics a network evaluates with (docs/nn.md, "BatchNorm"): the
 * network's `referenceRows` (256 for ResNet18 at 32×32) rows spread evenly over all clients' rows in client
 * order, row ⌊i·N/R⌋ of the N for i < R, so each client gives in proportion to its size. The same images
 * for every evaluation of a run, whatever the data evaluated. Undefined for models without BatchNorm.
 */
/** A network whose evaluation normalises BatchNorm with training images' statistics (evalReferenceOf). */
export function needsEvalReference(spec: ModelSpec): boolean {
  return isNeuralNet(spec) && networkOf(spec).referenceRows > 0;
}

export function evalReferenceOf(spec: ModelSpec, clients: Dataset[]): Dataset | undefined {
  if (!isNeuralNet(spec)) return undefined;
  const rowsWanted = networkOf(spec).referenceRows;
  const sizes = clients.map((c) => c.y.length);
  const n = sizes.reduce((a, b) => a + b, 0);
  if (rowsWanted === 0 || n === 0) return undefined;
  const r = Math.min(rowsWanted, n);
  const f = spec.nFeatures;
  const data = new Float32Array(r * f);
  const y = new Float32Array(r);
  let client = 0;
  let start = 0; // first pooled row of `client`
  for (let i = 0; i < r; i++) {
    const row = Math.floor((i * n) / r);
    while (row >= start + sizes[client]!) start += sizes[client++]!;
    const c = clients[client]!;
    if (c.x.kind !== 'dense' || c.x.cols !== f) throw new RangeError(`client ${client}: a ${spec.kind} model needs dense rows of ${f} values`);
    const k = row - start;
    data.set(c.x.data.subarray(k * f, (k + 1) * f), i * f);
    y[i] = c.y[k]!;
  }
  return { x: { kind: 'dense', rows: r, cols: f, data }, y };
}
