/**
 * Generated federated datasets with natural clients: each client's data comes from its own
 * distribution, so the clients are heterogeneous by construction. Client k's data depends only on
 * (seed, k) and the options, not on how many clients there are.
 */
import type { Dataset, DenseMatrix } from '../models/types.js';
import { rngFor, type Rng } from '../core/rng.js';
import { DataError } from './errors.js';
import { concatDatasets, sizeSummary, subset } from './rows.js';
import type { FederatedDataset } from './types.js';

export interface SyntheticLogisticOptions {
  alpha: number;
  beta: number;
  clients: number;
  seed: number;
  nFeatures?: number;
  nClasses?: number;
  /** share of each client's samples moved to the pooled test set */
  testFraction?: number;
  /** cap on a client's sample count (the log-normal draw has a heavy tail) */
  maxSamples?: number;
}

/**
 * Synthetic(α, β) of FedProx (Li et al., MLSys 2020, `generate_synthetic`): α controls how much the
 * clients' models differ, β how much their inputs differ. For client k:
 *   u_k ~ N(0, α), B_k ~ N(0, β); W_k ~ N(u_k, 1) (nFeatures × nClasses), b_k ~ N(u_k, 1);
 *   v_k ~ N(B_k, 1) per feature; x ~ N(v_k, Σ), Σ = diag((j+1)^-1.2); y = argmax softmax(xᵀW_k + b_k).
 * As in the FedProx code (np.random.normal(0, alpha)), α and β are standard deviations, not variances.
 * Samples per client: floor(lognormal(4, 2)) + 50, capped at maxSamples.
 */
export function syntheticLogistic(opts: SyntheticLogisticOptions): FederatedDataset {
  const { alpha, beta, clients, seed } = opts;
  const nFeatures = opts.nFeatures ?? 60;
  const nClasses = opts.nClasses ?? 10;
  const testFraction = opts.testFraction ?? 0.2;
  const maxSamples = opts.maxSamples ?? 1000;
  const where = 'synthetic';
  checkNonNegative(where, 'alpha', alpha);
  checkNonNegative(where, 'beta', beta);
  checkCount(where, 'clients', clients, 1);
  checkCount(where, 'nFeatures', nFeatures, 1);
  checkCount(where, 'nClasses', nClasses, 2);
  checkCount(where, 'maxSamples', maxSamples, 1);
  checkTestFraction(where, testFraction);

  const sigma = new Float64Array(nFeatures);
  for (let j = 0; j < nFeatures; j++) sigma[j] = Math.sqrt(Math.pow(j + 1, -1.2));

  const parts: Dataset[] = [];
  for (let k = 0; k < clients; k++) {
    const rng = rngFor(seed, 'synthetic', k);
    const n = Math.min(maxSamples, Math.floor(Math.exp(4 + 2 * rng.normal())) + 50);
    const u = alpha * rng.normal();
    const B = beta * rng.normal();
    const W = normals(rng, nFeatures * nClasses, u, 1); // row-major nFeatures × nClasses
    const b = normals(rng, nClasses, u, 1);
    const v = normals(rng, nFeatures, B, 1);
    const x = new Float32Array(n * nFeatures);
    const y = new Float32Array(n);
    const row = new Float64Array(nFeatures);
    for (let i = 0; i < n; i++) {
      // labels come from the stored (float32) features, so they are exact for the data the models see
      for (let j = 0; j < nFeatures; j++) row[j] = Math.fround(v[j]! + sigma[j]! * rng.normal());
      x.set(row, i * nFeatures);
      y[i] = argmaxLogits(row, W, b, nClasses); // softmax is monotone: its argmax is the logits' argmax
    }
    parts.push({ x: dense(n, nFeatures, x), y });
  }
  return {
    ...splitClients(parts, testFraction),
    name: `synthetic(${alpha},${beta})`,
    task: 'multiclass',
    nFeatures,
    nClasses,
    // counts as generated, before the test split
    meta: { generator: 'fedprox-synthetic', alpha, beta, samplesPerClient: sizeSummary(parts) },
  };
}

