/**
 * Neural-network kernels (AssemblyScript, compiled by scripts/build-wasm.mjs): a forward convolution and
 * the filter gradient as register-tiled GEMMs in WebAssembly SIMD, and training-mode BatchNorm, working in
 * place on the TF.js wasm backend's heap (this module imports that memory and owns no data of its own).
 *
 * Layouts are TF.js's: images NHWC, filters [KH, KW, C_in, C_out]. Inputs are first copied into a
 * zero-padded copy (`pad`), so a window row of an output pixel is KW·C contiguous floats
 * (q = j·C + c) and no kernel loop tests borders. Every tile keeps 4 × 8 float32 sums in eight f32x4
 * registers: each step broadcasts 4 input values and loads 8 filter (or output-gradient) values.
 *
 * Built twice: with relaxed SIMD, multiply-adds are fused (f32x4.relaxed_madd: one FMA instruction where
 * the CPU has one); without, they are a multiply and an add. Sums run in the same order in both.
 */

// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/**
 * dst[b, top + y, left + z, :] = src[b, y, z, :] for the [n, h, w, c] src, zero elsewhere in the
 * [n, hp, wp, c] dst (hp ≥ top + h, wp ≥ left + w): zero padding, each byte of dst written once.
 */
export function pad(src: usize, dst: usize, n: i32, h: i32, w: i32, c: i32, hp: i32, wp: i32, top: i32, left: i32): void {
  const pix = <usize>c << 2;
  const row = <usize>wp * pix;
  const before = <usize>left * pix;
  const inner = <usize>w * pix;
  const after = row - before - inner;
  for (let b = 0; b < n; b++) {
    const image = dst + <usize>b * <usize>hp * row;
    memory.fill(image, 0, <usize>top * row);
    let s = src + <usize>b * <usize>h * inner;
    let d = image + <usize>top * row;
    for (let y = 0; y < h; y++, s += inner, d += row) {
      memory.fill(d, 0, before);
      memory.copy(d + before, s, inner);
      memory.fill(d + before + inner, 0, after);
    }
    memory.fill(d, 0, <usize>(hp - top - h) * row);
  }
}

/**
 * Taps of a filter as panels of 8 output channels, the layout convForward reads: dst[p][k][v] for panel p,
 * reduction index k = (a·nJ + b)·cin + ci and output channel co = 8p + v, over the taps (i0 + si·a, j0 + sj·b),
 * a < nI, b < nJ, of the [kh, kw, wc, wo] filter w. flip = 0: the filter as it is (cin = wc, cout = wo).
 * flip = 1: the filter of the input gradient, its taps in reverse order and its channel axes swapped
 * (cin = wo, cout = wc): value w[i0 + si·(nI−1−a), j0 + sj·(nJ−1−b), co, ci]. cout is a multiple of 8.
 */
export function packFilter(w: usize, dst: usize, kh: i32, kw: i32, wc: i32, wo: i32, flip: i32, i0: i32, j0: i32, si: i32, sj: i32, nI: i32, nJ: i32): void {
  const cin = flip ? wo : wc;
  const cout = flip ? wc : wo;
  // strides (floats) of w along the packed input and output channel
  const sci = flip ? 1 : wo;
  const sco = flip ? wo : 1;
  for (let p = 0; p < cout; p += 8) {
    for (let a = 0; a < nI; a++) {
      for (let b = 0; b < nJ; b++) {
        const ii = i0 + si * (flip ? nI - 1 - a : a);
        const jj = j0 + sj * (flip ? nJ - 1 - b : b);
        const tap = w + (<usize>(ii * kw + jj) * <usize>wc * <usize>wo << 2);
        for (let ci = 0; ci < cin; ci++) {
          const src = tap + (<usize>(ci * sci + p * sco) << 2);
          for (let v = 0; v < 8; v++) {
            store<f32>(dst, load<f32>(src + (<usize>(v * sco) << 2)));
            dst += 4;
          }
        }
      }
    }
  }
}

/** dst[p][m][v] = src[m, 8p + v] for the [m, cols] src (cols a multiple of 8): the output gradient as panels. */
export function packColumns(src: usize, dst: usize, m: i32, cols: i32): void {
  const row = <usize>cols << 2;
  for (let p = 0; p < cols; p += 8) {
    let s = src + (<usize>p << 2);
    for (let r = 0; r < m; r++, s += row, dst += 32) {
      v128.store(dst, v128.load(s));
      v128.store(dst, v128.load(s, 16), 16);
    }
  }
}

/**
 * y[b, oy, z, co] = act(bias[co] + Σ_{i < kh} Σ_{q < kw·cin} xp[b, oy·s + i, z·s, q] · w[i, q, co]) with xp
 * padded ([n, hp, wp, cin]), w packed by packFilter; bias 0 for none; relu ≠ 0 clamps at 0. Output pixel
 * (b, oy, z) starts at y + b·outImage + oy·outRow + z·outPix (bytes): a [n, oh, ow, cout] tensor, or one
 * stride phase of a larger one. Output pixels are taken 4 at a time along a row, channels 8 at a time.
 */
