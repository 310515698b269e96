/**
 * The TensorFlow.js setup for the neural-network models: the wasm backend (XNNPACK, SIMD, one thread
 * per process or worker thread, since the simulator already spreads clients over worker_threads),
 * the gradient functions, and the convolution gradient kernels the backend lacks.
 *
 * Loaded only by initNnBackend() (src/models/nn/registry.ts), so convex-model runs never load TF.js.
 */
import * as tf from '@tensorflow/tfjs-core';
// The Node build of tfjs-core registers no gradient functions, and its per-file ES modules cannot be
// imported by Node (extensionless directory imports); the union package registers them all into the
// process-wide registry that tfjs-core shares.
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmKernels } from './kernels.js';

let ready: Promise<void> | null = null;

/** Selects the wasm backend once per process (or worker thread). Safe to call repeatedly. */
export function setupWasmBackend(): Promise<void> {
  ready ??= (async () => {
    registerWasmKernels();
    // In Node the backend finds its .wasm files next to its own module; threads are never used in Node.
    if (!(await tf.setBackend('wasm'))) throw new Error('could not initialise the TensorFlow.js wasm backend');
    await tf.ready();
  })();
  return ready;
}

export { tf };
