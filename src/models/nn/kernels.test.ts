import { beforeAll, describe, expect, it } from 'vitest';
import '@tensorflow/tfjs-backend-cpu';
import { rngFor } from '../../core/rng.js';
import { setupWasmBackend, tf } from './backend.js';
import { addRelu, BN_EPS, batchNormTrain, convBiasRelu, maxPool2x2 } from './kernels.js';

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number;

beforeAll(async () => {
  await setupWasmBackend();
});

function randn(shape: number[], key: number): Float32Array {
  const rng = rngFor(7, 'kernels.test', key);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
}

/** Runs f on the wasm backend and on the CPU reference backend with the same inputs; returns both outputs. */
async function onBoth(inputs: { values: Float32Array; shape: number[] }[], f: (...ts: tf.Tensor[]) => tf.Tensor): Promise<[Float32Array, Float32Array]> {
  const run = (): Float32Array =>
    tf.tidy(() => f(...inputs.map((i) => tf.tensor(i.values, i.shape))).dataSync() as Float32Array).slice();
  const wasm = run();
  await tf.setBackend('cpu');
  try {
    return [wasm, run()];
  } finally {
    await tf.setBackend('wasm');
  }
}

function relErr(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

// [batch, height, width, in, out, k, stride, pad]: odd sizes, strides 1 and 2, same/valid/explicit, 1×1, 3×3 and 5×5, batch 1
// and 3. Output channels a multiple of 8 take our wasm kernels (src/models/nn/conv.ts: the forward convolution and the filter
// gradient; the input gradient when the input channels are too, by stride phase), output rows of 4k + 1..3 pixels their
// remainder tiles, 3×3 stride-1 layers with channels a multiple of 4 Winograd (odd output sizes: partial tiles); the other
// cases the fallbacks (XNNPACK forward, gradients as convolutions of transposed or dilated operands)
const CASES: [number, number, number, number, number, number, number, Pad][] = [
  [1, 5, 7, 3, 4, 3, 1, 'same'],
  [3, 5, 7, 3, 4, 3, 2, 'same'],
  [3, 7, 5, 2, 3, 3, 1, 'valid'],
  [1, 7, 5, 3, 2, 3, 2, 'valid'],
  [3, 9, 8, 4, 5, 3, 2, 1],
  [1, 6, 6, 4, 3, 3, 1, 1],
  [3, 5, 5, 3, 4, 1, 1, 'same'],
  [3, 7, 6, 3, 4, 1, 2, 'valid'],
  [1, 9, 9, 2, 3, 1, 2, 0],
  [3, 11, 9, 3, 2, 5, 2, 'same'],
  [2, 7, 6, 5, 3, 3, 2, 'same'],
  [1, 6, 5, 6, 4, 3, 1, 'valid'],
  [3, 9, 7, 5, 2, 3, 2, 1],
  [1, 5, 7, 3, 8, 3, 1, 'same'],
  [2, 9, 7, 3, 16, 3, 2, 'same'],
  [3, 7, 6, 8, 8, 3, 1, 'same'],
  [2, 8, 8, 16, 8, 3, 2, 'same'],
  [1, 6, 5, 8, 16, 3, 1, 'valid'],
  [3, 8, 8, 16, 8, 1, 2, 'valid'],
  [2, 9, 9, 8, 8, 1, 1, 'same'],
  [2, 11, 10, 8, 16, 5, 2, 'same'],
  [1, 9, 7, 5, 8, 3, 2, 1],
  [2, 7, 9, 24, 8, 3, 1, 0],
  [2, 8, 8, 8, 16, 3, 2, 1],
  [1, 9, 7, 8, 8, 3, 2, 1],
  [1, 10, 11, 8, 8, 3, 3, 1],
  [2, 9, 8, 16, 8, 1, 2, 0],
];

describe.each(CASES)('conv gradients, wasm vs CPU: x [%i, %i, %i, %i], %i outputs, filter size %i, stride %i, pad %s', (n, h, w, cin, cout, k, stride, pad) => {
  const xShape: Shape4 = [n, h, w, cin];
  const fShape: Shape4 = [k, k, cin, cout];
  const x = { values: randn(xShape, 1), shape: xShape };
  const filter = { values: randn(fShape, 2), shape: fShape };
  const outShape = (): number[] => tf.tidy(() => tf.conv2d(tf.zeros(xShape) as tf.Tensor4D, tf.zeros(fShape) as tf.Tensor4D, stride, pad).shape);
  const attrs = { strides: stride, pad, dataFormat: 'NHWC' };

  it(`Conv2D and FusedConv2D with bias and ReLU (stride ${stride}, pad ${pad}, ${k}×${k}) within 1e-5`, async () => {
    const bias = { values: randn([cout], 4), shape: [cout] };
    const [a, b] = await onBoth([x, filter], (xt, ft) => tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, stride, pad));
    expect(relErr(a, b)).toBeLessThan(1e-5);
    const fused = (xt: tf.Tensor, ft: tf.Tensor, bt: tf.Tensor): tf.Tensor =>
      tf.fused.conv2d({ x: xt as tf.Tensor4D, filter: ft as tf.Tensor4D, strides: stride, pad, bias: bt, activation: 'relu' });
    const [c, d] = await onBoth([x, filter, bias], (xt, ft, bt) => fused(xt!, ft!, bt!));
    expect(relErr(c, d)).toBeLessThan(1e-5);
    expect(c.some((v) => v === 0) && c.some((v) => v > 0)).toBe(true);
  });

  it(`Conv2DBackpropFilter (stride ${stride}, pad ${pad}, ${k}×${k}) within 1e-4`, async () => {
    const dyShape = outShape();
    const dy = { values: randn(dyShape, 3), shape: dyShape };
    const [a, b] = await onBoth([x, dy], (xt, dyt) => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: xt!, dy: dyt! }, { ...attrs, filterShape: fShape }) as tf.Tensor);
    expect(relErr(a, b)).toBeLessThan(1e-4);
  });

  it(`Conv2DBackpropInput (stride ${stride}, pad ${pad}, ${k}×${k}) within 1e-4`, async () => {
    const dyShape = outShape();
    const dy = { values: randn(dyShape, 3), shape: dyShape };
    const [a, b] = await onBoth([dy, filter], (dyt, ft) => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: dyt!, filter: ft! }, { ...attrs, inputShape: xShape }) as tf.Tensor);
    expect(relErr(a, b)).toBeLessThan(1e-4);
  });
});

