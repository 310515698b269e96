/**
 * A neural network behind the `Model` interface: parameters live in the caller's flat Float32Array
 * (segments in `networkOf` order); each call copies them into tensors, runs forward and backward on the
 * wasm backend, and copies the gradients back. Nothing persists between calls except an input buffer,
 * so one instance serves every client of a worker, and the algorithms (STE included) run unchanged.
 *
 * BatchNorm (docs/nn.md): training (`lossGrad` with a gradient) normalises with the whole batch's
 * statistics; evaluation (`metric`, and `lossGrad` without a gradient) with the statistics of a fixed
 * sample of training images (`evalReference`) at the evaluated parameters, recomputed on every call. So
 * there are no running statistics: γ and β are the only state, the evaluated model is exactly the
 * averaged (or pruned) parameter vector, and each image's prediction depends on no other evaluated image.
 */
import { rngFor } from '../../core/rng.js';
import type { Dataset, DenseMatrix, Matrix, Metric, Model, ModelSpec, ParamLayout } from '../types.js';
import { blockParts, networkOf, type Layer, type Network } from './arch.js';
import { tf } from './backend.js';
import { addRelu, BN_EPS, batchNormTrain, convBiasRelu, maxPool2x2, readFloats } from './kernels.js';

export { setupWasmBackend } from './backend.js';

/** One BatchNorm layer's per-channel mean and (biased) variance. */
export interface BnStats {
  mean: Float32Array;
  variance: Float32Array;
}

/**
 * What BatchNorm normalises with: the statistics of the batch it sees (training); fixed statistics, one
 * per BatchNorm layer in layer order (evaluation); or the batch's own, appended to `stats` as it goes
 * (the pass over the reference images that produces the fixed ones).
 */
export type Norm = { mode: 'batch' } | { mode: 'fixed'; stats: BnStats[] } | { mode: 'record'; stats: BnStats[] };

export class NnModel implements Model {
  readonly spec: ModelSpec;
  readonly layout: ParamLayout;
  private readonly net: Network;
  private readonly rowSize: number;
  /** the current chunk's images, reused between calls */
  private inputBuf = new Float32Array(0);

  /** `evalReference`: the training images whose BatchNorm statistics evaluation uses (evalReferenceOf) */
  constructor(
    spec: ModelSpec,
    private readonly evalReference?: Dataset,
  ) {
    this.net = networkOf(spec);
    this.spec = Object.freeze({ ...spec });
    this.layout = this.net.layout;
    this.rowSize = spec.nFeatures;
    if (evalReference) this.checkData(evalReference);
  }

  /** He (Kaiming) normal weights, std √(2 / fan-in); zero biases and β; γ = 1. Keyed by the seed only. */
  init(seed: number): Float32Array {
    const x = new Float32Array(this.layout.d);
    const rng = rngFor(seed, 'nn-init');
    this.net.params.forEach((p, i) => {
      const seg = this.layout.segments[i]!;
      const block = x.subarray(seg.offset, seg.offset + seg.size);
      if (p.role === 'gamma') block.fill(1);
      else if (p.role === 'weight') {
        const std = Math.sqrt(2 / p.fanIn);
        for (let j = 0; j < block.length; j++) block[j] = std * rng.normal();
      }
    });
    return x;
  }

  /** With `grad`: the training loss and its gradient. Without: the evaluation loss (BatchNorm as in `metric`). */
  lossGrad(x: Float32Array, data: Dataset, grad: Float32Array | null, rows?: Uint32Array): number {
    this.checkParams(x, grad);
    const X = this.checkData(data);
    const n = rows ? rows.length : data.y.length;
    if (n === 0) throw new RangeError('lossGrad needs at least one row');
    let loss = 0;
    if (grad) loss = this.train(x, X, data.y, rows, n, grad);
    else this.evaluate(x, X, data.y, rows, n, (logits, labels, a, b) => (loss += ((b - a) / n) * crossEntropy(logits, labels).dataSync()[0]!));
    const l2 = this.spec.l2;
    if (l2 > 0) {
      let s = 0;
      for (let j = 0; j < x.length; j++) {
        s += x[j]! * x[j]!;
        if (grad) grad[j]! += l2 * x[j]!;
      }
      loss += 0.5 * l2 * s;
    }
    return loss;
  }

