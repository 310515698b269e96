/**
 * The sparse softmax-regression kernels of src/models/kernels/csr-simd.ts (AssemblyScript, compiled by
 * scripts/build-wasm.mjs; plain SIMD only, no fused multiply-adds, so every machine gives the same bits).
 * C, the class count, is an argument: a row's C classes are split into chunks of up to 8 vectors whose
 * accumulators (scores) or D values (gradient) stay in registers, one specialised loop per chunk width.
 * Every sum runs in the order csr-simd.ts describes. Pointers are byte offsets into the shared memory.
 */

/** Vectors per register-resident chunk of classes: x64 has 16 vector registers (measured 6, 8, 12). */
const CHUNK = 8;

/** Batch row i's sample row: rows[i] when useRows, else i. */
// @ts-ignore: decorator
@inline function sampleRow(rows: usize, useRows: i32, i: i32): i32 {
  return useRows ? load<i32>(rows + (<usize>i << 2)) : i;
}

/**
 * S[i, :] = Σ_p a_p · W[col_p, :] for batch rows i in [i0, i1) (sample row r = useRows ? rows[i] : i), in
 * float64: W rows of C values (8C bytes) at w, S rows of whole f64x2 vectors (16·⌈C/2⌉ bytes) at s.
 */
export function scores(indptr: usize, indices: usize, values: usize, rows: usize, useRows: i32, i0: i32, i1: i32, w: usize, s: usize, C: i32): void {
  const vectors = (C + 1) >> 1;
  const wStride = <usize>C << 3;
  const sStride = <usize>vectors << 4;
  for (let i = i0; i < i1; i++) {
    const own = indptr + (<usize>sampleRow(rows, useRows, i) << 2);
    const start = <usize>load<i32>(own) << 2;
    const end = indices + (<usize>load<i32>(own, 4) << 2);
    const out = s + <usize>i * sStride;
    for (let v0 = 0; v0 < vectors; v0 += CHUNK) {
      const base = <usize>v0 << 4;
      switch (min(CHUNK, vectors - v0)) {
        case 1: gatherChunk(1, indices + start, values + start, end, w, wStride, base, out); break;
        case 2: gatherChunk(2, indices + start, values + start, end, w, wStride, base, out); break;
        case 3: gatherChunk(3, indices + start, values + start, end, w, wStride, base, out); break;
        case 4: gatherChunk(4, indices + start, values + start, end, w, wStride, base, out); break;
        case 5: gatherChunk(5, indices + start, values + start, end, w, wStride, base, out); break;
        case 6: gatherChunk(6, indices + start, values + start, end, w, wStride, base, out); break;
        case 7: gatherChunk(7, indices + start, values + start, end, w, wStride, base, out); break;
        default: gatherChunk(8, indices + start, values + start, end, w, wStride, base, out);
      }
    }
  }
}

/** One chunk of `width` f64x2 vectors (a constant once inlined) of a scores row: sums in registers. */
// @ts-ignore: decorator
@inline function gatherChunk(width: i32, q: usize, qv: usize, end: usize, w: usize, wStride: usize, base: usize, out: usize): void {
  let r0 = f64x2.splat(0), r1 = r0, r2 = r0, r3 = r0, r4 = r0, r5 = r0, r6 = r0, r7 = r0;
  for (; q < end; q += 4, qv += 4) {
    const a = f64x2.splat(<f64>load<f32>(qv));
    const t = w + <usize>load<i32>(q) * wStride + base;
    r0 = f64x2.add(r0, f64x2.mul(a, v128.load(t)));
    if (width > 1) r1 = f64x2.add(r1, f64x2.mul(a, v128.load(t, 16)));
    if (width > 2) r2 = f64x2.add(r2, f64x2.mul(a, v128.load(t, 32)));
    if (width > 3) r3 = f64x2.add(r3, f64x2.mul(a, v128.load(t, 48)));
    if (width > 4) r4 = f64x2.add(r4, f64x2.mul(a, v128.load(t, 64)));
    if (width > 5) r5 = f64x2.add(r5, f64x2.mul(a, v128.load(t, 80)));
    if (width > 6) r6 = f64x2.add(r6, f64x2.mul(a, v128.load(t, 96)));
    if (width > 7) r7 = f64x2.add(r7, f64x2.mul(a, v128.load(t, 112)));
  }
  const o = out + base;
  v128.store(o, r0);
  if (width > 1) v128.store(o, r1, 16);
  if (width > 2) v128.store(o, r2, 32);
  if (width > 3) v128.store(o, r3, 48);
  if (width > 4) v128.store(o, r4, 64);
  if (width > 5) v128.store(o, r5, 80);
  if (width > 6) v128.store(o, r6, 96);
  if (width > 7) v128.store(o, r7, 112);
}

