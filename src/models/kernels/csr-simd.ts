/**
 * The two C-column products of a softmax gradient over a CSR matrix, as WebAssembly SIMD kernels:
 *
 *   scores:   S[i, :] = Σ_p a_p · W[col_p, :]     (S = A·W, float64)
 *   gradient: G[col_p, :] += a_p · D[i, :]        (G += AᵀD, float32 within blocks of rows)
 *
 * Both walk the stored nonzeros of each row in order and work on all C classes of a row at once:
 * the classes are contiguous, split into chunks of at most CHUNK vectors whose accumulators (scores)
 * or D values (gradient) stay in registers while the row's nonzeros stream past. Every sum runs in
 * a fixed order with separate multiply and add (WebAssembly SIMD has no fused multiply-add outside
 * relaxed-simd), so results are bit-identical on every run and in every worker.
 *
 * Precision: the scores are float64 sums of exact float32 × float32 products, so the loss is as
 * accurate as a float64 implementation's. The gradient, at half the cost per class, is summed in
 * float32 over blocks of GRAD_BLOCK rows (D = ∂ℓ/∂S rounded to float32), each block's partial then
 * added into a float64 accumulator: the float32 rounding only ever covers one block's sum.
 *
 * Row strides: W and D are unpadded (C values a row), so copying them in is one typed-array set();
 * a row's last vector may read up to 3 values past the row's end (SLACK zeroed bytes follow each
 * region), and those lanes only ever reach padding. S rows hold whole f64x2 vectors (C rounded up
 * to even) and G rows whole f32x4 vectors (C rounded up to a multiple of 4), so no store reaches
 * another row: tasks on different threads write disjoint bytes.
 *
 * The products run as tasks (threads.ts) over fixed blocks of rows; see RANGE_ROWS for the gradient.
 * A mostly-zero W takes a scalar scores kernel over W's nonzeros instead (SPARSE_W), with the same
 * bits; the gradient's sums are added into the caller's `out` by a `finish` kernel.
 */
import type { Vec } from '../matrix.js';
import type { CsrMatrix } from '../types.js';
import { softmaxBody } from './softmax.js';
import { GRAD, type Job, runJob, SCORES, shareModule, SOFTMAX, type TaskKernels } from './threads.js';
import { encodeModule, F64, FunctionBody, I32, Op, Simd, uleb, V128 } from './wasm.js';

/** Vectors per register-resident chunk of classes: x64 has 16 vector registers (measured 6, 8, 12). */
const CHUNK = 8;
/** Rows summed in float32 before the float64 accumulator takes the block's partial gradient. */
const GRAD_BLOCK = 512;
/**
 * The gradient's rows are cut into ranges of at least RANGE_ROWS rows, at most MAX_RANGES of them,
 * each with its own accumulator, and the ranges' sums are added in order at the end. The cut depends
 * on the number of rows only, so the result does not depend on how many threads share the ranges.
 */
const RANGE_ROWS = 4096;
const MAX_RANGES = 8;
/** Rows per scores call; several calls per gradient let V8 swap in its optimised kernel early. */
const SCORE_BLOCK = 512;
const SLACK = 16;
/**
 * The scores use W's nonzeros alone (sparseScores) when at most 1/SPARSE_W of W is nonzero: a scalar
 * float64 step per nonzero pair against two lanes per f64x2 step, on one thread against up to 8.
 */
const SPARSE_W = 16;

// The global WebAssembly object, typed locally: the project's TypeScript libs do not declare it.
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => {
    buffer: ArrayBuffer;
    grow(pages: number): number;
  };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const PAGE = 65536;
/** 4 GiB, all a 32-bit memory can address: the kernels' import allows up to this */
const MAX_PAGES = 65536;
type WasmMemory = InstanceType<WasmApi['Memory']>;
let memory: WasmMemory | null = null;
let maxPages = 0;

/**
 * The kernels' memory, created on first use: shared, so that helper threads (threads.ts) run the
 * same kernels on the same data. A shared memory reserves its maximum up front; where the system
 * refuses 4 GiB of address space, a smaller maximum is taken.
 */
