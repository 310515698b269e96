/**
 * 2-D convolutions (NHWC) and both their gradients on the wasm backend's own heap, by the AssemblyScript
 * kernels of src/models/kernels/assembly/nn.ts: a padded copy of the input, a packed filter (or output
 * gradient), then one register-tiled GEMM call, writing straight into the output tensor's memory.
 *
 * - forward: y = act(conv(x, w) + bias), act ReLU or none;
 * - filter gradient: dW[i, j, c, o] = Σ_{n,y,x} xpad[n, y·s + i, x·s + j, c] · dy[n, y, x, o];
 * - input gradient: per stride phase, the stride-1 convolution of the padded dy with that phase's taps of
 *   the filter, rotated by 180° and with its channel axes swapped (conv2dInputGradWasm).
 *
 * Each returns null for what its kernel does not cover (dilation, NCHW, output channels not a multiple of 8),
 * and the caller falls back to the backend. With relaxed SIMD (FMA) the sums are fused multiply-adds, so
 * results can differ in the last bits between machines with and without it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOf, nnKernels, offsetOf, withScratch } from './wasm.js';

/** What the kernels cover: NHWC, no dilation, float32. */
function plain(info: tf.backend_util.Conv2DInfo, ...ts: tf.TensorInfo[]): boolean {
  return info.dataFormat === 'channelsLast' && info.dilationHeight === 1 && info.dilationWidth === 1 && ts.every((t) => t.dtype === 'float32');
}

/** The padded input's height and width: every row and column a window reads, and all of x. */
function paddedSize(info: tf.backend_util.Conv2DInfo): [number, number] {
  const { padInfo, strideHeight: sh, strideWidth: sw } = info;
  return [
    Math.max((info.outHeight - 1) * sh + info.filterHeight, padInfo.top + info.inHeight),
    Math.max((info.outWidth - 1) * sw + info.filterWidth, padInfo.left + info.inWidth),
  ];
}

/** y = act(conv(x, filter) + bias), act ReLU when `relu`. Null when not covered. */
export function conv2dForward(backend: BackendWasm, x: tf.TensorInfo, filter: tf.TensorInfo, bias: tf.TensorInfo | null, relu: boolean, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | null {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin, outHeight: oh, outWidth: ow, outChannels: cout } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo } = info;
  if (!plain(info, x, filter) || cout % 8 !== 0 || sh !== sw || (bias && (bias.dtype !== 'float32' || tf.util.sizeFromShape(bias.shape) !== cout))) return null;
  const [hp, wp] = paddedSize(info);
  const heap = heapOf(backend);
  const k = nnKernels(heap);
  const out = backend.makeOutput([n, oh, ow, cout], 'float32');
  withScratch(heap, [4 * n * hp * wp * cin, 4 * kh * kw * cin * cout], (xp, panels) => {
    k.pad(offsetOf(backend, x), xp, n, h, w, cin, hp, wp, padInfo.top, padInfo.left);
    k.packFilter(offsetOf(backend, filter), panels, kh, kw, cin, cout, 0, 0, 0, 1, 1, kh, kw);
    const pix = 4 * cout;
    k.convForward(xp, panels, bias ? offsetOf(backend, bias) : 0, offsetOf(backend, out), n, hp, wp, cin, kh, kw, oh, ow, cout, sh, relu ? 1 : 0, oh * ow * pix, ow * pix, pix);
  });
  return out;
}

/** Output rows per block of the filter gradient: about 256 output pixels, whose x and dy stay in cache. */
const FILTER_GRAD_BLOCK_PIXELS = 256;

