/** Seeded random feature matrices for the models' tests and benchmarks (not part of the public API). */
import { rngFor, type Rng } from '../core/rng.js';
import type { DenseMatrix } from './types.js';

/** A rows × cols dense matrix whose entries are exactly 0 with probability zeroFraction, else value(rng). */
export function randomDense(
  seed: number,
  rows: number,
  cols: number,
  zeroFraction: number,
  value: (rng: Rng) => number = (rng) => rng.normal(),
): DenseMatrix {
  const rng = rngFor(seed, 'models/randomDense', rows, cols);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = rng.float() < zeroFraction ? 0 : value(rng);
  return { kind: 'dense', rows, cols, data };
}
