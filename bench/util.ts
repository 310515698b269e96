/** Helpers shared by the benchmarks: timing, the numpy subprocess's environment, printing. */
import { pathToFileURL } from 'node:url';
import type { BenchResult } from './types.js';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median wall time of `runs` calls of f, in ms, after `warmup` untimed calls. */
export function medianMs(f: () => unknown, warmup: number, runs: number): number {
  for (let i = 0; i < warmup; i++) f();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/**
 * The environment for a numpy reference: ours without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which some
 * machines set for another core type and which then slow OpenBLAS down (numpy would look slower than it is).
 */
export function numpyEnv(): NodeJS.ProcessEnv {
  const { OPENBLAS_CORETYPE: _c, OPENBLAS_L2_SIZE: _l, ...env } = process.env;
  return env;
}

/** A figure with its unit, at a precision that suits its size. */
export function formatValue(value: number, unit: string): string {
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${unit}`;
}

/** value / reference, when both are in the same unit. */
export function ratioOf(r: BenchResult): number | null {
  return r.reference && r.reference.unit === r.unit && r.reference.value !== 0 ? r.value / r.reference.value : null;
}

export function printResults(results: readonly BenchResult[]): void {
  console.table(
    results.map((r) => {
      const ratio = ratioOf(r);
      return {
        measure: r.name,
        value: formatValue(r.value, r.unit),
        reference: r.reference ? `${formatValue(r.reference.value, r.reference.unit)} (${r.reference.name})` : '',
        ratio: ratio === null ? '' : `${ratio.toFixed(2)}x`,
        target: r.target ?? '',
        pass: r.pass === undefined ? '' : r.pass ? 'pass' : 'FAIL',
      };
    }),
  );
}

/** True when the module with this import.meta.url is the script node was started with. */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && url === pathToFileURL(process.argv[1]).href;
}