/**
 * G[col_p, :] += a_p · D[i, :] for batch rows i in [i0, i1), in float32: D rows of C values (4C bytes) at
 * d, G rows of whole f32x4 vectors (16·⌈C/4⌉ bytes) at g.
 */
export function grad(indptr: usize, indices: usize, values: usize, rows: usize, useRows: i32, i0: i32, i1: i32, d: usize, g: usize, C: i32): void {
  const vectors = (C + 3) >> 2;
  const dStride = <usize>C << 2;
  const gStride = <usize>vectors << 4;
  for (let i = i0; i < i1; i++) {
    const own = indptr + (<usize>sampleRow(rows, useRows, i) << 2);
    const start = <usize>load<i32>(own) << 2;
    const end = indices + (<usize>load<i32>(own, 4) << 2);
    const row = d + <usize>i * dStride;
    for (let v0 = 0; v0 < vectors; v0 += CHUNK) {
      const base = <usize>v0 << 4;
      switch (min(CHUNK, vectors - v0)) {
        case 1: scatterChunk(1, indices + start, values + start, end, g, gStride, base, row); break;
        case 2: scatterChunk(2, indices + start, values + start, end, g, gStride, base, row); break;
        case 3: scatterChunk(3, indices + start, values + start, end, g, gStride, base, row); break;
        case 4: scatterChunk(4, indices + start, values + start, end, g, gStride, base, row); break;
        case 5: scatterChunk(5, indices + start, values + start, end, g, gStride, base, row); break;
        case 6: scatterChunk(6, indices + start, values + start, end, g, gStride, base, row); break;
        case 7: scatterChunk(7, indices + start, values + start, end, g, gStride, base, row); break;
        default: scatterChunk(8, indices + start, values + start, end, g, gStride, base, row);
      }
    }
  }
}

/** One chunk of `width` f32x4 vectors of a gradient row: D's values in registers, G updated in memory. */
// @ts-ignore: decorator
@inline function scatterChunk(width: i32, q: usize, qv: usize, end: usize, g: usize, gStride: usize, base: usize, row: usize): void {
  const src = row + base;
  const r0 = v128.load(src);
  const r1 = width > 1 ? v128.load(src, 16) : r0;
  const r2 = width > 2 ? v128.load(src, 32) : r0;
  const r3 = width > 3 ? v128.load(src, 48) : r0;
  const r4 = width > 4 ? v128.load(src, 64) : r0;
  const r5 = width > 5 ? v128.load(src, 80) : r0;
  const r6 = width > 6 ? v128.load(src, 96) : r0;
  const r7 = width > 7 ? v128.load(src, 112) : r0;
  for (; q < end; q += 4, qv += 4) {
    const a = f32x4.splat(load<f32>(qv));
    const t = g + <usize>load<i32>(q) * gStride + base;
    v128.store(t, f32x4.add(v128.load(t), f32x4.mul(a, r0)));
    if (width > 1) v128.store(t, f32x4.add(v128.load(t, 16), f32x4.mul(a, r1)), 16);
    if (width > 2) v128.store(t, f32x4.add(v128.load(t, 32), f32x4.mul(a, r2)), 32);
    if (width > 3) v128.store(t, f32x4.add(v128.load(t, 48), f32x4.mul(a, r3)), 48);
    if (width > 4) v128.store(t, f32x4.add(v128.load(t, 64), f32x4.mul(a, r4)), 64);
    if (width > 5) v128.store(t, f32x4.add(v128.load(t, 80), f32x4.mul(a, r5)), 80);
    if (width > 6) v128.store(t, f32x4.add(v128.load(t, 96), f32x4.mul(a, r6)), 96);
    if (width > 7) v128.store(t, f32x4.add(v128.load(t, 112), f32x4.mul(a, r7)), 112);
  }
}

