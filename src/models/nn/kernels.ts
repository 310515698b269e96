/**
 * Kernels for the wasm backend, registered over (or next to) its own.
 *
 * Convolutions: the forward Conv2D / FusedConv2D (bias, ReLU) and both gradients run the AssemblyScript
 * kernels of src/models/nn/conv.ts (register-tiled GEMMs, Winograd F(2×2, 3×3) for 3×3 stride-1 layers).
 * What those do not cover (dilation, NCHW, channel counts that are not multiples of 8 or 4) falls back:
 * the forward to XNNPACK; the gradients (tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter, and its
 * Conv2DBackpropInput is a plain C++ loop) to forward Conv2D calls on transposed or dilated operands:
 *
 * - filter gradient: dW[i,j,c,o] = Σ_{n,y,x} xpad[n, y·s+i, x·s+j, c] · dy[n,y,x,o] is a convolution of
 *   xᵀ ([C, H, W, N]: channels as batch, batch as channels) with dy as the filter ([OH, OW, N, O]) at
 *   dilation s, giving [C, KH, KW, O], transposed to the filter's [KH, KW, C, O];
 * - input gradient: dx is the correlation of dy, dilated by s (s − 1 zeros between rows and columns),
 *   with the filter rotated by 180° and its channel axes swapped, padded by KH − 1 − top (and so on).
 *
 * Also here: a 2×2 max-pooling op with a faster gradient than the backend's MaxPoolGrad kernel, a
 * training-mode BatchNorm op with a closed-form gradient (wasm kernels on this backend), and faster
 * replacements of the backend's Sum, Mean, BatchMatMul and Identity kernels for the cases a training step
 * hits (docs/performance-nn.md).
 *
 * Inside a kernel, tf ops are not taped (the engine's kernel depth is > 0), so composing them is safe.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { conv2dFilterGradWasm, conv2dForward, conv2dInputGradWasm } from './conv.js';
import { heapOf, nnKernels, offsetOf, withScratch, type NnExports } from './wasm.js';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

interface ConvAttrs {
  strides: [number, number] | number;
  pad: Pad;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function convInfo(xShape: number[], filterShape: number[], attrs: ConvAttrs, dilations: [number, number] | number = 1): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat !== 'NHWC') throw new Error(`wasm conv gradients support NHWC only, got ${attrs.dataFormat}`);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/** Crops dimensions 1 and 2 of a 4-D tensor to [h, w] when they are larger. */
function crop(t: tf.Tensor4D, h: number, w: number): tf.Tensor4D {
  const [n, th, tw, c] = t.shape;
  return th === h && tw === w ? t : tf.slice(t, [0, 0, 0, 0], [n, h, w, c]);
}

