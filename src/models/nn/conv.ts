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
 * 3×3 stride-1 layers with channels a multiple of 4 take Winograd F(2×2, 3×3) in all three (`winograd`,
 * `winogradFilterGrad`): 16 GEMMs of transformed 4×4 tiles, 16 products per 2×2 outputs instead of 36.
 *
 * Each returns null for what its kernel does not cover (dilation, NCHW, output channels not a multiple of 8),
 * and the caller falls back to the backend. With relaxed SIMD (FMA) the sums are fused multiply-adds, so
 * results can differ in the last bits between machines with and without it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOf, nnKernels, offsetOf, withScratch, type HeapModule, type NnExports, type Ptr } from './wasm.js';

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
  const heap = heapOf(backend);
  const k = nnKernels(heap);
  if (!k) return null;
  const out = backend.makeOutput([n, oh, ow, cout], 'float32');
  const pix = 4 * cout;
  if (kh === 3 && kw === 3 && sh === 1 && cin % 4 === 0) {
    const image = { n, h, w, c: cin, top: padInfo.top, left: padInfo.left };
    winograd(heap, k, offsetOf(backend, x), image, offsetOf(backend, filter), 0, bias ? offsetOf(backend, bias) : 0, relu, offsetOf(backend, out), [oh, ow, cout], [oh * ow * pix, ow * pix, pix]);
    return out;
  }
  const [hp, wp] = paddedSize(info);
  withScratch(heap, [4 * n * hp * wp * cin, 4 * kh * kw * cin * cout], (xp, panels) => {
    k.pad(offsetOf(backend, x), xp, n, h, w, cin, hp, wp, padInfo.top, padInfo.left);
    k.packFilter(offsetOf(backend, filter), panels, kh, kw, cin, cout, 0, 0, 0, 1, 1, kh, kw);
    k.convForward(xp, panels, bias ? offsetOf(backend, bias) : 0, offsetOf(backend, out), n, hp, wp, cin, kh, kw, oh, ow, cout, sh, relu ? 1 : 0, oh * ow * pix, ow * pix, pix);
  });
  return out;
}

/** An NHWC input on the heap and its zero padding before the first row and column. */
interface PaddedImage {
  n: number;
  h: number;
  w: number;
  c: number;
  top: number;
  left: number;
}

/**
 * Winograd tiles of an [oh, ow] output: th × tw tiles of 2×2, the padded input's size hp × wp (every 4×4
 * input tile inside), and the GEMMs' rows of tiles: up to 64 tiles a row, whose values stay in cache
 * across the output panels.
 */
function tiling(x: PaddedImage, oh: number, ow: number): { th: number; tw: number; hp: number; wp: number; tiles: number; rows: number; perRow: number } {
  const [th, tw] = [Math.ceil(oh / 2), Math.ceil(ow / 2)];
  const tiles = x.n * th * tw;
  const perRow = [64, 32, 16, 8, 4].find((d) => tiles % d === 0) ?? tiles;
  return { th, tw, hp: Math.max(2 * th + 2, x.top + x.h), wp: Math.max(2 * tw + 2, x.left + x.w), tiles, rows: tiles / perRow, perRow };
}

/**
 * A 3×3 stride-1 convolution by Winograd F(2×2, 3×3) (src/models/kernels/assembly/nn.ts): the padded input
 * cut into 4×4 tiles two apart, transformed; the [3, 3, wc, wo] filter at `filter` transformed (flip = 1:
 * rotated and transposed, for an input gradient); 16 GEMMs (convForward as 1×1 convolutions over rows of
 * tiles); the [oh, ow, cout] output transformed back, with bias (0: none) and ReLU, at `out` with the
 * given [image, row, pixel] byte strides. Needs c a multiple of 4 and cout of 8.
 */