function kernelMemory(): WasmMemory {
  for (let pages = MAX_PAGES; memory === null; pages /= 4) {
    try {
      memory = new wasm.Memory({ initial: 1, maximum: pages, shared: true });
      maxPages = pages;
    } catch (err) {
      if (pages <= MAX_PAGES / 16) throw err;
    }
  }
  return memory;
}
/** (sums, out, cols, alpha, ranges, rangeStride): see finishBody. */
type FinishKernel = (sums: number, out: number, cols: number, alpha: number, ranges: number, rangeStride: number) => void;
/** (x, g, h, count, gamma, tau): see descendBody */
type DescendKernel = (x: number, g: number, h: number, count: number, gamma: number, tau: number) => void;
/** The task entry points plus the gradient kernel for one block, called directly. */
interface Kernels extends TaskKernels {
  demote(src: number, dst: number, count: number): void;
  promote(src: number, dst: number, count: number): void;
  descend: DescendKernel;
  descendShifted: DescendKernel;
  descendShrink: DescendKernel;
  descendShiftedShrink: DescendKernel;
  sparsify(w: number, rows: number, wptr: number, wcls: number, wval: number): void;
  sparseScores(indptr: number, indices: number, values: number, rows: number, useRows: number, i0: number, i1: number, wptr: number, wcls: number, wval: number, s: number): void;
  finish32to32: FinishKernel;
  finish32to64: FinishKernel;
  finish64to32: FinishKernel;
  finish64to64: FinishKernel;
  grad(indptr: number, indices: number, values: number, rows: number, useRows: number, i0: number, i1: number, d: number, g: number): void;
}
/** Kernels by class count, all on the one memory. */
const kernelsByClasses = new Map<number, Kernels>();

/**
 * The matrix whose CSR arrays are at the start of memory now: consecutive calls on one client's
 * data (the usual pattern: many local steps) copy it in once. Matrices are not modified after
 * loading, so the object identifies its contents.
 */
let resident: CsrMatrix | null = null;
/** Where the resident matrix's arrays end: scratch for work without a matrix starts there. */
let residentEnd = 0;

/** out (m × C, row-major) = A·W, W (A.cols × C, row-major), summed in float64. */
export function csrMatMat(A: CsrMatrix, W: Vec, C: number, out: Vec, rows?: Uint32Array): void {
  const m = rows === undefined ? A.rows : rows.length;
  const stride = 2 * Math.ceil(C / 2); // whole f64x2 vectors, so no row's store reaches the next row
  const n = A.cols * C;
  const mem = new Layout(A, rows, [
    ['w', n * 8],
    ['s', m * stride * 8],
    ['wptr', (A.cols + 1) * 4],
    ['wcls', n * 4],
    ['wval', n * 8],
    ['w32', W instanceof Float32Array ? n * 4 : 0],
  ]);
  const k = kernels(C);
  if (W instanceof Float32Array) {
    // a plain copy, then float32 → float64 in WebAssembly: a converting set() takes several times as long
    mem.f32('w32', n).set(W);
    k.promote(mem.at('w32'), mem.at('w'), n);
  } else {
    mem.f64('w', n).set(W);
  }
  k.sparsify(mem.at('w'), A.cols, mem.at('wptr'), mem.at('wcls'), mem.at('wval'));
  const nnzW = new Uint32Array(kernelMemory().buffer, mem.at('wptr') + A.cols * 4, 1)[0]!;
  if (SPARSE_W * nnzW <= n) {
    // W mostly zeros (the sparse methods' iterates): a scalar pass over W's nonzeros on this thread
    k.sparseScores(mem.indptr, mem.indices, mem.values, mem.rows, mem.useRows, 0, m, mem.at('wptr'), mem.at('wcls'), mem.at('wval'), mem.at('s'));
  } else {
    const tasks = Math.ceil(m / SCORE_BLOCK);
    runJob({ ...mem.job(SCORES, C, tasks, m), block: SCORE_BLOCK, dense: mem.at('w'), out: mem.at('s') }, kernelMemory(), kernels);
  }
  const s = mem.f64('s', m * stride);
  if (stride === C) out.set(s);
  else for (let i = 0; i < m; i++) out.set(s.subarray(i * stride, i * stride + C), i * C);
}

/**
 * out (A.cols × C) += alpha · AᵀG, G (m × C) rounded to float32, summed as the file header says.
 * With `accumulate` false, out's contents are ignored: the result is that of a zero-filled out.
 */
export function csrMatTMatAdd(A: CsrMatrix, G: Vec, C: number, out: Vec, alpha: number, rows?: Uint32Array, accumulate = true): void {
  const Cp = padded(C);
  const n = A.cols * Cp;
  const m = rows === undefined ? A.rows : rows.length;
  const outWide = out instanceof Float64Array;
  if (m <= GRAD_BLOCK) {
    // One block (a small client or a minibatch): its float32 sum is the result, which the float64
    // accumulator would hold exactly, so this skips clearing and flushing the accumulator.
    const mem = new Layout(A, rows, [
      ['g', n * 4],
      ['out', A.cols * C * (outWide ? 8 : 4)],
      ['d', m * C * 4],
      ['d64', m * C * 8],
    ]);
    loadRows(mem, G, m * C, C);
    mem.f32('g', n).fill(0);
    const k = kernels(C);
    k.grad(mem.indptr, mem.indices, mem.values, mem.rows, mem.useRows, 0, m, mem.at('d'), mem.at('g'));
    finish(mem, outWide ? k.finish32to64 : k.finish32to32, 'g', out, alpha, A.cols, C, 1, accumulate);
    return;
  }
  const ranges = Math.min(MAX_RANGES, Math.ceil(m / RANGE_ROWS));
  // accumulators first: float64 needs 8-byte alignment (regions start at multiples of 16)
  const mem = new Layout(A, rows, [
    ['acc', ranges * n * 8],
    ['out', A.cols * C * (outWide ? 8 : 4)],
    ['d64', m * C * 8],
    ['g', ranges * n * 4],
    ['d', m * C * 4],
  ]);
  loadRows(mem, G, m * C, C);
  mem.f32('g', ranges * n).fill(0);
  mem.f64('acc', ranges * n).fill(0);
  runJob(
    { ...mem.job(GRAD, C, ranges, m), dense: mem.at('d'), out: mem.at('g'), acc: mem.at('acc'), gStride: n * 4, accStride: n * 8, count: n },
    kernelMemory(),
    kernels,
  );
  const k = kernels(C);
  finish(mem, outWide ? k.finish64to64 : k.finish64to32, 'acc', out, alpha, A.cols, C, ranges, accumulate);
}