export function convForward(
  xp: usize, w: usize, bias: usize, y: usize, n: i32, hp: i32, wp: i32, cin: i32, kh: i32, kw: i32, oh: i32, ow: i32, cout: i32, s: i32, relu: i32,
  outImage: usize, outRow: usize, outPix: usize,
): void {
  const q = kw * cin;
  const rowStride = <usize>wp * <usize>cin << 2; // bytes between rows of xp
  const pixStride = <usize>s * <usize>cin << 2; // between the windows of neighbouring output pixels
  const panelBytes = <usize>kh * <usize>q << 5;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const win = xp + <usize>(b * hp + oy * s) * rowStride;
      const out = y + <usize>b * outImage + <usize>oy * outRow;
      for (let p = 0; p < cout; p += 8) {
        const panel = w + <usize>(p >> 3) * panelBytes;
        const b0 = bias ? v128.load(bias + (<usize>p << 2)) : f32x4.splat(0);
        const b1 = bias ? v128.load(bias + (<usize>p << 2), 16) : f32x4.splat(0);
        let z = 0;
        for (; z + 4 <= ow; z += 4) {
          let c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1, c30 = b0, c31 = b1;
          for (let i = 0; i < kh; i++) {
            let pa = win + <usize>z * pixStride + <usize>i * rowStride;
            let pb = panel + (<usize>(i * q) << 5);
            const end = pa + (<usize>q << 2);
            for (; pa < end; pa += 4, pb += 32) {
              const w0 = v128.load(pb);
              const w1 = v128.load(pb, 16);
              let x = v128.load32_splat(pa);
              c00 = madd(x, w0, c00);
              c01 = madd(x, w1, c01);
              x = v128.load32_splat(pa + pixStride);
              c10 = madd(x, w0, c10);
              c11 = madd(x, w1, c11);
              x = v128.load32_splat(pa + 2 * pixStride);
              c20 = madd(x, w0, c20);
              c21 = madd(x, w1, c21);
              x = v128.load32_splat(pa + 3 * pixStride);
              c30 = madd(x, w0, c30);
              c31 = madd(x, w1, c31);
            }
          }
          if (relu) {
            const zero = f32x4.splat(0);
            c00 = f32x4.max(c00, zero); c01 = f32x4.max(c01, zero);
            c10 = f32x4.max(c10, zero); c11 = f32x4.max(c11, zero);
            c20 = f32x4.max(c20, zero); c21 = f32x4.max(c21, zero);
            c30 = f32x4.max(c30, zero); c31 = f32x4.max(c31, zero);
          }
          const o = out + <usize>z * outPix + (<usize>p << 2);
          v128.store(o, c00); v128.store(o, c01, 16);
          v128.store(o + outPix, c10); v128.store(o + outPix, c11, 16);
          v128.store(o + 2 * outPix, c20); v128.store(o + 2 * outPix, c21, 16);
          v128.store(o + 3 * outPix, c30); v128.store(o + 3 * outPix, c31, 16);
        }
        for (; z < ow; z++) {
          let c00 = b0, c01 = b1;
          for (let i = 0; i < kh; i++) {
            let pa = win + <usize>z * pixStride + <usize>i * rowStride;
            let pb = panel + (<usize>(i * q) << 5);
            const end = pa + (<usize>q << 2);
            for (; pa < end; pa += 4, pb += 32) {
              const x = v128.load32_splat(pa);
              c00 = madd(x, v128.load(pb), c00);
              c01 = madd(x, v128.load(pb, 16), c01);
            }
          }
          if (relu) {
            c00 = f32x4.max(c00, f32x4.splat(0));
            c01 = f32x4.max(c01, f32x4.splat(0));
          }
          const o = out + <usize>z * outPix + (<usize>p << 2);
          v128.store(o, c00);
          v128.store(o, c01, 16);
        }
      }
    }
  }
}

/**
 * dw[i, q, co] = Σ_{b, oy, z} xp[b, oy·s + i, z·s, q] · dy[b, oy, z, co]: the filter gradient ([kh, kw, cin,
 * cout], q = j·cin + ci) from the padded input xp ([n, hp, wp, cin]) and dy packed by packColumns. Over
 * blocks of `blockRows` output rows (cache-sized): for each filter row i, the block's window rows are
 * gathered into `rows` (one run of kw·cin values per output pixel, 16 bytes of slack after the last), so
 * that a tile's sum over the block is one loop however narrow the image (rows = 0: read in place, for a
 * 1×1 filter at stride 1 on an unpadded input, 16 readable bytes after it); 4 q by 8 channels per tile in
 * registers, each block's sums added into dw.
 */
