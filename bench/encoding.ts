/**
 * Encode + decode time and message size of every wire encoding for d = 1,000,000 at 1% density,
 * and the chosen encoding's size against the information bound log2 C(d, k) / 8 + 4k bytes.
 * Standalone: npx tsx bench/encoding.ts
 */

import { chooseEncoding, decode, encode, encodedSize, ENCODINGS, supportBoundBits } from '../src/core/encoding.js';
import { rngFor } from '../src/core/rng.js';
import type { SparseVector } from '../src/core/sparse.js';
import type { BenchResult } from './types.js';
import { isMain, medianMs, printResults } from './util.js';

const D = 1_000_000;
const DENSITY = 0.01;
const WARMUP = 3;
const RUNS = 9;

export async function run(): Promise<BenchResult[]> {
  const s = randomSparse(D, Math.round(D * DENSITY));
  const k = s.indices.length;
  const bound = supportBoundBits(D, k) / 8 + 4 * k;
  const results: BenchResult[] = ENCODINGS.map((kind) => {
    const bytes = encodedSize(kind, s);
    return {
      name: `encode+decode ${kind}, d = 1M, 1% dense`,
      value: medianMs(() => decode(encode(s, kind), D), WARMUP, RUNS),
      unit: 'ms',
      note: `${bytes} bytes, ${(bytes / bound).toFixed(3)}x the bound; median of ${RUNS} runs`,
    };
  });
  const chosen = chooseEncoding(s);
  results.push({
    name: `chosen encoding size, d = 1M, k = ${k}`,
    value: chosen.bytes,
    unit: 'bytes',
    reference: { name: 'log2 C(d, k) / 8 + 4k', value: bound, unit: 'bytes' },
    note: `${chosen.kind}; ${(chosen.bytes / bound).toFixed(4)}x the bound`,
  });
  return results;
}

/** k distinct indices uniformly at random (the head of a random permutation), normal values. */
function randomSparse(d: number, k: number): SparseVector {
  const rng = rngFor(0, 'bench-encoding');
  const indices = rng.permutation(d).slice(0, k).sort();
  const values = new Float32Array(k);
  for (let j = 0; j < k; j++) values[j] = rng.normal();
  return { d, indices, values };
}

if (isMain(import.meta.url)) printResults(await run());
