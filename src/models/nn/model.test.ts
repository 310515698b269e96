import { beforeAll, describe, expect, it } from 'vitest';
import { rngFor } from '../../core/rng.js';
import type { FederatedDataset } from '../../data/types.js';
import { methodSpec } from '../../algorithms/methods.js';
import { simulate, type SimOptions } from '../../sim/simulate.js';
import { createModel, evalReferenceOf, initNnBackend } from '../index.js';
import type { Dataset, Model, ModelSpec, Segment } from '../types.js';
import { networkOf, paramDefs, type Layer, type Network } from './arch.js';
import '@tensorflow/tfjs-backend-cpu';
import { tf } from './backend.js';
import { crossEntropy, forward, NnModel, type BnStats } from './model.js';
import { lossF64 } from './reference.js';

const SHAPE: [number, number, number] = [8, 8, 3];
const F = 8 * 8 * 3;
const C = 3;
const tinyCnn: ModelSpec = { kind: 'cnn', nFeatures: F, nClasses: C, intercept: false, l2: 0, inputShape: SHAPE };

function images(rows: number, key: number, classes = C, shape = SHAPE): Dataset {
  const rng = rngFor(11, 'model.test', key);
  const f = shape[0] * shape[1] * shape[2];
  return {
    x: { kind: 'dense', rows, cols: f, data: Float32Array.from({ length: rows * f }, () => rng.normal()) },
    y: Float32Array.from({ length: rows }, () => rng.int(classes)),
  };
}

function pixels(data: Dataset): Float32Array {
  if (data.x.kind !== 'dense') throw new Error('dense test data expected');
  return data.x.data;
}

let cnn: Model;
beforeAll(async () => {
  await initNnBackend();
  cnn = createModel(tinyCnn);
});

/**
 * Central differences of `lossAt` at the given coordinates, against `grad`. Only at parameters the loss
 * is smooth in (the classifier, late BatchNorms): elsewhere a perturbation moves many ReLU inputs and
 * max-pool winners, and their kinks spoil finite differences in float32.
 */
function gradCheck(lossAt: (x: Float32Array) => number, x: Float32Array, grad: Float32Array, coords: number[], h: number): void {
  for (const j of coords) {
    const v = x[j]!;
    x[j] = v + h;
    const up = lossAt(x);
    x[j] = v - h;
    const down = lossAt(x);
    x[j] = v;
    // float32 losses: the difference quotient is accurate to about 1e-7 / h
    expect(Math.abs((up - down) / (2 * h) - grad[j]!), `coordinate ${j}`).toBeLessThan(2e-6 / h + 0.01 * Math.abs(grad[j]!));
  }
}

/** First, middle and last coordinate of each named segment. */
function coordsOf(segments: Segment[], names: string[]): number[] {
  return names.flatMap((name) => {
    const s = segments.find((q) => q.name === name)!;
    return [s.offset, s.offset + (s.size >> 1), s.offset + s.size - 1];
  });
}

/** Relative ℓ2 distance of two vectors. */
function relDist(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let j = 0; j < a.length; j++) {
    num += (a[j]! - b[j]!) ** 2;
    den += b[j]! ** 2;
  }
  return Math.sqrt(num / den);
}

/** `f` on the wasm backend, then on the CPU backend's own kernels. */
async function wasmThenCpu<T>(f: () => T): Promise<[T, T]> {
  const a = f();
  await tf.setBackend('cpu');
  try {
    return [a, f()];
  } finally {
    await tf.setBackend('wasm');
  }
}

