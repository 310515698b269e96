import { describe, expect, it } from 'vitest';
import { lbfgs } from './lbfgs.js';

// f(x) = (x₀ − 1)² + 10 (x₁ + 2)² + x₀x₁: ∇f = 0 at 2(x₀ − 1) + x₁ = 0, 20(x₁ + 2) + x₀ = 0 → x₁ = 2 − 2x₀, x₀ = 80/39, x₁ = −82/39
const quad = (x: Float64Array, g: Float64Array): number => {
  g[0] = 2 * (x[0]! - 1) + x[1]!;
  g[1] = 20 * (x[1]! + 2) + x[0]!;
  return (x[0]! - 1) ** 2 + 10 * (x[1]! + 2) ** 2 + x[0]! * x[1]!;
};

describe('lbfgs', () => {
  it('finds the minimiser of a quadratic worked out by hand', () => {
    const r = lbfgs(quad, new Float64Array(2), { maxIter: 100, gradTol: 1e-8 });
    expect(r.reason).toBe('gradient');
    expect(r.x[0]).toBeCloseTo(80 / 39, 10);
    expect(r.x[1]).toBeCloseTo(-82 / 39, 10);
  });

  it('keeps coordinates outside `free` at their start: x₁ = 0 gives x₀ = 1', () => {
    const r = lbfgs(quad, new Float64Array(2), { maxIter: 100, gradTol: 1e-12, free: new Uint8Array([1, 0]) });
    expect(r.x[1]).toBe(0);
    expect(r.x[0]).toBeCloseTo(1, 10);
  });

  it('stops at its deadline with reason "time", at the start when the deadline has passed', () => {
    const r = lbfgs(quad, new Float64Array(2), { maxIter: 100, gradTol: 1e-8, deadline: performance.now() - 1 });
    expect(r.reason).toBe('time');
    expect(r.iterations).toBe(0);
    expect([...r.x]).toEqual([0, 0]);
  });

  it('minimises the Rosenbrock function', () => {
    const rosen = (x: Float64Array, g: Float64Array): number => {
      const [a, b] = [x[0]!, x[1]!];
      g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
      g[1] = 200 * (b - a * a);
      return (1 - a) ** 2 + 100 * (b - a * a) ** 2;
    };
    const r = lbfgs(rosen, new Float64Array([-1.2, 1]), { maxIter: 500, gradTol: 1e-9 });
    expect(r.x[0]).toBeCloseTo(1, 6);
    expect(r.x[1]).toBeCloseTo(1, 6);
  });
});