export function filterGrad(xp: usize, dy: usize, dw: usize, rows: usize, n: i32, hp: i32, wp: i32, cin: i32, kh: i32, kw: i32, oh: i32, ow: i32, cout: i32, s: i32, blockRows: i32): void {
  const q = kw * cin;
  const run = <usize>q << 2;
  const m = <usize>n * <usize>oh * <usize>ow;
  const rowStride = <usize>wp * <usize>cin << 2;
  const pixStride = <usize>s * <usize>cin << 2;
  const outStride = <usize>cout << 2;
  memory.fill(dw, 0, <usize>kh * <usize>q * outStride);
  const allRows = n * oh;
  for (let r0 = 0; r0 < allRows; r0 += blockRows) {
    const r1 = min(r0 + blockRows, allRows);
    const pixels = <usize>(r1 - r0) * <usize>ow;
    for (let i = 0; i < kh; i++) {
      // rows = 0: the block's runs are contiguous in xp already (a 1×1 filter, stride 1, no padding)
      let base = xp + <usize>r0 * <usize>ow * run;
      if (rows) {
        base = rows;
        let dst = rows;
        for (let r = r0; r < r1; r++) {
          const b = r / oh;
          let src = xp + <usize>(b * hp + (r - b * oh) * s + i) * rowStride;
          for (let z = 0; z < ow; z++, src += pixStride, dst += run) memory.copy(dst, src, run);
        }
      }
      for (let qt = 0; qt < q; qt += 4) {
        for (let p = 0; p < cout; p += 8) {
          let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
          let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
          let pb = dy + ((<usize>(p >> 3) * m + <usize>r0 * <usize>ow) << 5);
          let pa = base + (<usize>qt << 2);
          const end = pa + pixels * run;
          for (; pa < end; pa += run, pb += 32) {
            const d0 = v128.load(pb);
            const d1 = v128.load(pb, 16);
            let x = v128.load32_splat(pa);
            c00 = madd(x, d0, c00);
            c01 = madd(x, d1, c01);
            x = v128.load32_splat(pa, 4);
            c10 = madd(x, d0, c10);
            c11 = madd(x, d1, c11);
            x = v128.load32_splat(pa, 8);
            c20 = madd(x, d0, c20);
            c21 = madd(x, d1, c21);
            x = v128.load32_splat(pa, 12);
            c30 = madd(x, d0, c30);
            c31 = madd(x, d1, c31);
          }
          // lanes past q belong to the next pixel: computed, never stored
          const o = dw + (<usize>(i * q + qt) * <usize>cout + <usize>p << 2);
          const lanes = min(4, q - qt);
          addInto(o, c00, c01);
          if (lanes > 1) addInto(o + outStride, c10, c11);
          if (lanes > 2) addInto(o + 2 * outStride, c20, c21);
          if (lanes > 3) addInto(o + 3 * outStride, c30, c31);
        }
      }
    }
  }
}

// @ts-ignore: decorator
@inline function addInto(p: usize, a: v128, b: v128): void {
  v128.store(p, f32x4.add(v128.load(p), a));
  v128.store(p, f32x4.add(v128.load(p, 16), b), 16);
}

/**
 * Training-mode BatchNorm statistics over the m rows of the [m, c] x (c even): mean[ch] and
 * rstd[ch] = 1/√(var + eps) (float32 outputs), with the biased variance Σ(x − mean)²/m; both sums in
 * float64, two channels per f64x2, in `acc` (c float64 of scratch).
 */
export function bnStats(x: usize, m: i32, c: i32, acc: usize, mean: usize, rstd: usize, eps: f64): void {
  const row = <usize>c << 2;
  const end = x + <usize>m * row;
  memory.fill(acc, 0, <usize>c << 3);
  for (let p = x; p < end; p += row) {
    for (let ch: usize = 0; ch < <usize>c; ch += 2) {
      const a = acc + (ch << 3);
      v128.store(a, f64x2.add(v128.load(a), f64x2.promote_low_f32x4(v128.load64_zero(p + (ch << 2)))));
    }
  }
  for (let ch: usize = 0; ch < <usize>c; ch++) {
    const mu = load<f64>(acc + (ch << 3)) / <f64>m;
    store<f32>(mean + (ch << 2), <f32>mu);
    store<f64>(acc + (ch << 3), 0);
  }
  for (let p = x; p < end; p += row) {
    for (let ch: usize = 0; ch < <usize>c; ch += 2) {
      const a = acc + (ch << 3);
      const d = f64x2.sub(f64x2.promote_low_f32x4(v128.load64_zero(p + (ch << 2))), f64x2.promote_low_f32x4(v128.load64_zero(mean + (ch << 2))));
      v128.store(a, f64x2.add(v128.load(a), f64x2.mul(d, d)));
    }
  }
  for (let ch: usize = 0; ch < <usize>c; ch++) {
    store<f32>(rstd + (ch << 2), <f32>(1 / Math.sqrt(load<f64>(acc + (ch << 3)) / <f64>m + eps)));
  }
}

