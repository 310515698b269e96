/**
 * Convolution gradient kernels for the wasm backend, built on its XNNPACK forward convolution.
 *
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter at all, and its Conv2DBackpropInput is a plain C++
 * loop (~10× slower than ours, bench/nn.ts). Both gradients are convolutions
 * themselves, so they are rewritten as forward Conv2D calls on transposed or dilated operands:
 *
 * - filter gradient: dW[i,j,c,o] = Σ_{n,y,x} xpad[n, y·s+i, x·s+j, c] · dy[n,y,x,o] is a convolution of
 *   xᵀ ([C, H, W, N]: channels as batch, batch as channels) with dy as the filter ([OH, OW, N, O]) at
 *   dilation s, giving [C, KH, KW, O], transposed to the filter's [KH, KW, C, O];
 * - input gradient: dx is the correlation of dy, dilated by s (s − 1 zeros between rows and columns),
 *   with the filter rotated by 180° and its channel axes swapped, padded by KH − 1 − top (and so on).
 *
 * Also here: a 2×2 max-pooling op with a faster gradient than the backend's MaxPoolGrad kernel, and a
 * training-mode BatchNorm op with a closed-form gradient.
 *
 * Inside a kernel, tf ops are not taped (the engine's kernel depth is > 0), so composing them is safe.
 */
import * as tf from '@tensorflow/tfjs-core';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

interface ConvAttrs {
  strides: [number, number] | number;
  pad: Pad;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function convInfo(xShape: number[], filterShape: number[], attrs: ConvAttrs): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat !== 'NHWC') throw new Error(`wasm conv gradients support NHWC only, got ${attrs.dataFormat}`);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
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
 * 2×2 max-pooling, stride 2. Its gradient goes to every maximal entry of a window, computed with
 * nearest-neighbour upsampling (the wasm MaxPoolGrad kernel is ~6× slower). In these networks pooling
 * follows a ReLU, so ties only happen at 0, where the ReLU's derivative is 0: the result is the same.
 */
export const maxPool2x2 = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
  const y = tf.maxPool(x, 2, 2, 'valid');
  save([x, y]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
      const [x, y] = saved as [tf.Tensor4D, tf.Tensor4D];
      const [n, h, w, c] = x.shape;
      const h2 = 2 * y.shape[1];
      const w2 = 2 * y.shape[2];
      const whole = h2 === h && w2 === w;
      const up = (t: tf.Tensor4D): tf.Tensor4D => tf.image.resizeNearestNeighbor(t, [h2, w2]);
      const xc = whole ? x : tf.slice(x, [0, 0, 0, 0], [n, h2, w2, c]);
      const dx = tf.mul(tf.cast(tf.equal(xc, up(y)), 'float32'), up(dy));
      return whole ? dx : tf.pad(dx, [[0, 0], [0, h - h2], [0, w - w2], [0, 0]]);
    },
  };
}) as (x: tf.Tensor4D) => tf.Tensor4D;

/** BatchNorm's ε, as PyTorch's default. */
export const BN_EPS = 1e-5;

/**
 * BatchNorm in training mode over (batch, height, width): y = γ·(x − μ)/√(σ² + ε) + β with the batch's mean
 * and biased variance. The gradient is the closed form dx = γ/√(σ² + ε) · (dy − mean(dy) − x̂·mean(dy·x̂)),
 * dγ = Σ dy·x̂, dβ = Σ dy, which keeps only x̂ for the backward pass instead of the taped `moments` graph.
 */
export const batchNormTrain = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, gamma, beta, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
  const axes = [0, 1, 2];
  const centred = tf.sub(x, tf.mean(x, axes));
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axes), BN_EPS));
  const xhat = tf.mul(centred, rstd);
  save([xhat, rstd, gamma]);
  return {
    value: tf.add(tf.mul(xhat, gamma), beta) as tf.Tensor4D,
    gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
      const [xhat, rstd, gamma] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
      const m = dy.shape[0] * dy.shape[1] * dy.shape[2];
      const dbeta = tf.sum(dy, axes);
      const dgamma = tf.sum(tf.mul(dy, xhat), axes);
      const inner = tf.sub(tf.sub(dy, tf.div(dbeta, m)), tf.mul(xhat, tf.div(dgamma, m)));
      return [tf.mul(inner, tf.mul(gamma, rstd)), dgamma, dbeta];
    },
  };
}) as (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor4D;

let registered = false;

/** The wasm backend's own Conv2DBackpropInput, kept for bench/nn.ts to compare against. */
export let builtinConv2DBackpropInput: tf.KernelConfig | undefined;

/** Registers the two kernels for the wasm backend (replacing its slow Conv2DBackpropInput). Idempotent. */
export function registerWasmConvGradients(): void {
  if (registered) return;
  registered = true;
  builtinConv2DBackpropInput = tf.getKernel(tf.Conv2DBackpropInput, 'wasm');
  tf.registerKernel({
    kernelName: tf.Conv2DBackpropFilter,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const { x, dy } = inputs as unknown as { x: tf.Tensor4D; dy: tf.Tensor4D };
      const a = attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
      return tf.tidy(() => conv2dFilterGrad(x, dy, a.filterShape, a));
    },
  });
  if (builtinConv2DBackpropInput) tf.unregisterKernel(tf.Conv2DBackpropInput, 'wasm');
  tf.registerKernel({
    kernelName: tf.Conv2DBackpropInput,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const { dy, filter } = inputs as unknown as { dy: tf.Tensor4D; filter: tf.Tensor4D };
      const a = attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
      return tf.tidy(() => conv2dInputGrad(a.inputShape, filter, dy, a));
    },
  });
}
