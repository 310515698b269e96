import { describe, expect, it } from 'vitest';
import { minNormSolve, symmetricEigen } from './linalg.js';

describe('symmetricEigen', () => {
  it('diagonalises [[2, 1], [1, 2]]: eigenvalues 1 and 3, eigenvectors (1, ∓1)/√2', () => {
    const { values, vectors } = symmetricEigen(new Float64Array([2, 1, 1, 2]), 2);
    const order = [...values].map((v, i) => [v, i] as const).sort((x, y) => x[0] - y[0]);
    expect(order[0]![0]).toBeCloseTo(1, 14);
    expect(order[1]![0]).toBeCloseTo(3, 14);
    const i3 = order[1]![1];
    expect(Math.abs(vectors[0 * 2 + i3]!)).toBeCloseTo(Math.SQRT1_2, 14);
    expect(vectors[0 * 2 + i3]! * vectors[1 * 2 + i3]!).toBeCloseTo(0.5, 14); // same sign
  });

  it('reconstructs a random symmetric matrix: V diag(λ) Vᵀ = A, VᵀV = I', () => {
    const dim = 7;
    const A = new Float64Array(dim * dim);
    let s = 1;
    const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5;
    for (let i = 0; i < dim; i++) for (let j = i; j < dim; j++) A[i * dim + j] = A[j * dim + i] = rnd();
    const { values, vectors: V } = symmetricEigen(A, dim);
    for (let i = 0; i < dim; i++) {
      for (let j = 0; j < dim; j++) {
        let a = 0;
        let id = 0;
        for (let e = 0; e < dim; e++) {
          a += V[i * dim + e]! * values[e]! * V[j * dim + e]!;
          id += V[e * dim + i]! * V[e * dim + j]!;
        }
        expect(a).toBeCloseTo(A[i * dim + j]!, 12);
        expect(id).toBeCloseTo(i === j ? 1 : 0, 12);
      }
    }
  });
});

describe('minNormSolve', () => {
  it('solves a regular system exactly', () => {
    // [[4, 2], [2, 3]] θ = [2, 1]: θ = (0.5, 0)
    const { theta, rank } = minNormSolve(new Float64Array([4, 2, 2, 3]), new Float64Array([2, 1]), 2);
    expect(rank).toBe(2);
    expect(theta[0]).toBeCloseTo(0.5, 14);
    expect(theta[1]).toBeCloseTo(0, 14);
  });

  it('gives the minimum-norm solution of a singular one', () => {
    // [[1, 1], [1, 1]] θ = [2, 2]: every θ with θ₁ + θ₂ = 2 solves it; the shortest is (1, 1)
    const { theta, rank } = minNormSolve(new Float64Array([1, 1, 1, 1]), new Float64Array([2, 2]), 2);
    expect(rank).toBe(1);
    expect(theta[0]).toBeCloseTo(1, 14);
    expect(theta[1]).toBeCloseTo(1, 14);
  });
});