/**
 * out += alpha · (the ranges' partial sums added in range order), through the region 'out' of mem:
 * one plain copy each way (a fill with +0 in, without `accumulate`), the arithmetic in WebAssembly
 * (a JavaScript loop over a Float32Array or Float64Array `out` took several times as long, most of
 * a small client's gradient).
 */
function finish(mem: Layout, f: FinishKernel, sums: 'g' | 'acc', out: Vec, alpha: number, cols: number, C: number, ranges: number, accumulate: boolean): void {
  const region = out instanceof Float64Array ? mem.f64('out', cols * C) : mem.f32('out', cols * C);
  if (accumulate) region.set(out);
  else region.fill(0);
  f(mem.at(sums), mem.at('out'), cols, alpha, ranges, cols * padded(C) * 8);
  out.set(region);
}

/**
 * Σ_i softmax cross-entropy of the rows of S (m × C) against labels (checked to be in [0, C)), on
 * the kernel threads (softmax.ts); when `deriv`, S is overwritten with ∂ℓ/∂S = softmax − e_y.
 */
export function softmaxLossSum(S: Float64Array, labels: Int32Array, C: number, deriv: boolean): number {
  const m = labels.length;
  const mem = new Layout(null, undefined, [
    ['s', m * C * 8],
    ['terms', m * 16],
    ['labels', m * 4],
  ]);
  mem.f64('s', m * C).set(S);
  new Int32Array(kernelMemory().buffer, mem.at('labels'), m).set(labels);
  const job = mem.job(SOFTMAX, C, Math.ceil(m / SCORE_BLOCK), m);
  runJob({ ...job, block: SCORE_BLOCK, dense: mem.at('s'), rows: mem.at('labels'), useRows: deriv ? 1 : 0, out: mem.at('terms') }, kernelMemory(), kernels);
  if (deriv) S.set(mem.f64('s', m * C));
  const terms = mem.f64('terms', 2 * m);
  let sum = 0;
  for (let i = 0; i < m; i++) sum += terms[2 * i]! + Math.log(terms[2 * i + 1]!);
  return sum;
}

/**
 * x ← x − γ(g − h) (h null: x − γg), each entry in float64 and rounded once to float32, the same
 * bits as the JavaScript loop x[j] -= γ * (g[j] - h[j]); with a `tau`, each new entry is then
 * soft-thresholded as core/vec.ts softThreshold does it. A local step's update, through kernel
 * memory (a plain copy each way) because the SIMD kernel takes a fraction of the loop's time.
 */
export function descendStep(x: Float32Array, g: Float32Array, h: Float32Array | null, gamma: number, tau: number | null = null): void {
  const d = x.length;
  const mem = new Layout(null, undefined, [
    ['x', d * 4],
    ['g', d * 4],
    ['h', h === null ? 0 : d * 4],
  ]);
  mem.f32('x', d).set(x);
  mem.f32('g', d).set(g);
  if (h !== null) mem.f32('h', d).set(h);
  const name = `descend${h === null ? '' : 'Shifted'}${tau === null ? '' : 'Shrink'}` as const;
  kernels(1)[name](mem.at('x'), mem.at('g'), mem.at('h'), d, gamma, tau ?? 0);
  x.set(mem.f32('x', d));
}

/** G (m × C) into the float32 region 'd' of mem, through the float64 region 'd64' when G is float64. */
function loadRows(mem: Layout, G: Vec, count: number, C: number): void {
  if (G instanceof Float32Array) {
    mem.f32('d', count).set(G);
  } else {
    mem.f64('d64', count).set(G);
    kernels(C).demote(mem.at('d64'), mem.at('d'), count);
  }
}

function padded(C: number): number {
  return Math.ceil(C / 4) * 4;
}