  /** Accuracy of the arg-max class over every row. */
  metric(x: Float32Array, data: Dataset): Metric {
    const pred = this.predict(x, data);
    let correct = 0;
    for (let i = 0; i < pred.length; i++) if (pred[i] === data.y[i]) correct++;
    return { name: 'accuracy', value: correct / pred.length };
  }

  /** The arg-max class of every row, evaluated in chunks; a row's class does not depend on the other rows. */
  predict(x: Float32Array, data: Dataset): Int32Array {
    this.checkParams(x, null);
    const X = this.checkData(data);
    const n = data.y.length;
    const pred = new Int32Array(n);
    this.evaluate(x, X, data.y, undefined, n, (logits, _, a) => pred.set(tf.argMax(logits, 1).dataSync(), a));
    return pred;
  }

  /**
   * The loss of `n` rows and its gradient, written into `grad`. With BatchNorm the batch is one pass (its
   * statistics are the whole batch's); without, it runs in chunks of nearly equal size, combined weighted
   * by their size, which is exact.
   */
  private train(x: Float32Array, X: DenseMatrix, y: Float32Array, rows: Uint32Array | undefined, n: number, grad: Float32Array): number {
    if (n > this.net.maxBatchRows) {
      throw new RangeError(
        `a ${this.spec.kind} training batch of ${this.net.input.join('×')} images is at most ${this.net.maxBatchRows} rows, got ${n}: ` +
          `BatchNorm uses the whole batch's statistics, so a batch is one pass, and a larger one does not fit the 4 GiB wasm heap; set a smaller --batch-size`,
      );
    }
    const chunks = chunkBounds(n, this.net.batchNorm ? n : this.net.chunkRows);
    if (chunks.length > 1) grad.fill(0);
    let loss = 0;
    for (const [a, b] of chunks) {
      const w = (b - a) / n;
      tf.tidy(() => {
        const { images, labels } = this.batch(X, y, rows, a, b);
        const lossOf = (...ps: tf.Tensor[]): tf.Scalar => crossEntropy(forward(this.net.layers, ps, images, { mode: 'batch' }), labels);
        const { value, grads } = tf.valueAndGrads(lossOf)(this.paramTensors(x));
        loss += w * value.dataSync()[0]!;
        grads.forEach((g, i) => {
          const seg = this.layout.segments[i]!;
          const v = readFloats(g);
          const out = grad.subarray(seg.offset, seg.offset + seg.size);
          if (chunks.length === 1) out.set(v);
          else for (let j = 0; j < v.length; j++) out[j]! += w * v[j]!;
        });
      });
    }
    return loss;
  }

  /**
   * The logits of `n` rows in chunks, each handed to `use` with its one-hot labels and its rows [a, b)
   * (inside a tidy). BatchNorm normalises with the reference images' statistics at x.
   */
  private evaluate(
    x: Float32Array,
    X: DenseMatrix,
    y: Float32Array,
    rows: Uint32Array | undefined,
    n: number,
    use: (logits: tf.Tensor2D, labels: tf.Tensor2D, a: number, b: number) => void,
  ): void {
    const norm: Norm = { mode: 'fixed', stats: this.net.batchNorm ? this.referenceStats(x) : [] };
    for (const [a, b] of chunkBounds(n, this.net.chunkRows)) {
      tf.tidy(() => {
        const { images, labels } = this.batch(X, y, rows, a, b);
        use(forward(this.net.layers, this.paramTensors(x), images, norm, true), labels, a, b);
      });
    }
  }

  /** Every BatchNorm's statistics over the reference images as one batch, at parameters x. */
  private referenceStats(x: Float32Array): BnStats[] {
    const ref = this.evalReference;
    if (!ref) {
      throw new Error(
        `a ${this.spec.kind} model evaluates BatchNorm with the statistics of training images: create it with createModel(spec, evalReferenceOf(spec, clients))`,
      );
    }
    const stats: BnStats[] = [];
    tf.tidy(() => {
      const { images } = this.batch(ref.x as DenseMatrix, ref.y, undefined, 0, ref.y.length);
      forward(this.net.layers, this.paramTensors(x), images, { mode: 'record', stats }, true);
    });
    return stats;
  }

