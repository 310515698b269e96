/**
 * Reference optima for the convex experiments (issue: "converges to a worse point" needs a number):
 * the dense optimum f* of f = (1/n) Σᵢ fᵢ, and a centralised K-sparse reference on the pooled data.
 *
 * - f*: linear regression by the normal equations, solved in float64 for the minimum-norm minimiser
 *   (BlogFeedback's features are rank-deficient, so Cholesky would fail); other models by L-BFGS to
 *   the precision of their float32 kernels.
 * - K-sparse reference: iterative hard thresholding x ← TopK(x − ∇f(x)/L) with the runs' γ = 1/L, and
 *   each time its support settles, the exact optimum on that support (hard thresholding pursuit); the
 *   best of several starts: 0, TopK(x*), a greedy support (orthogonal matching pursuit) and TopK of
 *   seeded perturbations of x*, and any points the caller adds (an experiment adds its runs' final models,
 *   so the reference is at least as good as the best K-sparse point the runs found); for linear models then
 *   a 1-swap local search from the best of them.
 *   Non-linear models (each f a pass over the data) search within a time limit, stated in the result.
 *
 * Every f here is evaluated like a run's train loss (the model's float32 parameters, the clients'
 * losses averaged in float64 in client order), so f − f* of a run compares like with like.
 */
import { lbfgs } from '../core/lbfgs.js';
import { minNormSolve } from '../core/linalg.js';
import { makePruner, type TopkScope } from '../core/prune.js';
import { rngFor } from '../core/rng.js';
import { normalEquations, normalObjective, type NormalEquations } from '../models/linear.js';
import type { Dataset, Model } from '../models/types.js';

export interface ReferenceOptions {
  sparsity: number;
  topkScope: TopkScope;
  /** the smoothness constant the runs use (max over clients); IHT steps 1/L */
  L: number;
  /** random perturbed starts of the sparse search, besides 0, TopK(x*) and the greedy one (default: 8 for linear models, where a start costs little, else 2) */
  randomStarts?: number;
  seed?: number;
  /** L-BFGS iterations for f* and for each support's optimum (non-linear models) */
  maxIter?: number;
  /** IHT steps per start */
  maxIht?: number;
  /** time limit of the sparse search (starts in the order above, IHT and support optima), seconds (default: none for linear models, 900 otherwise) */
  sparseSeconds?: number;
  /** time limit of the swap search (linear models), seconds (default 120) */
  swapSeconds?: number;
  /** more starts, tried first, the best (by f of TopK) first */
  extraStarts?: { name: string; x: Float32Array }[];
  /** the dense optimum when already computed for the same data and model (it does not depend on the sparsity) */
  dense?: DenseOptimum;
  /** progress lines */
  log?(line: string): void;
}

/** x* and how it was found. */
export interface DenseOptimum {
  xStar: Float64Array;
  dense: Reference['dense'];
  /** λ_max of the normal equations (linear models) */
  lambdaMax: number | null;
}

export interface ReferenceStart {
  name: string;
  f: number;
  ihtSteps: number;
  supports: number;
  /** set when the time limit cut this start short */
  cut?: true;
}

export interface Reference {
  /** f at the dense optimum */
  fStar: number;
  dense: { method: string; gradInf: number; iterations: number; rank: number | null; fFloat64: number | null };
  /** f at the best K-sparse point found */
  fSparseRef: number;
  sparse: { k: number; method: string; starts: ReferenceStart[]; timeLimit?: { seconds: number; notRun: string[] } };
  seconds: number;
}

/** The points behind a Reference, as the runs' float32 parameters. */
export interface ReferencePoints {
  xStar: Float32Array;
  xSparse: Float32Array;
}

