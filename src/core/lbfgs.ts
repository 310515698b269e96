/**
 * L-BFGS (Nocedal & Wright, Algorithm 7.5: two-loop recursion, Armijo backtracking) in float64, for
 * reference optima. The objective may be evaluated in lower precision (our models run float32
 * kernels), so the method stops where the line search can no longer find a decrease: that is the
 * precision limit, and the gradient norm there is reported.
 */

export interface LbfgsOptions {
  maxIter: number;
  /** stop once ‖∇f‖∞ is at most this */
  gradTol: number;
  /** pairs kept (default 10) */
  memory?: number;
  /** 1 where a coordinate may move; the others keep their start value (a support constraint) */
  free?: Uint8Array;
  /** stop after this performance.now() time (a caller's time budget) */
  deadline?: number;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  gradInf: number;
  iterations: number;
  /** why it stopped */
  reason: 'gradient' | 'no decrease' | 'iterations' | 'time';
}

/** Minimises f from x0; fg(x, g) returns f(x) and writes ∇f(x) into g. */
export function lbfgs(fg: (x: Float64Array, g: Float64Array) => number, x0: Float64Array, opts: LbfgsOptions): LbfgsResult {
  const d = x0.length;
  const m = opts.memory ?? 10;
  const free = opts.free;
  const x = Float64Array.from(x0);
  const g = new Float64Array(d);
  const mask = (v: Float64Array): void => {
    if (free) for (let j = 0; j < d; j++) if (!free[j]) v[j] = 0;
  };
  let f = fg(x, g);
  mask(g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const dir = new Float64Array(d);
  const xNew = new Float64Array(d);
  const gNew = new Float64Array(d);
  const alpha = new Float64Array(m);
  let iterations = 0;
  let reason: LbfgsResult['reason'] = 'iterations';
  for (; iterations < opts.maxIter; iterations++) {
    if (infNorm(g) <= opts.gradTol) {
      reason = 'gradient';
      break;
    }
    if (opts.deadline !== undefined && performance.now() > opts.deadline) {
      reason = 'time';
      break;
    }
    // dir = −H g by the two-loop recursion; H₀ = (sᵀy / yᵀy) I from the newest pair
    for (let j = 0; j < d; j++) dir[j] = -g[j]!;
    for (let i = S.length - 1; i >= 0; i--) {
      alpha[i] = rho[i]! * dotOf(S[i]!, dir);
      axpy(-alpha[i]!, Y[i]!, dir);
    }
    const scale = S.length > 0 ? dotOf(S.at(-1)!, Y.at(-1)!) / dotOf(Y.at(-1)!, Y.at(-1)!) : 1 / Math.max(norm(g), 1e-300);
    for (let j = 0; j < d; j++) dir[j]! *= scale;
    for (let i = 0; i < S.length; i++) {
      const beta = rho[i]! * dotOf(Y[i]!, dir);
      axpy(alpha[i]! - beta, S[i]!, dir);
    }
    mask(dir);
    let slope = dotOf(g, dir);
    if (!(slope < 0)) {
      // not a descent direction (rounding in the pairs): restart from steepest descent
      S.length = Y.length = rho.length = 0;
      for (let j = 0; j < d; j++) dir[j] = -g[j]! / Math.max(norm(g), 1e-300);
      slope = dotOf(g, dir);
    }
    let t = 1;
    let fNew = NaN;
    for (let k = 0; k < 40; k++, t /= 2) {
      for (let j = 0; j < d; j++) xNew[j] = x[j]! + t * dir[j]!;
      fNew = fg(xNew, gNew);
      if (fNew <= f + 1e-4 * t * slope) break;
    }
    if (!(fNew < f)) {
      reason = 'no decrease';
      break;
    }
    mask(gNew);
    const s = new Float64Array(d);
    const y = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      s[j] = xNew[j]! - x[j]!;
      y[j] = gNew[j]! - g[j]!;
    }
    const sy = dotOf(s, y);
    if (sy > 1e-12 * norm(s) * norm(y)) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    x.set(xNew);
    g.set(gNew);
    f = fNew;
  }
  return { x, f, gradInf: infNorm(g), iterations, reason };
}

function dotOf(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j]! * b[j]!;
  return s;
}

function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let j = 0; j < x.length; j++) y[j]! += a * x[j]!;
}

function norm(v: Float64Array): number {
  return Math.sqrt(dotOf(v, v));
}

function infNorm(v: Float64Array): number {
  let m = 0;
  for (let j = 0; j < v.length; j++) m = Math.max(m, Math.abs(v[j]!));
  return m;
}
