/**
 * Full-batch multinomial loss and gradient at FEMNIST's size (41,629 × 784 dense, ~80% exact zeros,
 * C = 62), next to numpy (float32, OpenBLAS) doing softmax + Aᵀ(P − Y) on the same data in the same
 * run: once with OpenBLAS's default thread count (the target: ours, with our default kernel threads,
 * ≤ 2× that) and once with both on 1 thread.
 * The numpy subprocess runs without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (bench/util.ts numpyEnv) and
 * reports the OpenBLAS kernel and thread count it ran with (threadpoolctl, else OpenBLAS's own API).
 *
 * Standalone: npx tsx bench/gradient.ts
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { rngFor } from '../src/core/rng.js';
import { createModel } from '../src/models/index.js';
import { kernelThreads, setKernelThreads } from '../src/models/kernels/threads.js';
import { randomDense } from '../src/models/testing.js';
import type { BenchResult } from './types.js';
import { isMain, median, numpyEnv, printResults } from './util.js';

const ROWS = 41_629;
const FEATURES = 784;
const CLASSES = 62;
const REPEATS = 5;
/** The target: our gradient at most this many times numpy's (default threads). */
const TARGET_RATIO = 2;

// Loads the files run() writes, times REPEATS gradients after one warm-up, prints
// {"ms": [...], "numpy": version, "threads": n, "kernel": name, ...} and writes its gradient.
const NUMPY_SCRIPT = `
import glob, json, os, sys, time, ctypes
import numpy as np
d, m, n, C, repeats = sys.argv[1], *map(int, sys.argv[2:6])
A = np.fromfile(os.path.join(d, 'A.f32'), dtype=np.float32).reshape(m, n)
y = np.fromfile(os.path.join(d, 'y.f32'), dtype=np.float32).astype(np.intp)
W = np.fromfile(os.path.join(d, 'W.f32'), dtype=np.float32).reshape(n, C)
rows = np.arange(m)
def loss_grad():
    S = A @ W
    S -= S.max(axis=1, keepdims=True)
    P = np.exp(S)
    Z = P.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(Z[:, 0]) - S[rows, y]))
    P /= Z
    P[rows, y] -= 1
    return loss, (A.T @ P) / m
def blas():
    try:
        from threadpoolctl import threadpool_info
        for p in threadpool_info():
            if p.get('internal_api') == 'openblas':
                return p['num_threads'], p.get('architecture') or 'unknown', 'threadpoolctl'
    except ImportError:
        pass
    # numpy's bundled OpenBLAS (the same library numpy loaded) answers for itself
    for path in glob.glob(os.path.join(os.path.dirname(np.__file__), '..', 'numpy.libs', '*openblas*')):
        lib = ctypes.CDLL(path)
        for prefix, suffix in (('scipy_openblas_', '64_'), ('scipy_openblas_', ''), ('openblas_', '')):
            try:
                core, threads = getattr(lib, prefix + 'get_corename' + suffix), getattr(lib, prefix + 'get_num_threads' + suffix)
            except AttributeError:
                continue
            core.restype = ctypes.c_char_p
            return threads(), core().decode(), 'OpenBLAS API'
    return None, 'unknown', 'not found'
loss_grad()
ms = []
for _ in range(repeats):
    t = time.perf_counter()
    loss, g = loss_grad()
    ms.append(1000 * (time.perf_counter() - t))
g.astype(np.float32).tofile(os.path.join(d, 'grad.f32'))
threads, kernel, via = blas()
print(json.dumps({'ms': ms, 'numpy': np.__version__, 'threads': threads, 'kernel': kernel, 'via': via, 'loss': loss}))
`;

interface NumpyRun {
  ms: number[];
  numpy: string;
  threads: number | null;
  kernel: string;
  via: string;
  loss: number;
  grad: Float32Array;
}

