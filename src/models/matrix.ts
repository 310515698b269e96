/**
 * Kernels over feature matrices (dense row-major or CSR): the hot path of every gradient.
 *
 * `rows` (indices into A's rows) restricts a kernel to a minibatch: the i-th row of `out` (matVec,
 * matMat) or of `v`/`G` (the transpose products) then belongs to A's row rows[i]. Loops run along
 * A's rows as stored. The C-column products (every model's scores and gradient, one class
 * included) run as WebAssembly SIMD kernels over A's nonzeros (kernels/csr-simd.ts), dense matrices
 * through a CSR copy built once per matrix. The single-column matVec and matTVecAdd (the power
 * iteration of gramLambdaMax) keep float64 sums throughout.
 */
import { norm2 } from '../core/vec.js';
import { csrMatMat, csrMatTMatAdd } from './kernels/csr-simd.js';
import type { CsrMatrix, DenseMatrix, Matrix } from './types.js';

export type Vec = Float32Array | Float64Array;

/** Number of rows a kernel works on: the minibatch, or all of A. */
export function batchSize(A: Matrix, rows?: Uint32Array): number {
  return rows === undefined ? A.rows : rows.length;
}

/** out[i] = A[row_i] · x */
export function matVec(A: Matrix, x: Vec, out: Vec, rows?: Uint32Array): Vec {
  checkOperands('matVec', A, rows, [
    ['x', x.length, A.cols],
    ['out', out.length, batchSize(A, rows)],
  ]);
  // the scores kernel with one class: float64 sums in row order, as the plain loop's
  const csr = sparseForm(A);
  if (csr !== null) csrMatMat(csr, x, 1, out, rows);
  else denseMatVec(A as DenseMatrix, x, out, rows);
  return out;
}

/** out += alpha · Aᵀ v, with v indexed like matVec's out. */
export function matTVecAdd(A: Matrix, v: Vec, out: Vec, alpha: number, rows?: Uint32Array): Vec {
  checkOperands('matTVecAdd', A, rows, [
    ['v', v.length, batchSize(A, rows)],
    ['out', out.length, A.cols],
  ]);
  // in float64 here: the SIMD gradient kernel would round v and its block sums to float32
  const csr = sparseForm(A);
  if (csr !== null) csrMatTVecAdd(csr, v, out, alpha, rows);
  else denseMatTVecAdd(A as DenseMatrix, v, out, alpha, rows);
  return out;
}

/**
 * out (m × C, row-major) = A · W, with W (A.cols × C, row-major): the WebAssembly SIMD kernel over
 * A's nonzeros, in float32 arithmetic (kernels/csr-simd.ts).
 */
export function matMat(A: Matrix, W: Vec, C: number, out: Vec, rows?: Uint32Array): Vec {
  checkOperands('matMat', A, rows, [
    ['W', W.length, A.cols * C],
    ['out', out.length, batchSize(A, rows) * C],
  ]);
  csrMatMat(asCsr(A), W, C, out, rows);
  return out;
}

/**
 * out (A.cols × C) += alpha · Aᵀ G, with G (m × C) indexed like matMat's out: the SIMD kernel, G
 * rounded to float32, sums in float32 over blocks of rows and in float64 across blocks.
 */
export function matTMatAdd(A: Matrix, G: Vec, C: number, out: Vec, alpha: number, rows?: Uint32Array): Vec {
  checkOperands('matTMatAdd', A, rows, [
    ['G', G.length, batchSize(A, rows) * C],
    ['out', out.length, A.cols * C],
  ]);
  csrMatTMatAdd(asCsr(A), G, C, out, alpha, rows);
  return out;
}

/** out (A.cols × C) = alpha · Aᵀ G: matTMatAdd into a zero out, without reading or clearing out first. */
export function matTMat(A: Matrix, G: Vec, C: number, out: Vec, alpha: number, rows?: Uint32Array): Vec {
  checkOperands('matTMat', A, rows, [
    ['G', G.length, batchSize(A, rows) * C],
    ['out', out.length, A.cols * C],
  ]);
  csrMatTMatAdd(asCsr(A), G, C, out, alpha, rows, false);
  return out;
}

/**
 * The nonzero entries of row r: writes their columns into `idx` and values into `val` (both at
 * least A.cols long) and returns how many there are.
 */
export function rowEntries(A: Matrix, r: number, idx: Uint32Array, val: Float64Array): number {
  let k = 0;
  if (A.kind === 'dense') {
    const off = r * A.cols;
    for (let j = 0; j < A.cols; j++) {
      const a = A.data[off + j]!;
      if (a !== 0) {
        idx[k] = j;
        val[k++] = a;
      }
    }
  } else {
    for (let p = A.indptr[r]!; p < A.indptr[r + 1]!; p++) {
      idx[k] = A.indices[p]!;
      val[k++] = A.values[p]!;
    }
  }
  return k;
}