/** Inserts s − 1 zero rows (columns) after every row (column) of a NHWC tensor: [N, H·sh, W·sw, C]. */
function dilate(t: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return t;
  const [n, h, w, c] = t.shape;
  const six = tf.pad(tf.reshape(t, [n, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  return tf.reshape(six, [n, h * sh, w * sw, c]);
}

/**
 * The filter rotated by 180° in its spatial axes: its k·k rows of C·O values in reverse order, copied in
 * JS (the wasm Reverse and GatherV2 kernels take ~100 ms for a 3×3×512×512 filter; this takes ~2 ms).
 */
function rotate180(filter: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, c, o] = filter.shape;
  const k = kh * kw;
  if (k === 1) return filter;
  const v = filter.dataSync() as Float32Array;
  const out = new Float32Array(v.length);
  const row = c * o;
  for (let i = 0; i < k; i++) out.set(v.subarray(i * row, (i + 1) * row), (k - 1 - i) * row);
  return tf.tensor4d(out, filter.shape);
}

/** ∂L/∂W of a 2-D convolution (NHWC), from the input x and the output gradient dy. */
export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], attrs: ConvAttrs): tf.Tensor4D {
  const info = convInfo(x.shape, filterShape, attrs);
  const [kh, kw] = filterShape;
  const { top, bottom, left, right } = info.padInfo;
  const xt = tf.transpose(x, [3, 1, 2, 0]); // [C, H, W, N]
  const dyf = tf.transpose(dy, [1, 2, 0, 3]); // [OH, OW, N, O]
  const pad: tf.backend_util.ExplicitPadding = [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
  const g = tf.conv2d(xt, dyf, 1, pad, 'NHWC', [info.strideHeight, info.strideWidth]); // [C, ≥KH, ≥KW, O]
  return tf.transpose(crop(g, kh, kw), [1, 2, 0, 3]);
}

/** ∂L/∂x of a 2-D convolution (NHWC), from the filter and the output gradient dy. */
export function conv2dInputGrad(inputShape: [number, number, number, number], filter: tf.Tensor4D, dy: tf.Tensor4D, attrs: ConvAttrs): tf.Tensor4D {
  const info = convInfo(inputShape, filter.shape, attrs);
  const [kh, kw] = filter.shape;
  const [, h, w] = inputShape;
  const { top, left } = info.padInfo;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const [, oh, ow] = dy.shape;
  if (top > kh - 1 || left > kw - 1) throw new Error(`conv input gradient: padding ${top}×${left} wider than the ${kh}×${kw} filter is not supported`);
  // rows of the dilated dy actually carrying values: (OH − 1)·s + 1; dilate() appends s − 1 more zeros
  const padBottom = h + top - ((oh - 1) * sh + 1);
  const padRight = w + left - ((ow - 1) * sw + 1);
  const flipped = tf.transpose(rotate180(filter), [0, 1, 3, 2]); // [KH, KW, O, C]
  const pad: tf.backend_util.ExplicitPadding = [
    [0, 0],
    [kh - 1 - top, Math.max(0, padBottom - (sh - 1))],
    [kw - 1 - left, Math.max(0, padRight - (sw - 1))],
    [0, 0],
  ];
  return crop(tf.conv2d(dilate(dy, sh, sw), flipped, 1, pad), h, w);
}

/**
 * A float32 tensor's values: on the wasm backend a view of its heap, valid until the next allocation there
 * (dataSync copies: ~7 ms for a 32×32×32×32 tensor, ~50 ms for ResNet18's gradients); elsewhere dataSync.
 */
export function readFloats(t: tf.Tensor): Float32Array {
  const backend = tf.backend();
  return ('typedArrayFromHeap' in backend ? (backend as BackendWasm).typedArrayFromHeap(t) : t.dataSync()) as Float32Array;
}

/**
 * 2×2 max-pooling, stride 2. Its gradient goes to one entry of each window: the first maximum in
 * row-major order (top-left, top-right, bottom-left, bottom-right), as PyTorch, TensorFlow and
 * tfjs-backend-cpu's MaxPoolGrad do. Ties are common on real images (saturated pixels; a zero background
 * plus a positive bias makes every background window a 4-way tie), and sending dy to every tied entry
 * would count it up to four times. Computed in one JS pass over x (the wasm MaxPoolGrad kernel is ~6×
 * slower).
 */
export const maxPool2x2 = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
  const y = tf.maxPool(x, 2, 2, 'valid');
  save([x, y]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
      const [x, y] = saved as [tf.Tensor4D, tf.Tensor4D];
      // nothing allocates on the wasm heap until the loop is done, so the views stay valid
      return tf.tensor4d(maxPool2x2Grad(readFloats(x), readFloats(y), readFloats(dy), x.shape), x.shape);
    },
  };
}) as (x: tf.Tensor4D) => tf.Tensor4D;

/**
 * dx of 2×2/2 max-pooling: dy of each window to the first of its entries equal to its maximum y, in
 * row-major order; an odd last row or column gets 0. The entry's index 0..3 is counted without branches
 * (a random 1-in-4 branch mispredicts: 2× slower). A window whose maximum is NaN sends dy to its last entry.
 */