/**
 * Places A (unless resident) at the start of memory and named scratch regions after it, growing
 * memory as needed; byte offsets for the kernels, typed views for the copies in and out.
 */
class Layout {
  readonly indptr = 0;
  readonly indices: number;
  readonly values: number;
  readonly rows: number;
  readonly useRows: number;
  private readonly offsets = new Map<string, number>();

  /** A null: scratch only, after the resident matrix (which stays). */
  constructor(A: CsrMatrix | null, rows: Uint32Array | undefined, regions: [string, number][]) {
    const nnz = A === null ? 0 : A.indptr[A.rows]!;
    this.indices = A === null ? 0 : align((A.rows + 1) * 4);
    this.values = A === null ? 0 : align(this.indices + nnz * 4);
    let end = A === null ? residentEnd : align(this.values + nnz * 4);
    this.rows = end;
    end = align(end + (rows?.length ?? 0) * 4);
    for (const [name, bytes] of regions) {
      this.offsets.set(name, end);
      end = align(end + bytes + SLACK);
    }
    const memory = kernelMemory();
    if (end > maxPages * PAGE) {
      const [need, limit] = [end, maxPages * PAGE].map((bytes) => (bytes / 2 ** 30).toFixed(1));
      throw new RangeError(`csr-simd: this product needs ${need} GiB of kernel memory, over the ${limit} GiB available`);
    }
    const missing = end - memory.buffer.byteLength;
    if (missing > 0) memory.grow(Math.ceil(missing / PAGE));
    for (const [name, bytes] of regions) new Uint8Array(memory.buffer, this.at(name) + bytes, SLACK).fill(0);
    if (A !== null && resident !== A) {
      new Uint32Array(memory.buffer, this.indptr, A.rows + 1).set(A.indptr);
      new Uint32Array(memory.buffer, this.indices, nnz).set(A.indices.subarray(0, nnz));
      new Float32Array(memory.buffer, this.values, nnz).set(A.values.subarray(0, nnz));
      resident = A;
      residentEnd = this.rows;
    }
    if (rows !== undefined) new Uint32Array(memory.buffer, this.rows, rows.length).set(rows);
    this.useRows = rows === undefined ? 0 : 1;
  }

  at(name: string): number {
    return this.offsets.get(name)!;
  }

  /** A job's fields that come from this layout, the rest zero. */
  job(op: number, classes: number, tasks: number, m: number): Job {
    const { indptr, indices, values, rows, useRows } = this;
    return { op, classes, tasks, m, indptr, indices, values, rows, useRows, block: 0, dense: 0, out: 0, acc: 0, gStride: 0, accStride: 0, count: 0 };
  }

  f32(name: string, length: number): Float32Array {
    return new Float32Array(kernelMemory().buffer, this.at(name), length);
  }

  f64(name: string, length: number): Float64Array {
    return new Float64Array(kernelMemory().buffer, this.at(name), length);
  }
}

function align(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}

function kernels(C: number): Kernels {
  let k = kernelsByClasses.get(C);
  if (k === undefined) {
    const module = new wasm.Module(buildModule(C));
    k = new wasm.Instance(module, { env: { memory: kernelMemory() } }).exports as unknown as Kernels;
    kernelsByClasses.set(C, k);
    shareModule(C, module);
  }
  return k;
}

const KERNEL_PARAMS = [I32, I32, I32, I32, I32, I32, I32, I32, I32];

/** The kernels for C classes, every chunk unrolled. */
export function buildModule(C: number): Uint8Array {
  const scores = { gather: true, wide: true, denseStride: C * 8, outStride: 16 * Math.ceil(C / 2), vectors: Math.ceil(C / 2) };
  const grad = { gather: false, wide: false, denseStride: C * 4, outStride: padded(C) * 4, vectors: Math.ceil(C / 4) };
  return encodeModule([
    { name: 'scores', params: KERNEL_PARAMS, body: rowKernel(scores) },
    { name: 'grad', params: KERNEL_PARAMS, body: rowKernel(grad) },
    { name: 'flush', params: [I32, I32, I32], body: flushBody() },
    { name: 'gradRange', params: [...KERNEL_PARAMS, I32, I32], body: gradRangeBody() },
    { name: 'softmax', params: [I32, I32, I32, I32, I32, I32], body: softmaxBody(C) },
    { name: 'demote', params: [I32, I32, I32], body: demoteBody() },
    { name: 'promote', params: [I32, I32, I32], body: promoteBody() },
    ...[false, true].flatMap((shifted) =>
      [false, true].map((shrink) => ({
        name: `descend${shifted ? 'Shifted' : ''}${shrink ? 'Shrink' : ''}`,
        params: [I32, I32, I32, I32, F64, F64],
        body: descendBody(shifted, shrink),
      })),
    ),
    { name: 'sparsify', params: [I32, I32, I32, I32, I32], body: sparsifyBody(C) },
    { name: 'sparseScores', params: [...KERNEL_PARAMS, I32, I32], body: sparseScoresBody(C) },
    ...[false, true].flatMap((sumsWide) =>
      [false, true].map((outWide) => ({
        name: `finish${sumsWide ? 64 : 32}to${outWide ? 64 : 32}`,
        params: [I32, I32, I32, F64, I32, I32],
        body: finishBody(C, sumsWide, outWide),
      })),
    ),
  ], MAX_PAGES);
}