export interface HeterogeneousLeastSquaresOptions {
  clients: number;
  seed: number;
  nFeatures?: number;
  samplesPerClient?: number;
  /** scale of the clients' feature-mean shifts and of their optima's spread around x* */
  heterogeneity?: number;
  noise?: number;
  testFraction?: number;
}

/**
 * Least squares whose clients disagree: client i draws features a ~ N(m_i, diag(s_i²)) with
 * m_i ~ heterogeneity·N(0, I) and s_i uniform in [0.5, 2] per feature, has its own optimum
 * x*_i = x* + heterogeneity·N(0, I), and targets b = aᵀx*_i + noise·N(0, 1). With heterogeneity > 0
 * the minimiser of the average loss is no client's own optimum (the setting where local steps drift).
 */
export function heterogeneousLeastSquares(opts: HeterogeneousLeastSquaresOptions): FederatedDataset {
  const { clients, seed } = opts;
  const nFeatures = opts.nFeatures ?? 20;
  const samplesPerClient = opts.samplesPerClient ?? 50;
  const heterogeneity = opts.heterogeneity ?? 1;
  const noise = opts.noise ?? 0.1;
  const testFraction = opts.testFraction ?? 0.2;
  const where = 'lsq';
  checkCount(where, 'clients', clients, 1);
  checkCount(where, 'nFeatures', nFeatures, 1);
  checkCount(where, 'samplesPerClient', samplesPerClient, 1);
  checkNonNegative(where, 'heterogeneity', heterogeneity);
  checkNonNegative(where, 'noise', noise);
  checkTestFraction(where, testFraction);

  const xStar = normals(rngFor(seed, 'lsq-optimum'), nFeatures, 0, 1);
  const parts: Dataset[] = [];
  for (let i = 0; i < clients; i++) {
    const rng = rngFor(seed, 'lsq', i);
    const mean = normals(rng, nFeatures, 0, heterogeneity);
    const scale = new Float64Array(nFeatures);
    for (let j = 0; j < nFeatures; j++) scale[j] = 0.5 + 1.5 * rng.float();
    const own = normals(rng, nFeatures, 0, heterogeneity);
    for (let j = 0; j < nFeatures; j++) own[j]! += xStar[j]!;
    const x = new Float32Array(samplesPerClient * nFeatures);
    const y = new Float32Array(samplesPerClient);
    for (let r = 0; r < samplesPerClient; r++) {
      let target = 0;
      for (let j = 0; j < nFeatures; j++) {
        const a = Math.fround(mean[j]! + scale[j]! * rng.normal());
        x[r * nFeatures + j] = a;
        target += a * own[j]!;
      }
      y[r] = target + noise * rng.normal();
    }
    parts.push({ x: dense(samplesPerClient, nFeatures, x), y });
  }
  return {
    ...splitClients(parts, testFraction),
    name: 'lsq',
    task: 'regression',
    nFeatures,
    nClasses: 1,
    meta: { generator: 'heterogeneous-least-squares', heterogeneity, noise, samplesPerClient },
  };
}

export interface SyntheticImagesOptions {
  clients: number;
  seed: number;
  /** height and width of the (square, 3-channel) images */
  side?: number;
  nClasses?: number;
  samplesPerClient?: number;
  noise?: number;
  testFraction?: number;
}

/**
 * Small colour images with natural clients, for the networks without a data file (tests, the browser
 * client). Class c is a fixed random pattern P_c (side×side×3 values ~ N(0, 1), keyed by the seed only);
 * client k draws its labels with a skew (half from its favourite class k mod C, half uniformly) and adds
 * its own per-channel colour shift s_k ~ N(0, 0.5²): pixel = P_y + s_k + noise·N(0, 1). Rows are NHWC.
 */