function maxPool2x2Grad(x: Float32Array, y: Float32Array, dy: Float32Array, shape: number[]): Float32Array {
  const [n, h, w, c] = shape as [number, number, number, number];
  const row = w * c;
  const dx = new Float32Array(x.length);
  const offsets = Int32Array.of(0, c, row, row + c);
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h >> 1; i++) {
      let p = (b * h + 2 * i) * row; // top-left entry of the window of output (b, i, j, k)
      for (let j = 0; j < w >> 1; j++, p += c) {
        for (let k = 0; k < c; k++, o++, p++) {
          const m = y[o]!;
          const past0 = +(x[p] !== m); // 1 while the maximum has not been met
          const past1 = past0 & +(x[p + c] !== m);
          const past2 = past1 & +(x[p + row] !== m);
          dx[p + offsets[past0 + past1 + past2]!] = dy[o]!;
        }
      }
    }
  }
  return dx;
}

/**
 * relu(conv2d(x, filter) + bias) (NHWC, zero padding `pad` on every side) as one op: the forward is one
 * FusedConv2D kernel (under a gradient tape TF.js would run the convolution, Add and Relu apart), and the
 * gradient masks dy by y > 0 and sums the bias gradient in one pass (a wasm kernel on this backend) before
 * the two convolution gradients. `inputGrad` false: the gradient in x is returned as zeros without being
 * computed (the first layer's, whose input is the images).
 */
export function convBiasRelu(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, stride: number, pad: number, inputGrad: boolean): tf.Tensor4D {
  const attrs = { strides: stride, pad, dataFormat: 'NHWC', dilations: 1 };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, filter, bias, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D, tf.GradSaveFunc];
    const y = tf.engine().runKernel(tf.FusedConv2D, { x, filter, bias }, { ...attrs, activation: 'relu' }) as tf.Tensor4D;
    save([x, filter, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [x, filter, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
        const [g, dbias] = reluBiasGrad(dy, y);
        const dfilter = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: g }, { ...attrs, filterShape: filter.shape }) as tf.Tensor;
        const dx = inputGrad ? (tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: g, filter }, { ...attrs, inputShape: x.shape }) as tf.Tensor) : tf.zerosLike(x);
        return [dx, dfilter, dbias];
      },
    };
  }) as (x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D) => tf.Tensor4D;
  return op(x, filter, bias);
}

/** [dy·(y > 0), its sum over (batch, height, width)]: by a wasm kernel where there is one, else tf ops. */
function reluBiasGrad(dy: tf.Tensor4D, y: tf.Tensor4D): [tf.Tensor4D, tf.Tensor1D] {
  const backend = tf.backend();
  const c = dy.shape[3];
  const k = 'typedArrayFromHeap' in backend && c % 4 === 0 ? nnKernels(heapOf(backend as BackendWasm)) : null;
  if (!k) {
    const g = tf.mul(dy, tf.step(y)) as tf.Tensor4D;
    return [g, tf.sum(g, [0, 1, 2]) as tf.Tensor1D];
  }
  const wasm = backend as BackendWasm;
  const [g, dbias] = [wasm.makeOutput(dy.shape, 'float32'), wasm.makeOutput([c], 'float32')];
  withScratch(heapOf(wasm), [8 * c], (acc) => {
    k.reluBiasGrad(offsetOf(wasm, dy), offsetOf(wasm, y), offsetOf(wasm, g), offsetOf(wasm, dbias), acc, dy.size / c, c);
  });
  const engine = tf.engine();
  return [engine.makeTensorFromTensorInfo(g) as tf.Tensor4D, engine.makeTensorFromTensorInfo(dbias) as tf.Tensor1D];
}

/** BatchNorm's ε, as PyTorch's default. */
export const BN_EPS = 1e-5;

/**
 * BatchNorm in training mode over (batch, height, width): y = γ·(x − μ)/√(σ² + ε) + β with the batch's mean
 * and biased variance, followed by a ReLU when `relu` (the two as one op: no separate ReLU pass or mask). The
 * gradient is the closed form dx = γ/√(σ² + ε) · (dy − mean(dy) − x̂·mean(dy·x̂)), dγ = Σ dy·x̂, dβ = Σ dy
 * (dy first zeroed where the ReLU's input was not positive), which keeps only x̂ for the backward pass
 * instead of the taped `moments` graph. On the wasm backend (channels a multiple of 4) each direction is two
 * or three passes of the kernels in src/models/kernels/assembly/nn.ts (float64 sums); elsewhere, tf ops.
 */
