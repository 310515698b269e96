/**
 * The two C-column products of a softmax gradient over a CSR matrix, as WebAssembly SIMD kernels:
 *
 *   scores:   S[i, :] = Σ_p a_p · W[col_p, :]     (S = A·W, float64)
 *   gradient: G[col_p, :] += a_p · D[i, :]        (G += AᵀD, float32 within blocks of rows)
 *
 * Both walk the stored nonzeros of each row in order and work on all C classes of a row at once:
 * the classes are contiguous, split into chunks of at most 8 vectors whose accumulators (scores)
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
 *
 * The kernels, the softmax cross-entropy's among them, are AssemblyScript (src/models/kernels/assembly/
 * csr.ts) compiled by `npm run build` into one module for every class count (C is an argument; one loop
 * per chunk width keeps a chunk's vectors in registers), plain SIMD only.
 */
import type { Vec } from '../matrix.js';
import type { CsrMatrix } from '../types.js';
import { simd } from './generated/csr.js';
import { moduleBytes, wasm, type WasmApi } from './wasm-api.js';
import { GRAD, type Job, runJob, SCORES, shareModule, SOFTMAX, type TaskKernels } from './threads.js';

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
/** (sums, out, cols, alpha, ranges, rangeStride, C): see finishT in assembly/csr.ts. */
type FinishKernel = (sums: number, out: number, cols: number, alpha: number, ranges: number, rangeStride: number, C: number) => void;
/** (x, g, h, count, gamma, tau): see descendT in assembly/csr.ts */
type DescendKernel = (x: number, g: number, h: number, count: number, gamma: number, tau: number) => void;
/** The task entry points plus the gradient kernel for one block, called directly. */
interface Kernels extends TaskKernels {
  demote(src: number, dst: number, count: number): void;
  promote(src: number, dst: number, count: number): void;
  descend: DescendKernel;
  descendShifted: DescendKernel;
  descendShrink: DescendKernel;
  descendShiftedShrink: DescendKernel;
  sparsify(w: number, rows: number, wptr: number, wcls: number, wval: number, C: number): void;
  sparseScores(
    indptr: number, indices: number, values: number, rows: number, useRows: number, i0: number, i1: number, wptr: number, wcls: number, wval: number, s: number, C: number,
  ): void;
  finish32to32: FinishKernel;
  finish32to64: FinishKernel;
  finish64to32: FinishKernel;
  finish64to64: FinishKernel;
  grad(indptr: number, indices: number, values: number, rows: number, useRows: number, i0: number, i1: number, d: number, g: number, C: number): void;
}
/** The kernels (src/models/kernels/assembly/csr.ts) on the one memory, instantiated on first use. */
let instance: Kernels | null = null;

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
  const k = kernels();
  if (W instanceof Float32Array) {
    // a plain copy, then float32 → float64 in WebAssembly: a converting set() takes several times as long
    mem.f32('w32', n).set(W);
    k.promote(mem.at('w32'), mem.at('w'), n);
  } else {
    mem.f64('w', n).set(W);
  }
  k.sparsify(mem.at('w'), A.cols, mem.at('wptr'), mem.at('wcls'), mem.at('wval'), C);
  const nnzW = new Uint32Array(kernelMemory().buffer, mem.at('wptr') + A.cols * 4, 1)[0]!;
  if (SPARSE_W * nnzW <= n) {
    // W mostly zeros (the sparse methods' iterates): a scalar pass over W's nonzeros on this thread
    k.sparseScores(mem.indptr, mem.indices, mem.values, mem.rows, mem.useRows, 0, m, mem.at('wptr'), mem.at('wcls'), mem.at('wval'), mem.at('s'), C);
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
    loadRows(mem, G, m * C);
    mem.f32('g', n).fill(0);
    const k = kernels();
    k.grad(mem.indptr, mem.indices, mem.values, mem.rows, mem.useRows, 0, m, mem.at('d'), mem.at('g'), C);
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
  loadRows(mem, G, m * C);
  mem.f32('g', ranges * n).fill(0);
  mem.f64('acc', ranges * n).fill(0);
  runJob(
    { ...mem.job(GRAD, C, ranges, m), block: GRAD_BLOCK, dense: mem.at('d'), out: mem.at('g'), acc: mem.at('acc'), gStride: n * 4, accStride: n * 8, count: n },
    kernelMemory(),
    kernels,
  );
  const k = kernels();
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
  f(mem.at(sums), mem.at('out'), cols, alpha, ranges, cols * padded(C) * 8, C);
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
  kernels()[name](mem.at('x'), mem.at('g'), mem.at('h'), d, gamma, tau ?? 0);
  x.set(mem.f32('x', d));
}

/** G (m × C) into the float32 region 'd' of mem, through the float64 region 'd64' when G is float64. */
function loadRows(mem: Layout, G: Vec, count: number): void {
  if (G instanceof Float32Array) {
    mem.f32('d', count).set(G);
  } else {
    mem.f64('d64', count).set(G);
    kernels().demote(mem.at('d64'), mem.at('d'), count);
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

function kernels(): Kernels {
  if (instance === null) {
    const module = new wasm.Module(moduleBytes(simd));
    instance = new wasm.Instance(module, { env: { memory: kernelMemory() } }).exports as unknown as Kernels;
    shareModule(module);
  }
  return instance;
}
