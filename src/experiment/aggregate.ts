/**
 * Mean ± standard error over seeds (SPEC §5), for final values and for whole curves.
 *
 * Curves are averaged round by round: the value at round r is the mean over seeds of each seed's value
 * at round r, and its x is the mean over seeds of the cumulative uplink at round r. For methods whose
 * uplink does not depend on the data (every method but randprox-l1, whose message size is the
 * soft-threshold's support) all seeds have the same uplink at every round, so x is exact; for
 * randprox-l1 x is the mean uplink, which keeps the points of one round together instead of
 * interpolating values the runs never had.
 */
import type { RoundRecord } from '../sim/simulate.js';

export interface Stat {
  mean: number;
  /** sample standard deviation / √n; null for fewer than 2 values */
  se: number | null;
  n: number;
}

/** Mean and standard error of the mean (sample standard deviation, n − 1). Non-finite values count as they are. */
export function meanSe(values: readonly number[]): Stat {
  const n = values.length;
  if (n === 0) return { mean: NaN, se: null, n: 0 };
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  if (n < 2) return { mean, se: null, n };
  let ss = 0;
  for (const v of values) ss += (v - mean) ** 2;
  return { mean, se: Math.sqrt(ss / (n - 1) / n), n };
}

/** meanSe of the non-null values, or null when there are none. */
export function meanSeOf(values: readonly (number | null | undefined)[]): Stat | null {
  const present = values.filter((v): v is number => v !== null && v !== undefined);
  return present.length === 0 ? null : meanSe(present);
}

export interface CurvePoint {
  round: number;
  uplinkFloats: number;
  uplinkBytes: number;
  trainLoss: Stat | null;
  testMetric: Stat | null;
  nnz: Stat;
  sumHNorm: Stat;
}

/**
 * The mean curve of several seeds' records, over the rounds every seed reached (a seed that stopped
 * early, e.g. by diverging, shortens the curve rather than changing who is averaged part-way).
 * Train loss and test metric are null on rounds some seed did not evaluate.
 */
export function meanCurve(runs: readonly (readonly RoundRecord[])[]): CurvePoint[] {
  if (runs.length === 0) return [];
  const rounds = Math.min(...runs.map((r) => r.length));
  const out: CurvePoint[] = [];
  for (let i = 0; i < rounds; i++) {
    const at = runs.map((r) => r[i]!);
    const round = at[0]!.round;
    if (at.some((r) => r.round !== round)) throw new RangeError(`runs disagree on the rounds they recorded (${at.map((r) => r.round).join(', ')} at line ${i + 1})`);
    const all = <T>(v: (T | null)[]): v is T[] => v.every((x) => x !== null);
    const loss = at.map((r) => r.trainLoss);
    const metric = at.map((r) => r.testMetric);
    out.push({
      round,
      uplinkFloats: meanSe(at.map((r) => r.uplinkFloats)).mean,
      uplinkBytes: meanSe(at.map((r) => r.uplinkBytes)).mean,
      trainLoss: all(loss) ? meanSe(loss) : null,
      testMetric: all(metric) ? meanSe(metric) : null,
      nnz: meanSe(at.map((r) => r.nnz)),
      sumHNorm: meanSe(at.map((r) => r.sumHNorm)),
    });
  }
  return out;
}

/** 'm ± se' with the formatter given; just 'm' without a standard error. */
export function formatStat(s: Stat | null, format: (x: number) => string): string {
  if (s === null) return '—';
  return s.se === null ? format(s.mean) : `${format(s.mean)} ± ${format(s.se)}`;
}