describe('gradients through the ops', () => {
  it('tf.grads of a strided conv matches the CPU backend for both arguments', async () => {
    const xShape: Shape4 = [3, 7, 9, 3];
    const fShape: Shape4 = [3, 3, 3, 4];
    const g = (i: number) => (xt: tf.Tensor, ft: tf.Tensor) =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))))([xt, ft])[i]!;
    for (const i of [0, 1]) {
      const [a, b] = await onBoth([{ values: randn(xShape, 4), shape: xShape }, { values: randn(fShape, 5), shape: fShape }], g(i));
      expect(relErr(a, b)).toBeLessThan(1e-4);
    }
  });

  it.each([
    [[2, 8, 6, 3]],
    [[1, 7, 5, 2]],
  ] as Shape4[][])('maxPool2x2 on %j: same value and gradient as tf.maxPool on the CPU backend', async (shape) => {
    const x = { values: randn(shape, 6), shape };
    const value = await onBoth([x], (t) => maxPool2x2(t as tf.Tensor4D));
    expect(relErr(...value)).toBe(0);
    // a weighted sum, so each window's gradient differs
    const wShape = [shape[0], shape[1] >> 1, shape[2] >> 1, shape[3]];
    const w = randn(wShape, 7);
    const weighted = (t: tf.Tensor): tf.Scalar => tf.sum(tf.mul(t, tf.tensor(w, wShape)));
    const [a] = await onBoth([x], (t) => tf.grad((u: tf.Tensor) => weighted(maxPool2x2(u as tf.Tensor4D)))(t));
    const [, b] = await onBoth([x], (t) => tf.grad((u: tf.Tensor) => weighted(tf.maxPool(u as tf.Tensor4D, 2, 2, 'valid')))(t));
    expect(relErr(a, b)).toBe(0);
  });

  // Tied windows, as real images make them: each window's gradient goes to its first maximum in row-major
  // order, as the CPU backend's MaxPoolGrad (and PyTorch, TensorFlow) route it; never to every tied entry.
  const tied: [string, number[], (v: number, i: number) => number][] = [
    ['a constant image', [2, 6, 6, 3], () => 0.7],
    ['saturated pixels (values clipped at 0.5)', [2, 8, 7, 3], (v) => Math.min(v, 0.5)],
    ['a zero background with a positive bias (ReLU(x + 0.2), a few strokes)', [1, 9, 8, 2], (v, i) => Math.max(0, (i % 11 === 0 ? Math.abs(v) : 0) + 0.2)],
  ];
  it.each(tied)('maxPool2x2 on %s: one maximum per window gets the gradient, as on the CPU backend', async (_, shape, make) => {
    const x = { values: randn(shape, 15).map(make), shape };
    const wShape = [shape[0]!, shape[1]! >> 1, shape[2]! >> 1, shape[3]!];
    const w = randn(wShape, 16);
    const weighted = (t: tf.Tensor): tf.Scalar => tf.sum(tf.mul(t, tf.tensor(w, wShape)));
    const [ours] = await onBoth([x], (t) => tf.grad((u: tf.Tensor) => weighted(maxPool2x2(u as tf.Tensor4D)))(t));
    const [, ref] = await onBoth([x], (t) => tf.grad((u: tf.Tensor) => weighted(tf.maxPool(u as tf.Tensor4D, 2, 2, 'valid')))(t));
    expect(Array.from(ours)).toEqual(Array.from(ref));
    // exactly one nonzero per window (w has no zeros), and Σ dx = Σ w
    expect(ours.filter((v) => v !== 0).length).toBe(w.length);
    expect(ours.reduce((a, b) => a + b, 0)).toBeCloseTo(w.reduce((a, b) => a + b, 0), 4);
  });

  // 8 channels: the wasm mask-and-sum kernel on the wasm side; 6: tf ops there too
  it.each([
    [[2, 6, 7, 3], 8, 1],
    [[2, 8, 8, 8], 16, 1],
    [[1, 7, 9, 4], 8, 2],
    [[2, 6, 5, 3], 6, 1],
  ] as [Shape4, number, number][])('convBiasRelu on %j, %i outputs, stride %i: value and gradients in x, filter, bias equal autodiff of relu(conv + bias) on the CPU backend', async (shape, cout, stride) => {
    const fShape: Shape4 = [3, 3, shape[3], cout];
    const outShape = [shape[0], Math.ceil(shape[1] / stride), Math.ceil(shape[2] / stride), cout];
    const inputs = [
      { values: randn(shape, 20), shape },
      { values: randn(fShape, 21), shape: fShape },
      { values: randn([cout], 22), shape: [cout] },
      { values: randn(outShape, 23), shape: outShape }, // weights of the scalar loss
    ];
    const plain = (x: tf.Tensor, f: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, 1), b));
    const ours = (x: tf.Tensor, f: tf.Tensor, b: tf.Tensor): tf.Tensor => convBiasRelu(x as tf.Tensor4D, f as tf.Tensor4D, b as tf.Tensor1D, stride, 1, true);
    for (let i = 0; i < 4; i++) {
      const f = (op: typeof plain) => (x: tf.Tensor, fl: tf.Tensor, b: tf.Tensor, w: tf.Tensor): tf.Tensor =>
        i === 0 ? op(x, fl, b) : tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(op(a, c, d), w)))([x, fl, b])[i - 1]!;
      const [a] = await onBoth(inputs, (...t) => f(ours)(t[0]!, t[1]!, t[2]!, t[3]!));
      const [, b] = await onBoth(inputs, (...t) => f(plain)(t[0]!, t[1]!, t[2]!, t[3]!));
      expect(relErr(a, b), ['value', 'dx', 'dfilter', 'dbias'][i]).toBeLessThan(1e-5);
    }
    // without the input gradient: zeros in x, the same filter gradient
    const noDx = (x: tf.Tensor, fl: tf.Tensor, b: tf.Tensor, w: tf.Tensor): tf.Tensor[] =>
      tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(convBiasRelu(a as tf.Tensor4D, c as tf.Tensor4D, b as tf.Tensor1D, stride, 1, false), w)))([x, fl]);
    const [dx] = await onBoth(inputs, (...t) => noDx(t[0]!, t[1]!, t[2]!, t[3]!)[0]!);
    expect(dx.every((v) => v === 0)).toBe(true);
  });

  it.each([[[2, 5, 4, 8]], [[3, 3, 5, 3]]] as Shape4[][])('addRelu on %j: value and gradients in both inputs equal autodiff of relu(a + b) on the CPU backend', async (shape) => {
    const inputs = [
      { values: randn(shape, 30), shape },
      { values: randn(shape, 31), shape },
      { values: randn(shape, 32), shape }, // weights of the scalar loss
    ];
    const plain = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.relu(tf.add(a, b));
    for (let i = 0; i < 3; i++) {
      const f = (op: typeof plain) => (a: tf.Tensor, b: tf.Tensor, w: tf.Tensor): tf.Tensor =>
        i === 0 ? op(a, b) : tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(op(u, v), w)))([a, b])[i - 1]!;
      const [ours] = await onBoth(inputs, (...t) => f(addRelu)(t[0]!, t[1]!, t[2]!));
      const [, ref] = await onBoth(inputs, (...t) => f(plain)(t[0]!, t[1]!, t[2]!));
      expect(relErr(ours, ref), ['value', 'da', 'db'][i]).toBe(0);
    }
  });

  it('maxPool2x2: ties by hand, the first maximum in row-major order; an odd last row and column get nothing', () => {
    // one channel, 3×5: windows [[1, 3], [3, 2]] (max 3 twice) and [[2, 1], [2, 2]] (max 2 three times); row 2 and column 4 are left over
    const x = tf.tensor4d([1, 3, 2, 1, 9, 3, 2, 2, 2, 9, 9, 9, 9, 9, 9], [1, 3, 5, 1]);
    const dx = tf.tidy(() => tf.grad((u: tf.Tensor) => tf.sum(tf.mul(maxPool2x2(u as tf.Tensor4D), tf.tensor4d([10, 20], [1, 1, 2, 1]))))(x).dataSync());
    expect(Array.from(dx)).toEqual([0, 10, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // windows [[0, 0], [5, 5]] (max in the bottom row) and [[0, 0], [0, 0]] (a 4-way tie: the top-left entry)
    const z = tf.tensor4d([0, 0, 0, 0, 5, 5, 0, 0], [1, 2, 4, 1]);
    const dz = tf.tidy(() => tf.grad((u: tf.Tensor) => tf.sum(maxPool2x2(u as tf.Tensor4D)))(z).dataSync());
    expect(Array.from(dz)).toEqual([0, 0, 1, 0, 1, 0, 0, 0]);
    x.dispose();
    z.dispose();
  });

  // 8 channels: the wasm kernels on the wasm side; 6: tf ops there too; with and without the ReLU after it
  it.each([
    [[3, 5, 4, 6], false],
    [[3, 5, 4, 8], false],
    [[2, 7, 3, 16], false],
    [[3, 5, 4, 6], true],
    [[3, 5, 4, 8], true],
    [[2, 7, 3, 16], true],
  ] as [Shape4, boolean][])('batchNormTrain on %j (ReLU after it: %s): value and gradients in x, γ, β equal autodiff of the plain formula on the CPU backend', async (shape, relu) => {
    const c = shape[3];
    const inputs = [
      { values: randn(shape, 8).map((v, i) => 2 * v + (i % c)), shape }, // per-channel offsets
      { values: randn([c], 9).map((v) => 1 + 0.3 * v), shape: [c] },
      { values: randn([c], 10), shape: [c] },
      { values: randn(shape, 11), shape }, // weights of the scalar loss
    ];
    const plain = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      const y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, BN_EPS))), g), b);
      return relu ? tf.relu(y) : y;
    };
    for (let i = 0; i < 4; i++) {
      // i = 0: the value; 1..3: the gradient in x, γ, β of Σ w·BN(x)
      const f = (bn: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, w: tf.Tensor): tf.Tensor =>
        i === 0 ? bn(x, g, b) : tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(bn(a, c, d), w)))([x, g, b])[i - 1]!;
      const [ours] = await onBoth(inputs, (...t) => f((x, g, b) => batchNormTrain(x as tf.Tensor4D, g, b, relu))(t[0]!, t[1]!, t[2]!, t[3]!));
      const [, ref] = await onBoth(inputs, (...t) => f(plain)(t[0]!, t[1]!, t[2]!, t[3]!));
      expect(relErr(ours, ref), ['value', 'dx', 'dγ', 'dβ'][i]).toBeLessThan(1e-5);
    }
  });
});

