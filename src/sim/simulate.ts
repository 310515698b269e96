/**
 * The simulator's round loop: every client in one process (or its worker threads), with the server's
 * part done here. It reads like the algorithm: train locally, send, average, broadcast, update h.
 */
import { chooseEncoding, floatsOf, type EncodingName } from '../core/encoding.js';
import { Ledger } from '../core/ledger.js';
import { makePruner, type Pruner, type TopkScope } from '../core/prune.js';
import { rngFor } from '../core/rng.js';
import { toSparse, type SparseVector } from '../core/sparse.js';
import { firstNonFinite, nnz } from '../core/vec.js';
import type { FederatedDataset } from '../data/types.js';
import { createModel } from '../models/index.js';
import type { Model, ModelSpec } from '../models/types.js';
import { updateControlVariate, uplinkVector, type StepConfig, type Uplink } from '../algorithms/client.js';
import type { MethodSpec } from '../algorithms/methods.js';
import { localStepsForRound, type Schedule } from '../algorithms/schedule.js';
import { averageUplinks, broadcast, evaluatedModel, type Broadcast } from '../algorithms/server.js';
import { createExecutor } from './executor.js';

export interface SimOptions {
  method: MethodSpec;
  modelSpec: ModelSpec;
  sparsity: number;
  topkScope: TopkScope;
  step: StepConfig;
  localSteps: number;
  schedule: Schedule;
  rounds: number;
  /** fraction of clients taking part in each round (1 = full participation, which the theory assumes) */
  participation: number;
  workers: number;
  /** evaluate train loss and test metric every this many rounds (and at the last round) */
  evalEvery: number;
  /** for dense methods, evaluate TopK of the model (post-hoc pruning) */
  postHocTopk: boolean;
  /** record wall-clock seconds (off: `seconds` is null, so equal seeds give byte-identical records) */
  timing: boolean;
}

/** One line of rounds.jsonl. Communication totals are cumulative. Round 0 is the initial model. */
export interface RoundRecord {
  round: number;
  /** local steps in this round */
  localSteps: number;
  /** mean over clients of f_i at the evaluated model (null on rounds that were not evaluated) */
  trainLoss: number | null;
  /** R² or accuracy on the test data (null without test data or on rounds not evaluated) */
  testMetric: number | null;
  /** nonzeros of the evaluated model */
  nnz: number;
  /** ‖Σ_i h_i‖₂ over all clients (0 for methods without control variates) */
  sumHNorm: number;
  /** Σ_i ‖h_i‖₂, the scale sumHNorm is relative to */
  hNormSum: number;
  uplinkFloats: number;
  uplinkBytes: number;
  downlinkFloats: number;
  downlinkBytes: number;
  seconds: number | null;
}

export interface SimHooks {
  /** `model` is the evaluated model of the round (the caller must not change it) */
  onRound?(record: RoundRecord, model: Float32Array): void;
  /** polled before each round; true stops the run cleanly (Ctrl-C) */
  shouldStop?(): boolean;
}

export interface SimResult {
  records: RoundRecord[];
  /** the evaluated model after the last round */
  model: Float32Array;
  /** the plain average after the last round (dense for dense methods) */
  average: Float32Array;
  /** each client's control variate at the end (null entries without control variates) */
  h: (Float32Array | null)[];
  ledger: Ledger;
  interrupted: boolean;
  /** dense methods at sparsity > 0: the final model pruned to K after training (SPEC §3's post-hoc baseline) */
  postHocTopk: { trainLoss: number; testMetric: number | null; nnz: number } | null;
  testMetricName: 'r2' | 'accuracy' | null;
  /** kept prunable entries per evaluated model */
  k: number;
  d: number;
}

export class SimulationError extends Error {
  override name = 'SimulationError';
}