export function batchNormTrain(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, relu = false): tf.Tensor4D {
  return (relu ? batchNormReluOp : batchNormOp)(x, gamma, beta);
}

function batchNormCustomOp(relu: boolean): (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor4D {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, gamma, beta, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const backend = tf.backend();
    const k = 'typedArrayFromHeap' in backend && x.shape[3] % 4 === 0 ? nnKernels(heapOf(backend as BackendWasm)) : null;
    if (k) {
      const [y, xhat, rstd] = batchNormForwardWasm(backend as BackendWasm, k, x, gamma, beta, relu);
      save([xhat, rstd, gamma, beta]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => batchNormBackwardWasm(backend as BackendWasm, k, dy, saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D], relu),
      };
    }
    const axes = [0, 1, 2];
    const centred = tf.sub(x, tf.mean(x, axes));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axes), BN_EPS));
    const xhat = tf.mul(centred, rstd);
    save([xhat, rstd, gamma, beta]);
    const z = tf.add(tf.mul(xhat, gamma), beta) as tf.Tensor4D;
    return {
      value: relu ? tf.relu(z) : z,
      gradFunc: (dyOut: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [xhat, rstd, gamma, beta] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const dy = (relu ? tf.mul(dyOut, tf.step(tf.add(tf.mul(xhat, gamma), beta))) : dyOut) as tf.Tensor4D;
        const m = dy.shape[0] * dy.shape[1] * dy.shape[2];
        const dbeta = tf.sum(dy, axes);
        const dgamma = tf.sum(tf.mul(dy, xhat), axes);
        const inner = tf.sub(tf.sub(dy, tf.div(dbeta, m)), tf.mul(xhat, tf.div(dgamma, m)));
        return [tf.mul(inner, tf.mul(gamma, rstd)), dgamma, dbeta];
      },
    };
  }) as (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor4D;
}

const batchNormOp = batchNormCustomOp(false);
const batchNormReluOp = batchNormCustomOp(true);

/** [y, x̂, 1/√(σ² + ε)] of batchNormTrain by the wasm kernels. */
function batchNormForwardWasm(backend: BackendWasm, k: NnExports, x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, relu: boolean): [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D] {
  const c = x.shape[3];
  const m = x.size / c;
  const heap = heapOf(backend);
  const [y, xhat, rstd] = [backend.makeOutput(x.shape, 'float32'), backend.makeOutput(x.shape, 'float32'), backend.makeOutput([c], 'float32')];
  withScratch(heap, [8 * c, 4 * c], (acc, mean) => {
    k.bnStats(offsetOf(backend, x), m, c, acc, mean, offsetOf(backend, rstd), BN_EPS);
    k.bnForward(offsetOf(backend, x), offsetOf(backend, xhat), offsetOf(backend, y), m, c, mean, offsetOf(backend, rstd), offsetOf(backend, gamma), offsetOf(backend, beta), relu ? 1 : 0);
  });
  const engine = tf.engine();
  return [engine.makeTensorFromTensorInfo(y) as tf.Tensor4D, engine.makeTensorFromTensorInfo(xhat) as tf.Tensor4D, engine.makeTensorFromTensorInfo(rstd) as tf.Tensor1D];
}

/** [dx, dγ, dβ] of batchNormTrain by the wasm kernels. */
function batchNormBackwardWasm(backend: BackendWasm, k: NnExports, dy: tf.Tensor4D, [xhat, rstd, gamma, beta]: [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D], relu: boolean): tf.Tensor[] {
  const c = dy.shape[3];
  const m = dy.size / c;
  const heap = heapOf(backend);
  const [dx, dgamma, dbeta] = [backend.makeOutput(dy.shape, 'float32'), backend.makeOutput([c], 'float32'), backend.makeOutput([c], 'float32')];
  withScratch(heap, [16 * c, 4 * c], (acc, scale) => {
    const [g, b, r] = [gamma, beta, rstd].map((t) => offsetOf(backend, t)) as [number, number, number];
    k.bnBackward(offsetOf(backend, dy), offsetOf(backend, xhat), offsetOf(backend, dx), m, c, g, b, r, offsetOf(backend, dgamma), offsetOf(backend, dbeta), acc, scale, relu ? 1 : 0);
  });
  const engine = tf.engine();
  return [dx, dgamma, dbeta].map((t) => engine.makeTensorFromTensorInfo(t));
}