  /** Logits of every row, evaluated as `metric` does (BatchNorm with the reference images' statistics). */
  outputs(x: Float32Array, rows: Matrix): Float64Array {
    this.checkParams(x, null);
    const data = { x: rows, y: new Float32Array(rows.rows) };
    const X = this.checkData(data);
    const C = this.spec.nClasses;
    const out = new Float64Array(rows.rows * C);
    this.evaluate(x, X, data.y, undefined, rows.rows, (logits, _labels, a) => out.set(logits.dataSync(), a * C));
    return out;
  }

  /** Neural networks have no global smoothness constant: the step size must be given. */
  smoothness(): number {
    throw new RangeError(`a ${this.spec.kind} model has no smoothness constant; give the step size γ explicitly`);
  }

  private checkParams(x: Float32Array, grad: Float32Array | null): void {
    const d = this.layout.d;
    if (x.length !== d || (grad && grad.length !== d)) {
      throw new RangeError(`parameters have length ${x.length}${grad ? `, gradient ${grad.length}` : ''}; the ${this.spec.kind} model has d = ${d}`);
    }
  }

  private checkData(data: Dataset): DenseMatrix {
    const X = data.x;
    if (X.kind !== 'dense') throw new RangeError(`a ${this.spec.kind} model needs dense image rows, got a ${X.kind} matrix`);
    if (X.cols !== this.rowSize) {
      throw new RangeError(`data has ${X.cols} columns, the ${this.spec.kind} model expects ${this.net.input.join('×')} = ${this.rowSize}`);
    }
    if (data.y.length !== X.rows) throw new RangeError(`data has ${X.rows} rows but ${data.y.length} labels`);
    return X;
  }

  /** Rows a..b of the (optionally row-selected) data as an NHWC tensor and one-hot labels. */
  private batch(X: DenseMatrix, y: Float32Array, rows: Uint32Array | undefined, a: number, b: number): { images: tf.Tensor4D; labels: tf.Tensor2D } {
    const m = b - a;
    const F = this.rowSize;
    if (this.inputBuf.length < m * F) this.inputBuf = new Float32Array(m * F);
    const labels = new Int32Array(m);
    const C = this.spec.nClasses;
    for (let i = 0; i < m; i++) {
      const r = rows ? rows[a + i]! : a + i;
      if (!(r < X.rows)) throw new RangeError(`row ${r} is out of range (data has ${X.rows} rows)`);
      this.inputBuf.set(X.data.subarray(r * F, (r + 1) * F), i * F);
      const label = y[r]!;
      if (!(Number.isInteger(label) && label >= 0 && label < C)) throw new RangeError(`label ${label} of row ${r} is not a class in 0..${C - 1}`);
      labels[i] = label;
    }
    const [h, w, c] = this.net.input;
    return {
      images: tf.tensor4d(this.inputBuf.subarray(0, m * F), [m, h, w, c]),
      labels: tf.oneHot(tf.tensor1d(labels, 'int32'), C) as tf.Tensor2D,
    };
  }

  private paramTensors(x: Float32Array): tf.Tensor[] {
    return this.net.params.map((p, i) => {
      const seg = this.layout.segments[i]!;
      return tf.tensor(x.subarray(seg.offset, seg.offset + seg.size), p.shape, 'float32');
    });
  }
}

/**
 * Logits [batch, classes] of a layer list; consumes `params` in the order paramDefs lists them; `norm`
 * says what BatchNorm normalises with. `inference`: free each top-level layer's intermediates as soon as
 * its output exists (not under a gradient tape, which needs them), so a ResNet18 evaluation chunk holds
 * one block's temporaries at a time.
 */