/**
 * xhat = (x − mean)·rstd and y = xhat·gamma + beta over the m rows of the [m, c] x (c a multiple of 4); relu ≠ 0:
 * y = max(0, xhat·gamma + beta).
 */
export function bnForward(x: usize, xhat: usize, y: usize, m: i32, c: i32, mean: usize, rstd: usize, gamma: usize, beta: usize, relu: i32): void {
  const row = <usize>c << 2;
  for (let r: usize = 0; r < <usize>m; r++) {
    const o = r * row;
    for (let ch: usize = 0; ch < row; ch += 16) {
      const h = f32x4.mul(f32x4.sub(v128.load(x + o + ch), v128.load(mean + ch)), v128.load(rstd + ch));
      v128.store(xhat + o + ch, h);
      const v = madd(h, v128.load(gamma + ch), v128.load(beta + ch));
      v128.store(y + o + ch, relu ? f32x4.max(v, f32x4.splat(0)) : v);
    }
  }
}

/** dy where the ReLU after BatchNorm passed its input (xhat·gamma + beta > 0, as bnForward computed it), else 0. */
// @ts-ignore: decorator
@inline function reluGate(dy: v128, xhat: v128, gamma: v128, beta: v128): v128 {
  return v128.and(dy, f32x4.gt(madd(xhat, gamma, beta), f32x4.splat(0)));
}

/**
 * The gradient of bnForward: dbeta = Σ dy and dgamma = Σ dy·xhat over the m rows (float64 sums in `acc`, 2c
 * float64 of scratch; float32 outputs), then dx = gamma·rstd·(dy − dbeta/m − xhat·dgamma/m). c is a
 * multiple of 4; `scale` is c float32 of scratch. relu ≠ 0: the gradient through max(0, ·) first, dy
 * taken as 0 where the ReLU's input was not positive.
 */
export function bnBackward(dy: usize, xhat: usize, dx: usize, m: i32, c: i32, gamma: usize, beta: usize, rstd: usize, dgamma: usize, dbeta: usize, acc: usize, scale: usize, relu: i32): void {
  const row = <usize>c << 2;
  const end = <usize>m * row;
  const accG = acc + (<usize>c << 3);
  memory.fill(acc, 0, <usize>c << 4);
  for (let o: usize = 0; o < end; o += row) {
    for (let ch: usize = 0; ch < row; ch += 8) {
      const h = v128.load64_zero(xhat + o + ch);
      let d = v128.load64_zero(dy + o + ch);
      if (relu) d = reluGate(d, h, v128.load64_zero(gamma + ch), v128.load64_zero(beta + ch));
      const a = acc + (ch << 1);
      const g = accG + (ch << 1);
      v128.store(a, f64x2.add(v128.load(a), f64x2.promote_low_f32x4(d)));
      v128.store(g, f64x2.add(v128.load(g), f64x2.promote_low_f32x4(f32x4.mul(d, h))));
    }
  }
  const inv = 1 / <f64>m;
  for (let ch: usize = 0; ch < <usize>c; ch++) {
    const db = load<f64>(acc + (ch << 3));
    const dg = load<f64>(accG + (ch << 3));
    store<f32>(dbeta + (ch << 2), <f32>db);
    store<f32>(dgamma + (ch << 2), <f32>dg);
    // reused as float32 per channel: the mean of dy, the mean of dy·xhat, and gamma·rstd
    store<f32>(acc + (ch << 2), <f32>(db * inv));
    store<f32>(accG + (ch << 2), <f32>(dg * inv));
    store<f32>(scale + (ch << 2), load<f32>(gamma + (ch << 2)) * load<f32>(rstd + (ch << 2)));
  }
  for (let o: usize = 0; o < end; o += row) {
    for (let ch: usize = 0; ch < row; ch += 16) {
      const h = v128.load(xhat + o + ch);
      let d = v128.load(dy + o + ch);
      if (relu) d = reluGate(d, h, v128.load(gamma + ch), v128.load(beta + ch));
      const inner = f32x4.sub(f32x4.sub(d, v128.load(acc + ch)), f32x4.mul(h, v128.load(accG + ch)));
      v128.store(dx + o + ch, f32x4.mul(inner, v128.load(scale + ch)));
    }
  }
}

/** y = max(0, a + b) over `count` float32 values (a multiple of 4). */
export function addRelu(a: usize, b: usize, y: usize, count: i32): void {
  const end = <usize>count << 2;
  for (let o: usize = 0; o < end; o += 16) v128.store(y + o, f32x4.max(f32x4.add(v128.load(a + o), v128.load(b + o)), f32x4.splat(0)));
}

