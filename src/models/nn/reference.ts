/**
 * The loss of a network in float64, a plain JS forward pass over the same layer list (arch.ts) that shares
 * no code with the TF.js model: the independent reference of the gradient checks (gradcheck.test.ts).
 * Training-mode BatchNorm (the batch's mean and biased variance), max-pooling and everything else as
 * model.ts computes it. Slow (scalar loops), so for small batches only. Not part of the public API.
 */
import { blockParts, convOut, paramDefs, type ImageShape, type Layer } from './arch.js';

/** BatchNorm's ε, PyTorch's default (written out, so that nothing here comes from the TF.js model). */
const BN_EPS = 1e-5;

/** NHWC activations of n images, or [n, features] after flatten/gap. */
interface Act {
  v: Float64Array;
  n: number;
  shape: number[];
}

/**
 * Mean softmax cross-entropy of `layers` at parameters `theta` (flat, paramDefs order) on `images`
 * (n NHWC rows of `input`) with integer `labels`.
 */
export function lossF64(layers: Layer[], input: ImageShape, theta: Float64Array, images: Float32Array | Float64Array, labels: ArrayLike<number>): number {
  const defs = paramDefs(layers, input);
  const d = defs.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
  if (theta.length !== d) throw new RangeError(`theta has length ${theta.length}, the network ${d}`);
  const n = labels.length;
  let offset = 0;
  const take = (size: number): Float64Array => theta.subarray(offset, (offset += size));
  const run = (ls: Layer[], a: Act): Act => {
    let t = a;
    for (const l of ls) {
      const c = t.shape.at(-1)!;
      switch (l.op) {
        case 'conv': {
          const w = take(l.k * l.k * c * l.out);
          t = conv(t, w, l.bias ? take(l.out) : null, l.k, l.out, l.stride);
          break;
        }
        case 'bn':
          t = batchNorm(t, take(c), take(c));
          break;
        case 'relu':
          t = { ...t, v: t.v.map((x) => Math.max(0, x)) };
          break;
        case 'maxpool':
          t = maxPool(t);
          break;
        case 'gap':
          t = gap(t);
          break;
        case 'flatten':
          t = { ...t, shape: [t.shape.reduce((x, y) => x * y, 1)] };
          break;
        case 'dense': {
          const w = take(c * l.out);
          t = dense(t, w, take(l.out), l.out);
          break;
        }
        case 'block': {
          const { main, shortcut } = blockParts(l, c);
          const y = run(main, t);
          const s = run(shortcut, t);
          t = { ...y, v: y.v.map((x, i) => Math.max(0, x + s.v[i]!)) };
          break;
        }
      }
    }
    return t;
  };
  const logits = run(layers, { v: Float64Array.from(images), n, shape: [...input] });
  const k = logits.shape[0]!;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const row = logits.v.subarray(i * k, (i + 1) * k);
    const m = Math.max(...row);
    let s = 0;
    for (const z of row) s += Math.exp(z - m);
    loss += m + Math.log(s) - row[labels[i]!]!;
  }
  return loss / n;
}

/** k×k convolution, zero padding ⌊k/2⌋, weights [k, k, in, out]. */
function conv(a: Act, w: Float64Array, bias: Float64Array | null, k: number, out: number, stride: number): Act {
  const [h, wd, c] = a.shape as [number, number, number];
  const oh = convOut(h, k, stride);
  const ow = convOut(wd, k, stride);
  const pad = Math.floor(k / 2);
  const v = new Float64Array(a.n * oh * ow * out);
  for (let b = 0; b < a.n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const o = ((b * oh + y) * ow + x) * out;
        if (bias) for (let q = 0; q < out; q++) v[o + q] = bias[q]!;
        for (let i = 0; i < k; i++) {
          const r = y * stride + i - pad;
          if (r < 0 || r >= h) continue;
          for (let j = 0; j < k; j++) {
            const col = x * stride + j - pad;
            if (col < 0 || col >= wd) continue;
            const src = ((b * h + r) * wd + col) * c;
            for (let ch = 0; ch < c; ch++) {
              const xv = a.v[src + ch]!;
              const wr = ((i * k + j) * c + ch) * out;
              for (let q = 0; q < out; q++) v[o + q]! += xv * w[wr + q]!;
            }
          }
        }
      }
    }
  }
  return { v, n: a.n, shape: [oh, ow, out] };
}

/** Training-mode BatchNorm over (batch, height, width). */
function batchNorm(a: Act, gamma: Float64Array, beta: Float64Array): Act {
  const c = a.shape.at(-1)!;
  const m = a.v.length / c;
  const mean = new Float64Array(c);
  const sq = new Float64Array(c);
  for (let i = 0; i < a.v.length; i++) mean[i % c]! += a.v[i]! / m;
  for (let i = 0; i < a.v.length; i++) sq[i % c]! += (a.v[i]! - mean[i % c]!) ** 2 / m;
  const v = a.v.map((x, i) => (gamma[i % c]! * (x - mean[i % c]!)) / Math.sqrt(sq[i % c]! + BN_EPS) + beta[i % c]!);
  return { ...a, v };
}

/** 2×2 max-pooling, stride 2, no padding. */
function maxPool(a: Act): Act {
  const [h, w, c] = a.shape as [number, number, number];
  const oh = h >> 1;
  const ow = w >> 1;
  const v = new Float64Array(a.n * oh * ow * c);
  for (let b = 0; b < a.n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        for (let ch = 0; ch < c; ch++) {
          const at = (r: number, q: number): number => a.v[((b * h + r) * w + q) * c + ch]!;
          v[((b * oh + y) * ow + x) * c + ch] = Math.max(at(2 * y, 2 * x), at(2 * y, 2 * x + 1), at(2 * y + 1, 2 * x), at(2 * y + 1, 2 * x + 1));
        }
      }
    }
  }
  return { v, n: a.n, shape: [oh, ow, c] };
}

/** Mean over height and width. */
function gap(a: Act): Act {
  const [h, w, c] = a.shape as [number, number, number];
  const v = new Float64Array(a.n * c);
  for (let i = 0; i < a.v.length; i++) v[Math.floor(i / (h * w * c)) * c + (i % c)]! += a.v[i]! / (h * w);
  return { v, n: a.n, shape: [c] };
}

/** x·W + b, weights [in, out]. */
function dense(a: Act, w: Float64Array, bias: Float64Array, out: number): Act {
  const f = a.shape[0]!;
  const v = new Float64Array(a.n * out);
  for (let b = 0; b < a.n; b++) {
    for (let q = 0; q < out; q++) v[b * out + q] = bias[q]!;
    for (let i = 0; i < f; i++) {
      const xv = a.v[b * f + i]!;
      if (xv === 0) continue;
      for (let q = 0; q < out; q++) v[b * out + q]! += xv * w[i * out + q]!;
    }
  }
  return { v, n: a.n, shape: [out] };
}