interface RowKernelShape {
  /** true: out row i = Σ_p a_p · dense row col_p; false: out row col_p += a_p · dense row i */
  gather: boolean;
  /** float64 (f64x2) rather than float32 (f32x4) dense and out */
  wide: boolean;
  denseStride: number;
  outStride: number;
  /** vectors in a row */
  vectors: number;
}

/**
 * (indptr, indices, values, rows, useRows, i0, i1, dense, out): for batch rows i in [i0, i1), whose
 * sample row is r = useRows ? rows[i] : i, the product the shape names over r's nonzeros.
 */
function rowKernel({ gather, wide, denseStride, outStride, vectors }: RowKernelShape): FunctionBody {
  const f = new FunctionBody(9);
  const [indptr, indices, values, rows, useRows, i, i1, dense, out] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [start, end, q, qv, own, target] = [0, 0, 0, 0, 0, 0].map(() => f.local(I32)) as [
    number, number, number, number, number, number,
  ];
  const a = f.local(V128);
  const regs = Array.from({ length: Math.min(CHUNK, vectors) }, () => f.local(V128));
  const [mul, add] = wide ? [Simd.f64x2Mul, Simd.f64x2Add] : [Simd.f32x4Mul, Simd.f32x4Add];

  f.loop(i, i1, 1, () => {
    // own = &indptr[r], then start/end = byte offsets of r's first and past-last nonzero
    f.get(useRows).select(
      I32,
      () => f.get(i).i32(4).op(Op.i32Mul).get(rows).op(Op.i32Add).i32Load(),
      () => f.get(i),
    );
    f.i32(4).op(Op.i32Mul).get(indptr).op(Op.i32Add).set(own);
    f.get(own).i32Load(0).i32(4).op(Op.i32Mul).set(start);
    f.get(own).i32Load(4).i32(4).op(Op.i32Mul).get(indices).op(Op.i32Add).set(end);
    // own = batch row i of S (gather) or of D (scatter)
    f.get(i).i32(gather ? outStride : denseStride).op(Op.i32Mul).get(gather ? out : dense).op(Op.i32Add).set(own);
    for (let v0 = 0; v0 < vectors; v0 += CHUNK) {
      const width = Math.min(CHUNK, vectors - v0);
      const offset = (t: number): number => 16 * (v0 + t);
      for (let t = 0; t < width; t++) {
        if (gather) f.v128Zero().set(regs[t]!);
        else f.get(own).v128Load(offset(t)).set(regs[t]!);
      }
      f.get(start).get(indices).op(Op.i32Add).set(q);
      f.get(start).get(values).op(Op.i32Add).set(qv);
      f.loop(q, end, 4, () => {
        f.get(qv).f32Load();
        if (wide) f.op(Op.f64PromoteF32).simd(Simd.f64x2Splat);
        else f.simd(Simd.f32x4Splat);
        f.set(a);
        // target = row col_p of W (gather) or of G (scatter)
        f.get(q).i32Load().i32(gather ? denseStride : outStride).op(Op.i32Mul).get(gather ? dense : out).op(Op.i32Add).set(target);
        for (let t = 0; t < width; t++) {
          if (gather) {
            f.get(regs[t]!).get(a).get(target).v128Load(offset(t)).simd(mul).simd(add).set(regs[t]!);
          } else {
            f.get(target).get(target).v128Load(offset(t)).get(a).get(regs[t]!).simd(mul);
            f.simd(add).v128Store(offset(t));
          }
        }
        f.increment(qv, 4);
      });
      if (gather) for (let t = 0; t < width; t++) f.get(own).get(regs[t]!).v128Store(offset(t));
    }
  });
  return f;
}

/**
 * (indptr, indices, values, rows, useRows, i0, i1, d, g, acc, count): for blocks of GRAD_BLOCK rows
 * from i0 to i1, grad into g (count floats, zero on entry), then flush into acc.
 */
function gradRangeBody(): FunctionBody {
  const f = new FunctionBody(11);
  const [i0, i1, g, acc, count] = [5, 6, 8, 9, 10];
  const blockEnd = f.local(I32);
  f.loop(i0, i1, GRAD_BLOCK, () => {
    f.get(i0).i32(GRAD_BLOCK).op(Op.i32Add).get(i1).get(i0).i32(GRAD_BLOCK).op(Op.i32Add).get(i1).op(Op.i32LtU, Op.select);
    f.set(blockEnd);
    for (const p of [0, 1, 2, 3, 4, i0, blockEnd, 7, g]) f.get(p);
    f.call(1); // grad
    f.get(g).get(acc).get(count).call(2); // flush
  });
  return f;
}

