/** A sparse vector: strictly increasing indices below d, with one value per index. */
export interface SparseVector {
  d: number;
  indices: Uint32Array;
  values: Float32Array;
}

/** The nonzero entries of `v` (exact zeros dropped). */
export function toSparse(v: Float32Array): SparseVector {
  let count = 0;
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) count++;
  const indices = new Uint32Array(count);
  const values = new Float32Array(count);
  let j = 0;
  for (let i = 0; i < v.length; i++) {
    if (v[i] !== 0) {
      indices[j] = i;
      values[j++] = v[i]!;
    }
  }
  return { d: v.length, indices, values };
}

export function toDense(s: SparseVector, out: Float32Array = new Float32Array(s.d)): Float32Array {
  out.fill(0);
  for (let j = 0; j < s.indices.length; j++) out[s.indices[j]!] = s.values[j]!;
  return out;
}
