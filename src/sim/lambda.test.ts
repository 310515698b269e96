import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { defaultTolerance, findLambda } from './lambda.js';
import { resolveConfig } from './config.js';
import { prepareRun, runToDir } from './run.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fake nnz(λ): d coordinates with thresholds 10^(j/20 − 3), j = 0..d−1; coordinate j survives while λ < its threshold. */
function staircase(d: number): (lambda: number) => Promise<number> {
  return async (lambda) => {
    let n = 0;
    for (let j = 0; j < d; j++) if (lambda < 10 ** (j / 20 - 3)) n++;
    return n;
  };
}

describe('findLambda', () => {
  it('hits the target within the tolerance on a monotone staircase', async () => {
    const r = await findLambda(staircase(100), { target: 30, tolerance: 0 });
    expect(r.converged).toBe(true);
    expect(r.nnz).toBe(30);
    // 30 survive when exactly thresholds j = 70..99 exceed λ: 10^0.45 <= λ < 10^0.5
    expect(r.lambda).toBeGreaterThanOrEqual(10 ** 0.45);
    expect(r.lambda).toBeLessThan(10 ** 0.5);
    // bracketing from 1e-3 takes 4 runs (1e-3 ... 1); then at most one more than bisection needs
    expect(r.probes.length).toBeLessThanOrEqual(12);
    expect(r.probes.at(-1)).toEqual({ lambda: r.lambda, nnz: 30 });
    expect(r.warning).toBeNull();
  });

  it('returns at once when the first guess is good enough', async () => {
    const r = await findLambda(async () => 50, { target: 49, tolerance: 1, start: 0.5 });
    expect(r.probes).toEqual([{ lambda: 0.5, nnz: 50 }]);
  });

  it('stops when nnz jumps over the target, with the closest probe and a warning', async () => {
    // a jump from 60 to 10 at λ = 2: 30 ± 0 is never reached
    const r = await findLambda(async (l) => (l < 2 ? 60 : 10), { target: 30, tolerance: 0, start: 1 });
    expect(r.converged).toBe(false);
    expect(r.nnz).toBe(10); // |10 − 30| < |60 − 30|
    expect(r.lambda).toBeGreaterThanOrEqual(2);
    expect(r.lambda).toBeLessThan(2 * 1.001);
    expect(r.warning).toMatch(/nnz jumps from 60 to 10 between λ = 1\.99\d* and 2\.00/);
    expect(r.probes.length).toBeLessThanOrEqual(14);
  });

  it('respects the run bound and returns the closest probe with a warning', async () => {
    let calls = 0;
    // a jump from 60 to 10 at λ = 2: 30 ± 0 is never reached
    const r = await findLambda(
      async (l) => {
        calls++;
        return l < 2 ? 60 : 10;
      },
      { target: 30, tolerance: 0, start: 1, maxRuns: 7 },
    );
    expect(calls).toBe(7);
    expect(r.probes).toHaveLength(7);
    expect(r.converged).toBe(false);
    expect(r.nnz).toBe(10); // |10 − 30| < |60 − 30|
    expect(r.warning).toMatch(/after 7 runs/);
  });

  it('errors clearly when the target is unreachable', async () => {
    // sparser than the target even at the smallest λ
    await expect(findLambda(async () => 3, { target: 10, minLambda: 1e-6, maxRuns: 50 })).rejects.toThrow(UsageError);
    await expect(findLambda(async () => 3, { target: 10, minLambda: 1e-6, maxRuns: 50 })).rejects.toThrow(
      /no λ in \[0\.000001, 1000000\] gives 10 ± 1 nonzeros \(nnz 3 at λ = 0\.000001\)/,
    );
  });

  it('uses max(1, 2% of the target) as the default tolerance', () => {
    expect(defaultTolerance(3)).toBe(1);
    expect(defaultTolerance(487)).toBe(9);
  });
});

describe('--lambda auto', () => {
  it('finds λ for randprox-l1 on lsq, records it, and reuses a cached λ', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lambda-'));
    try {
      const config = resolveConfig({ algorithm: 'randprox-l1', dataset: 'lsq', clients: 4, rounds: 5, sparsity: 0.8, lambda: 'auto', timing: false });
      const cache = new Map();
      const lambdaCache = { get: (k: string) => cache.get(k), set: (k: string, v: unknown) => void cache.set(k, v) };
      const prepared = await prepareRun(config, undefined, { lambdaCache });
      const search = prepared.lambdaSearch!;
      expect(search.target).toBe(4); // 20 weights at 80% sparsity
      expect(Math.abs(search.nnz - 4)).toBeLessThanOrEqual(search.tolerance);
      expect(prepared.lambda).toBe(search.lambda);
      const { summary, result } = await runToDir(prepared, dir);
      expect(summary.lambda).toBe(search.lambda);
      expect(summary.config.lambda).toBe('auto');
      // the recorded run is the search's last probe again: same λ, same average
      expect(result.average.filter((v) => v !== 0).length).toBe(search.nnz);
      let probes = 0;
      const again = await prepareRun(config, undefined, { lambdaCache, onLambdaProbe: () => probes++ });
      expect(again.lambda).toBe(search.lambda);
      expect(probes).toBe(0);
      // another seed starts from this λ, with a bracket growing by factors of 2
      const seed1 = await prepareRun({ ...config, seed: 1 }, undefined, { lambdaCache });
      const first = seed1.lambdaSearch!.probes[0]!;
      expect(first.lambda).toBe(search.lambda);
      expect(seed1.lambdaSearch!.probes.slice(1).every((p) => p.lambda !== first.lambda)).toBe(true);
      expect(Math.abs(seed1.lambdaSearch!.nnz - 4)).toBeLessThanOrEqual(search.tolerance);
      // λ is unused by the other methods
      const dense = await prepareRun(resolveConfig({ ...config, algorithm: 'proxskip' }));
      expect(dense.lambdaSearch).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
