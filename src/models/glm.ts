/**
 * The three convex models share one shape: scores S = A·W + 1bᵀ (m × C, W stored nFeatures × C
 * row-major, b the optional bias), loss (1/m) Σ_r ℓ(S_r, y_r) + (l2/2)‖W‖². Only the per-sample loss
 * ℓ differs (a `Link`), so one class does the linear algebra, layout, shape checks and smoothness.
 */
import { dot } from '../core/vec.js';
import { batchSize, gramLambdaMax, matMat, matTMat, matTMatAdd } from './matrix.js';
import type { Dataset, Matrix, Metric, Model, ModelSpec, ParamLayout } from './types.js';

/** The per-sample loss of a model, applied to a block of scores. */
export interface Link {
  /**
   * Bound on ℓ's Hessian in the scores, as a multiple of the identity; the model's smoothness is then
   * at most curvature · λ_max((1/m) ÃᵀÃ) + l2.
   */
  readonly curvature: number;
  /**
   * Σ_i ℓ(S_i, y_{r_i}) over the m × C scores S, where r_i is rows[i] (or i without rows). When
   * `deriv`, S is overwritten with ∂ℓ/∂S_i; otherwise it is left unchanged. Throws on invalid labels.
   */
  lossSum(S: Float64Array, y: Float32Array, rows: Uint32Array | undefined, deriv: boolean, C: number): number;
  /** The model's metric from the scores of every row of the data. */
  metric(S: Float64Array, y: Float32Array, C: number): Metric;
}

const KINDS: readonly ModelSpec['kind'][] = ['linear', 'logistic', 'multinomial'];

/** Throws a RangeError unless `spec` describes a model that can be built. */
export function checkSpec(spec: ModelSpec): void {
  const { kind, nFeatures, nClasses, l2 } = spec;
  if (!KINDS.includes(kind)) throw new RangeError(`model kind must be one of ${KINDS.join(', ')}, got ${kind}`);
  if (!(Number.isInteger(nFeatures) && nFeatures >= 1)) {
    throw new RangeError(`nFeatures must be a positive integer, got ${nFeatures}`);
  }
  const classesOk = kind === 'multinomial' ? Number.isInteger(nClasses) && nClasses >= 2 : nClasses === 1;
  if (!classesOk) {
    const need = kind === 'multinomial' ? 'an integer >= 2' : '1';
    throw new RangeError(`nClasses must be ${need} for a ${kind} model, got ${nClasses}`);
  }
  if (!(Number.isFinite(l2) && l2 >= 0)) throw new RangeError(`l2 must be finite and >= 0, got ${l2}`);
}

/** 'weights' (nFeatures × nClasses, prunable), then with an intercept 'bias' (nClasses, not prunable). */
export function paramLayout(spec: ModelSpec): ParamLayout {
  const nW = spec.nFeatures * spec.nClasses;
  const segments = [{ name: 'weights', offset: 0, size: nW, prunable: true }];
  if (spec.intercept) segments.push({ name: 'bias', offset: nW, size: spec.nClasses, prunable: false });
  return { d: nW + (spec.intercept ? spec.nClasses : 0), segments };
}

/** Throws a RangeError unless `data` has `nFeatures` columns, one label per row and at least one row. */
export function checkDataset(data: Dataset, nFeatures: number): void {
  if (data.x.cols !== nFeatures) {
    throw new RangeError(`data has ${data.x.cols} feature columns, the model expects nFeatures = ${nFeatures}`);
  }
  if (data.y.length !== data.x.rows) {
    throw new RangeError(`data has ${data.x.rows} rows but ${data.y.length} labels`);
  }
  if (data.x.rows === 0) throw new RangeError('data has no rows (a mean over zero samples is undefined)');
}

export class GlmModel implements Model {
  readonly spec: ModelSpec;
  readonly layout: ParamLayout;
  /** nFeatures · nClasses: the weights come first in the parameters, the bias after them. */
  private readonly nWeights: number;
  /** Scores, then ∂ℓ/∂S; kept between calls so a full-batch gradient does not allocate m × C each time. */
  private scoreBuf = new Float64Array(0);

