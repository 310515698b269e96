/**
 * Small dense linear algebra in float64 for reference solutions (d up to a few hundred): the
 * symmetric eigendecomposition by cyclic Jacobi rotations, and the minimum-norm solution of a
 * possibly singular symmetric system through it.
 */

export interface SymmetricEigen {
  /** eigenvalues, in the order of the vectors */
  values: Float64Array;
  /** eigenvectors as the columns of a dim × dim row-major matrix */
  vectors: Float64Array;
}

/**
 * Eigendecomposition of the symmetric dim × dim matrix A (row-major; not modified). Cyclic Jacobi
 * sweeps until the off-diagonal mass is below 1e-15 of the total (quadratic convergence: a handful
 * of sweeps), at most 100 sweeps.
 */
export function symmetricEigen(A: Float64Array, dim: number): SymmetricEigen {
  if (A.length !== dim * dim) throw new RangeError(`symmetricEigen: A has ${A.length} entries, expected ${dim}²`);
  const a = Float64Array.from(A);
  const v = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) v[i * dim + i] = 1;
  let total = 0;
  for (let k = 0; k < a.length; k++) total += a[k]! * a[k]!;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < dim; p++) for (let q = p + 1; q < dim; q++) off += 2 * a[p * dim + q]! ** 2;
    if (off <= 1e-30 * total) break;
    for (let p = 0; p < dim; p++) {
      for (let q = p + 1; q < dim; q++) {
        const apq = a[p * dim + q]!;
        if (apq === 0) continue;
        // the rotation that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.4.1)
        const tau = (a[q * dim + q]! - a[p * dim + p]!) / (2 * apq);
        const t = Math.sign(tau || 1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = t * c;
        for (let k = 0; k < dim; k++) {
          const akp = a[k * dim + p]!;
          const akq = a[k * dim + q]!;
          a[k * dim + p] = c * akp - s * akq;
          a[k * dim + q] = s * akp + c * akq;
        }
        for (let k = 0; k < dim; k++) {
          const apk = a[p * dim + k]!;
          const aqk = a[q * dim + k]!;
          a[p * dim + k] = c * apk - s * aqk;
          a[q * dim + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < dim; k++) {
          const vkp = v[k * dim + p]!;
          const vkq = v[k * dim + q]!;
          v[k * dim + p] = c * vkp - s * vkq;
          v[k * dim + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(dim);
  for (let i = 0; i < dim; i++) values[i] = a[i * dim + i]!;
  return { values, vectors: v };
}

/**
 * The minimum-norm least-squares solution of H θ = b for a symmetric positive semidefinite H:
 * θ = Σ (vᵀb / λ) v over the eigenpairs with λ above `relTol` times the largest (the rest is H's
 * null space, where rounding leaves tiny eigenvalues of either sign). Also returns the rank used and
 * the largest |eigenvalue|.
 */
export function minNormSolve(H: Float64Array, b: Float64Array, dim: number, relTol = 1e-10): { theta: Float64Array; rank: number; maxEigen: number } {
  const { values, vectors } = symmetricEigen(H, dim);
  let max = 0;
  for (const l of values) max = Math.max(max, Math.abs(l));
  const theta = new Float64Array(dim);
  let rank = 0;
  for (let e = 0; e < dim; e++) {
    const l = values[e]!;
    if (!(l > relTol * max)) continue;
    rank++;
    let vb = 0;
    for (let k = 0; k < dim; k++) vb += vectors[k * dim + e]! * b[k]!;
    const coef = vb / l;
    for (let k = 0; k < dim; k++) theta[k]! += coef * vectors[k * dim + e]!;
  }
  return { theta, rank, maxEigen: max };
}
