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
import { getThreadsCount, setWasmPaths, version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmKernels } from './kernels.js';

let ready: Promise<string> | null = null;

/**
 * Selects the wasm backend once per process (or worker thread), and says which (version, SIMD, threads).
 * Safe to call repeatedly. `wasmPaths`:
 * the folder (URL) of the backend's .wasm files, for a browser, which has them from the page's server;
 * Node finds them next to the backend's module.
 */
export function setupWasmBackend(wasmPaths?: string): Promise<string> {
  ready ??= (async () => {
    registerWasmKernels();
    // One thread everywhere, so a browser runs the very binary Node runs (Node never uses the threaded
    // one; a browser would start its helper threads from a blob: URL, which the client page's CSP refuses).
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    if (wasmPaths !== undefined) setWasmPaths(wasmPaths);
    if (!(await tf.setBackend('wasm'))) throw new Error('could not initialise the TensorFlow.js wasm backend');
    await tf.ready();
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    return `TensorFlow.js ${version_wasm} wasm backend (${simd ? 'SIMD' : 'no SIMD'}, ${getThreadsCount()} thread)`;
  })();
  return ready;
}

export { tf };