export function forward(layers: Layer[], params: tf.Tensor[], images: tf.Tensor4D, norm: Norm, inference = false): tf.Tensor2D {
  let next = 0;
  const take = <T extends tf.Tensor>(): T => params[next++] as T;
  let bnIndex = 0;
  const batchNorm = (t: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor4D => {
    if (norm.mode === 'batch') return batchNormTrain(t, gamma, beta);
    let s: BnStats;
    if (norm.mode === 'record') {
      const m = tf.moments(t, [0, 1, 2]);
      s = { mean: m.mean.dataSync() as Float32Array, variance: m.variance.dataSync() as Float32Array };
      norm.stats.push(s);
    } else {
      s = norm.stats[bnIndex]!;
      if (!s || s.mean.length !== t.shape[3]) throw new Error(`BatchNorm ${bnIndex}: no statistics for ${t.shape[3]} channels`);
    }
    bnIndex++;
    // γ·(x − μ)/√(σ² + ε) + β as one per-channel scale and shift
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(tf.tensor1d(s.variance), BN_EPS)));
    return tf.add(tf.mul(t, scale), tf.sub(beta, tf.mul(tf.tensor1d(s.mean), scale)));
  };
  const run = (ls: Layer[], input: tf.Tensor): tf.Tensor => {
    let t = input;
    for (let i = 0; i < ls.length; i++) {
      const l = ls[i]!;
      switch (l.op) {
        case 'conv': {
          const filter = take<tf.Tensor4D>();
          const pad = Math.floor(l.k / 2);
          if (!l.bias) t = tf.conv2d(t as tf.Tensor4D, filter, l.stride, pad);
          else if (ls[i + 1]?.op === 'relu') {
            // the bias and the following ReLU inside the convolution, forward and backward
            i++;
            t = convBiasRelu(t as tf.Tensor4D, filter, take(), l.stride, pad, t !== images);
          } else t = tf.fused.conv2d({ x: t as tf.Tensor4D, filter, strides: l.stride, pad, bias: take() });
          break;
        }
        case 'bn': {
          const gamma = take();
          const beta = take();
          if (norm.mode === 'batch' && ls[i + 1]?.op === 'relu') {
            // training: the following ReLU inside BatchNorm, forward and backward
            i++;
            t = batchNormTrain(t as tf.Tensor4D, gamma, beta, true);
          } else t = batchNorm(t as tf.Tensor4D, gamma, beta);
          break;
        }
        case 'relu':
          t = tf.relu(t);
          break;
        case 'maxpool':
          t = maxPool2x2(t as tf.Tensor4D);
          break;
        case 'gap':
          t = tf.mean(t, [1, 2]);
          break;
        case 'flatten':
          t = tf.reshape(t, [t.shape[0]!, -1]);
          break;
        case 'dense':
          t = tf.add(tf.matMul(t as tf.Tensor2D, take<tf.Tensor2D>()), take());
          break;
        case 'block': {
          const { main, shortcut } = blockParts(l, t.shape[3]!);
          const y = run(main, t);
          t = addRelu(y, run(shortcut, t));
          break;
        }
      }
    }
    return t;
  };
  if (!inference) return run(layers, images) as tf.Tensor2D;
  let t: tf.Tensor = images;
  for (let i = 0; i < layers.length; ) {
    const span = layerSpan(layers, i);
    const prev = t;
    t = tf.tidy(() => run(layers.slice(i, i + span), prev));
    if (prev !== images) prev.dispose();
    i += span;
  }
  return t as tf.Tensor2D;
}

/** Layers handled as one by `forward`: a conv with bias and the ReLU fused into it, else one. */
function layerSpan(ls: Layer[], i: number): number {
  const l = ls[i]!;
  return l.op === 'conv' && l.bias && ls[i + 1]?.op === 'relu' ? 2 : 1;
}

/** Mean softmax cross-entropy of logits against one-hot labels. */
export function crossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

/** [start, end) of ⌈n / rows⌉ chunks whose sizes differ by at most one. */
export function chunkBounds(n: number, rows: number): [number, number][] {
  const k = Math.ceil(n / rows);
  return Array.from({ length: k }, (_, i) => [Math.floor((i * n) / k), Math.floor(((i + 1) * n) / k)]);
}