/** acc[k] += g[k] (float32 → float64) and g[k] = 0 for k < count. */
export function flush(g: usize, acc: usize, count: i32): void {
  const end = g + (<usize>count << 2);
  for (; g < end; g += 4, acc += 8) {
    store<f64>(acc, load<f64>(acc) + <f64>load<f32>(g));
    store<i32>(g, 0);
  }
}

/** For blocks of `block` rows from i0 to i1: grad into g (count floats, zero on entry), then flush into acc. */
export function gradRange(indptr: usize, indices: usize, values: usize, rows: usize, useRows: i32, i0: i32, i1: i32, d: usize, g: usize, acc: usize, count: i32, block: i32, C: i32): void {
  for (; i0 < i1; i0 += block) {
    grad(indptr, indices, values, rows, useRows, i0, min(i0 + block, i1), d, g, C);
    flush(g, acc, count);
  }
}

// exp for softmax (csr-simd.ts, softmax section): x = k·ln2 + r with k = nearest(x/ln2), |r| ≤ ln2/2 (ln2 split
// in two so k·ln2_hi is exact), e^r by its Taylor polynomial to degree 13, times 2^k built in the exponent bits.
// Inputs are s − max(s) ≤ 0, clamped at −700. Only IEEE arithmetic in a fixed order: the same bits everywhere.
const INV_LN2: f64 = 1.4426950408889634;
const LN2_HI: f64 = 6.93147180369123816490e-1;
const LN2_LO: f64 = 1.90821492927058770002e-10;
const FLOOR: f64 = -700;

/** e^x for both lanes of x (≤ 0). */
// @ts-ignore: decorator
@inline function exp2(x: v128): v128 {
  x = f64x2.max(x, f64x2.splat(FLOOR));
  const k = f64x2.nearest(f64x2.mul(x, f64x2.splat(INV_LN2)));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(k, f64x2.splat(LN2_HI))), f64x2.mul(k, f64x2.splat(LN2_LO)));
  // Horner: Σ_{i ≤ 13} r^i / i!
  let p = f64x2.splat(1.0 / 6227020800.0);
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 479001600.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 39916800.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 3628800.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 362880.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 40320.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 5040.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 720.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 120.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 24.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 6.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 2.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0));
  // × 2^k: (k + 1023) << 52 as the bits of a float64
  const bits = i64x2.shl(i64x2.add(i64x2.extend_low_i32x4_s(i32x4.trunc_sat_f64x2_s_zero(k)), i64x2.splat(1023)), 52);
  return f64x2.mul(p, bits);
}

/**
 * Over rows of C float64 scores at s (row stride 8C): for rows i in [i0, i1) with label y = labels[i] (i32),
 * out[2i] = max(s_i) − s_i[y] and out[2i+1] = Σ_c e^(s_ic − max). The row is overwritten with the
 * exponentials, then, when deriv ≠ 0, with ∂ℓ/∂s = softmax(s_i) − e_y.
 */