/**
 * relu(a + b) as one op (ResNet's residual merge): one pass forward, and one mask pass backward whose result
 * is the gradient of both (wasm kernels; tf ops elsewhere).
 */
export const addRelu = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  const backend = tf.backend();
  const k = 'typedArrayFromHeap' in backend && a.size % 4 === 0 && tf.util.arraysEqual(a.shape, b.shape) ? nnKernels(heapOf(backend as BackendWasm)) : null;
  const wasm = backend as BackendWasm;
  const y = k
    ? elementwise(wasm, a.shape, (out) => k.addRelu(offsetOf(wasm, a), offsetOf(wasm, b), out, a.size))
    : tf.relu(tf.add(a, b));
  save([y]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor, [y]: tf.Tensor[]) => {
      const g = k ? elementwise(wasm, dy.shape, (out) => k.reluGrad(offsetOf(wasm, dy), offsetOf(wasm, y!), out, dy.size)) : tf.mul(dy, tf.step(y!));
      return [g, tf.clone(g)];
    },
  };
}) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/** A new float32 tensor of `shape` filled by `fill` (given its heap offset) on the wasm backend. */
function elementwise(backend: BackendWasm, shape: number[], fill: (out: number) => void): tf.Tensor {
  const out = backend.makeOutput(shape, 'float32');
  fill(offsetOf(backend, out));
  return tf.engine().makeTensorFromTensorInfo(out);
}

/**
 * Sum or mean over leading axes [0, k) of a float32 tensor, in one JS pass over the wasm heap with
 * float64 accumulators: the wasm Sum and Mean kernels first transpose the reduced axes innermost (10 ms
 * for the bias gradient of a 32×32×32×32 activation), and a matMul with a row of ones pays XNNPACK's
 * weight packing on every new tensor. These are the bias, dense-bias and BatchNorm reductions over
 * (N, H, W) or N. Null when the reduction is not of that form.
 */
function leadingAxesReduce(backend: BackendWasm, x: tf.TensorInfo, axis: number | number[], keepDims: boolean, mean: boolean): tf.TensorInfo | null {
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  const k = axes.length;
  if (x.dtype !== 'float32' || k === 0 || k >= rank || axes[k - 1] !== k - 1) return null;
  const m = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
  const rest = x.shape.slice(k);
  const c = rest.reduce((a, b) => a * b, 1);
  const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...rest] : rest, 'float32');
  // views after makeOutput, which may grow (and so detach) the heap
  const v = backend.typedArrayFromHeap(x) as Float32Array;
  const acc = new Float64Array(c);
  // eight rows per pass over the accumulators: 4× faster than one (V8, 1M values: 0.8 against 3.4 ms)
  const [c2, c3, c4, c5, c6, c7] = [2 * c, 3 * c, 4 * c, 5 * c, 6 * c, 7 * c];
  let i = 0;
  for (; i + 8 <= m; i += 8) {
    const b = i * c;
    for (let j = 0; j < c; j++) {
      const p = b + j;
      acc[j]! += v[p]! + v[p + c]! + v[p + c2]! + v[p + c3]! + v[p + c4]! + v[p + c5]! + v[p + c6]! + v[p + c7]!;
    }
  }
  for (; i < m; i++) for (let j = 0; j < c; j++) acc[j]! += v[i * c + j]!;
  const o = backend.typedArrayFromHeap(out) as Float32Array;
  for (let j = 0; j < c; j++) o[j] = mean ? acc[j]! / m : acc[j]!;
  return out;
}

let registered = false;

/** The wasm backend's own Conv2DBackpropInput, kept for bench/nn.ts to compare against. */
export let builtinConv2DBackpropInput: tf.KernelConfig | undefined;

