/**
 * Linear regression: loss (1/m) Σ_r (a_rᵀw + c − y_r)² + (l2/2)‖w‖², the plain mean squared error
 * (no ½ in front of it), so its smoothness is 2·λ_max((1/m) ÃᵀÃ) + l2.
 */
import { checkDataset, checkSpec, type Link } from './glm.js';
import { rowEntries } from './matrix.js';
import type { Dataset, ModelSpec } from './types.js';

export const squaredLoss: Link = {
  // ℓ(s) = (s − y)² has ℓ'' = 2, so 2λ + l2 is the exact smoothness without an intercept.
  curvature: 2,

  lossSum(S, y, rows, deriv) {
    let sum = 0;
    for (let i = 0; i < S.length; i++) {
      const residual = S[i]! - y[rows === undefined ? i : rows[i]!]!;
      sum += residual * residual;
      if (deriv) S[i] = 2 * residual;
    }
    return sum;
  },

  /**
   * R² = 1 − SS_res/SS_tot, SS_tot taken about the mean of this data's labels. Constant labels
   * (SS_tot = 0) give 1 for a perfect fit and 0 otherwise, as scikit-learn's r2_score does.
   */
  metric(S, y) {
    let mean = 0;
    for (let i = 0; i < y.length; i++) mean += y[i]!;
    mean /= y.length;
    let ssRes = 0;
    let ssTot = 0;
    for (let i = 0; i < y.length; i++) {
      ssRes += (S[i]! - y[i]!) ** 2;
      ssTot += (y[i]! - mean) ** 2;
    }
    const value = ssTot > 0 ? 1 - ssRes / ssTot : ssRes === 0 ? 1 : 0;
    return { name: 'r2', value };
  },
};

/** The normal equations of (1/n) Σ_i f_i: f(θ) = θᵀHθ − 2bᵀθ + yy, θ = (weights, intercept). */
export interface NormalEquations {
  dim: number;
  /** Σ_i ÃᵢᵀÃᵢ/(n·mᵢ) + (l2/2)·D, D the identity on the weights and 0 on the intercept (dim × dim, row-major) */
  H: Float64Array;
  /** Σ_i Ãᵢᵀyᵢ/(n·mᵢ) */
  b: Float64Array;
  /** Σ_i ‖yᵢ‖²/(n·mᵢ) */
  yy: number;
}

/** Builds the normal equations in float64 from the clients' rows (Ã is A with a column of ones for the intercept). */
export function normalEquations(clients: Dataset[], spec: ModelSpec): NormalEquations {
  checkSpec(spec);
  if (spec.kind !== 'linear') throw new RangeError(`exactLeastSquares needs a linear model, got ${spec.kind}`);
  if (clients.length === 0) throw new RangeError('exactLeastSquares: no clients');
  const n = spec.nFeatures;
  const dim = n + (spec.intercept ? 1 : 0);
  const H = new Float64Array(dim * dim);
  const rhs = new Float64Array(dim);
  const idx = new Uint32Array(dim);
  const val = new Float64Array(dim);
  let yy = 0;
  for (const client of clients) {
    checkDataset(client, n);
    const weight = 1 / (clients.length * client.x.rows);
    for (let r = 0; r < client.x.rows; r++) {
      let k = rowEntries(client.x, r, idx, val);
      if (spec.intercept) {
        idx[k] = n;
        val[k++] = 1;
      }
      yy += weight * client.y[r]! * client.y[r]!;
      for (let p = 0; p < k; p++) {
        const wp = weight * val[p]!;
        rhs[idx[p]!]! += wp * client.y[r]!;
        const rowOff = idx[p]! * dim;
        for (let q = 0; q < k; q++) H[rowOff + idx[q]!]! += wp * val[q]!;
      }
    }
  }
  for (let j = 0; j < n; j++) H[j * dim + j]! += spec.l2 / 2;
  return { dim, H, b: rhs, yy };
}

/** f(θ) = θᵀHθ − 2bᵀθ + yy in float64. */
export function normalObjective(eq: NormalEquations, theta: ArrayLike<number>): number {
  const { dim, H, b, yy } = eq;
  let f = yy;
  for (let i = 0; i < dim; i++) {
    let hi = 0;
    for (let j = 0; j < dim; j++) hi += H[i * dim + j]! * theta[j]!;
    f += theta[i]! * (hi - 2 * b[i]!);
  }
  return f;
}

/**
 * The exact minimiser (weights, then the intercept when spec.intercept) of (1/n) Σ_i f_i over the n
 * clients, f_i the linear model's loss on client i. Setting the gradient to zero gives the normal
 * equations [Σ_i ÃᵢᵀÃᵢ/(n·mᵢ) + (l2/2)·D] θ = Σ_i Ãᵢᵀyᵢ/(n·mᵢ), D the identity on the weights and 0 on
 * the intercept; they are solved in float64 by Cholesky. Throws a RangeError if they are singular
 * (src/core/linalg.ts's minNormSolve gives the minimum-norm minimiser then).
 */
export function exactLeastSquares(clients: Dataset[], spec: ModelSpec): Float64Array {
  const { H, b, dim } = normalEquations(clients, spec);
  return choleskySolve(H, b, dim);
}

/**
 * Solves H θ = b for a symmetric positive definite H (dim × dim, row-major), overwriting H's lower
 * triangle with its Cholesky factor. A pivot at or below 1e-12 of the largest diagonal entry counts
 * as singular: rounding leaves tiny nonzero pivots where exact arithmetic would give zero.
 */
function choleskySolve(H: Float64Array, b: Float64Array, dim: number): Float64Array {
  let maxDiag = 0;
  for (let j = 0; j < dim; j++) maxDiag = Math.max(maxDiag, H[j * dim + j]!);
  for (let j = 0; j < dim; j++) {
    let pivot = H[j * dim + j]!;
    for (let k = 0; k < j; k++) pivot -= H[j * dim + k]! ** 2;
    if (!(pivot > 1e-12 * maxDiag)) {
      throw new RangeError(`exactLeastSquares: the normal equations are singular (pivot ${pivot} at ${j})`);
    }
    const ljj = Math.sqrt(pivot);
    H[j * dim + j] = ljj;
    for (let i = j + 1; i < dim; i++) {
      let s = H[i * dim + j]!;
      for (let k = 0; k < j; k++) s -= H[i * dim + k]! * H[j * dim + k]!;
      H[i * dim + j] = s / ljj;
    }
  }
  // L z = b, then Lᵀ θ = z.
  const theta = new Float64Array(b);
  for (let i = 0; i < dim; i++) {
    for (let k = 0; k < i; k++) theta[i]! -= H[i * dim + k]! * theta[k]!;
    theta[i]! /= H[i * dim + i]!;
  }
  for (let i = dim - 1; i >= 0; i--) {
    for (let k = i + 1; k < dim; k++) theta[i]! -= H[k * dim + i]! * theta[k]!;
    theta[i]! /= H[i * dim + i]!;
  }
  return theta;
}