export function softmax(s: usize, labels: usize, i0: i32, i1: i32, deriv: i32, out: usize, C: i32): void {
  const pairsEnd = <usize>(C >> 1) << 4;
  const odd = C & 1;
  for (let i = i0; i < i1; i++) {
    const row = s + <usize>i * (<usize>C << 3);
    const end = row + pairsEnd;
    const label = row + (<usize>load<i32>(labels + (<usize>i << 2)) << 3);
    // max over the row: lane-wise over pairs of classes, then the two lanes and the odd class
    let max: f64;
    if (C >= 2) {
      let m = v128.load(row);
      for (let p = row + 16; p < end; p += 16) m = f64x2.max(m, v128.load(p));
      max = Math.max(f64x2.extract_lane(m, 0), f64x2.extract_lane(m, 1));
      if (odd) max = Math.max(max, load<f64>(end));
    } else {
      max = load<f64>(row);
    }
    const o = out + (<usize>i << 4);
    store<f64>(o, max - load<f64>(label));
    // e = exp(s − max) two classes at a time (lane sums, then lane 0 + lane 1), the odd class alone
    let sum = f64x2.splat(0);
    const mv = f64x2.splat(max);
    for (let p = row; p < end; p += 16) {
      const e = exp2(f64x2.sub(v128.load(p), mv));
      sum = f64x2.add(sum, e);
      v128.store(p, e);
    }
    let z = f64x2.extract_lane(sum, 0) + f64x2.extract_lane(sum, 1);
    if (odd) {
      const e = f64x2.extract_lane(exp2(f64x2.splat(load<f64>(end) - max)), 0);
      z = z + e;
      store<f64>(end, e);
    }
    store<f64>(o, z, 8);
    // ∂ℓ/∂s = e · (1/z) − e_y, over the exponentials written above
    if (deriv) {
      const inv = f64x2.splat(1 / z);
      for (let p = row; p < end; p += 16) v128.store(p, f64x2.mul(v128.load(p), inv));
      if (odd) store<f64>(end, load<f64>(end) * f64x2.extract_lane(inv, 0));
      store<f64>(label, load<f64>(label) - 1);
    }
  }
}

/** dst[k] = float32(src[k]) for k < count, float64 to float32. */
export function demote(src: usize, dst: usize, count: i32): void {
  const end = src + (<usize>count << 3);
  for (; src < end; src += 8, dst += 4) store<f32>(dst, <f32>load<f64>(src));
}

/** dst[k] = float64(src[k]) for k < count (exact): four at a time as two f64x2 promotions, then one at a time. */
export function promote(src: usize, dst: usize, count: i32): void {
  const end = src + (<usize>count << 2);
  const end4 = src + (<usize>(count & -4) << 2);
  for (; src < end4; src += 16, dst += 32) {
    v128.store(dst, f64x2.promote_low_f32x4(v128.load(src)));
    v128.store(dst, f64x2.promote_low_f32x4(v128.load(src, 8)), 16);
  }
  for (; src < end; src += 4, dst += 8) store<f64>(dst, <f64>load<f32>(src));
}

/**
 * x[k] = float32(x[k] − gamma · (g[k] − h[k])) for k < count (without `shifted`, x[k] − gamma · g[k]), in
 * float64 from the float32 inputs; with `shrink`, that value v then becomes v > tau ? v − tau : v < −tau ?
 * v + tau : +0 (rounded to float32 again), as comparison masks. Four entries at a time as two f64x2 halves
 * (each stored as its 8 bytes, so no store passes x[count − 1]), then one at a time.
 */