/**
 * (w, rows, wptr, wcls, wval): W (rows × C float64 at w) by rows in compressed form: row j's
 * nonzeros are entries wptr[j] … wptr[j+1] − 1 (i32), each with its class as a byte offset 8c in
 * wcls (i32) and its value in wval (f64); wptr[rows] is the count. −0 counts as zero, NaN as nonzero.
 */
function sparsifyBody(C: number): FunctionBody {
  const f = new FunctionBody(5);
  const [w, rows, wptr, wcls, wval] = [0, 1, 2, 3, 4];
  const [end, q, c] = [0, 0, 0].map(() => f.local(I32)) as [number, number, number];
  const x = f.local(F64);
  const classesEnd = f.local(I32);
  /** appends W's value at w + offset, class byte offset c + offset, when it is nonzero */
  const keep = (offset: number): void => {
    f.get(w).f64Load(offset).set(x);
    f.get(x).f64Const(0).op(Op.f64Ne).when(() => {
      f.get(q).i32(4).op(Op.i32Mul).get(wcls).op(Op.i32Add).get(c).i32(offset).op(Op.i32Add).i32Store();
      f.get(q).i32(8).op(Op.i32Mul).get(wval).op(Op.i32Add).get(x).f64Store();
      f.increment(q, 1);
    });
  };
  f.get(rows).i32(4).op(Op.i32Mul).get(wptr).op(Op.i32Add).set(end);
  f.i32(8 * C).set(classesEnd);
  f.loop(wptr, end, 4, () => {
    f.get(wptr).get(q).i32Store();
    f.i32(0).set(c);
    // two classes at a time, looked at lane by lane only when the pair is not all zeros (rare)
    f.loop(c, classesEnd, 16, () => {
      f.get(w).v128Load().v128Zero().simd(Simd.f64x2Ne).simd(Simd.v128AnyTrue).when(() => {
        keep(0);
        if (C % 2 === 1) f.get(c).i32(8).op(Op.i32Add).get(classesEnd).op(Op.i32LtU).when(() => keep(8));
        else keep(8);
      });
      f.increment(w, 16);
    });
    // an odd C's last pair read the next row's first value: step back to that row's start
    if (C % 2 === 1) f.get(w).i32(-8).op(Op.i32Add).set(w);
  });
  f.get(end).get(q).i32Store();
  return f;
}

/**
 * (indptr, indices, values, rows, useRows, i0, i1, wptr, wcls, wval, s): the scores of batch rows
 * [i0, i1) as the scores kernel computes them, over W's nonzeros only (sparsifyBody's form). Each
 * S[i, c] is summed over row r's nonzeros in the same order, leaving out the products with W's zeros:
 * those are ±0, and adding ±0 to a sum that starts at +0 never changes a bit, so the two kernels
 * give identical scores.
 */
function sparseScoresBody(C: number): FunctionBody {
  const f = new FunctionBody(11);
  const [indptr, indices, values, rows, useRows, i, i1, wptr, wcls, wval, s] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [own, p, end, q, qEnd, col, target, v] = [0, 0, 0, 0, 0, 0, 0, 0].map(() => f.local(I32)) as number[] as [
    number, number, number, number, number, number, number, number,
  ];
  const a = f.local(F64);
  const stride = 16 * Math.ceil(C / 2);
  f.loop(i, i1, 1, () => {
    f.get(useRows).select(
      I32,
      () => f.get(i).i32(4).op(Op.i32Mul).get(rows).op(Op.i32Add).i32Load(),
      () => f.get(i),
    );
    f.i32(4).op(Op.i32Mul).get(indptr).op(Op.i32Add).set(own);
    f.get(own).i32Load(0).set(p);
    f.get(own).i32Load(4).set(end);
    // S row i = 0
    f.get(i).i32(stride).op(Op.i32Mul).get(s).op(Op.i32Add).set(own);
    f.get(own).set(v);
    f.get(own).i32(stride).op(Op.i32Add).set(target);
    f.loop(v, target, 16, () => f.get(v).v128Zero().v128Store());
    f.loop(p, end, 1, () => {
      f.get(p).i32(4).op(Op.i32Mul).set(v);
      f.get(v).get(values).op(Op.i32Add).f32Load().op(Op.f64PromoteF32).set(a);
      f.get(v).get(indices).op(Op.i32Add).i32Load().i32(4).op(Op.i32Mul).get(wptr).op(Op.i32Add).set(col);
      f.get(col).i32Load(0).set(q);
      f.get(col).i32Load(4).set(qEnd);
      f.loop(q, qEnd, 1, () => {
        f.get(q).i32(4).op(Op.i32Mul).get(wcls).op(Op.i32Add).i32Load().get(own).op(Op.i32Add).set(target);
        f.get(target).get(target).f64Load().get(a);
        f.get(q).i32(8).op(Op.i32Mul).get(wval).op(Op.i32Add).f64Load();
        f.op(Op.f64Mul, Op.f64Add).f64Store();
      });
    });
  });
  return f;
}