describe('NnModel', () => {
  it('init is He-normal for weights, 0 for biases, seeded and the same for every instance', () => {
    const a = cnn.init!(3);
    expect(createModel(tinyCnn).init!(3)).toEqual(a);
    expect(cnn.init!(4)).not.toEqual(a);
    const [conv1, bias1] = cnn.layout.segments;
    const w = a.subarray(conv1!.offset, conv1!.offset + conv1!.size);
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeCloseTo(Math.sqrt(2 / 27), 1); // fan-in 3·3·3
    expect(a.subarray(bias1!.offset, bias1!.offset + bias1!.size).every((v) => v === 0)).toBe(true);
  });

  it('lossGrad matches central differences and the CPU backend (tiny CNN)', async () => {
    const data = images(6, 1);
    const x = cnn.init!(1);
    const [g, ref] = await wasmThenCpu(() => {
      const g = new Float32Array(x.length);
      cnn.lossGrad(x, data, g);
      return g;
    });
    expect(relDist(g, ref)).toBeLessThan(1e-5);
    gradCheck((z) => cnn.lossGrad(z, data, null), x, g, coordsOf(cnn.layout.segments, ['fc2.weight', 'fc2.bias']), 1e-2);
  });

  it('BatchNorm and residual blocks: gradient matches central differences and the CPU backend (a miniature ResNet)', async () => {
    const layers: Layer[] = [
      { op: 'conv', name: 'stem', k: 3, out: 4, stride: 1, bias: false },
      { op: 'bn', name: 'bn' },
      { op: 'relu' },
      { op: 'block', name: 'same', out: 4, stride: 1 }, // identity shortcut
      { op: 'block', name: 'down', out: 6, stride: 2 }, // 1×1 conv + BatchNorm shortcut
      { op: 'gap' },
      { op: 'dense', name: 'fc', out: C },
    ];
    const input: [number, number, number] = [5, 5, 2];
    const defs = paramDefs(layers, input);
    const segments: Segment[] = [];
    let d = 0;
    for (const p of defs) {
      const size = p.shape.reduce((a, b) => a * b, 1);
      segments.push({ name: p.name, offset: d, size, prunable: p.role === 'weight' });
      d += size;
    }
    const rng = rngFor(4, 'mini-resnet');
    const x = new Float32Array(d);
    defs.forEach((p, i) => {
      const s = segments[i]!;
      for (let j = s.offset; j < s.offset + s.size; j++) {
        x[j] = p.role === 'weight' ? Math.sqrt(2 / p.fanIn) * rng.normal() : p.role === 'gamma' ? 1 + 0.2 * rng.normal() : 0.2 * rng.normal();
      }
    });
    const data = images(3, 9, C, input);
    const lossOf = (...ps: tf.Tensor[]): tf.Scalar => {
      const imgs = tf.tensor4d(pixels(data), [3, ...input]);
      const labels = tf.oneHot(tf.tensor1d(Int32Array.from(data.y), 'int32'), C) as tf.Tensor2D;
      return crossEntropy(forward(layers, ps, imgs, { mode: 'batch' }), labels);
    };
    const tensors = (z: Float32Array): tf.Tensor[] => defs.map((p, i) => tf.tensor(z.subarray(segments[i]!.offset, segments[i]!.offset + segments[i]!.size), p.shape));
    const gradAt = (z: Float32Array): Float32Array =>
      tf.tidy(() => {
        const out = new Float32Array(d);
        tf.grads(lossOf)(tensors(z)).forEach((g, i) => out.set(g.dataSync(), segments[i]!.offset));
        return out;
      });
    const lossAt = (z: Float32Array): number => tf.tidy(() => lossOf(...tensors(z)).dataSync()[0]!);
    const [g, ref] = await wasmThenCpu(() => gradAt(x));
    expect(relDist(g, ref)).toBeLessThan(1e-4);
    gradCheck(lossAt, x, g, coordsOf(segments, ['fc.weight', 'fc.bias', 'down.bn2.gamma', 'down.bn2.beta', 'down.shortcut.bn.beta']), 1e-2);

    // evaluation: statistics recorded over a batch, then used fixed, give that batch's training-mode logits;
    // on another batch, the same statistics (not that batch's); the same on the CPU backend
    const imgs = (data: Dataset, n: number): tf.Tensor4D => tf.tensor4d(pixels(data), [n, ...input]);
    const other = images(2, 10, C, input);
    const logits = (): Float32Array[] =>
      tf.tidy(() => {
        const stats: BnStats[] = [];
        const train = forward(layers, tensors(x), imgs(data, 3), { mode: 'batch' }).dataSync() as Float32Array;
        const recorded = forward(layers, tensors(x), imgs(data, 3), { mode: 'record', stats }, true).dataSync() as Float32Array;
        const fixed = forward(layers, tensors(x), imgs(data, 3), { mode: 'fixed', stats }, true).dataSync() as Float32Array;
        const otherFixed = forward(layers, tensors(x), imgs(other, 2), { mode: 'fixed', stats }, true).dataSync() as Float32Array;
        const otherTrain = forward(layers, tensors(x), imgs(other, 2), { mode: 'batch' }).dataSync() as Float32Array;
        expect(stats).toHaveLength(6); // stem, two per block, the downsampling shortcut
        return [train, recorded, fixed, otherFixed, otherTrain, ...stats.flatMap((q) => [q.mean, q.variance])].map((a) => a.slice());
      });
    const [onWasm, onCpu] = await wasmThenCpu(logits);
    const [train, recorded, fixed, otherFixed, otherTrain] = onWasm;
    expect(relDist(recorded!, train!)).toBeLessThan(1e-5);
    expect(relDist(fixed!, train!)).toBeLessThan(1e-5);
    expect(relDist(otherFixed!, otherTrain!)).toBeGreaterThan(1e-2);
    onWasm.forEach((a, i) => expect(relDist(a, onCpu[i]!), `output ${i}`).toBeLessThan(1e-5));
  });

  describe('ResNet18 BatchNorm: whole-batch statistics in training, training images\' statistics in evaluation', () => {
    const spec: ModelSpec = { ...tinyCnn, kind: 'resnet18', inputShape: [4, 4, 3], nFeatures: 48 };
    const shape: [number, number, number] = [4, 4, 3];
    const clients = [images(7, 30, C, shape), images(5, 31, C, shape)];
    const test = images(9, 32, C, shape);
    let model: NnModel;
    let x: Float32Array;
    beforeAll(() => {
      model = createModel(spec, evalReferenceOf(spec, clients)) as NnModel;
      // passes of 3 rows, as if the images were large: the 9 test images take 3 passes, a batch of 6 two
      (model as unknown as { net: Network }).net.chunkRows = 3;
      x = model.init!(2);
      // γ and β away from 1 and 0, so the statistics matter to the predictions
      const rng = rngFor(5, 'bn-eval');
      for (const s of model.layout.segments.filter((q) => !q.prunable)) for (let j = s.offset; j < s.offset + s.size; j++) x[j]! += 0.3 * rng.normal();
    });
    const rowsOf = (d: Dataset, order: number[]): Dataset => ({
      x: { kind: 'dense', rows: order.length, cols: d.x.cols, data: Float32Array.from(order.flatMap((r) => [...pixels(d).subarray(r * d.x.cols, (r + 1) * d.x.cols)])) },
      y: Float32Array.from(order, (r) => d.y[r]!),
    });

    it('shuffling the test set changes no prediction, and an image alone is predicted as in the set', () => {
      const pred = model.predict(x, test);
      expect(new Set(pred).size).toBeGreaterThan(1); // not one class everywhere: the check can fail
      const order = [4, 8, 0, 6, 2, 7, 1, 5, 3];
      expect(Array.from(model.predict(x, rowsOf(test, order)))).toEqual(order.map((r) => pred[r]));
      expect(model.predict(x, rowsOf(test, [5]))[0]).toBe(pred[5]);
      expect(model.lossGrad(x, rowsOf(test, order), null)).toBeCloseTo(model.lossGrad(x, test, null), 5);
    });

    it('the statistics come from the training images: another reference changes the evaluation', () => {
      const other = createModel(spec, evalReferenceOf(spec, [images(12, 33, C, shape)])) as NnModel;
      expect(other.lossGrad(x, test, null)).not.toBeCloseTo(model.lossGrad(x, test, null), 3);
    });

    it('a training batch is normalised as a whole, even beyond the rows of a pass; at most maxBatchRows rows, with a clear error beyond', () => {
      const g = new Float32Array(x.length);
      const rows = Uint32Array.from([0, 1, 2, 3, 4, 5]);
      const loss = model.lossGrad(x, clients[0]!, g, rows);
      const net = networkOf(spec);
      const sub = rowsOf(clients[0]!, [0, 1, 2, 3, 4, 5]);
      // the float64 reference normalises the 6 rows together (statistics per pass of 3 rows: 0.3 away)
      expect(Math.abs(loss - lossF64(net.layers, net.input, Float64Array.from(x), pixels(sub), sub.y))).toBeLessThan(1e-5);
      // 32×32 ResNet18: 65 rows fit the wasm heap in one pass; the check comes before any work
      const big: ModelSpec = { ...spec, inputShape: [32, 32, 3], nFeatures: 3072 };
      const resnet = createModel(big);
      const batch = images(66, 34, C, [32, 32, 3]);
      expect(() => resnet.lossGrad(new Float32Array(resnet.layout.d), batch, new Float32Array(resnet.layout.d))).toThrow(
        /resnet18 training batch of 32×32×3 images is at most 65 rows, got 66: BatchNorm uses the whole batch's statistics/,
      );
    });

    it('evaluation without reference images is refused with a clear message; training works', () => {
      const bare = createModel(spec);
      expect(() => bare.metric(x, test)).toThrow(/statistics of training images: create it with createModel\(spec, evalReferenceOf\(spec, clients\)\)/);
      expect(() => bare.lossGrad(x, test, null)).toThrow(/evalReferenceOf/);
      expect(Number.isFinite(bare.lossGrad(x, test, new Float32Array(x.length)))).toBe(true);
    });
  });

  it('ResNet18 runs forward and backward (4×4 images)', () => {
    const resnet = createModel({ ...tinyCnn, kind: 'resnet18', inputShape: [4, 4, 3], nFeatures: 48 });
    const g = new Float32Array(resnet.layout.d);
    const loss = resnet.lossGrad(resnet.init!(2), images(2, 2, C, [4, 4, 3]), g);
    expect(Number.isFinite(loss)).toBe(true);
    expect(g.every(Number.isFinite)).toBe(true);
  });

  it('a minibatch is the same as a dataset of those rows; larger batches are the mean over even chunks', () => {
    const data = images(130, 3); // more than the CNN's 128 rows per pass: two chunks of 65
    const x = cnn.init!(1);
    const rows = Uint32Array.from([5, 0, 7]);
    const sub: Dataset = {
      x: { kind: 'dense', rows: 3, cols: F, data: Float32Array.from([5, 0, 7].flatMap((r) => [...pixels(data).subarray(r * F, (r + 1) * F)])) },
      y: Float32Array.from([5, 0, 7], (r) => data.y[r]!),
    };
    const g1 = new Float32Array(x.length);
    const g2 = new Float32Array(x.length);
    expect(cnn.lossGrad(x, data, g1, rows)).toBe(cnn.lossGrad(x, sub, g2));
    expect(g1).toEqual(g2);

    const half = (a: number): Uint32Array => Uint32Array.from({ length: 65 }, (_, i) => a + i);
    const ga = new Float32Array(x.length);
    const gb = new Float32Array(x.length);
    const la = cnn.lossGrad(x, data, ga, half(0));
    const lb = cnn.lossGrad(x, data, gb, half(65));
    const g = new Float32Array(x.length);
    const loss = cnn.lossGrad(x, data, g);
    expect(loss).toBeCloseTo((la + lb) / 2, 5);
    expect(cnn.lossGrad(x, data, null)).toBe(loss); // the inference-mode forward pass gives the same loss
    for (let j = 0; j < g.length; j += 97) expect(g[j]).toBeCloseTo((ga[j]! + gb[j]!) / 2, 6);
  });

  it('adds (l2/2)‖x‖² and l2·x', () => {
    const data = images(4, 4);
    const x = cnn.init!(1);
    const g0 = new Float32Array(x.length);
    const g = new Float32Array(x.length);
    const l0 = cnn.lossGrad(x, data, g0);
    const l = createModel({ ...tinyCnn, l2: 0.1 }).lossGrad(x, data, g);
    const sq = x.reduce((s, v) => s + v * v, 0);
    expect(l).toBeCloseTo(l0 + 0.05 * sq, 4);
    for (let j = 0; j < x.length; j += 101) expect(g[j]).toBeCloseTo(g0[j]! + 0.1 * x[j]!, 6);
  });

  it('frees every tensor it makes', () => {
    const data = images(138, 5);
    const x = cnn.init!(1);
    const g = new Float32Array(x.length);
    cnn.lossGrad(x, data, g, Uint32Array.from([1, 2, 3]));
    const before = tf.memory().numTensors;
    cnn.lossGrad(x, data, g, Uint32Array.from([1, 2, 3]));
    cnn.lossGrad(x, data, g);
    cnn.lossGrad(x, data, null);
    cnn.metric(x, data);
    const spec: ModelSpec = { ...tinyCnn, kind: 'resnet18', inputShape: [4, 4, 3], nFeatures: 48 };
    const small = images(5, 12, C, [4, 4, 3]);
    const resnet = createModel(spec, evalReferenceOf(spec, [small]));
    const xr = resnet.init!(1);
    resnet.lossGrad(xr, small, new Float32Array(xr.length));
    resnet.lossGrad(xr, small, null);
    resnet.metric(xr, small);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('metric is the accuracy of the arg-max class', () => {
    const data = images(20, 6);
    const x = cnn.init!(1);
    const m = cnn.metric(x, data);
    expect(m.name).toBe('accuracy');
    expect(m.value * 20).toBeCloseTo(Math.round(m.value * 20), 10);
    // zero weights and a bias favouring class 2: every prediction is 2
    const z = new Float32Array(x.length);
    const fc2Bias = cnn.layout.segments.at(-1)!;
    z[fc2Bias.offset + 2] = 1;
    expect(cnn.metric(z, data).value).toBe(data.y.filter((v) => v === 2).length / 20);
  });

  it('rejects wrong inputs with clear messages', () => {
    const x = cnn.init!(1);
    const data = images(2, 7);
    expect(() => cnn.lossGrad(x.subarray(1), data, null)).toThrow(/d = /);
    expect(() => cnn.lossGrad(x, { ...data, y: Float32Array.from([0, 3]) }, null)).toThrow(/label 3 of row 1/);
    expect(() => cnn.lossGrad(x, images(2, 7, C, [4, 4, 3]), null)).toThrow(/expects 8×8×3/);
    expect(() => cnn.smoothness(data)).toThrow(/give the step size/);
  });

  it('the FEMNIST CNN runs forward and backward on 28×28×1 images', () => {
    const femnist = createModel({ kind: 'femnist-cnn', nFeatures: 784, nClasses: 62, intercept: false, l2: 0, inputShape: [28, 28, 1] });
    const data = images(2, 8, 62, [28, 28, 1]);
    const g = new Float32Array(femnist.layout.d);
    const loss = femnist.lossGrad(femnist.init!(1), data, g);
    expect(Number.isFinite(loss)).toBe(true);
    expect(g.some((v) => v !== 0)).toBe(true);
  });
});

describe('sparse-proxskip (STE) with a CNN in the simulator', () => {
  const fed: FederatedDataset = { name: 'tiny-images', task: 'multiclass', nFeatures: F, nClasses: C, clients: [images(16, 20), images(16, 21)], test: images(10, 22), meta: {} };
  const options = (workers: number): SimOptions => ({
    method: methodSpec('sparse-proxskip'),
    modelSpec: tinyCnn,
    sparsity: 0.9,
    topkScope: 'global',
    step: { gamma: 0.05, p: 0.5, lambda: 0, steDecay: 0, batchSize: 8, seed: 3 },
    localSteps: 2,
    schedule: 'fixed',
    rounds: 3,
    participation: 1,
    workers,
    evalEvery: 1,
    postHocTopk: false,
    timing: false,
  });

  it('starts from the seeded init, keeps Σh ≈ 0 and sends K-sparse weights; worker threads give the same run', async () => {
    const r = await simulate(fed, options(1));
    const x0 = cnn.init!(3);
    expect(r.records[0]!.nnz).toBe(x0.filter((v) => v !== 0).length);
    for (const rec of r.records.slice(1)) {
      expect(rec.hNormSum).toBeGreaterThan(0);
      expect(rec.sumHNorm / rec.hNormSum).toBeLessThan(1e-5);
    }
    // the evaluated model is TopK of the average: at most K weights plus the dense biases
    const biases = cnn.layout.segments.filter((s) => !s.prunable).reduce((a, s) => a + s.size, 0);
    expect(r.records.at(-1)!.nnz).toBeLessThanOrEqual(r.k + biases);
    expect(r.records.every((rec) => rec.testMetric !== null && rec.trainLoss !== null && Number.isFinite(rec.trainLoss))).toBe(true);

    const w = await simulate(fed, options(2));
    expect(w.records).toEqual(r.records);
    expect(w.model).toEqual(r.model);
  });
});