function winograd(heap: HeapModule, k: NnExports, src: Ptr, x: PaddedImage, filter: Ptr, flip: 0 | 1, bias: Ptr, relu: boolean, out: Ptr, [oh, ow, cout]: number[], strides: number[]): void {
  const { n, h, w, c, top, left } = x;
  const [wc, wo] = flip ? [cout!, c] : [c, cout!];
  // images in groups whose transformed tiles take at most WINOGRAD_SCRATCH_BYTES (a 256-image evaluation pass)
  const one = tiling({ ...x, n: 1 }, oh!, ow!);
  const group = Math.max(1, Math.min(n, Math.floor(WINOGRAD_SCRATCH_BYTES / (64 * one.tiles * (c + cout!) + 4 * one.hp * one.wp * c))));
  withScratch(heap, [64 * c * cout!, 64 * c * cout!], (u, panels) => {
    k.winogradFilter(filter, u, wc, wo);
    k.packWinograd(u, panels, wc, wo, flip);
    for (let b0 = 0; b0 < n; b0 += group) {
      const g = Math.min(group, n - b0);
      const { th, tw, hp, wp, tiles, rows, perRow } = tiling({ ...x, n: g }, oh!, ow!);
      const [vPlane, mPlane] = [planeBytes(tiles, c), planeBytes(tiles, cout!)];
      withScratch(heap, [4 * g * hp * wp * c, 16 * vPlane, 16 * mPlane], (xp, v, m) => {
        k.pad(src + 4 * b0 * h * w * c, xp, g, h, w, c, hp, wp, top, left);
        k.winogradInput(xp, v, g, hp, wp, c, th, tw, vPlane);
        for (let xi = 0; xi < 16; xi++) {
          k.convForward(v + xi * vPlane, panels + 4 * xi * c * cout!, 0, m + xi * mPlane, 1, rows, perRow, c, 1, 1, rows, perRow, cout!, 1, 0, 0, 4 * perRow * cout!, 4 * cout!);
        }
        k.winogradOutput(m, out + b0 * strides[0]!, bias, relu ? 1 : 0, g, oh!, ow!, cout!, th, tw, strides[0]!, strides[1]!, strides[2]!, mPlane);
      });
    }
  });
}

/**
 * Bytes between the 16 ξ planes of `tiles` transformed tiles of c channels: the plane's size plus a skew of
 * 256 bytes, so the planes do not start at the same offset in a 4 KiB page (a power-of-two plane size had
 * the transforms' 16 streams of stores fight over the same cache sets).
 */
function planeBytes(tiles: number, c: number): number {
  return 4 * tiles * c + 256;
}

/** Scratch bytes for one group of images' Winograd tiles (forward and input gradient). */
const WINOGRAD_SCRATCH_BYTES = 2 ** 27;

/**
 * The filter gradient of a 3×3 stride-1 convolution by Winograd F(2×2, 3×3): with V = Bᵀ d B of the input
 * tiles (as the forward pass) and Ŷ = A dY Aᵀ of the 2×2 output-gradient tiles, dU[ξ] = Σ_tiles V[ξ]ᵀ·Ŷ[ξ]
 * (16 GEMMs, filterGrad as 1×1 filter gradients over rows of tiles), and dW = Gᵀ dU G into `out`.
 */
function winogradFilterGrad(heap: HeapModule, k: NnExports, src: Ptr, x: PaddedImage, dy: Ptr, [oh, ow, cout]: number[], out: Ptr): void {
  const { n, h, w, c, top, left } = x;
  const { th, tw, hp, wp, tiles, rows, perRow } = tiling(x, oh!, ow!);
  const blockRows = Math.max(1, Math.round(FILTER_GRAD_BLOCK_PIXELS / perRow));
  // v read in place by the 1×1 filter gradients (the planes' skew leaves the 16 bytes of slack they need)
  const [vPlane, yPlane] = [planeBytes(tiles, c), planeBytes(tiles, cout!)];
  withScratch(heap, [4 * n * hp * wp * c, 16 * vPlane, 16 * yPlane, 64 * c * cout!], (xp, v, yhat, du) => {
    k.pad(src, xp, n, h, w, c, hp, wp, top, left);
    k.winogradInput(xp, v, n, hp, wp, c, th, tw, vPlane);
    k.winogradOutputGrad(dy, yhat, n, oh!, ow!, cout!, th, tw, yPlane);
    for (let xi = 0; xi < 16; xi++) {
      k.filterGrad(v + xi * vPlane, yhat + xi * yPlane, du + 4 * xi * c * cout!, 0, 1, rows, perRow, c, 1, 1, rows, perRow, cout!, 1, blockRows);
    }
    k.winogradFilterGrad(du, out, c, cout!);
  });
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
  if (!k) return null;
  const out = backend.makeOutput([kh, kw, cin, cout], 'float32');
  if (kh === 3 && kw === 3 && sh === 1 && cin % 4 === 0) {
    winogradFilterGrad(heap, k, offsetOf(backend, x), { n, h, w, c: cin, top: padInfo.top, left: padInfo.left }, offsetOf(backend, dy), [oh, ow, cout], offsetOf(backend, out));
    return out;
  }
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
  if (!k) return null;
  const out = backend.makeOutput([n, h, w, cin], 'float32');
  // positions no tap reaches (a filter smaller than its stride) stay zero
  if (rows.includes(null) || cols.includes(null)) (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
  const pix = 4 * cin;
  if (kh === 3 && kw === 3 && sh === 1 && sw === 1 && cout % 4 === 0) {
    const image = { n, h: oh, w: ow, c: cout, top: rows[0]!.pad, left: cols[0]!.pad };
    winograd(heap, k, offsetOf(backend, dy), image, offsetOf(backend, filter), 1, 0, false, offsetOf(backend, out), [h, w, cin], [h * w * pix, w * pix, pix]);
    return out;
  }
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