export async function simulate(data: FederatedDataset, opts: SimOptions, hooks: SimHooks = {}): Promise<SimResult> {
  const model = createModel(opts.modelSpec);
  const d = model.layout.d;
  const n = data.clients.length;
  const { method, step } = opts;
  const pruner = makePruner(model.layout, opts.sparsity, opts.topkScope);
  const ledger = new Ledger(n);
  const h: (Float32Array | null)[] = data.clients.map(() => (method.controlVariates ? new Float32Array(d) : null));
  const exec = await createExecutor(
    { modelSpec: opts.modelSpec, method, sparsity: opts.sparsity, topkScope: opts.topkScope, step, clients: data.clients },
    opts.workers,
  );
  const t0 = performance.now();
  const records: RoundRecord[] = [];
  let current: Float32Array = new Float32Array(d); // x₀ = 0 (SPEC §1 for convex tasks)
  let average = current;
  let evalModel = current;
  let interrupted = false;
  let postHocTopk: SimResult['postHocTopk'] = null;
  const testMetricName = data.test ? model.metric(current, data.test).name : null;

  const record = async (round: number, steps: number, evaluate: boolean): Promise<void> => {
    const trainLoss = evaluate ? mean(await exec.losses(evalModel)) : null;
    const testMetric = evaluate && data.test ? model.metric(evalModel, data.test).value : null;
    const seconds = opts.timing ? (performance.now() - t0) / 1000 : null;
    const rec = roundRecord(round, steps, trainLoss, testMetric, evalModel, controlVariateNorms(h, d), ledger, seconds);
    records.push(rec);
    hooks.onRound?.(rec, evalModel);
  };

  try {
    await record(0, 0, true);
    for (let r = 1; r <= opts.rounds; r++) {
      if (hooks.shouldStop?.()) {
        interrupted = true;
        break;
      }
      const steps = localStepsForRound(opts.schedule, opts.localSteps, step.p, step.seed, r);
      const participants = chooseParticipants(n, opts.participation, step.seed, r);
      // Each result shrinks to its uplink message as it arrives: kept dense in h's buffer when shifted
      // (h itself is no longer needed: h⁺ = (p/γ)(ref − u)), else kept sparse beside h.
      const uplinks = new Map<number, Uplink>();
      await exec.train(r, current, steps, participants.map((i) => ({ client: i, h: h[i]! })), (res) => {
        const hi = res.h;
        h[res.client] = hi;
        const u = uplinkVector(method, res.xhat, hi, step);
        checkFinite(u, `client ${res.client}'s update in round ${r}`, step);
        const sv = toSparse(u);
        const enc = chooseEncoding(sv);
        ledger.record(r, 'up', res.client, floatsOf(enc.kind, sv), enc.bytes, enc.kind);
        if (method.uplinkShift && hi) {
          hi.set(u);
          uplinks.set(res.client, hi);
        } else {
          uplinks.set(res.client, sv);
        }
      });
      const sent = participants.map((i) => uplinks.get(i)!);
      const server = serverStep(method, pruner, d, sent, participants, ledger, r);
      average = server.average;
      const b = server.broadcast;

      if (b.ref) {
        participants.forEach((i, k) => updateControlVariate(method, h[i]!, sent[k]!, b.ref!, step));
        if (method.hReference === 'recentre') recentre(participants.map((i) => h[i]!));
      }
      current = b.model;
      evalModel = evaluatedModel(method, average, b, pruner, opts.postHocTopk);
      await record(r, steps, r % opts.evalEvery === 0 || r === opts.rounds);
    }
    if (!method.sparse && !opts.postHocTopk && opts.sparsity > 0) {
      const pruned = pruner.apply(average);
      postHocTopk = {
        trainLoss: mean(await exec.losses(pruned)),
        testMetric: data.test ? model.metric(pruned, data.test).value : null,
        nnz: nnz(pruned),
      };
    }
  } finally {
    await exec.close();
  }
  return { records, model: evalModel, average, h, ledger, interrupted, postHocTopk, testMetricName, k: pruner.k, d };
}