/** ∂L/∂W from the input x and the output gradient dy. Null when not covered. */
export function conv2dFilterGradWasm(backend: BackendWasm, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | null {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin, outHeight: oh, outWidth: ow, outChannels: cout } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo } = info;
  if (!plain(info, x, dy) || cout % 8 !== 0 || sh !== sw) return null;
  const [hp, wp] = paddedSize(info);
  const m = n * oh * ow;
  const heap = heapOf(backend);
  const k = nnKernels(heap);
  const out = backend.makeOutput([kh, kw, cin, cout], 'float32');
  const blockRows = Math.max(1, Math.round(FILTER_GRAD_BLOCK_PIXELS / ow));
  const rowsBytes = 4 * Math.min(blockRows, n * oh) * ow * kw * cin + 16;
  withScratch(heap, [4 * n * hp * wp * cin, 4 * m * cout, rowsBytes], (xp, dyPanels, rows) => {
    k.pad(offsetOf(backend, x), xp, n, h, w, cin, hp, wp, padInfo.top, padInfo.left);
    k.packColumns(offsetOf(backend, dy), dyPanels, m, cout);
    k.filterGrad(xp, dyPanels, offsetOf(backend, out), rows, n, hp, wp, cin, kh, kw, oh, ow, cout, sh, blockRows);
  });
  return out;
}

/**
 * One stride phase of the input gradient along one axis: the filter taps i ≡ `phase` (mod s), the input
 * positions r ≡ `first` (mod s) they reach, how many of each, and the zero padding `pad` before dy in the
 * stride-1 correlation that gives those positions. Null when no position or no tap is in the phase.
 */
function inputGradPhase(phase: number, k: number, s: number, size: number, before: number): { phase: number; taps: number; first: number; count: number; pad: number } | null {
  const taps = Math.ceil((k - phase) / s);
  const first = (((phase - before) % s) + s) % s;
  const count = Math.ceil((size - first) / s);
  if (taps <= 0 || count <= 0) return null;
  // dx[first + s·u] = Σ_a dy[u + shift − a] · w[phase + s·a], shift = (first + before − phase) / s
  return { phase, taps, first, count, pad: taps - 1 - (first + before - phase) / s };
}

/**
 * ∂L/∂x from the filter and the output gradient dy, one stride-1 correlation per stride phase (s² of them):
 * input pixel (r, c) receives dy only through the taps i ≡ r + top (mod s), j likewise, so a strided layer
 * costs what a stride-1 one does, with no multiplications by the zeros of a dilated dy. Null when not covered.
 */
export function conv2dInputGradWasm(backend: BackendWasm, dy: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | null {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin, outHeight: oh, outWidth: ow, outChannels: cout } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo } = info;
  if (!plain(info, dy, filter) || cin % 8 !== 0) return null;
  const rows = Array.from({ length: sh }, (_, p) => inputGradPhase(p, kh, sh, h, padInfo.top));
  const cols = Array.from({ length: sw }, (_, p) => inputGradPhase(p, kw, sw, w, padInfo.left));
  if ([...rows, ...cols].some((ph) => ph !== null && ph.pad < 0)) return null;
  const heap = heapOf(backend);
  const k = nnKernels(heap);
  const out = backend.makeOutput([n, h, w, cin], 'float32');
  // positions no tap reaches (a filter smaller than its stride) stay zero
  if (rows.includes(null) || cols.includes(null)) (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
  const pix = 4 * cin;
  for (const r of rows) {
    for (const c of cols) {
      if (!r || !c) continue;
      const hp = Math.max(r.count + r.taps - 1, r.pad + oh);
      const wp = Math.max(c.count + c.taps - 1, c.pad + ow);
      withScratch(heap, [4 * n * hp * wp * cout, 4 * r.taps * c.taps * cin * cout], (dyp, panels) => {
        k.pad(offsetOf(backend, dy), dyp, n, oh, ow, cout, hp, wp, r.pad, c.pad);
        k.packFilter(offsetOf(backend, filter), panels, kh, kw, cin, cout, 1, r.phase, c.phase, sh, sw, r.taps, c.taps);
        const base = offsetOf(backend, out) + (r.first * w + c.first) * pix;
        k.convForward(dyp, panels, 0, base, n, hp, wp, cout, r.taps, c.taps, r.count, c.count, cin, 1, 0, h * w * pix, sh * w * pix, sw * pix);
      });
    }
  }
  return out;
}