export function syntheticImages(opts: SyntheticImagesOptions): FederatedDataset {
  const { clients, seed } = opts;
  const side = opts.side ?? 8;
  const nClasses = opts.nClasses ?? 10;
  const samplesPerClient = opts.samplesPerClient ?? 40;
  const noise = opts.noise ?? 1;
  const testFraction = opts.testFraction ?? 0.2;
  const where = 'images';
  checkCount(where, 'clients', clients, 1);
  checkCount(where, 'side', side, 1);
  checkCount(where, 'nClasses', nClasses, 2);
  checkCount(where, 'samplesPerClient', samplesPerClient, 1);
  checkNonNegative(where, 'noise', noise);
  checkTestFraction(where, testFraction);

  const nFeatures = side * side * 3;
  const patterns = normals(rngFor(seed, 'images-classes'), nClasses * nFeatures, 0, 1);
  const parts: Dataset[] = [];
  for (let k = 0; k < clients; k++) {
    const rng = rngFor(seed, 'images', k);
    const shift = normals(rng, 3, 0, 0.5);
    const x = new Float32Array(samplesPerClient * nFeatures);
    const y = new Float32Array(samplesPerClient);
    for (let i = 0; i < samplesPerClient; i++) {
      const label = rng.float() < 0.5 ? k % nClasses : Math.floor(rng.float() * nClasses);
      y[i] = label;
      for (let j = 0; j < nFeatures; j++) x[i * nFeatures + j] = patterns[label * nFeatures + j]! + shift[j % 3]! + noise * rng.normal();
    }
    parts.push({ x: dense(samplesPerClient, nFeatures, x), y });
  }
  return {
    ...splitClients(parts, testFraction),
    name: side === 8 ? 'images' : `images:${side}`,
    task: 'multiclass',
    nFeatures,
    nClasses,
    meta: { generator: 'synthetic-images', layout: `NHWC ${side}x${side}x3`, noise, samplesPerClient },
  };
}

/**
 * Keeps the first part of each client's samples for training and pools the last
 * round(testFraction·n) (at most n - 1) into one test set. The samples are i.i.d. within a client,
 * so taking the tail is a random split.
 */
function splitClients(parts: Dataset[], testFraction: number): { clients: Dataset[]; test?: Dataset } {
  if (testFraction === 0) return { clients: parts };
  const train: Dataset[] = [];
  const test: Dataset[] = [];
  for (const p of parts) {
    const n = p.y.length;
    const nTrain = n - Math.min(n - 1, Math.round(testFraction * n));
    train.push(subset(p, range(0, nTrain)));
    test.push(subset(p, range(nTrain, n)));
  }
  return { clients: train, test: concatDatasets(test) };
}

function range(from: number, to: number): Uint32Array {
  const out = new Uint32Array(to - from);
  for (let i = 0; i < out.length; i++) out[i] = from + i;
  return out;
}

function normals(rng: Rng, n: number, mean: number, std: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * rng.normal();
  return out;
}

/** argmax over c of x·W[:, c] + b[c], W row-major (features × classes); ties go to the lowest class. */
function argmaxLogits(x: Float64Array, W: Float64Array, b: Float64Array, nClasses: number): number {
  let best = 0;
  let bestLogit = -Infinity;
  for (let c = 0; c < nClasses; c++) {
    let logit = b[c]!;
    for (let j = 0; j < x.length; j++) logit += x[j]! * W[j * nClasses + c]!;
    if (logit > bestLogit) {
      bestLogit = logit;
      best = c;
    }
  }
  return best;
}

function dense(rows: number, cols: number, data: Float32Array): DenseMatrix {
  return { kind: 'dense', rows, cols, data };
}

function checkCount(where: string, name: string, value: number, min: number): void {
  if (!(Number.isInteger(value) && value >= min)) {
    throw new DataError(`${where}: ${name} must be an integer >= ${min}, got ${value}`);
  }
}

function checkNonNegative(where: string, name: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0)) throw new DataError(`${where}: ${name} must be a finite number >= 0, got ${value}`);
}

function checkTestFraction(where: string, value: number): void {
  if (!(value >= 0 && value < 1)) throw new DataError(`${where}: testFraction must be in [0, 1), got ${value}`);
}
