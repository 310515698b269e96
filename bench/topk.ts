/**
 * TopK of 11,173,962 float32 values at 10% kept, against numpy's np.argpartition on the same data
 * in the same run. Standalone: npx tsx bench/topk.ts
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keepCount, topk, topkIndices } from '../src/core/topk.js';
import { rngFor } from '../src/core/rng.js';
import type { BenchResult } from './types.js';
import { isMain, medianMs, numpyEnv, printResults } from './util.js';

const D = 11_173_962;
const SPARSITY = 0.9;
const WARMUP = 3;
const RUNS = 7;
const SORT_RUNS = 3;

// Times the reference the same way: warm-up calls, then the median of RUNS timed calls.
const NUMPY_SCRIPT = `
import json, sys, time
import numpy as np
a = np.fromfile(sys.argv[1], dtype=np.float32)
k, warmup, runs = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def once():
    return np.argpartition(np.abs(a), -k)[-k:]
for _ in range(warmup):
    once()
times = []
for _ in range(runs):
    t = time.perf_counter()
    once()
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({"median_ms": times[len(times) // 2], "numpy": np.__version__}))
`;

export async function run(): Promise<BenchResult[]> {
  const v = normalData(D);
  const k = keepCount(D, SPARSITY);
  const ours = medianMs(() => topkIndices(v, k), WARMUP, RUNS);
  const out = new Float32Array(D);
  const dense = medianMs(() => topk(v, k, out), WARMUP, RUNS);
  const sort = medianMs(() => sortedMagnitudes(v), 0, SORT_RUNS);
  const numpy = numpyArgpartition(v, k);

  const name = `TopK indices, ${D.toLocaleString('en-US')} floats, 10% kept (k = ${k})`;
  const how = `median of ${RUNS} runs after ${WARMUP} warm-up`;
  const main: BenchResult =
    'ms' in numpy
      ? {
          name,
          value: ours,
          unit: 'ms',
          reference: { name: `numpy ${numpy.version} np.argpartition(np.abs(a), -k)[-k:]`, value: numpy.ms, unit: 'ms' },
          target: '<= numpy argpartition',
          pass: ours <= numpy.ms,
          note: `${how}; ours returns the indices sorted`,
        }
      : {
          name,
          value: ours,
          unit: 'ms',
          target: '<= numpy argpartition',
          note: `${how}; numpy reference absent: ${numpy.absent}`,
        };
  return [
    main,
    {
      name: 'full sort of |v| (Float32Array.sort), same data',
      value: sort,
      unit: 'ms',
      reference: { name: 'our TopK indices', value: ours, unit: 'ms' },
      note: `the naive way to TopK, for scale; median of ${SORT_RUNS} runs`,
    },
    { name: `TopK dense into an out buffer, same data`, value: dense, unit: 'ms', note: `median of ${RUNS} runs` },
  ];
}

function normalData(d: number): Float32Array {
  const rng = rngFor(0, 'bench');
  const v = new Float32Array(d);
  for (let i = 0; i < d; i++) v[i] = rng.normal();
  return v;
}

function sortedMagnitudes(v: Float32Array): Float32Array {
  const a = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) a[i] = Math.abs(v[i]!);
  return a.sort();
}

/** numpy's time on the same values, or why it could not be measured. */
function numpyArgpartition(v: Float32Array, k: number): { ms: number; version: string } | { absent: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bench-topk-'));
  try {
    const file = join(dir, 'v.f32');
    writeFileSync(file, new Uint8Array(v.buffer, v.byteOffset, v.byteLength)); // native order, as np.fromfile reads
    const res = spawnSync('python3', ['-c', NUMPY_SCRIPT, file, String(k), String(WARMUP), String(RUNS)], {
      encoding: 'utf8',
      env: numpyEnv(),
    });
    if (res.error) return { absent: `python3 could not run (${res.error.message})` };
    if (res.status !== 0) return { absent: `python3 failed: ${res.stderr.trim().split('\n').pop()}` };
    const parsed = JSON.parse(res.stdout) as { median_ms: number; numpy: string };
    return { ms: parsed.median_ms, version: parsed.numpy };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) printResults(await run());