/** Computes f* and the K-sparse reference of the model's loss averaged over `clients`, and their points. */
export function referenceOptima(model: Model, clients: Dataset[], opts: ReferenceOptions): { reference: Reference; points: ReferencePoints; dense: DenseOptimum } {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const d = model.layout.d;
  const f = objective(model, clients);
  const linear = model.spec.kind === 'linear';
  const eq = linear ? normalEquations(clients, model.spec) : null;
  const maxIter = opts.maxIter ?? 2000;

  const denseOptimum = opts.dense ?? denseOptimumOf(f, d, eq, maxIter);
  const { xStar, dense, lambdaMax } = denseOptimum;
  const fStar = f(xStar, null);
  log(`f* = ${fStar} (${dense.method}, ‖∇f‖∞ = ${dense.gradInf.toExponential(2)})`);

  // K-sparse reference
  const pruner = makePruner(model.layout, opts.sparsity, opts.topkScope);
  const prune = (x: Float64Array): Float64Array => Float64Array.from(pruner.apply(Float32Array.from(x)));
  const sparseSeconds = opts.sparseSeconds ?? (eq ? Infinity : 900);
  const deadline = performance.now() + sparseSeconds * 1000;
  const outOfTime = (): boolean => performance.now() > deadline;
  const extra = (opts.extraStarts ?? [])
    .map(({ name, x }) => {
      const x64 = Float64Array.from(x);
      return { name, x: x64, fPruned: f(prune(x64), null) };
    })
    .sort((a, b) => a.fPruned - b.fPruned);
  // built when reached: the greedy start alone is many support optima
  const starts: [string, () => Float64Array][] = [
    ...extra.map(({ name, x }): [string, () => Float64Array] => [name, () => x]),
    ['zero', () => new Float64Array(d)],
    ['TopK(x*)', () => xStar],
    ['greedy (OMP)', () => greedySupport(model, f, pruner.k, eq, maxIter, deadline)],
  ];
  const rms = Math.sqrt(xStar.reduce((s, v) => s + v * v, 0) / d);
  for (let i = 0; i < (opts.randomStarts ?? (eq ? 8 : 2)); i++) {
    const rng = rngFor(opts.seed ?? 0, 'reference-start', i);
    starts.push([`TopK(x* + noise ${i})`, () => Float64Array.from(xStar, (v) => v + rms * rng.normal())]);
  }
  const results: ReferenceStart[] = [];
  const notRun: string[] = [];
  let best = Infinity;
  let bestX: Float64Array | null = null;
  // The runs' 1/L (L the largest client's) is a short step for the pooled f; linear models also try
  // 1/L_f, L_f = 2·λ_max(H) the smoothness of f itself, which moves supports further.
  const steps: [string, number][] = [['1/L', opts.L]];
  if (eq && lambdaMax !== null && 2 * lambdaMax < opts.L) steps.push(['1/L_f', 2 * lambdaMax]);
  for (const [name, makeStart] of starts) {
    if (outOfTime()) {
      notRun.push(name);
      continue;
    }
    const x0 = makeStart();
    for (const [stepName, L] of steps) {
      const label = steps.length > 1 ? `${name}, step ${stepName}` : name;
      if (outOfTime()) {
        notRun.push(label);
        continue;
      }
      const r = hardThresholdingPursuit(prune(x0), f, prune, L, eq, model, maxIter, opts.maxIht ?? 3000, deadline);
      results.push({ name: label, f: r.f, ihtSteps: r.steps, supports: r.supports, ...(r.cut && { cut: true as const }) });
      if (r.f < best) [best, bestX] = [r.f, r.x];
      log(`K-sparse reference from ${label}: f = ${r.f} (${r.steps} IHT steps, ${r.supports} supports solved${r.cut ? '; cut by the time limit' : ''})`);
    }
  }
  if (bestX === null) {
    // the time limit left no search at all: TopK(x*) as it is
    const x = prune(xStar);
    best = f(x, null);
    bestX = x;
    results.push({ name: 'TopK(x*), no search (time limit)', f: best, ihtSteps: 0, supports: 0, cut: true });
  }
  if (eq) {
    // one coordinate in, one out, as long as that lowers f: IHT stalls in local optima of the support
    const swapped = swapSearch(eq, model, bestX, opts.swapSeconds ?? 120);
    const fs = f(swapped.x, null);
    results.push({ name: `1-swap search from the best above (${swapped.swaps} swaps${swapped.complete ? ', none left' : ', stopped by the time limit'})`, f: fs, ihtSteps: 0, supports: swapped.tried });
    log(`K-sparse reference after ${swapped.swaps} swaps: f = ${fs}`);
    if (fs < best) [best, bestX] = [fs, swapped.x];
  }
  const reference: Reference = {
    fStar,
    dense,
    fSparseRef: best,
    sparse: {
      k: pruner.k,
      method: 'iterative hard thresholding (step 1/L) with the exact optimum on each settled support; best of the starts' +
        (Number.isFinite(sparseSeconds) ? `, within ${sparseSeconds} s` : ''),
      starts: results,
      ...(Number.isFinite(sparseSeconds) && { timeLimit: { seconds: sparseSeconds, notRun } }),
    },
    seconds: (performance.now() - t0) / 1000,
  };
  return { reference, points: { xStar: Float32Array.from(xStar), xSparse: Float32Array.from(bestX) }, dense: denseOptimum };
}