/** g = dy where y > 0, else 0, over `count` float32 values (a multiple of 4): the gradient through a ReLU from its output. */
export function reluGrad(dy: usize, y: usize, g: usize, count: i32): void {
  const end = <usize>count << 2;
  for (let o: usize = 0; o < end; o += 16) v128.store(g + o, v128.and(v128.load(dy + o), f32x4.gt(v128.load(y + o), f32x4.splat(0))));
}

// Winograd F(2×2, 3×3): a 3×3 stride-1 convolution as 16 GEMMs of 4×4-transformed input tiles by the
// transformed filter, 16 multiplications per 2×2 outputs and channel pair where the direct form needs 36
// (Lavin and Gray, 2016). Transforms: V = Bᵀ d B per 4×4 input tile d, U = G g Gᵀ per 3×3 filter g, then
// M = V·U per transformed position ξ = 4r + s, and the 2×2 output Aᵀ M A.

/**
 * u[ξ][ci][co] = (G g Gᵀ)[ξ] for the 3×3 taps g of each channel pair of the [3, 3, wc, wo] filter w (wo a
 * multiple of 4), G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]; four output channels per vector.
 */
export function winogradFilter(w: usize, u: usize, wc: i32, wo: i32): void {
  const tap = <usize>wc * <usize>wo << 2; // bytes between taps
  const plane = tap; // bytes between ξ planes of u: [wc, wo] each
  const half = f32x4.splat(0.5);
  for (let o: usize = 0; o < tap; o += 16) {
    const g = w + o;
    // rows of G·g: columns j = 0..2 of the 3 taps of each row
    const g00 = v128.load(g), g01 = v128.load(g + tap), g02 = v128.load(g + 2 * tap);
    const g10 = v128.load(g + 3 * tap), g11 = v128.load(g + 4 * tap), g12 = v128.load(g + 5 * tap);
    const g20 = v128.load(g + 6 * tap), g21 = v128.load(g + 7 * tap), g22 = v128.load(g + 8 * tap);
    // t = G·g (4 rows × 3 columns)
    const t00 = g00, t01 = g01, t02 = g02;
    const t10 = f32x4.mul(half, f32x4.add(f32x4.add(g00, g10), g20));
    const t11 = f32x4.mul(half, f32x4.add(f32x4.add(g01, g11), g21));
    const t12 = f32x4.mul(half, f32x4.add(f32x4.add(g02, g12), g22));
    const t20 = f32x4.mul(half, f32x4.add(f32x4.sub(g00, g10), g20));
    const t21 = f32x4.mul(half, f32x4.add(f32x4.sub(g01, g11), g21));
    const t22 = f32x4.mul(half, f32x4.add(f32x4.sub(g02, g12), g22));
    const t30 = g20, t31 = g21, t32 = g22;
    const dst = u + o;
    filterRow(dst, plane, t00, t01, t02, half);
    filterRow(dst + 4 * plane, plane, t10, t11, t12, half);
    filterRow(dst + 8 * plane, plane, t20, t21, t22, half);
    filterRow(dst + 12 * plane, plane, t30, t31, t32, half);
  }
}

/** One row of (G·g)·Gᵀ: the four ξ = 4r + 0..3 of a row (a, b, c) of G·g, planes `plane` bytes apart. */
// @ts-ignore: decorator
@inline function filterRow(dst: usize, plane: usize, a: v128, b: v128, c: v128, half: v128): void {
  v128.store(dst, a);
  v128.store(dst + plane, f32x4.mul(half, f32x4.add(f32x4.add(a, b), c)));
  v128.store(dst + 2 * plane, f32x4.mul(half, f32x4.add(f32x4.sub(a, b), c)));
  v128.store(dst + 3 * plane, c);
}

/**
 * The transformed filter as panels of 8 output channels per ξ, the layout convForward reads for a 1×1
 * convolution: dst[ξ][p][ci][v]. flip = 0: from u[ξ][ci][8p + v] (cin = wc, cout = wo). flip = 1: the input
 * gradient's filter (rotated by 180°, channel axes swapped: cin = wo, cout = wc), from u[σ(ξ)][8p + v][ci],
 * σ exchanging rows 0 and 3 and columns 0 and 3 of ξ (G·J = P·G for the reversal J, P swapping rows 0 and 3).
 */
export function packWinograd(u: usize, dst: usize, wc: i32, wo: i32, flip: i32): void {
  const cin = flip ? wo : wc;
  const cout = flip ? wc : wo;
  const plane = <usize>wc * <usize>wo << 2;
  for (let xi = 0; xi < 16; xi++) {
    const r = xi >> 2;
    const c = xi & 3;
    const src = u + <usize>(flip ? 4 * (r == 0 ? 3 : r == 3 ? 0 : r) + (c == 0 ? 3 : c == 3 ? 0 : c) : xi) * plane;
    for (let p = 0; p < cout; p += 8) {
      for (let ci = 0; ci < cin; ci++) {
        if (flip) {
          for (let v = 0; v < 8; v++) {
            store<f32>(dst, load<f32>(src + (<usize>((p + v) * wo + ci) << 2)));
            dst += 4;
          }
        } else {
          const s = src + (<usize>(ci * wo + p) << 2);
          v128.store(dst, v128.load(s));
          v128.store(dst, v128.load(s, 16), 16);
          dst += 32;
        }
      }
    }
  }
}