/** What the server has after round r: the average, what it broadcasts, and the downlink message. */
export interface ServerStep {
  average: Float32Array;
  broadcast: Broadcast;
  down: SparseVector;
  downKind: EncodingName;
}

/**
 * The server's half of round r (shared with the networked server, src/net): average the uplinks in
 * client order, decide the broadcast, and count the downlink message to each participant.
 */
export function serverStep(
  method: MethodSpec,
  pruner: Pruner,
  d: number,
  sent: readonly Uplink[],
  participants: readonly number[],
  ledger: Ledger,
  round: number,
): ServerStep {
  const average = averageUplinks(d, sent);
  const b = broadcast(method, average, pruner);
  const down = toSparse(b.downlink);
  const downEnc = chooseEncoding(down);
  const downFloats = floatsOf(downEnc.kind, down);
  for (const i of participants) ledger.record(round, 'down', i, downFloats, downEnc.bytes, downEnc.kind);
  return { average, broadcast: b, down, downKind: downEnc.kind };
}

/** One line of rounds.jsonl (shared with the networked server, so both write byte-identical records). */
export function roundRecord(
  round: number,
  steps: number,
  trainLoss: number | null,
  testMetric: number | null,
  evalModel: Float32Array,
  [sumHNorm, hNormSum]: [number, number],
  ledger: Ledger,
  seconds: number | null,
): RoundRecord {
  const total = ledger.cumulative();
  return {
    round,
    localSteps: steps,
    trainLoss,
    testMetric,
    nnz: nnz(evalModel),
    sumHNorm,
    hNormSum,
    uplinkFloats: total.up.floats,
    uplinkBytes: total.up.bytes,
    downlinkFloats: total.down.floats,
    downlinkBytes: total.down.bytes,
    seconds,
  };
}

export function chooseParticipants(n: number, fraction: number, seed: number, round: number): number[] {
  if (fraction >= 1) return Array.from({ length: n }, (_, i) => i);
  const m = Math.max(1, Math.round(fraction * n));
  return Array.from(rngFor(seed, 'participation', round).permutation(n).subarray(0, m)).sort((a, b) => a - b);
}

function checkFinite(v: Float32Array, what: string, step: StepConfig): void {
  const j = firstNonFinite(v);
  if (j >= 0) {
    throw new SimulationError(
      `${what} has a non-finite value (${v[j]}) at coordinate ${j}: the run diverged; try a smaller step size than γ=${step.gamma}`,
    );
  }
}

/** ‖Σ_i h_i‖ and Σ_i ‖h_i‖, summed in float64 in client order. */
export function controlVariateNorms(h: readonly (Float32Array | null)[], d: number): [number, number] {
  if (!h.some((x) => x)) return [0, 0];
  const sum = new Float64Array(d);
  let normSum = 0;
  for (const hi of h) {
    if (!hi) continue;
    let s = 0;
    for (let j = 0; j < d; j++) {
      sum[j]! += hi[j]!;
      s += hi[j]! * hi[j]!;
    }
    normSum += Math.sqrt(s);
  }
  let s = 0;
  for (let j = 0; j < d; j++) s += sum[j]! * sum[j]!;
  return [Math.sqrt(s), normSum];
}

function recentre(hs: Float32Array[]): void {
  const d = hs[0]?.length ?? 0;
  const m = new Float64Array(d);
  for (const hi of hs) for (let j = 0; j < d; j++) m[j]! += hi[j]!;
  for (let j = 0; j < d; j++) m[j]! /= hs.length;
  for (const hi of hs) for (let j = 0; j < d; j++) hi[j]! -= m[j]!;
}

/** The mean in float64, summed in index (client) order. */
export function mean(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return s / v.length;
}

/** γ = 1/L with L the largest smoothness constant over the clients (SPEC §5). */
export function smoothnessOf(model: Model, data: FederatedDataset): number {
  let L = 0;
  for (const c of data.clients) L = Math.max(L, model.smoothness(c));
  return L;
}
