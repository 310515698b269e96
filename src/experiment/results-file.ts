/**
 * results.json: an experiment's results with each mean curve stored column by column.
 *
 * A curve stored point by point repeats every key and every `{ "se": null, "n": 1 }` at each of its
 * points; a full BlogFeedback grid (43 runs × 201 points) then came to 2.3 MB. Columns, and a column
 * whose values are all equal stored as that one value, keep the same numbers in about a quarter of that.
 * Nothing is rounded: `readResults(resultsJson(r))` gives `r` back (NaN as null, as JSON does).
 */
import type { CurvePoint, Stat } from './aggregate.js';
import type { ExperimentResults, MethodResult } from './report.js';

/** A column: one value per point, or the single value of a column whose values are all equal. */
type Column<T> = T | T[];

/** A Stat column; `n` is null at points whose stat is null. */
interface StatColumns {
  mean: Column<number | null>;
  se: Column<number | null>;
  n: Column<number | null>;
}

interface CurveColumns {
  points: number;
  round: Column<number>;
  uplinkFloats: Column<number>;
  uplinkBytes: Column<number>;
  trainLoss: StatColumns;
  testMetric: StatColumns;
  nnz: StatColumns;
  sumHNorm: StatColumns;
}

const STATS = ['trainLoss', 'testMetric', 'nnz', 'sumHNorm'] as const;
const NUMBERS = ['round', 'uplinkFloats', 'uplinkBytes'] as const;

/** JSON's view of a number: NaN and ±Infinity become null, so equality is judged on what is written. */
const json = (v: number | null): number | null => (v === null || !Number.isFinite(v) ? null : v);

function column<T>(values: T[]): Column<T> {
  return values.length > 0 && values.every((v) => v === values[0]) && !Array.isArray(values[0]) ? values[0]! : values;
}

function expand<T>(col: Column<T>, points: number, what: string): T[] {
  if (!Array.isArray(col)) return Array.from({ length: points }, () => col);
  if (col.length !== points) throw new RangeError(`results.json: column ${what} has ${col.length} values, not ${points}`);
  return col;
}

function curveColumns(curve: readonly CurvePoint[]): CurveColumns {
  const stat = (k: (typeof STATS)[number]): StatColumns => ({
    mean: column(curve.map((p) => (p[k] === null ? null : json(p[k]!.mean)))),
    se: column(curve.map((p) => (p[k] === null ? null : json(p[k]!.se)))),
    n: column(curve.map((p) => (p[k] === null ? null : p[k]!.n))),
  });
  return {
    points: curve.length,
    round: column(curve.map((p) => p.round)),
    uplinkFloats: column(curve.map((p) => p.uplinkFloats)),
    uplinkBytes: column(curve.map((p) => p.uplinkBytes)),
    trainLoss: stat('trainLoss'),
    testMetric: stat('testMetric'),
    nnz: stat('nnz'),
    sumHNorm: stat('sumHNorm'),
  };
}

function curvePoints(c: CurveColumns, where: string): CurvePoint[] {
  const n = c.points;
  const nums = Object.fromEntries(NUMBERS.map((k) => [k, expand(c[k], n, `${where}.${k}`)])) as Record<(typeof NUMBERS)[number], number[]>;
  const stats = Object.fromEntries(
    STATS.map((k) => {
      const mean = expand(c[k].mean, n, `${where}.${k}.mean`);
      const se = expand(c[k].se, n, `${where}.${k}.se`);
      const count = expand(c[k].n, n, `${where}.${k}.n`);
      return [k, count.map((m, i): Stat | null => (m === null ? null : ({ mean: mean[i], se: se[i], n: m } as Stat)))];
    }),
  ) as Record<(typeof STATS)[number], (Stat | null)[]>;
  return Array.from({ length: n }, (_, i) => ({
    round: nums.round[i]!,
    uplinkFloats: nums.uplinkFloats[i]!,
    uplinkBytes: nums.uplinkBytes[i]!,
    trainLoss: stats.trainLoss[i]!,
    testMetric: stats.testMetric[i]!,
    nnz: stats.nnz[i]!,
    sumHNorm: stats.sumHNorm[i]!,
  }));
}

/** The text of results.json: one line (it is machine-readable), curves as columns. */
export function resultsJson(results: ExperimentResults): string {
  const settings = results.settings.map((s) => ({ ...s, methods: s.methods.map((m) => ({ ...m, curve: curveColumns(m.curve) })) }));
  return JSON.stringify({ ...results, curveFormat: 'columns', settings }) + '\n';
}

/** Reads the text of results.json back into results (curves point by point). */
export function readResults(text: string): ExperimentResults {
  const raw = JSON.parse(text) as ExperimentResults & { curveFormat?: string };
  const { curveFormat, ...results } = raw;
  if (curveFormat !== 'columns') return results; // written point by point (before the column format)
  return {
    ...results,
    settings: results.settings.map((s) => ({
      ...s,
      methods: s.methods.map((m): MethodResult => ({ ...m, curve: curvePoints(m.curve as unknown as CurveColumns, `${s.name}/${m.name}`) })),
    })),
  };
}