/**
 * (src, dst, count): dst[k] = float32(src[k]) for k < count, float64 to float32; in JavaScript a
 * converting typed-array set() takes several times as long.
 */
function demoteBody(): FunctionBody {
  const f = new FunctionBody(3);
  const [src, dst, count] = [0, 1, 2];
  const end = f.local(I32);
  f.get(count).i32(8).op(Op.i32Mul).get(src).op(Op.i32Add).set(end);
  f.loop(src, end, 8, () => {
    f.get(dst).get(src).f64Load().op(Op.f32DemoteF64).f32Store();
    f.increment(dst, 4);
  });
  return f;
}

/** SIMD and scalar opcodes that wasm.ts's tables do not list */
const F64X2_PROMOTE_LOW_F32X4 = 0x5f;
const F32X4_DEMOTE_F64X2_ZERO = 0x5e;
const V128_STORE64_LANE = 0x5b;
const [F64X2_LT, F64X2_GT, V128_AND, V128_BITSELECT] = [0x49, 0x4a, 0x4e, 0x52];
const [F64_LT, F64_GT, F64_NEG] = [0x63, 0x64, 0x9a];
const I32_AND = 0x71;

/**
 * (x, g, h, count, gamma, tau): x[k] = float32(x[k] − gamma · (g[k] − h[k])) for k < count, or
 * without h (not shifted) x[k] − gamma · g[k], in float64 from the float32 inputs. With `shrink`,
 * that float32 value v then becomes v > tau ? v − tau : v < −tau ? v + tau : +0 (rounded to
 * float32 again): the soft-thresholding of core/vec.ts for any tau, NaN to +0 included, here as
 * comparison masks (a false comparison's all-zero lanes are +0). Four entries at a time as two f64x2 halves (each
 * stored as its 8 bytes, so no store passes x[count - 1]), then one at a time.
 */
function descendBody(shifted: boolean, shrink: boolean): FunctionBody {
  const f = new FunctionBody(6);
  const [x, g, h, count, gamma, tau] = [0, 1, 2, 3, 4, 5];
  const [end, end4] = [f.local(I32), f.local(I32)];
  const [gv, tv, nv, v] = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const s = f.local(F64);
  f.get(gamma).simd(Simd.f64x2Splat).set(gv);
  f.get(tau).simd(Simd.f64x2Splat).set(tv);
  f.get(tau).op(F64_NEG).simd(Simd.f64x2Splat).set(nv);
  f.get(count).i32(4).op(Op.i32Mul).get(x).op(Op.i32Add).set(end);
  f.get(count).i32(-4).op(I32_AND).i32(4).op(Op.i32Mul).get(x).op(Op.i32Add).set(end4);
  const half = (offset: number): void => {
    f.get(x);
    f.get(x).v128Load(offset).simd(F64X2_PROMOTE_LOW_F32X4);
    f.get(gv);
    f.get(g).v128Load(offset).simd(F64X2_PROMOTE_LOW_F32X4);
    if (shifted) f.get(h).v128Load(offset).simd(F64X2_PROMOTE_LOW_F32X4).simd(Simd.f64x2Sub);
    f.simd(Simd.f64x2Mul).simd(Simd.f64x2Sub).simd(F32X4_DEMOTE_F64X2_ZERO);
    if (shrink) {
      f.simd(F64X2_PROMOTE_LOW_F32X4).set(v);
      // bitselect(v − tau, (v < −tau) & (v + tau), v > tau)
      f.get(v).get(tv).simd(Simd.f64x2Sub);
      f.get(v).get(nv).simd(F64X2_LT).get(v).get(tv).simd(Simd.f64x2Add).simd(V128_AND);
      f.get(v).get(tv).simd(F64X2_GT).simd(V128_BITSELECT).simd(F32X4_DEMOTE_F64X2_ZERO);
    }
    f.simd(V128_STORE64_LANE).op(3, ...uleb(offset), 0); // align 8, offset, lane 0
  };
  f.loop(x, end4, 16, () => {
    half(0);
    half(8);
    f.increment(g, 16);
    if (shifted) f.increment(h, 16);
  });
  f.loop(x, end, 4, () => {
    f.get(x);
    f.get(x).f32Load().op(Op.f64PromoteF32);
    f.get(gamma);
    f.get(g).f32Load().op(Op.f64PromoteF32);
    if (shifted) f.get(h).f32Load().op(Op.f64PromoteF32, Op.f64Sub);
    f.op(Op.f64Mul, Op.f64Sub, Op.f32DemoteF64);
    if (shrink) {
      // select(v − tau, select(v + tau, +0, v < −tau), v > tau)
      f.op(Op.f64PromoteF32).set(s);
      f.get(s).get(tau).op(Op.f64Sub);
      f.get(s).get(tau).op(Op.f64Add).f64Const(0).get(s).get(tau).op(F64_NEG, F64_LT, Op.select);
      f.get(s).get(tau).op(F64_GT, Op.select, Op.f32DemoteF64);
    }
    f.f32Store();
    f.increment(g, 4);
    if (shifted) f.increment(h, 4);
  });
  return f;
}