/** f*'s point: the normal equations' minimum-norm solution for linear models, else L-BFGS from 0. */
function denseOptimumOf(f: Objective, d: number, eq: NormalEquations | null, maxIter: number): DenseOptimum {
  if (eq) {
    const { theta, rank, maxEigen } = minNormSolve(eq.H, eq.b, eq.dim);
    const g = new Float64Array(d);
    f(theta, g);
    return {
      xStar: theta,
      dense: { method: 'normal equations, minimum-norm solution (eigendecomposition, float64)', gradInf: infNorm(g), iterations: 0, rank, fFloat64: normalObjective(eq, theta) },
      lambdaMax: maxEigen,
    };
  }
  const r = lbfgs(f, new Float64Array(d), { maxIter, gradTol: 1e-7 });
  return { xStar: r.x, dense: { method: `L-BFGS (stopped: ${r.reason})`, gradInf: r.gradInf, iterations: r.iterations, rank: null, fFloat64: null }, lambdaMax: null };
}

type Objective = (x: Float64Array, g: Float64Array | null) => number;

/** f(x) and its gradient as the runs compute them: float32 parameters, clients averaged in float64. */
function objective(model: Model, clients: Dataset[]): Objective {
  const d = model.layout.d;
  const x32 = new Float32Array(d);
  const g32 = new Float32Array(d);
  return (x, g) => {
    x32.set(x);
    g?.fill(0);
    let sum = 0;
    for (const c of clients) {
      sum += model.lossGrad(x32, c, g ? g32 : null);
      if (g) for (let j = 0; j < d; j++) g[j]! += g32[j]!;
    }
    if (g) for (let j = 0; j < d; j++) g[j]! /= clients.length;
    return sum / clients.length;
  };
}

/**
 * IHT from x (already K-sparse) until the support has not changed for SETTLE steps; then the optimum on
 * that support; again from there until a support's optimum no longer improves f.
 */
function hardThresholdingPursuit(
  start: Float64Array,
  f: Objective,
  prune: (x: Float64Array) => Float64Array,
  L: number,
  eq: NormalEquations | null,
  model: Model,
  maxIter: number,
  maxIht: number,
  deadline: number,
): { f: number; x: Float64Array; steps: number; supports: number; cut: boolean } {
  const SETTLE = 10;
  const d = start.length;
  const g = new Float64Array(d);
  let x = start;
  let fx = f(x, g);
  let bestF = Infinity;
  let bestX = x;
  let steps = 0;
  let supports = 0;
  let settled = 0;
  let cut = false;
  while (steps < maxIht) {
    if (performance.now() > deadline) {
      cut = true;
      break;
    }
    const next = prune(Float64Array.from(x, (v, j) => v - g[j]! / L));
    steps++;
    settled = sameSupport(next, x) ? settled + 1 : 0;
    x = next;
    fx = f(x, g);
    if (settled < SETTLE) continue;
    const free = Uint8Array.from(x, (v, j) => (v !== 0 || !isPrunable(model, j) ? 1 : 0));
    const onSupport = eq ? supportLeastSquares(eq, free) : lbfgs(f, x, { maxIter, gradTol: 1e-7, free, deadline }).x;
    supports++;
    const fs = f(onSupport, g);
    const improved = bestF === Infinity || fs < bestF - 1e-12 * Math.abs(bestF);
    if (fs < bestF) [bestF, bestX] = [fs, onSupport];
    if (!improved) break;
    x = onSupport;
    fx = fs;
    settled = 0;
  }
  return fx < bestF ? { f: fx, x, steps, supports, cut } : { f: bestF, x: bestX, steps, supports, cut };
}

/**
 * Orthogonal matching pursuit: from 0, add the prunable coordinates of largest |∂f/∂xⱼ| (⌈K/20⌉ at a
 * time) and take the optimum on the support so far, until K are in. Non-prunable coordinates are
 * always free. Past the deadline the rest are added by gradient without solving again.
 */
function greedySupport(model: Model, f: Objective, k: number, eq: NormalEquations | null, maxIter: number, deadline: number): Float64Array {
  const d = model.layout.d;
  const free = Uint8Array.from({ length: d }, (_, j) => (isPrunable(model, j) ? 0 : 1));
  const g = new Float64Array(d);
  let x: Float64Array = new Float64Array(d);
  const batch = Math.max(1, Math.ceil(k / 20));
  for (let inSupport = 0; inSupport < k; ) {
    f(x, g);
    const candidates = [...free.keys()].filter((j) => !free[j]).sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!) || a - b);
    const late = performance.now() > deadline;
    for (const j of candidates.slice(0, late ? k - inSupport : Math.min(batch, k - inSupport))) {
      free[j] = 1;
      inSupport++;
    }
    if (late) break;
    x = eq ? supportLeastSquares(eq, free) : lbfgs(f, x, { maxIter: Math.min(maxIter, 100), gradTol: 1e-7, free, deadline }).x;
  }
  return x;
}

/**
 * Local search over supports of a linear model: replace one kept prunable coordinate by one outside
 * while that lowers f (first improvement, then start over), until no swap helps or `seconds` pass.
 * f on a support S is yy − b_Sᵀθ_S at its optimum θ_S (H_S θ_S = b_S).
 */
