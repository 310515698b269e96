/**
 * Communication rounds of `sparse-proxskip` with 1,000 clients and d = 1,000 (heterogeneous least
 * squares), through the simulator: the time of one round, and the memory the simulator keeps per client
 * beyond the client's data, against the bound of 3·d floats.
 * Standalone: npx tsx bench/round.ts
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { methodSpec } from '../src/algorithms/methods.js';
import { heterogeneousLeastSquares } from '../src/data/synthetic.js';
import type { FederatedDataset } from '../src/data/types.js';
import { createModel, defaultModelSpec } from '../src/models/index.js';
import type { Dataset } from '../src/models/types.js';
import { simulate, smoothnessOf } from '../src/sim/simulate.js';
import type { BenchResult } from './types.js';
import { isMain, median, printResults } from './util.js';

const CLIENTS = 1000;
const D = 1000;
const SAMPLES = 20; // per client before the 20% test split: 16 training rows
const LOCAL_STEPS = 10;
const SPARSITY = 0.9;
/** timed rounds; only the last one evaluates the train loss, so the others time the round alone */
const ROUNDS = 5;

// A full collection before each reading, so the figures count live objects only.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Measures in a fresh process: memory left behind by benchmarks run before this one in the same process
 * (caches held through weak references, say) can be freed in the middle of the measurement.
 */
export async function run(): Promise<BenchResult[]> {
  const args = ['--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url), '--json'];
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as BenchResult[];
}

async function measure(): Promise<BenchResult[]> {
  const base = liveBytes();
  const data = heterogeneousLeastSquares({ clients: CLIENTS, seed: 0, nFeatures: D, samplesPerClient: SAMPLES });
  const modelSpec = defaultModelSpec('regression', D, 1, {});
  const gamma = 1 / smoothnessOf(createModel(modelSpec), data);
  const stamps: number[] = [];
  let afterRound1 = 0;
  await simulate(
    data,
    {
      method: methodSpec('sparse-proxskip'),
      modelSpec,
      sparsity: SPARSITY,
      topkScope: 'global',
      step: { gamma, p: 1 / LOCAL_STEPS, lambda: 0, steDecay: 0, batchSize: 0, seed: 0 },
      localSteps: LOCAL_STEPS,
      schedule: 'fixed',
      rounds: ROUNDS,
      participation: 1,
      workers: 1,
      evalEvery: ROUNDS,
      postHocTopk: false,
      timing: false,
    },
    {
      onRound: (r) => {
        stamps.push(performance.now());
        // read while the round loop still holds everything of round 1: h, the uplinks, the ledger
        if (r.round === 1) afterRound1 = liveBytes();
      },
    },
  );
  const roundMs = stamps.slice(1, ROUNDS).map((t, i) => t - stamps[i]!); // rounds 1 … ROUNDS-1
  const dataBytes = datasetBytes(data);
  const perClient = (afterRound1 - base - dataBytes) / CLIENTS;
  const bound = 3 * D * 4;
  const setting = `${CLIENTS.toLocaleString('en-US')} clients, d = ${D.toLocaleString('en-US')}, ${LOCAL_STEPS} local steps, ${SPARSITY * 100}% sparsity`;
  return [
    {
      name: `one round of sparse-proxskip, ${setting}`,
      value: median(roundMs),
      unit: 'ms',
      note: `lsq data, ${SAMPLES * 0.8} training rows per client, full-batch gradients, 1 thread; median of ${roundMs.length} rounds`,
    },
    {
      name: `memory kept per client after one round, ${setting}`,
      value: Math.round(perClient),
      unit: 'bytes',
      reference: { name: '3·d float32 = 3·d·4 bytes', value: bound, unit: 'bytes' },
      target: '<= 3·d floats',
      pass: perClient <= bound,
      note: `(heap + ArrayBuffers after round 1 − before the data − ${(dataBytes / 1e6).toFixed(1)} MB of data) / clients, after a full GC; h_i alone is d floats = ${4 * D} bytes`,
    },
  ];
}

function liveBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Bytes of the clients' and the test set's arrays. */
function datasetBytes(data: FederatedDataset): number {
  const of = (d: Dataset): number => {
    const x = d.x;
    const xBytes = x.kind === 'dense' ? x.data.byteLength : x.indptr.byteLength + x.indices.byteLength + x.values.byteLength;
    return xBytes + d.y.byteLength;
  };
  return data.clients.reduce((s, c) => s + of(c), 0) + (data.test ? of(data.test) : 0);
}

if (isMain(import.meta.url)) {
  const results = await measure();
  if (process.argv.includes('--json')) console.log(JSON.stringify(results));
  else printResults(results);
}