// @ts-ignore: decorator
@inline function descendT(x: usize, g: usize, h: usize, count: i32, gamma: f64, tau: f64, shifted: bool, shrink: bool): void {
  const gv = f64x2.splat(gamma);
  const tv = f64x2.splat(tau);
  const nv = f64x2.splat(-tau);
  const end = x + (<usize>count << 2);
  const end4 = x + (<usize>(count & -4) << 2);
  for (; x < end4; x += 16) {
    descendHalf(x, g, h, 0, gv, tv, nv, shifted, shrink);
    descendHalf(x, g, h, 8, gv, tv, nv, shifted, shrink);
    g += 16;
    if (shifted) h += 16;
  }
  for (; x < end; x += 4) {
    let gs = <f64>load<f32>(g);
    if (shifted) gs = gs - <f64>load<f32>(h);
    let v = <f32>(<f64>load<f32>(x) - gamma * gs);
    if (shrink) {
      const s = <f64>v;
      v = <f32>select<f64>(s - tau, select<f64>(s + tau, 0, s < -tau), s > tau);
    }
    store<f32>(x, v);
    g += 4;
    if (shifted) h += 4;
  }
}

// @ts-ignore: decorator
@inline function descendHalf(x: usize, g: usize, h: usize, offset: usize, gv: v128, tv: v128, nv: v128, shifted: bool, shrink: bool): void {
  let gs = f64x2.promote_low_f32x4(v128.load(g + offset));
  if (shifted) gs = f64x2.sub(gs, f64x2.promote_low_f32x4(v128.load(h + offset)));
  let v = f32x4.demote_f64x2_zero(f64x2.sub(f64x2.promote_low_f32x4(v128.load(x + offset)), f64x2.mul(gv, gs)));
  if (shrink) {
    const s = f64x2.promote_low_f32x4(v);
    // bitselect(v − tau, (v < −tau) & (v + tau), v > tau)
    v = f32x4.demote_f64x2_zero(v128.bitselect(f64x2.sub(s, tv), v128.and(f64x2.lt(s, nv), f64x2.add(s, tv)), f64x2.gt(s, tv)));
  }
  v128.store64_lane(x + offset, v, 0);
}

export function descend(x: usize, g: usize, h: usize, count: i32, gamma: f64, tau: f64): void {
  descendT(x, g, h, count, gamma, tau, false, false);
}
export function descendShifted(x: usize, g: usize, h: usize, count: i32, gamma: f64, tau: f64): void {
  descendT(x, g, h, count, gamma, tau, true, false);
}
export function descendShrink(x: usize, g: usize, h: usize, count: i32, gamma: f64, tau: f64): void {
  descendT(x, g, h, count, gamma, tau, false, true);
}
export function descendShiftedShrink(x: usize, g: usize, h: usize, count: i32, gamma: f64, tau: f64): void {
  descendT(x, g, h, count, gamma, tau, true, true);
}

/**
 * W (rows × C float64 at w) by rows in compressed form: row j's nonzeros are entries wptr[j] … wptr[j+1] − 1
 * (i32), each with its class as a byte offset 8c in wcls (i32) and its value in wval (f64); wptr[rows] is the
 * count. −0 counts as zero, NaN as nonzero.
 */
export function sparsify(w: usize, rows: i32, wptr: usize, wcls: usize, wval: usize, C: i32): void {
  const end = wptr + (<usize>rows << 2);
  const classesEnd = <usize>C << 3;
  let q: i32 = 0;
  for (; wptr < end; wptr += 4) {
    store<i32>(wptr, q);
    // two classes at a time, looked at lane by lane only when the pair is not all zeros (rare)
    for (let c: usize = 0; c < classesEnd; c += 16, w += 16) {
      if (v128.any_true(f64x2.ne(v128.load(w), f64x2.splat(0)))) {
        q = keep(w, 0, c, q, wcls, wval);
        if (!(C & 1) || c + 8 < classesEnd) q = keep(w, 8, c, q, wcls, wval);
      }
    }
    // an odd C's last pair read the next row's first value: step back to that row's start
    if (C & 1) w -= 8;
  }
  store<i32>(end, q);
}

/** Appends W's value at w + offset with class byte offset c + offset when it is nonzero; the new count. */
// @ts-ignore: decorator
@inline function keep(w: usize, offset: usize, c: usize, q: i32, wcls: usize, wval: usize): i32 {
  const x = load<f64>(w + offset);
  if (x != 0) {
    store<i32>(wcls + (<usize>q << 2), <i32>(c + offset));
    store<f64>(wval + (<usize>q << 3), x);
    q++;
  }
  return q;
}

