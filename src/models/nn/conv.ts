/**
 * 2-D convolutions (NHWC) and both their gradients on the wasm backend's own heap, by the AssemblyScript
 * kernels of src/models/kernels/assembly/nn.ts: a padded copy of the input, a packed filter (or output
 * gradient), then one register-tiled GEMM call, writing straight into the output tensor's memory.
 *
 * - forward: y = act(conv(x, w) + bias), act ReLU or none;
 * - filter gradient: dW[i, j, c, o] = Σ_{n,y,x} xpad[n, y·s + i, x·s + j, c] · dy[n, y, x, o];
 * - input gradient: dx is the stride-1 convolution of dy, spread by s (s − 1 zeros between rows and
 *   columns) and padded by KH − 1 − top (and so on), with the filter rotated by 180° and its channel axes
 *   swapped.
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
    k.spread(offsetOf(backend, x), xp, n, h, w, cin, hp, wp, padInfo.top, padInfo.left, 1, 1);
    k.packFilter(offsetOf(backend, filter), panels, kh, kw, cin, cout, 0);
    k.convForward(xp, panels, bias ? offsetOf(backend, bias) : 0, offsetOf(backend, out), n, hp, wp, cin, kh, kw, oh, ow, cout, sh, relu ? 1 : 0);
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
  // 16 bytes past the padded input: the last tile of a row reads up to 3 values past its window
  withScratch(heap, [4 * n * hp * wp * cin + 16, 4 * m * cout], (xp, dyPanels) => {
    k.spread(offsetOf(backend, x), xp, n, h, w, cin, hp, wp, padInfo.top, padInfo.left, 1, 1);
    k.packColumns(offsetOf(backend, dy), dyPanels, m, cout);
    const blockRows = Math.max(1, Math.round(FILTER_GRAD_BLOCK_PIXELS / ow));
    k.filterGrad(xp, dyPanels, offsetOf(backend, out), n, hp, wp, cin, kh, kw, oh, ow, cout, sh, blockRows);
  });
  return out;
}

/** ∂L/∂x from the filter and the output gradient dy. Null when not covered. */
export function conv2dInputGradWasm(backend: BackendWasm, dy: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | null {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin, outHeight: oh, outWidth: ow, outChannels: cout } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo } = info;
  if (!plain(info, dy, filter) || cin % 8 !== 0) return null;
  // dy spread by the stride into a [n, h + kh − 1, w + kw − 1, cout] buffer at (kh − 1 − top, kw − 1 − left)
  const top = kh - 1 - padInfo.top;
  const left = kw - 1 - padInfo.left;
  const hp = h + kh - 1;
  const wp = w + kw - 1;
  if (top < 0 || left < 0 || top + (oh - 1) * sh >= hp || left + (ow - 1) * sw >= wp) return null;
  const heap = heapOf(backend);
  const k = nnKernels(heap);
  const out = backend.makeOutput([n, h, w, cin], 'float32');
  withScratch(heap, [4 * n * hp * wp * cout, 4 * kh * kw * cin * cout], (dyp, panels) => {
    k.spread(offsetOf(backend, dy), dyp, n, oh, ow, cout, hp, wp, top, left, sh, sw);
    k.packFilter(offsetOf(backend, filter), panels, kh, kw, cin, cout, 1);
    k.convForward(dyp, panels, 0, offsetOf(backend, out), n, hp, wp, cout, kh, kw, h, w, cin, 1, 0);
  });
  return out;
}
