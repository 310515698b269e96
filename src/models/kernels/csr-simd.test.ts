import { describe, expect, it } from 'vitest';
import { rngFor } from '../../core/rng.js';
import { denseToCsr, matMat, matTMatAdd } from '../matrix.js';
import { randomDense } from '../testing.js';
import type { CsrMatrix, DenseMatrix } from '../types.js';
import { csrMatMat, csrMatTMatAdd, descendStep, softmaxLossSum } from './csr-simd.js';
import { simd } from './generated/csr.js';
import { moduleBytes, wasm } from './wasm-api.js';
import { kernelThreads, setKernelThreads } from './threads.js';

function randomVec(label: string, n: number, scale = 1): Float32Array {
  const rng = rngFor(7, label, n);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

/** A with rows `empty` set to zero, so some CSR rows have no entries at all. */
function withEmptyRows(A: DenseMatrix, empty: number[]): DenseMatrix {
  const data = Float32Array.from(A.data);
  for (const r of empty) data.fill(0, r * A.cols, (r + 1) * A.cols);
  return { ...A, data };
}

/** S = A·W in float64, summing each row's nonzeros in column order as the kernel does. */
function referenceScores(A: CsrMatrix, W: Float32Array, C: number, rows: number[]): Float64Array {
  const S = new Float64Array(rows.length * C);
  rows.forEach((r, i) => {
    for (let p = A.indptr[r]!; p < A.indptr[r + 1]!; p++) {
      for (let c = 0; c < C; c++) S[i * C + c]! += A.values[p]! * W[A.indices[p]! * C + c]!;
    }
  });
  return S;
}

/** AᵀG in float64, with the sum of |terms| of each entry (the scale of its rounding error). */
function referenceGrad(A: CsrMatrix, G: ArrayLike<number>, C: number, rows: number[]): [Float64Array, Float64Array] {
  const out = new Float64Array(A.cols * C);
  const abs = new Float64Array(A.cols * C);
  rows.forEach((r, i) => {
    for (let p = A.indptr[r]!; p < A.indptr[r + 1]!; p++) {
      for (let c = 0; c < C; c++) {
        const term = A.values[p]! * G[i * C + c]!;
        out[A.indices[p]! * C + c]! += term;
        abs[A.indices[p]! * C + c]! += Math.abs(term);
      }
    }
  });
  return [out, abs];
}

/** Bit-identical arrays (a loop: toEqual on large typed arrays is slow). Reports the first mismatch. */
function expectSameBits(actual: Float64Array, expected: Float64Array): void {
  expect(actual.length).toBe(expected.length);
  const k = actual.findIndex((v, i) => !Object.is(v, expected[i]));
  expect(k === -1 ? 'identical' : `index ${k}: ${actual[k]} vs ${expected[k]}`).toBe('identical');
}

function allRows(m: number): number[] {
  return [...Array(m).keys()];
}

// Shapes around the kernels' edges: 1-3 classes (part of a vector), 5 and 62 (vectors plus a partial
// one, two register chunks for 62), rows not a multiple of the 512-row blocks, several 4096-row ranges.
const shapes = [
  { m: 7, n: 5, C: 1 },
  { m: 9, n: 4, C: 2 },
  { m: 13, n: 9, C: 3 },
  { m: 1031, n: 11, C: 5 },
  { m: 600, n: 30, C: 62 },
  { m: 9001, n: 3, C: 17 },
];

describe.each(shapes)('csr-simd kernels, $m × $n, C = $C', ({ m, n, C }) => {
  const dense = withEmptyRows(randomDense(3, m, n, 0.6), [0, m - 1, Math.floor(m / 2)]);
  const A = denseToCsr(dense);
  const W = randomVec('W', n * C);
  const batch = Uint32Array.from({ length: Math.min(m, 40) }, (_, i) => (i * 37 + 5) % m);
  batch[1] = batch[0]!; // a repeated row, as sampling with replacement gives

  for (const [label, rows] of [['all rows', undefined], ['minibatch', batch]] as const) {
    const rs = rows === undefined ? allRows(m) : [...rows];

    it(`scores equal the float64 sums in column order (${label})`, () => {
      const out = new Float64Array(rs.length * C).fill(Number.NaN);
      csrMatMat(A, W, C, out, rows);
      expectSameBits(out, referenceScores(A, W, C, rs));
    });

    it(`scores from a mostly-zero W (W's nonzeros only) equal the same sums, bit for bit (${label})`, () => {
      // 1 entry in 37 kept, one kept entry -0: below 1/16 of W, so csrMatMat takes the sparse kernel
      const sparseW = W.map((w, k) => (k % 37 === 3 ? w : 0));
      sparseW[3] = -0;
      const out = new Float64Array(rs.length * C).fill(Number.NaN);
      csrMatMat(A, sparseW, C, out, rows);
      expectSameBits(out, referenceScores(A, sparseW, C, rs));
    });

    it(`gradient is within float32 rounding of the float64 sum (${label})`, () => {
      const G = randomVec('G', rs.length * C);
      const out = new Float64Array(n * C).fill(0.5);
      csrMatTMatAdd(A, G, C, out, -2, rows);
      const [expected, abs] = referenceGrad(A, G, C, rs);
      for (let k = 0; k < out.length; k++) {
        expect(Math.abs(out[k]! - (0.5 - 2 * expected[k]!))).toBeLessThanOrEqual(2 * 1e-6 * abs[k]! + 1e-12);
      }
    });

    it(`gradient without accumulate equals the one added into zeros, bit for bit, float32 and float64 out (${label})`, () => {
      const G = randomVec('G', rs.length * C);
      for (const make of [(len: number) => new Float32Array(len), (len: number) => new Float64Array(len)]) {
        const added = make(n * C);
        csrMatTMatAdd(A, G, C, added, -0.75, rows);
        const set = make(n * C).fill(Number.NaN);
        csrMatTMatAdd(A, G, C, set, -0.75, rows, false);
        expectSameBits(Float64Array.from(set), Float64Array.from(added));
      }
    });
  }

  it('gives the same bits for dense and CSR input, on 1 to 3 threads, and across repeated and interleaved calls', () => {
    const G = randomVec('G', m * C);
    const run = (x: DenseMatrix | CsrMatrix): [Float64Array, Float64Array] => [
      matMat(x, W, C, new Float64Array(m * C)) as Float64Array,
      matTMatAdd(x, G, C, new Float64Array(n * C), 1 / m) as Float64Array,
    ];
    const first = run(A);
    const other = randomDense(9, 50, n, 0.5); // evicts A from kernel memory
    matMat(other, W, C, new Float64Array(50 * C));
    const threads = kernelThreads();
    try {
      for (const t of [1, 2, 3]) {
        setKernelThreads(t);
        for (const again of [run(dense), run(A)]) again.forEach((v, i) => expectSameBits(v, first[i]!));
      }
    } finally {
      setKernelThreads(threads);
    }
  });
});

describe('csr-simd on pixel-like data (FEMNIST shape, fewer rows)', () => {
  // 1 − byte/255 with ~80% exact zeros, 62 classes, rows spanning two 4096-row ranges.
  const m = 5000;
  const n = 784;
  const C = 62;
  const A = denseToCsr(randomDense(4, m, n, 0.8, (rng) => 1 - rng.int(255) / 255));

  it('has a gradient within 1e-5 of the float64 one, relative to its largest entry', () => {
    // softmax-gradient-like G: p − e_y, entries in (−1, 1) summing to 0 in each row
    const rng = rngFor(8, 'pixels');
    const G = new Float32Array(m * C);
    for (let i = 0; i < m; i++) {
      let z = 0;
      for (let c = 0; c < C; c++) z += G[i * C + c] = Math.exp(rng.normal());
      for (let c = 0; c < C; c++) G[i * C + c]! /= z;
      G[i * C + rng.int(C)]! -= 1;
    }
    const out = new Float64Array(n * C);
    csrMatTMatAdd(A, G, C, out, 1 / m);
    const [expected] = referenceGrad(A, G, C, allRows(m));
    let diff = 0;
    let scale = 0;
    for (let k = 0; k < out.length; k++) {
      diff = Math.max(diff, Math.abs(out[k]! - expected[k]! / m));
      scale = Math.max(scale, Math.abs(expected[k]! / m));
    }
    expect(diff / scale).toBeLessThanOrEqual(1e-5);
  });
});

describe('csrMatMat on float32 and float64 W', () => {
  it('gives the same bits for every length mod 4 (W is promoted four entries at a time, then one)', () => {
    for (const n of [1, 2, 3, 4, 5, 6, 7, 10, 33]) {
      const A = denseToCsr(randomDense(5, 6, n, 0.7));
      const W = randomVec('W-promote', n * 2);
      const from32 = new Float64Array(12);
      const from64 = new Float64Array(12);
      csrMatMat(A, W, 2, from32);
      csrMatMat(A, Float64Array.from(W), 2, from64);
      expectSameBits(from32, referenceScores(A, W, 2, allRows(6)));
      expectSameBits(from64, from32);
    }
  });
});

describe('descendStep', () => {
  /** softThreshold's expression, applied to the float32 value */
  const shrink = (v: number, tau: number): number => (v > tau ? v - tau : v < -tau ? v + tau : 0);

  it('gives the bits of the JavaScript loops (step, then soft-thresholding), with and without h, at every length mod 4', () => {
    const special = [0, -0, 1e-45, -1e-45, 3.4e38, -3.4e38, Infinity, Number.NaN, 1 / 3, -7.25, 0.05, -0.05];
    for (const n of [1, 2, 3, 4, 5, 7, 8, 13, 1001]) {
      const x = randomVec('x-descend', n, 3);
      const g = randomVec('g-descend', n);
      const h = randomVec('h-descend', n, 0.5);
      special.forEach((v, i) => {
        if (i < n) [x[i], g[(i + 1) % n], h[(i + 2) % n]] = [v, -v, v];
      });
      for (const gamma of [0.37, 1e-3, 123.5]) {
        for (const hh of [h, null]) {
          for (const tau of [null, 0, 0.05, 1.5, -0.3]) {
            const want = Float32Array.from(x);
            if (hh) for (let j = 0; j < n; j++) want[j]! -= gamma * (g[j]! - hh[j]!);
            else for (let j = 0; j < n; j++) want[j]! -= gamma * g[j]!;
            if (tau !== null) for (let j = 0; j < n; j++) want[j] = shrink(want[j]!, tau);
            const got = Float32Array.from(x);
            descendStep(got, g, hh, gamma, tau);
            expectSameBits(Float64Array.from(got), Float64Array.from(want)); // Object.is: -0 too
          }
        }
      }
    }
  });
});

describe('the kernels module (assembly/csr.ts)', () => {
  it('is valid WebAssembly', () => {
    expect(wasm.validate(moduleBytes(simd))).toBe(true);
  });
});

describe('softmaxLossSum', () => {
  // Rows of C scores spread over ±scale, labels cycling; odd and even C exercise the lone last class.
  it.each([
    [1, 1],
    [2, 3],
    [5, 40],
    [62, 8],
    [7, 1000], // differences past −700, where e^x is clamped at e^−700 next to the row's largest term 1
  ])('matches Math.exp in float64 (C = %i, scores within ±%i)', (C, scale) => {
    const m = 300;
    const rng = rngFor(11, 'softmax', C);
    const S = Float64Array.from({ length: m * C }, () => scale * (2 * rng.float() - 1));
    const labels = Int32Array.from({ length: m }, (_, i) => i % C);
    let expected = 0;
    const D = new Float64Array(m * C);
    for (let i = 0; i < m; i++) {
      const row = S.subarray(i * C, (i + 1) * C);
      const max = Math.max(...row);
      const z = row.reduce((acc, s) => acc + Math.exp(s - max), 0);
      expected += max - row[labels[i]!]! + Math.log(z);
      row.forEach((s, c) => (D[i * C + c] = Math.exp(s - max) / z - (c === labels[i] ? 1 : 0)));
    }
    const copy = Float64Array.from(S);
    expect(Math.abs(softmaxLossSum(copy, labels, C, false) - expected)).toBeLessThanOrEqual(1e-13 * Math.max(1, expected));
    expectSameBits(copy, S); // left unchanged without deriv
    expect(softmaxLossSum(copy, labels, C, true)).toBe(softmaxLossSum(Float64Array.from(S), labels, C, false));
    const err = Math.max(...copy.map((d, k) => Math.abs(d - D[k]!)));
    expect(err).toBeLessThanOrEqual(4e-16);
  });
});
