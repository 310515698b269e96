/**
 * The softmax cross-entropy of a block of score rows as a WebAssembly SIMD function, so that it runs
 * on the kernel threads (threads.ts) instead of as a JavaScript loop on the calling thread.
 *
 * exp is computed here, not by Math.exp: x = k·ln2 + r with k = nearest(x/ln2) and |r| ≤ ln2/2 (ln2
 * split in two so k·ln2_hi is exact), e^r by its Taylor polynomial to degree 13 (truncation below
 * 5e-18 relative), times 2^k built in the exponent bits. Inputs are s − max(s) ≤ 0, clamped at −700
 * so 2^k stays a normal number (e^−700 ≈ 1e−304 next to the row's largest term, 1). Only IEEE
 * arithmetic in a fixed order: the same bits on every machine and thread.
 */
import { F64, FunctionBody, I32, Op, Simd, V128 } from './wasm.js';

const INV_LN2 = 1.4426950408889634;
const LN2_HI = 6.93147180369123816490e-1; // low 32 bits of the significand zero: k·LN2_HI is exact
const LN2_LO = 1.90821492927058770002e-10;
const DEGREE = 13;
const FLOOR = -700;

/** The constants exp uses, in v128 locals set once per call (V8 rebuilds a v128.const at every use). */
interface ExpConstants {
  floor: number;
  invLn2: number;
  ln2Hi: number;
  ln2Lo: number;
  /** 1/i! for i = 0 … DEGREE */
  taylor: number[];
  bias: number;
}

function expConstants(f: FunctionBody): ExpConstants {
  const local = (emit: () => void): number => {
    const index = f.local(V128);
    emit();
    f.set(index);
    return index;
  };
  const taylor: number[] = [];
  for (let i = 0, factorial = 1; i <= DEGREE; i++, factorial *= i) taylor.push(local(() => f.f64x2Const(1 / factorial)));
  return {
    floor: local(() => f.f64x2Const(FLOOR)),
    invLn2: local(() => f.f64x2Const(INV_LN2)),
    ln2Hi: local(() => f.f64x2Const(LN2_HI)),
    ln2Lo: local(() => f.f64x2Const(LN2_LO)),
    taylor,
    bias: local(() => f.i64x2Const(1023)),
  };
}

/** e^x for each lane of the f64x2 in local `x` (≤ 0), left on the stack; `k` and `r` are v128 scratch. */
function exp(f: FunctionBody, c: ExpConstants, x: number, k: number, r: number): void {
  f.get(x).get(c.floor).simd(Simd.f64x2Max).set(x);
  f.get(x).get(c.invLn2).simd(Simd.f64x2Mul).simd(Simd.f64x2Nearest).set(k);
  f.get(x).get(k).get(c.ln2Hi).simd(Simd.f64x2Mul).simd(Simd.f64x2Sub);
  f.get(k).get(c.ln2Lo).simd(Simd.f64x2Mul).simd(Simd.f64x2Sub).set(r);
  // Horner: Σ_{i ≤ DEGREE} r^i / i!
  f.get(c.taylor[DEGREE]!);
  for (let i = DEGREE - 1; i >= 0; i--) f.get(r).simd(Simd.f64x2Mul).get(c.taylor[i]!).simd(Simd.f64x2Add);
  // × 2^k: (k + 1023) << 52 as the bits of a float64
  f.get(k).simd(Simd.i32x4TruncSatF64x2SZero).simd(Simd.i64x2ExtendLowI32x4S).get(c.bias).simd(Simd.i64x2Add);
  f.i32(52).simd(Simd.i64x2Shl).simd(Simd.f64x2Mul);
}

/**
 * (s, labels, i0, i1, deriv, out) over rows of C float64 scores at s (row stride C): for rows i in
 * [i0, i1) with label y = labels[i] (i32), out[2i] = max(s_i) − s_i[y] and out[2i+1] =
 * Σ_c e^(s_ic − max) (so ℓ_i = out[2i] + log out[2i+1]). The row is overwritten with the
 * exponentials, then, when deriv ≠ 0, with ∂ℓ/∂s = softmax(s_i) − e_y.
 */
