/**
 * The entry point for neural-network models that does not load TensorFlow.js: convex-model runs never
 * pay for it. `createModel` is synchronous, so the backend is set up beforehand by `initNnBackend()`.
 */
import type { Model, ModelSpec } from '../types.js';
import { NN_KINDS, type NnKind } from './arch.js';

let factory: ((spec: ModelSpec) => Model) | null = null;

export function isNeuralNet(spec: Pick<ModelSpec, 'kind'>): boolean {
  return NN_KINDS.includes(spec.kind as NnKind);
}

/** Loads TensorFlow.js and selects its wasm backend (once per process or worker thread). */
export async function initNnBackend(): Promise<void> {
  if (factory) return;
  const m = await import('./model.js');
  await m.setupWasmBackend();
  factory = (spec) => new m.NnModel(spec);
}

/** The neural network a spec describes; throws unless initNnBackend() has finished. */
export function createNnModel(spec: ModelSpec): Model {
  if (!factory) throw new Error(`a ${spec.kind} model needs the TensorFlow.js backend: await initNnBackend() before createModel()`);
  return factory(spec);
}