/**
 * The scores of batch rows [i0, i1) as `scores` computes them, over W's nonzeros only (sparsify's form). Each
 * S[i, c] is summed over row r's nonzeros in the same order, leaving out the products with W's zeros: those
 * are ±0, and adding ±0 to a sum that starts at +0 never changes a bit, so the two give identical scores.
 */
export function sparseScores(indptr: usize, indices: usize, values: usize, rows: usize, useRows: i32, i0: i32, i1: i32, wptr: usize, wcls: usize, wval: usize, s: usize, C: i32): void {
  const stride = <usize>((C + 1) >> 1) << 4;
  for (let i = i0; i < i1; i++) {
    const own = indptr + (<usize>sampleRow(rows, useRows, i) << 2);
    const p0 = load<i32>(own);
    const end = load<i32>(own, 4);
    const row = s + <usize>i * stride;
    for (let v = row; v < row + stride; v += 16) v128.store(v, f64x2.splat(0));
    for (let p = p0; p < end; p++) {
      const a = <f64>load<f32>(values + (<usize>p << 2));
      const col = wptr + (<usize>load<i32>(indices + (<usize>p << 2)) << 2);
      const qEnd = load<i32>(col, 4);
      for (let q = load<i32>(col); q < qEnd; q++) {
        const t = row + <usize>load<i32>(wcls + (<usize>q << 2));
        store<f64>(t, load<f64>(t) + a * load<f64>(wval + (<usize>q << 3)));
      }
    }
  }
}

/**
 * out[j, c] += alpha · Σ_r sums_r[j, c] for the cols × C entries of out (row stride C), where sums_r is the
 * r-th of `ranges` regions rangeStride bytes apart (row stride ⌈C/4⌉·4), added in r order in float64. sums
 * are float32 block sums (one range) or float64 accumulators; out is float32 or float64, rounded once per entry.
 */
// @ts-ignore: decorator
@inline function finishT<S, O>(sums: usize, out: usize, cols: i32, alpha: f64, ranges: i32, rangeStride: usize, C: i32): void {
  const end = out + <usize>cols * <usize>C * sizeof<O>();
  const skip = <usize>(((C + 3) & -4) - C) * sizeof<S>();
  while (out < end) {
    const rowEnd = out + <usize>C * sizeof<O>();
    for (; out < rowEnd; out += sizeof<O>(), sums += sizeof<S>()) {
      let s = <f64>load<S>(sums);
      if (sizeof<S>() == 8) {
        let q = sums;
        for (let r = 1; r < ranges; r++) {
          q += rangeStride;
          s = s + <f64>load<S>(q);
        }
      }
      store<O>(out, <O>(<f64>load<O>(out) + alpha * s));
    }
    sums += skip;
  }
}

export function finish32to32(sums: usize, out: usize, cols: i32, alpha: f64, ranges: i32, rangeStride: usize, C: i32): void {
  finishT<f32, f32>(sums, out, cols, alpha, ranges, rangeStride, C);
}
export function finish32to64(sums: usize, out: usize, cols: i32, alpha: f64, ranges: i32, rangeStride: usize, C: i32): void {
  finishT<f32, f64>(sums, out, cols, alpha, ranges, rangeStride, C);
}
export function finish64to32(sums: usize, out: usize, cols: i32, alpha: f64, ranges: i32, rangeStride: usize, C: i32): void {
  finishT<f64, f32>(sums, out, cols, alpha, ranges, rangeStride, C);
}
export function finish64to64(sums: usize, out: usize, cols: i32, alpha: f64, ranges: i32, rangeStride: usize, C: i32): void {
  finishT<f64, f64>(sums, out, cols, alpha, ranges, rangeStride, C);
}
