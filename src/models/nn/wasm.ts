/**
 * The WebAssembly kernels of src/models/kernels/assembly/nn.ts (convolutions, BatchNorm) on the TF.js
 * wasm backend: one instance per backend, importing the backend's memory, so the kernels read and write
 * tensors in place; scratch buffers come from the backend's allocator. The relaxed-SIMD build (fused
 * multiply-add) is taken where the engine validates it, the plain SIMD build elsewhere.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { setFlagsFromString } from 'node:v8';
import { relaxedSimd, simd } from '../kernels/generated/nn.js';
import { moduleBytes, wasm } from '../kernels/wasm-api.js';

export type Ptr = number;

export interface NnExports {
  pad(src: Ptr, dst: Ptr, n: number, h: number, w: number, c: number, hp: number, wp: number, top: number, left: number): void;
  packFilter(
    w: Ptr, dst: Ptr, kh: number, kw: number, wc: number, wo: number, flip: number, i0: number, j0: number, si: number, sj: number, nI: number, nJ: number,
  ): void;
  packColumns(src: Ptr, dst: Ptr, m: number, cols: number): void;
  convForward(
    xp: Ptr, w: Ptr, bias: Ptr, y: Ptr, n: number, hp: number, wp: number, cin: number,
    kh: number, kw: number, oh: number, ow: number, cout: number, s: number, relu: number, outImage: number, outRow: number, outPix: number,
  ): void;
  filterGrad(
    xp: Ptr, dy: Ptr, dw: Ptr, rows: Ptr, n: number, hp: number, wp: number, cin: number,
    kh: number, kw: number, oh: number, ow: number, cout: number, s: number, blockRows: number,
  ): void;
  winogradFilter(w: Ptr, u: Ptr, wc: number, wo: number): void;
  packWinograd(u: Ptr, dst: Ptr, wc: number, wo: number, flip: number): void;
  winogradInput(xp: Ptr, v: Ptr, n: number, hp: number, wp: number, c: number, th: number, tw: number, plane: number): void;
  winogradOutput(
    m: Ptr, y: Ptr, bias: Ptr, relu: number, n: number, oh: number, ow: number, cout: number, th: number, tw: number, outImage: number, outRow: number, outPix: number, plane: number,
  ): void;
  winogradOutputGrad(dy: Ptr, dst: Ptr, n: number, oh: number, ow: number, cout: number, th: number, tw: number, plane: number): void;
  winogradFilterGrad(du: Ptr, dw: Ptr, cin: number, cout: number): void;
  reluBiasGrad(dy: Ptr, y: Ptr, g: Ptr, dbias: Ptr, acc: Ptr, m: number, c: number): void;
  bnStats(x: Ptr, m: number, c: number, acc: Ptr, mean: Ptr, rstd: Ptr, eps: number): void;
  bnForward(x: Ptr, xhat: Ptr, y: Ptr, m: number, c: number, mean: Ptr, rstd: Ptr, gamma: Ptr, beta: Ptr, relu: number): void;
  bnBackward(
    dy: Ptr, xhat: Ptr, dx: Ptr, m: number, c: number, gamma: Ptr, beta: Ptr, rstd: Ptr, dgamma: Ptr, dbeta: Ptr, acc: Ptr, scale: Ptr, relu: number,
  ): void;
  addRelu(a: Ptr, b: Ptr, y: Ptr, count: number): void;
  reluGrad(dy: Ptr, y: Ptr, g: Ptr, count: number): void;
}

/** The emscripten module behind the backend: its memory, and its allocator for scratch buffers. */
export interface HeapModule {
  asm?: { memory?: { buffer: ArrayBuffer } };
  wasmMemory?: { buffer: ArrayBuffer };
  _malloc(bytes: number): Ptr;
  _free(ptr: Ptr): void;
}

let fused: boolean | null = null;

/**
 * Whether the kernels use fused multiply-adds: the relaxed-SIMD build validates (Chrome ≥ 114, Node ≥ 22;
 * Node 20's V8 has it behind a flag, set here when the first check fails; the browser bundle's stand-in for
 * node:v8 does nothing). Sums are then fused where the CPU has FMA, so their last bits can differ from a
 * machine without it; on one machine they are the same on every run and thread.
 */
export function fusedMultiplyAdd(): boolean {
  if (fused === null) {
    const bytes = moduleBytes(relaxedSimd);
    fused = wasm.validate(bytes);
    if (!fused) {
      setFlagsFromString('--experimental-wasm-relaxed-simd');
      fused = wasm.validate(bytes);
    }
  }
  return fused;
}

const instances = new WeakMap<HeapModule, NnExports | null>();

/**
 * The kernels of src/models/kernels/assembly/nn.ts, instantiated once on the backend's memory; null where
 * that memory is out of reach or shared (the threaded backend), and the callers fall back to TF.js.
 */
export function nnKernels(heap: HeapModule): NnExports | null {
  let k = instances.get(heap);
  if (k === undefined) {
    const memory = heap.asm?.memory ?? heap.wasmMemory;
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory?.buffer instanceof SharedArrayBuffer;
    k = null;
    if (memory && !shared) {
      const module = new wasm.Module(moduleBytes(fusedMultiplyAdd() ? relaxedSimd : simd));
      k = new wasm.Instance(module, { env: { memory } }).exports as unknown as NnExports;
    }
    instances.set(heap, k);
  }
  return k;
}

/** Runs `f` with scratch buffers of the given sizes (bytes) on the backend's heap, freed afterwards. */
export function withScratch<T>(heap: HeapModule, sizes: number[], f: (...ptrs: Ptr[]) => T): T {
  const ptrs = sizes.map((s) => heap._malloc(s));
  try {
    return f(...ptrs);
  } finally {
    for (const p of ptrs) heap._free(p);
  }
}

export function offsetOf(backend: BackendWasm, t: tf.TensorInfo): Ptr {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset;
}

export function heapOf(backend: BackendWasm): HeapModule {
  return backend.wasm as unknown as HeapModule;
}