/**
 * (src, dst, count): dst[k] = float64(src[k]) for k < count, float32 to float64 (exact); four at a
 * time as two f64x2 promotions, then one at a time, so no store passes dst[count - 1].
 */
function promoteBody(): FunctionBody {
  const f = new FunctionBody(3);
  const [src, dst, count] = [0, 1, 2];
  const [end, end4] = [f.local(I32), f.local(I32)];
  f.get(count).i32(4).op(Op.i32Mul).get(src).op(Op.i32Add).set(end);
  f.get(count).i32(-4).op(I32_AND).i32(4).op(Op.i32Mul).get(src).op(Op.i32Add).set(end4);
  f.loop(src, end4, 16, () => {
    f.get(dst).get(src).v128Load().simd(F64X2_PROMOTE_LOW_F32X4).v128Store();
    f.get(dst).get(src).v128Load(8).simd(F64X2_PROMOTE_LOW_F32X4).v128Store(16);
    f.increment(dst, 32);
  });
  f.loop(src, end, 4, () => {
    f.get(dst).get(src).f32Load().op(Op.f64PromoteF32).f64Store();
    f.increment(dst, 8);
  });
  return f;
}

/**
 * (sums, out, cols, alpha, ranges, rangeStride): out[j, c] += alpha · Σ_r sums_r[j, c] for the
 * cols × C entries of out (row stride C), where sums_r is the r-th of `ranges` regions rangeStride
 * bytes apart (row stride padded(C)), added in r order in float64. sums are float32 block sums
 * (one range) or float64 accumulators; out is float32 or float64, rounded once per entry.
 */
function finishBody(C: number, sumsWide: boolean, outWide: boolean): FunctionBody {
  const f = new FunctionBody(6);
  const [sums, out, cols, alpha, ranges, rangeStride] = [0, 1, 2, 3, 4, 5];
  const [end, rowEnd, q, r] = [0, 0, 0, 0].map(() => f.local(I32)) as [number, number, number, number];
  const s = f.local(F64);
  const [sumSize, outSize] = [sumsWide ? 8 : 4, outWide ? 8 : 4];
  const loadSum = (): void => {
    if (sumsWide) f.f64Load();
    else f.f32Load().op(Op.f64PromoteF32);
  };
  f.get(cols).i32(C * outSize).op(Op.i32Mul).get(out).op(Op.i32Add).set(end);
  f.loop(out, end, 0, () => {
    f.get(out).i32(C * outSize).op(Op.i32Add).set(rowEnd);
    f.loop(out, rowEnd, outSize, () => {
      f.get(sums);
      loadSum();
      f.set(s);
      if (sumsWide) {
        f.get(sums).set(q);
        f.i32(1).set(r);
        f.loop(r, ranges, 1, () => {
          f.get(q).get(rangeStride).op(Op.i32Add).set(q);
          f.get(s).get(q);
          loadSum();
          f.op(Op.f64Add).set(s);
        });
      }
      f.get(out).get(out);
      if (outWide) f.f64Load();
      else f.f32Load().op(Op.f64PromoteF32);
      f.get(alpha).get(s).op(Op.f64Mul, Op.f64Add);
      if (outWide) f.f64Store();
      else f.op(Op.f32DemoteF64).f32Store();
      f.increment(sums, sumSize);
    });
    f.increment(sums, (padded(C) - C) * sumSize);
  });
  return f;
}

/** (g, acc, count): acc[k] += g[k] (float32 → float64) and g[k] = 0 for k < count. */
function flushBody(): FunctionBody {
  const f = new FunctionBody(3);
  const [g, acc, count] = [0, 1, 2];
  const end = f.local(I32);
  f.get(count).i32(4).op(Op.i32Mul).get(g).op(Op.i32Add).set(end);
  f.loop(g, end, 4, () => {
    f.get(acc).get(acc).f64Load().get(g).f32Load().op(Op.f64PromoteF32, Op.f64Add).f64Store();
    f.get(g).i32(0).i32Store();
    f.increment(acc, 8);
  });
  return f;
}