/**
 * v[ξ][t][c] = (Bᵀ d B)[ξ] for the 4×4 input tile d of each tile t = (b, ty, tx) of the padded xp ([n, hp,
 * wp, c], c a multiple of 4; rows 2ty .. 2ty + 3, columns 2tx .. 2tx + 3), Bᵀ = [1 0 −1 0; 0 1 1 0;
 * 0 −1 1 0; 0 1 0 −1]; four channels per vector.
 */
export function winogradInput(xp: usize, v: usize, n: i32, hp: i32, wp: i32, c: i32, th: i32, tw: i32, plane: usize): void {
  const pix = <usize>c << 2;
  const row = <usize>wp * pix;
  let t: usize = 0; // byte offset of tile t in a plane
  for (let b = 0; b < n; b++) {
    for (let ty = 0; ty < th; ty++) {
      for (let tx = 0; tx < tw; tx++, t += pix) {
        const d = xp + (<usize>(b * hp + 2 * ty) * <usize>wp + <usize>(2 * tx)) * pix;
        for (let ch: usize = 0; ch < pix; ch += 16) {
          const p = d + ch;
          // Bᵀ·d, row by row (each row 4 columns)
          const d00 = v128.load(p), d01 = v128.load(p + pix), d02 = v128.load(p + 2 * pix), d03 = v128.load(p + 3 * pix);
          const d10 = v128.load(p + row), d11 = v128.load(p + row + pix), d12 = v128.load(p + row + 2 * pix), d13 = v128.load(p + row + 3 * pix);
          const q = p + 2 * row;
          const d20 = v128.load(q), d21 = v128.load(q + pix), d22 = v128.load(q + 2 * pix), d23 = v128.load(q + 3 * pix);
          const d30 = v128.load(q + row), d31 = v128.load(q + row + pix), d32 = v128.load(q + row + 2 * pix), d33 = v128.load(q + row + 3 * pix);
          const dst = v + t + ch;
          inputRow(dst, plane, f32x4.sub(d00, d20), f32x4.sub(d01, d21), f32x4.sub(d02, d22), f32x4.sub(d03, d23));
          inputRow(dst + 4 * plane, plane, f32x4.add(d10, d20), f32x4.add(d11, d21), f32x4.add(d12, d22), f32x4.add(d13, d23));
          inputRow(dst + 8 * plane, plane, f32x4.sub(d20, d10), f32x4.sub(d21, d11), f32x4.sub(d22, d12), f32x4.sub(d23, d13));
          inputRow(dst + 12 * plane, plane, f32x4.sub(d10, d30), f32x4.sub(d11, d31), f32x4.sub(d12, d32), f32x4.sub(d13, d33));
        }
      }
    }
  }
}

/** One row of (Bᵀ·d)·B: the four ξ = 4r + 0..3 from a row (a, b, c, e) of Bᵀ·d. */
// @ts-ignore: decorator
@inline function inputRow(dst: usize, plane: usize, a: v128, b: v128, c: v128, e: v128): void {
  v128.store(dst, f32x4.sub(a, c));
  v128.store(dst + plane, f32x4.add(b, c));
  v128.store(dst + 2 * plane, f32x4.sub(c, b));
  v128.store(dst + 3 * plane, f32x4.sub(b, e));
}

/**
 * The 2×2 outputs Aᵀ m A of each tile from m[ξ][t][co] (cout a multiple of 4), Aᵀ = [1 1 1 0; 0 1 −1 −1],
 * plus bias (0 for none), clamped at 0 when relu ≠ 0; output pixel (b, oy, ox) at y + b·outImage +
 * oy·outRow + ox·outPix (bytes); outputs past oh × ow (odd sizes) are not written.
 */
