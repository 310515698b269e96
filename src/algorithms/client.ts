/**
 * What one client does in a round, as pure functions of explicit state: the same code runs in the
 * simulator (in-process or on worker threads) and in a networked client process.
 */
import type { Dataset, Model } from '../models/types.js';
import type { Pruner } from '../core/prune.js';
import type { SparseVector } from '../core/sparse.js';
import { rngFor } from '../core/rng.js';
import { firstNonFinite } from '../core/vec.js';
import { augmentedBatches } from '../data/augment.js';
import { descendStep } from '../models/kernels/csr-simd.js';
import type { MethodSpec } from './methods.js';

/** Step-level hyper-parameters shared by all clients. */
export interface StepConfig {
  /** step size γ */
  gamma: number;
  /** communication probability p (the γ/p and p/γ factors of ProxSkip) */
  p: number;
  /** ℓ1 weight λ of randprox-l1 (threshold γλ per step) */
  lambda: number;
  /** SR-STE decay λ_W on the pruned part of z (0 = plain hard-TopK STE) */
  steDecay: number;
  /** minibatch size; 0 = full batch */
  batchSize: number;
  seed: number;
  /** random crop + flip of each (image) minibatch, src/data/augment.ts */
  augment?: boolean;
}

export interface LocalContext {
  client: number;
  model: Model;
  data: Dataset;
  method: MethodSpec;
  pruner: Pruner;
  cfg: StepConfig;
}

/**
 * Runs `steps` local steps from `start` and returns x̂_i, the point the client communicates from
 * (TopK(z) for straight-through pruning). Each step: x ← x − γ(∇f_i(w) − h_i), where w = x, or TopK(x)
 * under STE; then the local prox (TopK or soft-thresholding) where the method has one.
 */
export function localTrain(
  ctx: LocalContext,
  start: Float32Array,
  h: Float32Array | null,
  steps: number,
  round: number,
): Float32Array {
  const { model, data, method, pruner, cfg } = ctx;
  const d = start.length;
  const x = new Float32Array(start);
  const g = new Float32Array(d);
  const w = method.pruneMode === 'ste' ? new Float32Array(d) : x;
  const batches = batchSampler(data, cfg, ctx.client, round);
  const augmented = cfg.augment ? augmentedBatches(data, cfg.seed, ctx.client, round) : null;
  const tau = cfg.gamma * cfg.lambda;
  const gamma = cfg.gamma;
  for (let s = 0; s < steps; s++) {
    if (method.pruneMode === 'ste') pruner.apply(x, w);
    if (augmented) model.lossGrad(w, augmented(batches()), g);
    else model.lossGrad(w, data, g, batches());
    if (method.pruneMode === 'ste' && cfg.steDecay > 0) {
      // SR-STE: decay the pruned coordinates, λ_W (1 − mask) ⊙ z = λ_W (z − TopK(z))
      for (let j = 0; j < d; j++) g[j]! += cfg.steDecay * (x[j]! - w[j]!);
    }
    if (method.pruneMode === 'l1') {
      // the step, soft-thresholded on the prunable segments (in one pass over each)
      let done = 0;
      pruner.mapPrunable(x, (block, offset) => {
        if (done < offset) descendStep(x.subarray(done, offset), g.subarray(done, offset), h?.subarray(done, offset) ?? null, gamma);
        const end = offset + block.length;
        descendStep(block, g.subarray(offset, end), h?.subarray(offset, end) ?? null, gamma, tau);
        done = end;
      });
      if (done < d) descendStep(x.subarray(done), g.subarray(done), h?.subarray(done) ?? null, gamma);
    } else {
      descendStep(x, g, h, gamma);
    }
    // A diverged iterate goes back as it is, for the caller's finiteness check to report as a divergence;
    // TopK would reject it as bad input.
    if (firstNonFinite(x) >= 0) return x;
    if (method.pruneMode === 'prox') pruner.apply(x, x);
  }
  return method.pruneMode === 'ste' ? pruner.apply(x, x) : x;
}

/**
 * Minibatches of one client in one round: consecutive slices of seeded permutations (reshuffled when used
 * up), keyed by (seed, client, round) so no client's batches depend on any other client's.
 */
function batchSampler(data: Dataset, cfg: StepConfig, client: number, round: number): () => Uint32Array | undefined {
  const m = data.y.length;
  if (cfg.batchSize <= 0 || cfg.batchSize >= m) return () => undefined;
  const rng = rngFor(cfg.seed, 'batch', client, round);
  const b = cfg.batchSize;
  let perm = rng.permutation(m);
  let pos = 0;
  return () => {
    if (pos + b > m) {
      perm = rng.permutation(m);
      pos = 0;
    }
    const batch = perm.subarray(pos, pos + b);
    pos += b;
    return batch;
  };
}

/**
 * The uplink message: x̂ − (γ/p)h (ProxSkip) or x̂ itself. Written into x̂'s buffer.
 */
export function uplinkVector(method: MethodSpec, xhat: Float32Array, h: Float32Array | null, cfg: StepConfig): Float32Array {
  if (method.uplinkShift && h) {
    const c = cfg.gamma / cfg.p;
    for (let j = 0; j < xhat.length; j++) xhat[j]! -= c * h[j]!;
  }
  return xhat;
}

/** An uplink as the server receives it: dense, or sparse (indices ascending). */
export type Uplink = Float32Array | SparseVector;

/**
 * h_i ← h_i + (p/γ)(ref − x̂_i), written in terms of the sent vector u_i. With the shift, u = x̂ − (γ/p)h, so
 * the update is h ← (p/γ)(ref − u) exactly; without it u = x̂ and h ← h + (p/γ)(ref − u). Either way
 * Σ_i h_i changes by (p/γ)(n·ref − Σ_i u_i): zero when ref is the plain average of the u_i.
 * `u` may be `h` itself (the simulator keeps a shifted uplink in h's buffer).
 */
export function updateControlVariate(method: MethodSpec, h: Float32Array, u: Uplink, ref: Float32Array, cfg: StepConfig): void {
  const c = cfg.p / cfg.gamma;
  const keep = method.uplinkShift ? 0 : 1;
  if (u instanceof Float32Array) {
    for (let j = 0; j < h.length; j++) h[j] = keep * h[j]! + c * (ref[j]! - u[j]!);
    return;
  }
  const idx = u.indices;
  const val = u.values;
  let k = 0;
  for (let j = 0; j < h.length; j++) {
    let uj = 0;
    if (k < idx.length && idx[k] === j) uj = val[k++]!;
    h[j] = keep * h[j]! + c * (ref[j]! - uj);
  }
}