/** Replaces a registered wasm kernel with `kernelFunc`, which may fall back to the original (given). */
function wrapWasmKernel(name: string, kernelFunc: (args: Parameters<tf.KernelFunc>[0], builtin: tf.KernelFunc) => ReturnType<tf.KernelFunc>): void {
  const builtin = tf.getKernel(name, 'wasm');
  if (!builtin) throw new Error(`the wasm backend has no ${name} kernel`);
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...builtin, kernelFunc: (args) => kernelFunc(args, builtin.kernelFunc) });
}

/**
 * Registers our kernels for the wasm backend: the forward convolutions and the two convolution gradients
 * (replacing its slow Conv2DBackpropInput), faster paths of Sum, Mean (leading axes) and BatchMatMul
 * (transposed operands), and an Identity that shares its input's data instead of copying it. Idempotent.
 */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  builtinConv2DBackpropInput = tf.getKernel(tf.Conv2DBackpropInput, 'wasm');
  tf.registerKernel({
    kernelName: tf.Conv2DBackpropFilter,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, dy } = inputs as unknown as { x: tf.Tensor4D; dy: tf.Tensor4D };
      const a = attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
      const ours = a.dataFormat === 'NHWC' ? conv2dFilterGradWasm(backend as BackendWasm, x, dy, convInfo(x.shape, a.filterShape, a)) : null;
      return ours ?? tf.tidy(() => conv2dFilterGrad(x, dy, a.filterShape, a));
    },
  });
  if (builtinConv2DBackpropInput) tf.unregisterKernel(tf.Conv2DBackpropInput, 'wasm');
  tf.registerKernel({
    kernelName: tf.Conv2DBackpropInput,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { dy, filter } = inputs as unknown as { dy: tf.Tensor4D; filter: tf.Tensor4D };
      const a = attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
      const ours = a.dataFormat === 'NHWC' ? conv2dInputGradWasm(backend as BackendWasm, dy, filter, convInfo(a.inputShape, filter.shape, a)) : null;
      return ours ?? tf.tidy(() => conv2dInputGrad(a.inputShape, filter, dy, a));
    },
  });
  // forward convolutions, with a bias and a ReLU when fused; other activations go to XNNPACK
  for (const name of [tf.Conv2D, tf.FusedConv2D]) {
    wrapWasmKernel(name, (args, builtin) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo; bias?: tf.TensorInfo; preluActivationWeights?: tf.TensorInfo };
      const a = args.attrs as unknown as ConvAttrs & { dilations: [number, number] | number; activation?: string };
      const activation = a.activation ?? 'linear';
      if (a.dataFormat !== 'NHWC' || preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) return builtin(args);
      const info = convInfo(x.shape, filter.shape, a, a.dilations);
      return conv2dForward(args.backend as BackendWasm, x, filter, bias ?? null, activation === 'relu', info) ?? builtin(args);
    });
  }
  for (const [name, mean] of [[tf.Sum, false], [tf.Mean, true]] as const) {
    wrapWasmKernel(name, (args, builtin) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
      return leadingAxesReduce(args.backend as BackendWasm, x, axis, keepDims, mean) ?? builtin(args);
    });
  }
  // The tape saves a clone of every tensor a gradient needs; the wasm Identity copies it, while the data
  // is immutable and reference-counted, so sharing it (as the CPU and WebGL backends do) is enough.
  wrapWasmKernel(tf.Identity, (args, builtin) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') return builtin(args);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  // The wasm BatchMatMul with transposeA/B is 3–15× slower than transposing first (dense-layer gradients).
  wrapWasmKernel(tf.BatchMatMul, (args, builtin) => {
    const { a, b } = args.inputs as { a: tf.Tensor; b: tf.Tensor };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return builtin(args);
    const swapLast = (t: tf.Tensor): tf.Tensor => {
      const r = t.shape.length;
      return tf.transpose(t, [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2]);
    };
    return tf.tidy(() => tf.matMul(transposeA ? swapLast(a) : a, transposeB ? swapLast(b) : b));
  });
}