export function softmaxBody(C: number): FunctionBody {
  const f = new FunctionBody(6);
  const [s, labels, i, i1, deriv, out] = [0, 1, 2, 3, 4, 5];
  const [row, end, p, label] = [0, 0, 0, 0].map(() => f.local(I32)) as [number, number, number, number];
  const [max, z] = [f.local(F64), f.local(F64)];
  const [x, k, r, sum] = [0, 0, 0, 0].map(() => f.local(V128)) as [number, number, number, number];
  const pairsEnd = 16 * Math.floor(C / 2);
  const constants = expConstants(f);

  f.loop(i, i1, 1, () => {
    f.get(i).i32(8 * C).op(Op.i32Mul).get(s).op(Op.i32Add).set(row);
    f.get(row).i32(pairsEnd).op(Op.i32Add).set(end);
    f.get(i).i32(4).op(Op.i32Mul).get(labels).op(Op.i32Add).i32Load().i32(8).op(Op.i32Mul).get(row).op(Op.i32Add).set(label);
    // max over the row: lane-wise over pairs of classes, then the two lanes and the odd class
    if (C >= 2) {
      f.get(row).v128Load().set(sum);
      f.get(row).i32(16).op(Op.i32Add).set(p);
      f.loop(p, end, 16, () => f.get(sum).get(p).v128Load().simd(Simd.f64x2Max).set(sum));
      f.get(sum).f64x2Lane(0).get(sum).f64x2Lane(1).op(Op.f64Max);
      if (C % 2 === 1) f.get(end).f64Load().op(Op.f64Max);
    } else {
      f.get(row).f64Load();
    }
    f.set(max);
    // out[2i] = max − s[y], read before the row is overwritten
    f.get(i).i32(16).op(Op.i32Mul).get(out).op(Op.i32Add).get(max).get(label).f64Load().op(Op.f64Sub).f64Store();
    // e = exp(s − max) two classes at a time (lane sums, then lane 0 + lane 1), the odd class alone
    f.v128Zero().set(sum);
    f.get(row).set(p);
    f.loop(p, end, 16, () => {
      f.get(p).v128Load().get(max).simd(Simd.f64x2Splat).simd(Simd.f64x2Sub).set(x);
      exp(f, constants, x, k, r);
      f.set(x);
      f.get(sum).get(x).simd(Simd.f64x2Add).set(sum);
      f.get(p).get(x).v128Store();
    });
    f.get(sum).f64x2Lane(0).get(sum).f64x2Lane(1).op(Op.f64Add).set(z);
    if (C % 2 === 1) {
      f.get(end).f64Load().get(max).op(Op.f64Sub).simd(Simd.f64x2Splat).set(x);
      exp(f, constants, x, k, r);
      f.f64x2Lane(0);
      f.set(max); // max is no longer needed: reuse it for the odd class's e
      f.get(z).get(max).op(Op.f64Add).set(z);
      f.get(end).get(max).f64Store();
    }
    f.get(i).i32(16).op(Op.i32Mul).get(out).op(Op.i32Add).get(z).f64Store(8);
    // ∂ℓ/∂s = e · (1/z) − e_y, over the exponentials written above
    f.get(deriv).when(() => {
      f.f64Const(1).get(z).op(Op.f64Div).simd(Simd.f64x2Splat).set(sum);
      f.get(row).set(p);
      f.loop(p, end, 16, () => f.get(p).get(p).v128Load().get(sum).simd(Simd.f64x2Mul).v128Store());
      if (C % 2 === 1) f.get(end).get(end).f64Load().get(sum).f64x2Lane(0).op(Op.f64Mul).f64Store();
      f.get(label).get(label).f64Load().f64Const(1).op(Op.f64Sub).f64Store();
    });
  });
  return f;
}
