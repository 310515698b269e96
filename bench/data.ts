/**
 * Loading the real convex datasets (../shared/data): BlogFeedback's CSV parse against a naive
 * split(',') + Number() parse of the same text, the full loads, and the smoothness constant L
 * (largest over the clients) that γ = 1/L needs. Skipped when the data is absent.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { loadBlogFeedback, readBlogCsv } from '../src/data/blogfeedback.js';
import { loadFemnist } from '../src/data/femnist.js';
import type { FederatedDataset } from '../src/data/types.js';
import { createModel, defaultModelSpec } from '../src/models/index.js';
import { smoothnessOf } from '../src/sim/simulate.js';
import type { BenchResult } from './types.js';
import { isMain, median, printResults } from './util.js';

const SHARED = fileURLToPath(new URL('../../shared/data', import.meta.url));
const TRAIN = `${SHARED}/blogfeedback/blogData_train.csv.gz`;
const REPEATS = 3;

async function timeMs(f: () => Promise<unknown> | unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

function smoothnessMs(d: FederatedDataset): number {
  const model = createModel(defaultModelSpec(d.task, d.nFeatures, d.nClasses, { intercept: true, l2: 0 }));
  const t0 = performance.now();
  smoothnessOf(model, d);
  return performance.now() - t0;
}

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(TRAIN)) {
    console.error(`data: skipped, ${SHARED} is absent`);
    return [];
  }
  const parse = await timeMs(() => readBlogCsv(TRAIN, { sources: true }));
  const naive = await timeMs(() => {
    const rows = gunzipSync(readFileSync(TRAIN)).toString('latin1').split('\n');
    return rows.filter((l) => l !== '').map((l) => l.split(',').map(Number));
  });
  const blog = await timeMs(() => loadBlogFeedback(SHARED));
  const femnist = await timeMs(() => loadFemnist(SHARED));
  const blogL = smoothnessMs((await loadBlogFeedback(SHARED)).dataset);
  const femnistL = smoothnessMs((await loadFemnist(SHARED)).dataset);
  return [
    {
      name: 'BlogFeedback train CSV parse (52,397 x 281, gzip)',
      value: parse,
      unit: 'ms',
      reference: { name: "gunzip + split(',') + Number()", value: naive, unit: 'ms' },
      note: `median of ${REPEATS}; the reference keeps arrays of doubles and checks nothing`,
    },
    { name: 'BlogFeedback load (train + 60 test files, grouping, z-score)', value: blog, unit: 'ms', target: '<= 3000 ms', pass: blog <= 3000 },
    { name: 'FEMNIST load (306 writers, 41,629 + 4,780 images)', value: femnist, unit: 'ms', target: '<= 3000 ms', pass: femnist <= 3000 },
    { name: 'L over 421 BlogFeedback clients (linear, d = 281)', value: blogL, unit: 'ms' },
    { name: 'L over 306 FEMNIST clients (multinomial, d = 48,670)', value: femnistL, unit: 'ms' },
  ];
}

if (isMain(import.meta.url)) {
  const results = await run();
  printResults(results);
}
