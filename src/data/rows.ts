/** Row selection and concatenation for feature matrices and datasets (kind-preserving). */
import type { CsrMatrix, Dataset, DenseMatrix, Matrix } from '../models/types.js';

export function numRows(x: Matrix): number {
  return x.rows;
}

/** The rows `rows` of x, in that order (repeats allowed), as a matrix of the same kind. */
export function selectRows(x: Matrix, rows: ArrayLike<number>): Matrix {
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (!(Number.isInteger(r) && r >= 0 && r < x.rows)) {
      throw new RangeError(`selectRows: row ${r} out of range [0, ${x.rows})`);
    }
  }
  return x.kind === 'dense' ? selectDense(x, rows) : selectCsr(x, rows);
}

function selectDense(x: DenseMatrix, rows: ArrayLike<number>): DenseMatrix {
  const { cols } = x;
  const data = new Float32Array(rows.length * cols);
  for (let i = 0; i < rows.length; i++) {
    const start = rows[i]! * cols;
    data.set(x.data.subarray(start, start + cols), i * cols);
  }
  return { kind: 'dense', rows: rows.length, cols, data };
}

function selectCsr(x: CsrMatrix, rows: ArrayLike<number>): CsrMatrix {
  const indptr = new Uint32Array(rows.length + 1);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    indptr[i + 1] = indptr[i]! + (x.indptr[r + 1]! - x.indptr[r]!);
  }
  const nnz = indptr[rows.length]!;
  const indices = new Uint32Array(nnz);
  const values = new Float32Array(nnz);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const lo = x.indptr[r]!;
    const hi = x.indptr[r + 1]!;
    indices.set(x.indices.subarray(lo, hi), indptr[i]!);
    values.set(x.values.subarray(lo, hi), indptr[i]!);
  }
  return { kind: 'csr', rows: rows.length, cols: x.cols, indptr, indices, values };
}

/** The samples `rows` of data, in that order. */
export function subset(data: Dataset, rows: ArrayLike<number>): Dataset {
  const x = selectRows(data.x, rows);
  const y = new Float32Array(rows.length);
  for (let i = 0; i < rows.length; i++) y[i] = data.y[rows[i]!]!;
  return { x, y };
}

/** min / median / max / total of the parts' sample counts, for meta. */
export function sizeSummary(parts: Dataset[]): { min: number; median: number; max: number; total: number } {
  const counts = parts.map((p) => p.y.length).sort((a, b) => a - b);
  const mid = counts.length >> 1;
  const median = counts.length % 2 === 1 ? counts[mid]! : (counts[mid - 1]! + counts[mid]!) / 2;
  return { min: counts[0]!, median, max: counts[counts.length - 1]!, total: counts.reduce((s, c) => s + c, 0) };
}

/** The parts stacked row-wise. All dense gives dense; any CSR part makes the result CSR. */
export function concatDatasets(parts: Dataset[]): Dataset {
  if (parts.length === 0) throw new RangeError('concatDatasets: no parts');
  const cols = parts[0]!.x.cols;
  for (const p of parts) {
    if (p.x.cols !== cols) throw new RangeError(`concatDatasets: column counts differ (${cols} vs ${p.x.cols})`);
    if (p.y.length !== p.x.rows) throw new RangeError(`concatDatasets: ${p.x.rows} rows but ${p.y.length} labels`);
  }
  const y = new Float32Array(parts.reduce((n, p) => n + p.y.length, 0));
  let offset = 0;
  for (const p of parts) {
    y.set(p.y, offset);
    offset += p.y.length;
  }
  const xs = parts.map((p) => p.x);
  const x = xs.every((m) => m.kind === 'dense') ? concatDense(xs as DenseMatrix[], cols) : concatCsr(xs.map(toCsr), cols);
  return { x, y };
}

function concatDense(xs: DenseMatrix[], cols: number): DenseMatrix {
  const rows = xs.reduce((n, m) => n + m.rows, 0);
  const data = new Float32Array(rows * cols);
  let offset = 0;
  for (const m of xs) {
    data.set(m.data, offset);
    offset += m.data.length;
  }
  return { kind: 'dense', rows, cols, data };
}

function concatCsr(xs: CsrMatrix[], cols: number): CsrMatrix {
  const rows = xs.reduce((n, m) => n + m.rows, 0);
  const nnz = xs.reduce((n, m) => n + m.indices.length, 0);
  const indptr = new Uint32Array(rows + 1);
  const indices = new Uint32Array(nnz);
  const values = new Float32Array(nnz);
  let row = 0;
  let base = 0;
  for (const m of xs) {
    for (let r = 1; r <= m.rows; r++) indptr[row + r] = base + m.indptr[r]!;
    indices.set(m.indices, base);
    values.set(m.values, base);
    row += m.rows;
    base += m.indices.length;
  }
  return { kind: 'csr', rows, cols, indptr, indices, values };
}

/** CSR copy of a matrix; zeros of a dense matrix are not stored. */
function toCsr(x: Matrix): CsrMatrix {
  if (x.kind === 'csr') return x;
  let nnz = 0;
  for (let i = 0; i < x.data.length; i++) if (x.data[i] !== 0) nnz++;
  const indptr = new Uint32Array(x.rows + 1);
  const indices = new Uint32Array(nnz);
  const values = new Float32Array(nnz);
  let k = 0;
  for (let r = 0; r < x.rows; r++) {
    for (let c = 0; c < x.cols; c++) {
      const v = x.data[r * x.cols + c]!;
      if (v !== 0) {
        indices[k] = c;
        values[k++] = v;
      }
    }
    indptr[r + 1] = k;
  }
  return { kind: 'csr', rows: x.rows, cols: x.cols, indptr, indices, values };
}
