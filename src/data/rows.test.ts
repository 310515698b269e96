import { describe, expect, it } from 'vitest';
import type { CsrMatrix, Dataset, DenseMatrix } from '../models/types.js';
import { concatDatasets, numRows, selectRows, sizeSummary, subset } from './rows.js';

// 3 × 3: [[1, 0, 2], [0, 0, 0], [0, 3, 0]]
const dense: DenseMatrix = { kind: 'dense', rows: 3, cols: 3, data: Float32Array.of(1, 0, 2, 0, 0, 0, 0, 3, 0) };
const csr: CsrMatrix = {
  kind: 'csr',
  rows: 3,
  cols: 3,
  indptr: Uint32Array.of(0, 2, 2, 3),
  indices: Uint32Array.of(0, 2, 1),
  values: Float32Array.of(1, 2, 3),
};

function denseOf(x: DenseMatrix | CsrMatrix): number[][] {
  const out = Array.from({ length: x.rows }, () => new Array<number>(x.cols).fill(0));
  if (x.kind === 'dense') {
    for (let r = 0; r < x.rows; r++) for (let c = 0; c < x.cols; c++) out[r]![c] = x.data[r * x.cols + c]!;
  } else {
    for (let r = 0; r < x.rows; r++) for (let k = x.indptr[r]!; k < x.indptr[r + 1]!; k++) out[r]![x.indices[k]!] = x.values[k]!;
  }
  return out;
}

describe('selectRows', () => {
  it('keeps the kind and picks rows in the given order, repeats allowed', () => {
    for (const x of [dense, csr]) {
      const s = selectRows(x, [2, 0, 2]);
      expect(s.kind).toBe(x.kind);
      expect(numRows(s)).toBe(3);
      expect(denseOf(s)).toEqual([
        [0, 3, 0],
        [1, 0, 2],
        [0, 3, 0],
      ]);
    }
  });

  it('handles no rows and rejects rows out of range', () => {
    expect(numRows(selectRows(csr, []))).toBe(0);
    expect(() => selectRows(dense, [3])).toThrow(RangeError);
    expect(() => selectRows(csr, [-1])).toThrow(RangeError);
  });

  it('subset takes the labels along', () => {
    const s = subset({ x: csr, y: Float32Array.of(10, 11, 12) }, Uint32Array.of(1, 2));
    expect(Array.from(s.y)).toEqual([11, 12]);
    expect(denseOf(s.x)).toEqual([
      [0, 0, 0],
      [0, 3, 0],
    ]);
  });
});

describe('concatDatasets', () => {
  const a: Dataset = { x: dense, y: Float32Array.of(1, 2, 3) };
  const b: Dataset = { x: csr, y: Float32Array.of(4, 5, 6) };

  it('stacks dense parts into a dense matrix', () => {
    const c = concatDatasets([a, a]);
    expect(c.x.kind).toBe('dense');
    expect(denseOf(c.x)).toEqual([...denseOf(dense), ...denseOf(dense)]);
    expect(Array.from(c.y)).toEqual([1, 2, 3, 1, 2, 3]);
  });

  it('makes CSR when any part is CSR', () => {
    const c = concatDatasets([a, b, a]);
    expect(c.x.kind).toBe('csr');
    expect(denseOf(c.x)).toEqual([...denseOf(dense), ...denseOf(csr), ...denseOf(dense)]);
    expect(Array.from(c.y)).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3]);
  });

  it('rejects no parts and differing widths', () => {
    expect(() => concatDatasets([])).toThrow(RangeError);
    const narrow: Dataset = { x: { kind: 'dense', rows: 1, cols: 2, data: new Float32Array(2) }, y: new Float32Array(1) };
    expect(() => concatDatasets([a, narrow])).toThrow(/column counts differ/);
  });
});

describe('sizeSummary', () => {
  it('summarises the sample counts', () => {
    const part = (n: number): Dataset => ({ x: { kind: 'dense', rows: n, cols: 1, data: new Float32Array(n) }, y: new Float32Array(n) });
    expect(sizeSummary([part(5), part(1), part(3), part(7)])).toEqual({ min: 1, median: 4, max: 7, total: 16 });
  });
});