describe('Sum, Mean and BatchMatMul paths, wasm vs CPU', () => {
  // leading axes (our JS reduction), given unsorted or as a number, with and without keepDims; other axes fall back to the backend's kernel
  it.each([
    [[3, 5, 7, 6], [0, 1, 2], false],
    [[3, 5, 7, 6], [2, 0, 1], true],
    [[9, 5], 0, false],
    [[1, 3, 13], [0, 1], true],
    [[3, 5, 7, 6], [1, 2], false],
    [[3, 5, 7, 6], [0, 2], true],
    [[3, 5, 7, 6], [0, 1, 2, 3], false],
  ] as [number[], number | number[], boolean][])('sum and mean of %j over axes %j (keepDims %s) within 1e-6', async (shape, axis, keepDims) => {
    const x = { values: randn(shape, 12).map((v, i) => v + (i % 3)), shape };
    for (const op of [tf.sum, tf.mean]) {
      const [a, b] = await onBoth([x], (t) => op(t, axis, keepDims));
      expect(relErr(a, b)).toBeLessThan(1e-6);
    }
    const wasmShape = tf.tidy(() => tf.sum(tf.zeros(shape), axis, keepDims).shape);
    await tf.setBackend('cpu');
    try {
      expect(wasmShape).toEqual(tf.tidy(() => tf.sum(tf.zeros(shape), axis, keepDims).shape));
    } finally {
      await tf.setBackend('wasm');
    }
  });

  it('a clone shares the data and outlives its source', () => {
    const buffers = (): number => tf.memory().numDataBuffers;
    const x = tf.tensor([1, 2, 3, 4], [2, 2]);
    const before = buffers();
    const y = tf.clone(x);
    expect(buffers()).toBe(before);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4]);
    expect(buffers()).toBe(before);
    y.dispose();
    expect(buffers()).toBe(before - 1);
  });

  it.each([
    [[7, 5], [7, 3], true, false],
    [[7, 5], [3, 5], false, true],
    [[5, 7], [3, 5], true, true],
    [[2, 7, 5], [2, 7, 3], true, false],
    [[2, 5, 7], [1, 3, 7], false, true],
    [[5, 7], [7, 3], false, false],
  ] as [number[], number[], boolean, boolean][])('matMul of %j and %j, transposeA %s, transposeB %s, within 1e-5', async (sa, sb, ta, tb) => {
    const [a, b] = await onBoth([{ values: randn(sa, 13), shape: sa }, { values: randn(sb, 14), shape: sb }], (x, y) => tf.matMul(x!, y!, ta, tb));
    expect(relErr(a, b)).toBeLessThan(1e-5);
  });
});