  constructor(
    spec: ModelSpec,
    private readonly link: Link,
  ) {
    checkSpec(spec);
    this.spec = Object.freeze({ ...spec });
    this.layout = paramLayout(spec);
    this.nWeights = spec.nFeatures * spec.nClasses;
  }

  lossGrad(x: Float32Array, data: Dataset, grad: Float32Array | null, rows?: Uint32Array): number {
    this.checkShapes(x, data);
    if (grad !== null && grad.length !== this.layout.d) {
      throw new RangeError(`grad has length ${grad.length}, the model has d = ${this.layout.d}`);
    }
    const m = batchSize(data.x, rows);
    if (m === 0) throw new RangeError('lossGrad: empty minibatch (a mean over zero samples is undefined)');
    const w = this.weights(x);
    const S = this.scores(x, data, rows);
    const lossSum = this.link.lossSum(S, data.y, rows, grad !== null, this.spec.nClasses);
    if (grad !== null) this.writeGrad(w, data, S, grad, rows);
    // no pass over the weights when there is no L2 term (the usual case; d can be large)
    return this.spec.l2 === 0 ? lossSum / m : lossSum / m + (this.spec.l2 / 2) * dot(w, w);
  }

  metric(x: Float32Array, data: Dataset): Metric {
    this.checkShapes(x, data);
    return this.link.metric(this.scores(x, data), data.y, this.spec.nClasses);
  }

  outputs(x: Float32Array, rows: Matrix): Float64Array {
    const data = { x: rows, y: new Float32Array(rows.rows) };
    this.checkShapes(x, data);
    return this.scores(x, data).slice(); // the score buffer is reused by the next call
  }

  smoothness(data: Dataset): number {
    checkDataset(data, this.spec.nFeatures);
    return this.link.curvature * gramLambdaMax(data.x, this.spec.intercept) + this.spec.l2;
  }

  private checkShapes(x: Float32Array, data: Dataset): void {
    if (x.length !== this.layout.d) {
      throw new RangeError(`parameters have length ${x.length}, the model has d = ${this.layout.d}`);
    }
    checkDataset(data, this.spec.nFeatures);
  }

  private weights(x: Float32Array): Float32Array {
    return x.subarray(0, this.nWeights);
  }

  /** S = A·W + 1bᵀ for the given rows, in the reused buffer. */
  private scores(x: Float32Array, data: Dataset, rows?: Uint32Array): Float64Array {
    const C = this.spec.nClasses;
    const size = batchSize(data.x, rows) * C;
    if (this.scoreBuf.length < size) this.scoreBuf = new Float64Array(size);
    const S = this.scoreBuf.subarray(0, size);
    matMat(data.x, this.weights(x), C, S, rows);
    if (this.spec.intercept) {
      const b = x.subarray(this.nWeights);
      for (let i = 0; i < size; i += C) for (let c = 0; c < C; c++) S[i + c]! += b[c]!;
    }
    return S;
  }

  /**
   * grad = ((1/m) AᵀD + l2 W, (1/m) Dᵀ1) where D = ∂ℓ/∂S. The weight part starts as l2 W and the
   * kernel adds (1/m) AᵀD into it, rounding each entry once from its float64 sum.
   */
  private writeGrad(w: Float32Array, data: Dataset, D: Float64Array, grad: Float32Array, rows?: Uint32Array): void {
    const { nClasses: C, l2, intercept } = this.spec;
    const m = D.length / C;
    const g = grad.subarray(0, this.nWeights);
    if (l2 === 0) {
      matTMat(data.x, D, C, g, 1 / m, rows); // the bits of a zero fill and matTMatAdd, in one pass less
    } else {
      for (let j = 0; j < this.nWeights; j++) g[j] = l2 * w[j]!;
      matTMatAdd(data.x, D, C, g, 1 / m, rows);
    }
    if (!intercept) return;
    const bias = new Float64Array(C);
    for (let i = 0; i < D.length; i += C) for (let c = 0; c < C; c++) bias[c]! += D[i + c]!;
    for (let c = 0; c < C; c++) grad[this.nWeights + c] = bias[c]! / m;
  }
}
