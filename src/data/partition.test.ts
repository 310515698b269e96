import { describe, expect, it } from 'vitest';
import type { Dataset } from '../models/types.js';
import { DataError } from './errors.js';
import { parsePartition, partition, type PartitionScheme } from './partition.js';

/** n rows; column 0 holds the row number (to trace rows), y the given labels or the row number. */
function rowsDataset(n: number, label: (i: number) => number = (i) => i): Dataset {
  const data = new Float32Array(n * 2);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    data[i * 2] = i;
    data[i * 2 + 1] = 1;
    y[i] = label(i);
  }
  return { x: { kind: 'dense', rows: n, cols: 2, data }, y };
}

function rowIds(d: Dataset): number[] {
  if (d.x.kind !== 'dense') throw new Error('expected dense');
  return Array.from({ length: d.x.rows }, (_, r) => (d.x as { data: Float32Array }).data[r * 2]!);
}

function expectEveryRowOnce(clients: Dataset[], n: number): void {
  const all = clients.flatMap(rowIds).sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: n }, (_, i) => i));
}

describe('parsePartition', () => {
  it('parses the valid forms', () => {
    expect(parsePartition('contiguous')).toEqual({ kind: 'contiguous' });
    expect(parsePartition('iid')).toEqual({ kind: 'iid' });
    expect(parsePartition('dirichlet:0.5')).toEqual({ kind: 'dirichlet', alpha: 0.5 });
    expect(parsePartition('dirichlet:1e-2')).toEqual({ kind: 'dirichlet', alpha: 0.01 });
  });

  it('rejects anything else, listing the valid forms', () => {
    for (const bad of ['', 'IID', 'random', 'dirichlet', 'dirichlet:', 'dirichlet:0', 'dirichlet:-1', 'dirichlet:abc', 'dirichlet:inf']) {
      expect(() => parsePartition(bad)).toThrow(DataError);
      expect(() => parsePartition(bad)).toThrow(`unknown partition '${bad}' (valid: contiguous, iid, dirichlet:ALPHA`);
    }
  });
});

describe('contiguous and iid', () => {
  const data = rowsDataset(10);

  it('contiguous: consecutive blocks in row order, sizes differing by at most one', () => {
    const { clients, warnings } = partition(data, 3, { kind: 'contiguous' }, 1, 'regression');
    expect(clients.map(rowIds)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ]);
    expect(Array.from(clients[1]!.y)).toEqual([4, 5, 6]);
    expect(warnings).toEqual(['3 of 3 clients have fewer than 10 samples (smallest: 3)']);
  });

  it('iid: the same sizes over a seeded permutation', () => {
    const a = partition(data, 3, { kind: 'iid' }, 1, 'regression').clients;
    expect(a.map((c) => c.y.length)).toEqual([4, 3, 3]);
    expectEveryRowOnce(a, 10);
    expect(a.map(rowIds)).toEqual(partition(data, 3, { kind: 'iid' }, 1, 'regression').clients.map(rowIds));
    expect(a.map(rowIds)).not.toEqual(partition(data, 3, { kind: 'iid' }, 2, 'regression').clients.map(rowIds));
    expect(a.flatMap(rowIds)).not.toEqual(Array.from({ length: 10 }, (_, i) => i));
  });

  it('no warning when every client has at least 10 samples', () => {
    expect(partition(rowsDataset(100), 4, { kind: 'iid' }, 1, 'regression').warnings).toEqual([]);
  });

  it('rejects a bad client count, naming rows and clients', () => {
    for (const scheme of [{ kind: 'contiguous' }, { kind: 'iid' }, { kind: 'dirichlet', alpha: 1 }] as PartitionScheme[]) {
      expect(() => partition(data, 11, scheme, 1, 'binary')).toThrow('cannot split 10 samples over 11 clients');
    }
    expect(() => partition(data, 0, { kind: 'iid' }, 1, 'regression')).toThrow(/clients must be an integer >= 1, got 0/);
    expect(() => partition(data, 2.5, { kind: 'iid' }, 1, 'regression')).toThrow(DataError);
  });
});

describe('dirichlet', () => {
  // 10 classes of 100 rows each, classes interleaved in row order
  const data = rowsDataset(1000, (i) => i % 10);

  /** Mean over clients of the share of the client's most common label. */
  function majorityShare(clients: Dataset[]): number {
    const shares = clients.map((c) => {
      const counts = new Map<number, number>();
      for (const v of c.y) counts.set(v, (counts.get(v) ?? 0) + 1);
      return Math.max(...counts.values()) / c.y.length;
    });
    return shares.reduce((a, b) => a + b, 0) / shares.length;
  }

  it('uses every row exactly once, gives every client a sample, and is deterministic', () => {
    const { clients } = partition(data, 8, { kind: 'dirichlet', alpha: 0.5 }, 3, 'multiclass');
    expect(clients).toHaveLength(8);
    expectEveryRowOnce(clients, 1000);
    for (const c of clients) expect(c.y.length).toBeGreaterThan(0);
    const again = partition(data, 8, { kind: 'dirichlet', alpha: 0.5 }, 3, 'multiclass').clients;
    expect(again.map(rowIds)).toEqual(clients.map(rowIds));
    const other = partition(data, 8, { kind: 'dirichlet', alpha: 0.5 }, 4, 'multiclass').clients;
    expect(other.map(rowIds)).not.toEqual(clients.map(rowIds));
  });

  it("shuffles each client's rows, so a prefix has the client's label mix", () => {
    // iid-like shares: with rows collected class by class, the first 20 rows would hold 1-2 labels
    for (const c of partition(data, 4, { kind: 'dirichlet', alpha: 100 }, 1, 'multiclass').clients) {
      expect(new Set(c.y.subarray(0, 20)).size).toBeGreaterThanOrEqual(5);
    }
  });

  it('small alpha skews the label mix, large alpha is close to iid', () => {
    const skewed = majorityShare(partition(data, 10, { kind: 'dirichlet', alpha: 0.05 }, 1, 'multiclass').clients);
    const mixed = majorityShare(partition(data, 10, { kind: 'dirichlet', alpha: 100 }, 1, 'multiclass').clients);
    expect(skewed).toBeGreaterThan(0.6);
    expect(mixed).toBeLessThan(0.25); // iid would give about 0.1 plus sampling noise
  });

  it('splits binary data by its two labels', () => {
    const binary = rowsDataset(200, (i) => (i % 2 === 0 ? -1 : 1));
    const { clients } = partition(binary, 4, { kind: 'dirichlet', alpha: 0.1 }, 2, 'binary');
    expectEveryRowOnce(clients, 200);
    for (const c of clients) for (const v of c.y) expect(Math.abs(v)).toBe(1);
  });

  it('needs class labels', () => {
    expect(() => partition(data, 4, { kind: 'dirichlet', alpha: 1 }, 1, 'regression')).toThrow(/needs class labels/);
  });

  it('gives up after 10 draws when some client always ends up empty', () => {
    // one class, tiny alpha: nearly all the shares go to one client in every draw
    const oneClass = rowsDataset(5, () => 1);
    expect(() => partition(oneClass, 5, { kind: 'dirichlet', alpha: 0.001 }, 1, 'binary')).toThrow(
      /dirichlet:0.001: no split giving every one of 5 clients a sample found in 10 draws/,
    );
  });
});
