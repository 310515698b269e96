/**
 * Vector operations on Float32Array model parameters. Reductions accumulate in float64.
 */

export function zeros(d: number): Float32Array {
  return new Float32Array(d);
}

export function copy(v: Float32Array): Float32Array {
  return new Float32Array(v);
}

/** y += a * x */
export function axpy(y: Float32Array, a: number, x: Float32Array): Float32Array {
  checkSameLength(y, x, 'axpy');
  for (let i = 0; i < y.length; i++) y[i]! += a * x[i]!;
  return y;
}

/** v *= a */
export function scale(v: Float32Array, a: number): Float32Array {
  for (let i = 0; i < v.length; i++) v[i]! *= a;
  return v;
}

/** out = a - b */
export function sub(out: Float32Array, a: Float32Array, b: Float32Array): Float32Array {
  checkSameLength(a, b, 'sub');
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!;
  return out;
}

/** out = a + b */
export function add(out: Float32Array, a: Float32Array, b: Float32Array): Float32Array {
  checkSameLength(a, b, 'add');
  for (let i = 0; i < a.length; i++) out[i] = a[i]! + b[i]!;
  return out;
}

export function dot(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  checkSameLength(a, b, 'dot');
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function norm2(v: Float32Array | Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

export function nnz(v: Float32Array): number {
  let c = 0;
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) c++;
  return c;
}

/** Index of the first NaN or infinite entry, or -1. */
export function firstNonFinite(v: Float32Array | Float64Array): number {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return i;
  return -1;
}

/** Soft-thresholding, the prox of tau*||.||_1: out_j = sign(v_j) * max(|v_j| - tau, 0). */
export function softThreshold(v: Float32Array, tau: number, out: Float32Array = v): Float32Array {
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    out[i] = x > tau ? x - tau : x < -tau ? x + tau : 0;
  }
  return out;
}

function checkSameLength(a: { length: number }, b: { length: number }, op: string): void {
  if (a.length !== b.length) throw new RangeError(`${op}: length mismatch ${a.length} vs ${b.length}`);
}
