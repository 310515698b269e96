/**
 * `--lambda auto`: the ℓ1 weight λ of randprox-l1 that gives the model the sparsity the other methods
 * get from TopK. nnz(λ) is (roughly) non-increasing: a larger threshold γλ zeroes more coordinates.
 * Each evaluation is a full run, so the search is a safeguarded bisection on log λ: it interpolates
 * where nnz is smooth and falls back to plain bisection whenever a step did not halve the bracket,
 * so it never needs more evaluations than bisection would (plus one).
 */
import { UsageError } from '../errors.js';

export interface LambdaSearchOptions {
  /** the nnz wanted: K, the count TopK keeps */
  target: number;
  /** accepted distance from the target, in coordinates (default: max(1, 2% of target)) */
  tolerance?: number;
  /** first λ tried (default 1e-3); the bracket grows from it by factors of `expand` */
  start?: number;
  expand?: number;
  /** no λ outside [minLambda, maxLambda] is tried */
  minLambda?: number;
  maxLambda?: number;
  /** the most evaluations (full runs) the search may take (default 20) */
  maxRuns?: number;
  /**
   * stop once the bracket is this narrow in log λ (default 1e-3, i.e. λ known to 0.1%): where nnz jumps
   * over the tolerance window between two such close λ (a run that has not settled can make nnz(λ)
   * erratic), more runs would not help
   */
  minLogWidth?: number;
  /** called after each evaluation (index from 0) */
  onProbe?(probe: LambdaProbe, index: number): void;
}

export interface LambdaProbe {
  lambda: number;
  nnz: number;
}

export interface LambdaSearchResult {
  lambda: number;
  nnz: number;
  target: number;
  tolerance: number;
  /** false when maxRuns ran out first: `lambda` is then the closest probe (see `warning`) */
  converged: boolean;
  warning: string | null;
  /** every evaluation, in order */
  probes: LambdaProbe[];
}

export const DEFAULT_TOLERANCE_FRACTION = 0.02;

export function defaultTolerance(target: number): number {
  return Math.max(1, Math.floor(DEFAULT_TOLERANCE_FRACTION * target));
}

/**
 * Finds λ with |nnzAt(λ) − target| ≤ tolerance. Throws UsageError when the target is out of reach
 * within [minLambda, maxLambda] (e.g. the model is sparser than K even at the smallest λ).
 */
export async function findLambda(nnzAt: (lambda: number) => Promise<number>, opts: LambdaSearchOptions): Promise<LambdaSearchResult> {
  const target = opts.target;
  const tolerance = opts.tolerance ?? defaultTolerance(target);
  const expand = opts.expand ?? 10;
  const minLambda = opts.minLambda ?? 1e-12;
  const maxLambda = opts.maxLambda ?? 1e6;
  const maxRuns = opts.maxRuns ?? 20;
  const minLogWidth = opts.minLogWidth ?? 1e-3;
  if (!(maxRuns >= 1) || !(expand > 1) || !(minLambda > 0) || !(maxLambda > minLambda)) {
    throw new RangeError('findLambda: needs maxRuns >= 1, expand > 1 and 0 < minLambda < maxLambda');
  }
  const probes: LambdaProbe[] = [];
  const done = (p: LambdaProbe, converged: boolean, warning: string | null = null): LambdaSearchResult => ({
    lambda: p.lambda,
    nnz: p.nnz,
    target,
    tolerance,
    converged,
    warning,
    probes,
  });
  const hit = (p: LambdaProbe) => Math.abs(p.nnz - target) <= tolerance;
  const probe = async (lambda: number): Promise<LambdaProbe> => {
    const p = { lambda, nnz: await nnzAt(lambda) };
    probes.push(p);
    opts.onProbe?.(p, probes.length - 1);
    return p;
  };
  const closest = (why: string): LambdaSearchResult => {
    const best = probes.reduce((a, b) => (closer(b, a, target) ? b : a));
    return done(best, false, `λ search stopped ${why}: closest nnz ${best.nnz} at λ = ${best.lambda}, target ${target} ± ${tolerance}`);
  };
  const outOfRuns = () => closest(`after ${maxRuns} runs`);

  // Bracket: dense (nnz above target) at `lo`, sparse (below) at `hi`.
  let p = await probe(clamp(opts.start ?? 1e-3, minLambda, maxLambda));
  if (hit(p)) return done(p, true);
  let lo: LambdaProbe | null = p.nnz > target ? p : null;
  let hi: LambdaProbe | null = p.nnz < target ? p : null;
  while (!lo || !hi) {
    if (probes.length >= maxRuns) return outOfRuns();
    const edge = lo ? maxLambda : minLambda;
    if (p.lambda === edge) {
      throw new UsageError(
        `--lambda auto: no λ in [${minLambda}, ${maxLambda}] gives ${target} ± ${tolerance} nonzeros ` +
          `(nnz ${p.nnz} at λ = ${p.lambda}); give --lambda explicitly`,
      );
    }
    p = await probe(clamp(lo ? p.lambda * expand : p.lambda / expand, minLambda, maxLambda));
    if (hit(p)) return done(p, true);
    if (p.nnz > target) lo = p;
    else hi = p;
  }

  let bisectNext = false;
  while (probes.length < maxRuns) {
    const a = Math.log(lo.lambda);
    const b = Math.log(hi.lambda);
    const width = b - a;
    if (width < minLogWidth) {
      return closest(`after ${probes.length} runs: nnz jumps from ${lo.nnz} to ${hi.nnz} between λ = ${lo.lambda} and ${hi.lambda}`);
    }
    const t = bisectNext ? 0.5 : interpolate(lo, hi, target);
    p = await probe(Math.exp(a + t * width));
    if (hit(p)) return done(p, true);
    if (p.nnz > target) lo = p;
    else hi = p;
    // Safeguard: after a step that kept more than half the bracket, bisect.
    bisectNext = Math.log(hi.lambda) - Math.log(lo.lambda) > width / 2;
  }
  return outOfRuns();
}

/**
 * Where in [0, 1] along the log-λ bracket nnz would reach the target if log(1 + nnz) were linear in log λ,
 * kept off the ends so a step always makes progress.
 */
function interpolate(lo: LambdaProbe, hi: LambdaProbe, target: number): number {
  const f = (n: number) => Math.log1p(n);
  const t = (f(lo.nnz) - f(target)) / (f(lo.nnz) - f(hi.nnz));
  return Math.min(0.9, Math.max(0.1, t));
}

/** `a` is closer to the target than `b`; on a tie the sparser one, then the smaller λ (less shrinkage). */
function closer(a: LambdaProbe, b: LambdaProbe, target: number): boolean {
  const da = Math.abs(a.nnz - target);
  const db = Math.abs(b.nnz - target);
  if (da !== db) return da < db;
  return a.nnz !== b.nnz ? a.nnz < b.nnz : a.lambda < b.lambda;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** A store of found λ values, so experiments and resumed runs do not search again. */
export interface LambdaCache {
  get(key: string): LambdaSearchResult | undefined;
  set(key: string, value: LambdaSearchResult): void;
}

/** An in-memory LambdaCache (the experiment runner keeps a file-backed one). */
export function memoryLambdaCache(): LambdaCache {
  const m = new Map<string, LambdaSearchResult>();
  return { get: (k) => m.get(k), set: (k, v) => void m.set(k, v) };
}