export function winogradOutput(m: usize, y: usize, bias: usize, relu: i32, n: i32, oh: i32, ow: i32, cout: i32, th: i32, tw: i32, outImage: usize, outRow: usize, outPix: usize, plane: usize): void {
  const pix = <usize>cout << 2;
  const zero = f32x4.splat(0);
  let t: usize = 0;
  for (let b = 0; b < n; b++) {
    for (let ty = 0; ty < th; ty++) {
      for (let tx = 0; tx < tw; tx++, t += pix) {
        const full = 2 * ty + 1 < oh && 2 * tx + 1 < ow;
        const o = y + <usize>b * outImage + <usize>(2 * ty) * outRow + <usize>(2 * tx) * outPix;
        for (let ch: usize = 0; ch < pix; ch += 16) {
          const p = m + t + ch;
          // Aᵀ·m: two rows of 4 columns
          const m0 = v128.load(p), m1 = v128.load(p + plane), m2 = v128.load(p + 2 * plane), m3 = v128.load(p + 3 * plane);
          const m4 = v128.load(p + 4 * plane), m5 = v128.load(p + 5 * plane), m6 = v128.load(p + 6 * plane), m7 = v128.load(p + 7 * plane);
          const m8 = v128.load(p + 8 * plane), m9 = v128.load(p + 9 * plane), m10 = v128.load(p + 10 * plane), m11 = v128.load(p + 11 * plane);
          const m12 = v128.load(p + 12 * plane), m13 = v128.load(p + 13 * plane), m14 = v128.load(p + 14 * plane), m15 = v128.load(p + 15 * plane);
          const a0 = f32x4.add(f32x4.add(m0, m4), m8), a1 = f32x4.add(f32x4.add(m1, m5), m9);
          const a2 = f32x4.add(f32x4.add(m2, m6), m10), a3 = f32x4.add(f32x4.add(m3, m7), m11);
          const b0 = f32x4.sub(f32x4.sub(m4, m8), m12), b1 = f32x4.sub(f32x4.sub(m5, m9), m13);
          const b2 = f32x4.sub(f32x4.sub(m6, m10), m14), b3 = f32x4.sub(f32x4.sub(m7, m11), m15);
          const bv = bias ? v128.load(bias + ch) : zero;
          let y00 = f32x4.add(f32x4.add(f32x4.add(a0, a1), a2), bv);
          let y01 = f32x4.add(f32x4.sub(f32x4.sub(a1, a2), a3), bv);
          let y10 = f32x4.add(f32x4.add(f32x4.add(b0, b1), b2), bv);
          let y11 = f32x4.add(f32x4.sub(f32x4.sub(b1, b2), b3), bv);
          if (relu) {
            y00 = f32x4.max(y00, zero);
            y01 = f32x4.max(y01, zero);
            y10 = f32x4.max(y10, zero);
            y11 = f32x4.max(y11, zero);
          }
          const q = o + ch;
          v128.store(q, y00);
          if (full) {
            v128.store(q + outPix, y01);
            v128.store(q + outRow, y10);
            v128.store(q + outRow + outPix, y11);
          } else {
            if (2 * tx + 1 < ow) v128.store(q + outPix, y01);
            if (2 * ty + 1 < oh) {
              v128.store(q + outRow, y10);
              if (2 * tx + 1 < ow) v128.store(q + outRow + outPix, y11);
            }
          }
        }
      }
    }
  }
}

/**
 * The filter gradient's transform of the output gradient: Ŷ = A dY Aᵀ per tile, A = [1 0; 1 1; 1 −1; 0 −1],
 * from the 2×2 block dY of the [n, oh, ow, cout] dy (entries past oh × ow count as zeros), written as the
 * panels packColumns makes, per ξ: dst[ξ][p][t][v] for channel 8p + v of tile t. cout is a multiple of 8.
 */
export function winogradOutputGrad(dy: usize, dst: usize, n: i32, oh: i32, ow: i32, cout: i32, th: i32, tw: i32, plane: usize): void {
  const pix = <usize>cout << 2;
  const row = <usize>ow * pix;
  const tiles = <usize>n * <usize>th * <usize>tw;
  const zero = f32x4.splat(0);
  // panel by panel (8 channels, two vectors), so that the stores go to 16 streams at a time, not 16 per panel
  for (let ch0: usize = 0; ch0 < pix; ch0 += 32) {
    let t: usize = 0; // tile index
    for (let b = 0; b < n; b++) {
      for (let ty = 0; ty < th; ty++) {
        for (let tx = 0; tx < tw; tx++, t++) {
          const p = dy + <usize>b * <usize>oh * row + <usize>(2 * ty) * row + <usize>(2 * tx) * pix;
          const right = 2 * tx + 1 < ow;
          const below = 2 * ty + 1 < oh;
          for (let ch = ch0; ch < ch0 + 32; ch += 16) {
            const y00 = v128.load(p + ch);
            const y01 = right ? v128.load(p + pix + ch) : zero;
            const y10 = below ? v128.load(p + row + ch) : zero;
            const y11 = right && below ? v128.load(p + row + pix + ch) : zero;
            // panel offset of (tile t, channel ch/4): panel ch/32, lane group (ch/16) % 2
            const dst0 = dst + (ch >> 5) * (tiles << 5) + (t << 5) + (ch & 16);
            outputGradRow(dst0, plane, y00, y01);
            outputGradRow(dst0 + 4 * plane, plane, f32x4.add(y00, y10), f32x4.add(y01, y11));
            outputGradRow(dst0 + 8 * plane, plane, f32x4.sub(y00, y10), f32x4.sub(y01, y11));
            outputGradRow(dst0 + 12 * plane, plane, f32x4.neg(y10), f32x4.neg(y11));
          }
        }
      }
    }
  }
}