/** The same matrix in CSR form, exact zeros dropped. */
export function denseToCsr(A: DenseMatrix): CsrMatrix {
  const { data, rows, cols } = A;
  let nnz = 0;
  for (let k = 0; k < data.length; k++) if (data[k] !== 0) nnz++;
  const indptr = new Uint32Array(rows + 1);
  const indices = new Uint32Array(nnz);
  const values = new Float32Array(nnz);
  let p = 0;
  for (let r = 0, off = 0; r < rows; r++, off += cols) {
    for (let j = 0; j < cols; j++) {
      const a = data[off + j]!;
      if (a !== 0) {
        indices[p] = j;
        values[p++] = a;
      }
    }
    indptr[r + 1] = p;
  }
  return { kind: 'csr', rows, cols, indptr, indices, values };
}

/**
 * Dense matrices in CSR form for the C-column kernels, built once per matrix: a dataset's feature
 * matrix is not modified after loading, and most images are mostly zeros.
 */
const csrOfDense = new WeakMap<DenseMatrix, CsrMatrix>();

function asCsr(A: Matrix): CsrMatrix {
  if (A.kind === 'csr') return A;
  let csr = csrOfDense.get(A);
  if (csr === undefined) {
    csr = denseToCsr(A);
    csrOfDense.set(A, csr);
  }
  return csr;
}

/**
 * A in CSR form when that is the cheaper one to walk for a single column: always for a CSR matrix,
 * and for a dense one with at most half of its entries nonzero (pixels, one-hot and count features).
 */
function sparseForm(A: Matrix): CsrMatrix | null {
  if (A.kind === 'csr') return A;
  const csr = asCsr(A);
  return 2 * csr.indptr[A.rows]! <= A.rows * A.cols ? csr : null;
}

/**
 * λ_max of (1/m) ÃᵀÃ, where Ã is A with a column of ones appended when `appendOnes`: power iteration
 * from the all-ones vector (deterministic) until the estimate changes by less than 1e-7 relative,
 * at most 1000 iterations. Each estimate ‖Mv‖ (‖v‖ = 1) is a lower bound that increases towards λ_max.
 */
export function gramLambdaMax(A: Matrix, appendOnes: boolean): number {
  if (A.rows === 0) throw new RangeError('gramLambdaMax: the matrix has no rows');
  const n = A.cols;
  const dim = n + (appendOnes ? 1 : 0);
  const v = new Float64Array(dim).fill(1 / Math.sqrt(dim));
  const u = new Float64Array(A.rows);
  const z = new Float64Array(dim);
  let lambda = 0;
  for (let it = 0; it < 1000; it++) {
    // z = (1/m) Ãᵀ (Ã v)
    matVec(A, v.subarray(0, n), u);
    if (appendOnes) for (let i = 0; i < u.length; i++) u[i]! += v[n]!;
    z.fill(0);
    matTVecAdd(A, u, z.subarray(0, n), 1 / A.rows);
    if (appendOnes) z[n] = sum(u) / A.rows;
    const next = norm2(z);
    if (next === 0) return 0; // ÃᵀÃ v = 0 for the start vector only when Ã is all zeros
    for (let j = 0; j < dim; j++) v[j] = z[j]! / next;
    const converged = Math.abs(next - lambda) < 1e-7 * next;
    lambda = next;
    if (converged) break;
  }
  return lambda;
}

function denseMatVec(A: DenseMatrix, x: Vec, out: Vec, rows?: Uint32Array): void {
  const { data, cols } = A;
  for (let i = 0; i < out.length; i++) {
    const off = (rows === undefined ? i : rows[i]!) * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += data[off + j]! * x[j]!;
    out[i] = s;
  }
}

// With a single output column, testing each entry for zero costs as much as the multiply-add it
// would save, so the dense vector kernels run straight through.
function denseMatTVecAdd(A: DenseMatrix, v: Vec, out: Vec, alpha: number, rows?: Uint32Array): void {
  const { data, cols } = A;
  for (let i = 0; i < v.length; i++) {
    const s = alpha * v[i]!;
    if (s === 0) continue;
    const off = (rows === undefined ? i : rows[i]!) * cols;
    for (let j = 0; j < cols; j++) out[j]! += s * data[off + j]!;
  }
}

function csrMatTVecAdd(A: CsrMatrix, v: Vec, out: Vec, alpha: number, rows?: Uint32Array): void {
  const { indptr, indices, values } = A;
  for (let i = 0; i < v.length; i++) {
    const s = alpha * v[i]!;
    if (s === 0) continue;
    const r = rows === undefined ? i : rows[i]!;
    for (let p = indptr[r]!; p < indptr[r + 1]!; p++) out[indices[p]!]! += s * values[p]!;
  }
}

/** Throws a RangeError naming the kernel and the operand whose length does not fit, or a bad row. */
function checkOperands(
  op: string,
  A: Matrix,
  rows: Uint32Array | undefined,
  lengths: [name: string, actual: number, expected: number][],
): void {
  for (const [name, actual, expected] of lengths) {
    if (actual !== expected) throw new RangeError(`${op}: ${name} has length ${actual}, expected ${expected}`);
  }
  if (rows === undefined) return;
  for (let i = 0; i < rows.length; i++) {
    if (rows[i]! >= A.rows) throw new RangeError(`${op}: row index ${rows[i]} out of range for ${A.rows} rows`);
  }
}

function sum(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return s;
}
