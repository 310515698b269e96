import { describe, expect, it } from 'vitest';
import { rngFor } from '../core/rng.js';
import { denseToCsr, gramLambdaMax, matMat, matTMatAdd, matTVecAdd, matVec, rowEntries } from './matrix.js';
import { randomDense } from './testing.js';
import type { DenseMatrix, Matrix } from './types.js';

const dense = randomDense(1, 9, 7, 0.5);
const csr = denseToCsr(dense);
const C = 3;
const batch = new Uint32Array([4, 0, 8, 4, 2]); // a repeated row, as sampling with replacement gives

function randomVec(label: string, n: number): Float64Array {
  const rng = rngFor(2, label, n);
  return Float64Array.from({ length: n }, () => rng.normal());
}

/** A[r][j] in float64, the reference every kernel is checked against. */
function entry(A: DenseMatrix, r: number, j: number): number {
  return A.data[r * A.cols + j]!;
}

function sumOver(n: number, term: (j: number) => number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += term(j);
  return s;
}

function batchRows(rows?: Uint32Array): number[] {
  return rows === undefined ? [...Array(dense.rows).keys()] : [...rows];
}

function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, digits = 10): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i]!, digits);
}

const variants: [string, Matrix, Uint32Array | undefined][] = [
  ['dense, all rows', dense, undefined],
  ['dense, minibatch', dense, batch],
  ['csr, all rows', csr, undefined],
  ['csr, minibatch', csr, batch],
];

describe.each(variants)('kernels (%s)', (_name, A, rows) => {
  const rs = batchRows(rows);

  it('matVec computes A[row_i]·x', () => {
    const x = randomVec('x', A.cols);
    const expected = rs.map((r) => sumOver(A.cols, (j) => entry(dense, r, j) * x[j]!));
    expectAllClose(matVec(A, x, new Float64Array(rs.length), rows), expected);
  });

  it('matTVecAdd adds alpha·Aᵀv to out', () => {
    const v = randomVec('v', rs.length);
    const out = randomVec('out', A.cols);
    const expected = out.map((o, j) => o + 0.7 * sumOver(rs.length, (i) => entry(dense, rs[i]!, j) * v[i]!));
    expectAllClose(matTVecAdd(A, v, out, 0.7, rows), expected);
  });

  it('matMat computes A·W row-major, overwriting out', () => {
    const W = randomVec('W', A.cols * C);
    const expected = rs.flatMap((r) =>
      Array.from({ length: C }, (_, c) => sumOver(A.cols, (j) => entry(dense, r, j) * W[j * C + c]!)),
    );
    const out = new Float64Array(rs.length * C).fill(Number.NaN);
    expectAllClose(matMat(A, W, C, out, rows), expected);
  });

  // G enters the SIMD kernel as float32 (kernels/csr-simd.test.ts checks its error bound).
  it('matTMatAdd adds alpha·AᵀG to out', () => {
    const G = randomVec('G', rs.length * C);
    const out = randomVec('out', A.cols * C);
    const expected = out.map((o, k) => {
      const [j, c] = [Math.floor(k / C), k % C];
      return o - 1.5 * sumOver(rs.length, (i) => entry(dense, rs[i]!, j) * G[i * C + c]!);
    });
    expectAllClose(matTMatAdd(A, G, C, out, -1.5, rows), expected, 6);
  });

  it('accepts Float32Array operands', () => {
    const x = Float32Array.from(randomVec('x', A.cols));
    const expected = matVec(A, Float64Array.from(x), new Float64Array(rs.length), rows);
    expectAllClose(matVec(A, x, new Float32Array(rs.length), rows), Float32Array.from(expected));
  });
});

describe('kernel shape errors', () => {
  it('names the kernel, the operand and both lengths', () => {
    expect(() => matVec(dense, new Float64Array(6), new Float64Array(9))).toThrow(/matVec: x has length 6, expected 7/);
    expect(() => matVec(dense, new Float64Array(7), new Float64Array(9), batch)).toThrow(/out has length 9, expected 5/);
    expect(() => matTVecAdd(csr, new Float64Array(9), new Float64Array(8), 1)).toThrow(/out has length 8, expected 7/);
    expect(() => matMat(dense, new Float64Array(21), 3, new Float64Array(26))).toThrow(/out has length 26, expected 27/);
    expect(() => matTMatAdd(csr, new Float64Array(27), 3, new Float64Array(20), 1)).toThrow(/out has length 20, expected 21/);
  });

  it('rejects row indices past the last row', () => {
    const rows = new Uint32Array([0, 9]);
    expect(() => matVec(csr, new Float64Array(7), new Float64Array(2), rows)).toThrow(/row index 9 out of range for 9 rows/);
  });
});

describe('denseToCsr and rowEntries', () => {
  it('keep exactly the nonzero entries, in column order', () => {
    expect(csr.values.length).toBe(dense.data.filter((a) => a !== 0).length);
    const idx = new Uint32Array(dense.cols);
    const val = new Float64Array(dense.cols);
    for (let r = 0; r < dense.rows; r++) {
      const expected = [...Array(dense.cols).keys()].filter((j) => entry(dense, r, j) !== 0);
      for (const A of [dense, csr]) {
        const k = rowEntries(A, r, idx, val);
        expect([...idx.subarray(0, k)]).toEqual(expected);
        expect([...val.subarray(0, k)]).toEqual(expected.map((j) => entry(dense, r, j)));
      }
    }
  });
});

describe('gramLambdaMax', () => {
  // A = diag(3, 1, 2): (1/3)AᵀA = diag(3, 1/3, 4/3), largest eigenvalue 3.
  const diag: DenseMatrix = { kind: 'dense', rows: 3, cols: 3, data: new Float32Array([3, 0, 0, 0, 1, 0, 0, 0, 2]) };

  it('finds the largest eigenvalue of (1/m)AᵀA', () => {
    expect(gramLambdaMax(diag, false)).toBeCloseTo(3, 6);
    expect(gramLambdaMax(denseToCsr(diag), false)).toBeCloseTo(3, 6);
  });

  it('appends a column of ones', () => {
    // Ã = [[2, 1], [0, 1]]: (1/2)ÃᵀÃ = [[2, 1], [1, 1]], eigenvalues (3 ± √5)/2.
    const A: DenseMatrix = { kind: 'dense', rows: 2, cols: 1, data: new Float32Array([2, 0]) };
    expect(gramLambdaMax(A, true)).toBeCloseTo((3 + Math.sqrt(5)) / 2, 6);
  });

  it('is 0 for an all-zero matrix', () => {
    expect(gramLambdaMax({ kind: 'dense', rows: 2, cols: 2, data: new Float32Array(4) }, false)).toBe(0);
  });
});