function swapSearch(eq: NormalEquations, model: Model, x0: Float64Array, seconds: number): { x: Float64Array; swaps: number; tried: number; complete: boolean } {
  const t0 = performance.now();
  const dense = [...x0.keys()].filter((j) => !isPrunable(model, j));
  const prunable = [...x0.keys()].filter((j) => isPrunable(model, j));
  const inS = new Set(prunable.filter((j) => x0[j] !== 0));
  const fOf = (support: number[]): number => {
    const idx = [...support, ...dense];
    const { theta } = solveOn(eq, idx);
    let bt = 0;
    idx.forEach((i, a) => (bt += eq.b[i]! * theta[a]!));
    return eq.yy - bt;
  };
  let current = fOf([...inS]);
  let swaps = 0;
  let tried = 0;
  let complete = false;
  search: for (;;) {
    for (const i of [...inS]) {
      for (const j of prunable) {
        if (inS.has(j)) continue;
        if ((performance.now() - t0) / 1000 > seconds) break search;
        const trial = [...inS].map((k) => (k === i ? j : k));
        tried++;
        const fj = fOf(trial);
        if (fj < current - 1e-12 * Math.abs(current)) {
          inS.delete(i);
          inS.add(j);
          current = fj;
          swaps++;
          continue search;
        }
      }
    }
    complete = true;
    break;
  }
  const free = new Uint8Array(eq.dim);
  for (const j of [...inS, ...dense]) free[j] = 1;
  return { x: supportLeastSquares(eq, free), swaps, tried, complete };
}

/** θ on the coordinates idx: Cholesky where H_idx is regular, else the minimum-norm solution. */
function solveOn(eq: NormalEquations, idx: number[]): { theta: Float64Array } {
  const m = idx.length;
  const H = new Float64Array(m * m);
  const b = new Float64Array(m);
  idx.forEach((i, a) => {
    b[a] = eq.b[i]!;
    for (let c = 0; c < m; c++) H[a * m + c] = eq.H[i * eq.dim + idx[c]!]!;
  });
  const L = cholesky(H, m);
  if (L === null) return minNormSolve(H, b, m);
  const theta = Float64Array.from(b);
  for (let i = 0; i < m; i++) {
    for (let k = 0; k < i; k++) theta[i]! -= L[i * m + k]! * theta[k]!;
    theta[i]! /= L[i * m + i]!;
  }
  for (let i = m - 1; i >= 0; i--) {
    for (let k = i + 1; k < m; k++) theta[i]! -= L[k * m + i]! * theta[k]!;
    theta[i]! /= L[i * m + i]!;
  }
  return { theta };
}

/** The lower Cholesky factor of H (m × m), or null when a pivot is at most 1e-12 of the largest diagonal entry. */
function cholesky(H: Float64Array, m: number): Float64Array | null {
  const L = new Float64Array(m * m);
  let maxDiag = 0;
  for (let j = 0; j < m; j++) maxDiag = Math.max(maxDiag, H[j * m + j]!);
  for (let j = 0; j < m; j++) {
    let pivot = H[j * m + j]!;
    for (let k = 0; k < j; k++) pivot -= L[j * m + k]! ** 2;
    if (!(pivot > 1e-12 * maxDiag)) return null;
    const ljj = Math.sqrt(pivot);
    L[j * m + j] = ljj;
    for (let i = j + 1; i < m; i++) {
      let v = H[i * m + j]!;
      for (let k = 0; k < j; k++) v -= L[i * m + k]! * L[j * m + k]!;
      L[i * m + j] = v / ljj;
    }
  }
  return L;
}

/** The minimum-norm least-squares optimum over the coordinates marked free (the others 0). */
function supportLeastSquares(eq: NormalEquations, free: Uint8Array): Float64Array {
  const idx = [...free.keys()].filter((j) => free[j]);
  const m = idx.length;
  const H = new Float64Array(m * m);
  const b = new Float64Array(m);
  idx.forEach((i, a) => {
    b[a] = eq.b[i]!;
    idx.forEach((j, c) => (H[a * m + c] = eq.H[i * eq.dim + j]!));
  });
  const { theta } = minNormSolve(H, b, m);
  const x = new Float64Array(eq.dim);
  idx.forEach((i, a) => (x[i] = theta[a]!));
  return x;
}

function isPrunable(model: Model, j: number): boolean {
  return model.layout.segments.some((s) => s.prunable && j >= s.offset && j < s.offset + s.size);
}

function sameSupport(a: Float64Array, b: Float64Array): boolean {
  for (let j = 0; j < a.length; j++) if ((a[j] === 0) !== (b[j] === 0)) return false;
  return true;
}

function infNorm(v: Float64Array): number {
  let m = 0;
  for (const x of v) m = Math.max(m, Math.abs(x));
  return m;
}