/** One row of (A·dY)·Aᵀ: the four ξ = 4r + 0..3 from a row (a, b) of A·dY. */
// @ts-ignore: decorator
@inline function outputGradRow(dst: usize, plane: usize, a: v128, b: v128): void {
  v128.store(dst, a);
  v128.store(dst + plane, f32x4.add(a, b));
  v128.store(dst + 2 * plane, f32x4.sub(a, b));
  v128.store(dst + 3 * plane, f32x4.neg(b));
}

/**
 * dw = Gᵀ dU G for each channel pair, from du[ξ][ci][co] (Σ over tiles of V·Ŷ) into the [3, 3, cin, cout]
 * dw, Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1]; four output channels per vector (cout a multiple of 4).
 */
export function winogradFilterGrad(du: usize, dw: usize, cin: i32, cout: i32): void {
  const plane = <usize>cin * <usize>cout << 2;
  const half = f32x4.splat(0.5);
  for (let o: usize = 0; o < plane; o += 16) {
    const p = du + o;
    // Gᵀ·dU: three rows of 4 columns
    const u0 = v128.load(p), u1 = v128.load(p + plane), u2 = v128.load(p + 2 * plane), u3 = v128.load(p + 3 * plane);
    const u4 = v128.load(p + 4 * plane), u5 = v128.load(p + 5 * plane), u6 = v128.load(p + 6 * plane), u7 = v128.load(p + 7 * plane);
    const u8 = v128.load(p + 8 * plane), u9 = v128.load(p + 9 * plane), u10 = v128.load(p + 10 * plane), u11 = v128.load(p + 11 * plane);
    const u12 = v128.load(p + 12 * plane), u13 = v128.load(p + 13 * plane), u14 = v128.load(p + 14 * plane), u15 = v128.load(p + 15 * plane);
    const s0 = f32x4.add(u4, u8), s1 = f32x4.add(u5, u9), s2 = f32x4.add(u6, u10), s3 = f32x4.add(u7, u11);
    const d0 = f32x4.sub(u4, u8), d1 = f32x4.sub(u5, u9), d2 = f32x4.sub(u6, u10), d3 = f32x4.sub(u7, u11);
    const dst = dw + o;
    gradRow(dst, plane, f32x4.add(u0, f32x4.mul(half, s0)), f32x4.add(u1, f32x4.mul(half, s1)), f32x4.add(u2, f32x4.mul(half, s2)), f32x4.add(u3, f32x4.mul(half, s3)), half);
    gradRow(dst + 3 * plane, plane, f32x4.mul(half, d0), f32x4.mul(half, d1), f32x4.mul(half, d2), f32x4.mul(half, d3), half);
    gradRow(dst + 6 * plane, plane, f32x4.add(u12, f32x4.mul(half, s0)), f32x4.add(u13, f32x4.mul(half, s1)), f32x4.add(u14, f32x4.mul(half, s2)), f32x4.add(u15, f32x4.mul(half, s3)), half);
  }
}

/** One row of (Gᵀ·dU)·G: the taps j = 0..2 of a filter row from a row (a, b, c, e) of Gᵀ·dU. */
// @ts-ignore: decorator
@inline function gradRow(dst: usize, plane: usize, a: v128, b: v128, c: v128, e: v128, half: v128): void {
  v128.store(dst, f32x4.add(a, f32x4.mul(half, f32x4.add(b, c))));
  v128.store(dst + plane, f32x4.mul(half, f32x4.sub(b, c)));
  v128.store(dst + 2 * plane, f32x4.add(e, f32x4.mul(half, f32x4.add(b, c))));
}

/**
 * The gradient through relu(z + bias) from dy and the output y: g = dy where y > 0, else 0, into g (the
 * gradient of z), and dbias[ch] = Σ g over the m rows of c channels (float64 sums in `acc`, c float64 of
 * scratch; c a multiple of 4).
 */
export function reluBiasGrad(dy: usize, y: usize, g: usize, dbias: usize, acc: usize, m: i32, c: i32): void {
  const row = <usize>c << 2;
  const end = <usize>m * row;
  const zero = f32x4.splat(0);
  memory.fill(acc, 0, <usize>c << 3);
  for (let o: usize = 0; o < end; o += row) {
    for (let ch: usize = 0; ch < row; ch += 16) {
      const v = v128.and(v128.load(dy + o + ch), f32x4.gt(v128.load(y + o + ch), zero));
      v128.store(g + o + ch, v);
      const a = acc + (ch << 1);
      v128.store(a, f64x2.add(v128.load(a), f64x2.promote_low_f32x4(v)));
      v128.store(a, f64x2.add(v128.load(a, 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1))), 16);
    }
  }
  for (let ch: usize = 0; ch < <usize>c; ch++) store<f32>(dbias + (ch << 2), <f32>load<f64>(acc + (ch << 3)));
}