export async function run(): Promise<BenchResult[]> {
  const name = `multinomial full-batch loss+gradient, dense ${ROWS.toLocaleString('en')} × ${FEATURES} (~80% zeros), C = ${CLASSES}`;
  // Pixel-like values 1 − byte/255 in (0, 1], as FEMNIST's features are after inversion.
  const x = randomDense(1, ROWS, FEATURES, 0.8, (rng) => 1 - rng.int(255) / 255);
  const rng = rngFor(1, 'bench/gradient');
  const y = Float32Array.from({ length: ROWS }, () => rng.int(CLASSES));
  const w = Float32Array.from({ length: FEATURES * CLASSES }, () => 0.01 * rng.normal());
  const model = createModel({ kind: 'multinomial', nFeatures: FEATURES, nClasses: CLASSES, intercept: false, l2: 0 });
  const grad = new Float32Array(model.layout.d);
  // Warm-up: builds the CSR copy of x (once per matrix), compiles and tiers up the kernels.
  const start = performance.now();
  let loss = model.lossGrad(w, { x, y }, grad);
  const firstMs = performance.now() - start;
  model.lossGrad(w, { x, y }, grad);
  const threads = kernelThreads();
  const ours = median(timeRepeats(() => (loss = model.lossGrad(w, { x, y }, grad))));
  setKernelThreads(1);
  const ours1 = median(timeRepeats(() => model.lossGrad(w, { x, y }, grad)));
  setKernelThreads(threads);
  const target = `<= ${TARGET_RATIO}x numpy (default threads)`;

  const dir = await mkdtemp(join(tmpdir(), 'bench-gradient-'));
  try {
    await Promise.all([
      writeFile(join(dir, 'A.f32'), bytes(x.data)),
      writeFile(join(dir, 'y.f32'), bytes(y)),
      writeFile(join(dir, 'W.f32'), bytes(w)),
    ]);
    const numpy = await runNumpy(dir, {});
    const numpy1 = await runNumpy(dir, { OPENBLAS_NUM_THREADS: '1' });
    const agreement = maxRelativeDifference(grad, numpy.grad);
    const reference = median(numpy.ms);
    return [
      {
        name,
        value: ours,
        unit: 'ms',
        reference: {
          name: `numpy ${numpy.numpy} float32, OpenBLAS ${numpy.kernel} kernel, ${numpy.threads ?? '?'} threads (${numpy.via})`,
          value: reference,
          unit: 'ms',
        },
        target,
        pass: ours <= TARGET_RATIO * reference,
        note:
          `ours ${ours.toFixed(1)} ms on ${threads} kernel threads (first call ${firstMs.toFixed(0)} ms, with the one-off CSR ` +
          `copy and kernel compile), numpy ${reference.toFixed(1)} ms: ${(ours / reference).toFixed(2)}×; on 1 thread each: ` +
          `ours ${ours1.toFixed(1)} ms, numpy ${median(numpy1.ms).toFixed(1)} ms (${(ours1 / median(numpy1.ms)).toFixed(2)}×); median of ${REPEATS}; ` +
          `loss ${loss.toFixed(6)} vs numpy ${numpy.loss.toFixed(6)}, max |Δgrad| / max |grad| = ${agreement.toExponential(1)}`,
      },
    ];
  } catch (err) {
    return [{ name, value: ours, unit: 'ms', target, note: `no numpy reference: ${(err as Error).message.split('\n')[0]}` }];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function timeRepeats(f: () => void): number[] {
  const ms: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const start = performance.now();
    f();
    ms.push(performance.now() - start);
  }
  return ms;
}

async function runNumpy(dir: string, env: Record<string, string>): Promise<NumpyRun> {
  const args = ['-c', NUMPY_SCRIPT, dir, ...[ROWS, FEATURES, CLASSES, REPEATS].map(String)];
  const { stdout } = await promisify(execFile)('python3', args, { env: { ...numpyEnv(), ...env } });
  const file = await readFile(join(dir, 'grad.f32'));
  const grad = new Float32Array(new Uint8Array(file).buffer); // a copy, so the floats are aligned
  return { ...(JSON.parse(stdout) as Omit<NumpyRun, 'grad'>), grad };
}

function bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function maxRelativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

if (isMain(import.meta.url)) {
  const results = await run();
  printResults(results);
  for (const r of results) console.log(r.note);
}
