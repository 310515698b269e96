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
import { createModel, evalReferenceOf, initNnBackend, isNeuralNet } from '../models/index.js';
import type { Model, ModelSpec } from '../models/types.js';
import { updateControlVariate, uplinkVector, type StepConfig, type Uplink } from '../algorithms/client.js';
import type { MethodSpec } from '../algorithms/methods.js';
import { localStepsForRound, type Schedule } from '../algorithms/schedule.js';
import { averageUplinks, broadcast, evaluatedModel, type Broadcast } from '../algorithms/server.js';
import { createExecutor, type Executor } from './executor.js';
import type { TrainResult } from './runner.js';
import { hasConverged } from './convergence.js';
import { createStateStore, type ClientStateStore } from './state.js';

export interface SimOptions {
  method: MethodSpec;
  modelSpec: ModelSpec;
  sparsity: number;
  topkScope: TopkScope;
  step: StepConfig;
  localSteps: number;
  schedule: Schedule;
  rounds: number;
  /** stop once the train loss changed by at most this fraction over the last 10% of rounds (0: off; src/sim/convergence.ts) */
  stopTol?: number;
  /** fraction of clients taking part in each round (1 = full participation, which the theory assumes) */
  participation: number;
  workers: number;
  /** evaluate train loss and test metric every this many rounds (and at the last round) */
  evalEvery: number;
  /** the train loss over the first this many rows of each client (null or absent: all) */
  evalTrainRows?: number | null;
  /** for dense methods, evaluate TopK of the model (post-hoc pruning) */
  postHocTopk: boolean;
  /** after the last round, also evaluate TopK of the plain average at these sparsities */
  topkAt?: number[];
  /** record wall-clock seconds (off: `seconds` is null, so equal seeds give byte-identical records) */
  timing: boolean;
  /** keep per-client vectors in files under this directory instead of memory (same results, less memory) */
  stateDir?: string | null;
  /** x₀, e.g. a saved model (`--init`); default: the model's seeded init, or 0 */
  init?: Float32Array | null;
  /** start from TopK of x₀ at the run's sparsity */
  pruneInit?: boolean;
  /** continue a run from its state after a round (SimHooks.checkpoint), exactly as if it had not stopped */
  resume?: SimState | null;
}

/**
 * What a run needs to continue after round `round` as if it had never stopped: every random choice is keyed
 * by (seed, client, round), so the models, the control variates, the ledger and the records are all of it.
 */
export interface SimState {
  round: number;
  current: Float32Array;
  average: Float32Array;
  evalModel: Float32Array;
  /** client i's stored vector after the round (its h_i), null where it has none */
  h: (Float32Array | null)[];
  ledger: Ledger;
  records: RoundRecord[];
  /** wall-clock seconds of the run up to this state, so resumed records count on from them */
  seconds: number;
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
  /**
   * Called after every finished round, and once more when shouldStop ends the run (`stopping`); `state()`
   * builds the run's state after its last finished round, for SimOptions.resume. The caller decides
   * whether to save it (a ResNet18 state is hundreds of MB).
   */
  checkpoint?(state: () => SimState, stopping: boolean): void;
}

export interface SimResult {
  records: RoundRecord[];
  /** the evaluated model after the last round */
  model: Float32Array;
  /** the plain average after the last round (dense for dense methods) */
  average: Float32Array;
  /** each client's control variate at the end (null entries without control variates; empty with a stateDir) */
  h: (Float32Array | null)[];
  ledger: Ledger;
  interrupted: boolean;
  /** the run stopped before `rounds` because the stop rule found it converged */
  converged: boolean;
  /** dense methods at sparsity > 0: the final model pruned to K after training (SPEC §3's post-hoc baseline) */
  postHocTopk: { trainLoss: number; testMetric: number | null; nnz: number } | null;
  /** TopK of the final plain average at each of opts.topkAt (K for that sparsity) */
  topkAt: { sparsity: number; k: number; trainLoss: number; testMetric: number | null; nnz: number }[];
  testMetricName: 'r2' | 'accuracy' | null;
  /** kept prunable entries per evaluated model */
  k: number;
  d: number;
}

export class SimulationError extends Error {
  override name = 'SimulationError';
}

export async function simulate(data: FederatedDataset, opts: SimOptions, hooks: SimHooks = {}): Promise<SimResult> {
  if (isNeuralNet(opts.modelSpec)) await initNnBackend();
  // a network with BatchNorm evaluates with the statistics of a fixed sample of the training images
  const evalReference = evalReferenceOf(opts.modelSpec, data.clients);
  const model = createModel(opts.modelSpec, evalReference);
  const d = model.layout.d;
  const n = data.clients.length;
  const { method, step } = opts;
  const pruner = makePruner(model.layout, opts.sparsity, opts.topkScope);
  const resume = opts.resume ?? null;
  if (resume && (resume.h.length !== n || resume.current.length !== d)) throw new RangeError(`the state to resume has ${resume.h.length} clients and d = ${resume.current.length}, the run ${n} and ${d}`);
  const ledger = resume?.ledger ?? new Ledger(n);
  const stateDir = opts.stateDir ?? null;
  // per client: h_i, or its uplink between arriving and the average (see onResult)
  const state = createStateStore(n, d, stateDir);
  resume?.h.forEach((hi, i) => hi && state.put(i, hi.slice()));
  let exec: Executor;
  try {
    exec = await createExecutor(
      { modelSpec: opts.modelSpec, method, sparsity: opts.sparsity, topkScope: opts.topkScope, step, clients: data.clients, evalReference, evalRows: opts.evalTrainRows ?? null },
      opts.workers,
    );
  } catch (e) {
    state.close();
    throw e;
  }
  // A dense uplink waits for the average in its client's slot when that is free: no control variate, or a
  // shifted uplink (h_i is not needed again: h⁺ = (p/γ)(ref − u)). Else it waits in memory, sparse.
  const uplinkInSlot = method.uplinkShift || !method.controlVariates;
  // with a state directory, `workers` clients at a time, so only their vectors are in memory
  const wave = stateDir === null ? n : Math.max(1, opts.workers);
  const t0 = performance.now() - (resume?.seconds ?? 0) * 1000;
  const records: RoundRecord[] = resume ? [...resume.records] : [];
  let current = resume?.current ?? initialModel(model, step.seed, opts.init, opts.pruneInit ? pruner : null);
  let average = resume?.average ?? current;
  let evalModel = resume?.evalModel ?? current;
  let done = resume?.round ?? 0;
  const snapshot = (): SimState => ({
    round: done,
    current,
    average,
    evalModel,
    h: Array.from({ length: n }, (_, i) => (state.has(i) ? state.get(i) : null)),
    ledger,
    records,
    seconds: (performance.now() - t0) / 1000,
  });
  let interrupted = false;
  let converged = false;
  let postHocTopk: SimResult['postHocTopk'] = null;
  const topkAt: SimResult['topkAt'] = [];
  let h: SimResult['h'] = [];
  const testMetricName = data.test ? model.metric(current, data.test).name : null;

  const record = async (round: number, steps: number, evaluate: boolean, hNorms: [number, number]): Promise<void> => {
    const trainLoss = evaluate ? mean(await exec.losses(evalModel)) : null;
    // Finite but huge parameters (a network's activations overflowing) give a NaN or infinite loss.
    if (trainLoss !== null && !Number.isFinite(trainLoss)) {
      throw new SimulationError(`the train loss in round ${round} is ${trainLoss}: the run diverged; try a smaller step size than γ=${step.gamma}`);
    }
    const testMetric = evaluate && data.test ? model.metric(evalModel, data.test).value : null;
    const seconds = opts.timing ? (performance.now() - t0) / 1000 : null;
    const rec = roundRecord(round, steps, trainLoss, testMetric, evalModel, hNorms, ledger, seconds);
    records.push(rec);
    hooks.onRound?.(rec, evalModel);
  };

  try {
    if (!resume) await record(0, 0, true, [0, 0]);
    for (let r = done + 1; r <= opts.rounds; r++) {
      // Let the event loop run: in-process rounds never wait on I/O, so without this a Ctrl-C handler
      // would not run (and shouldStop not turn true) until the last round.
      await new Promise((resolve) => setImmediate(resolve));
      if (hooks.shouldStop?.()) {
        interrupted = true;
        hooks.checkpoint?.(snapshot, true);
        break;
      }
      const steps = localStepsForRound(opts.schedule, opts.localSteps, step.p, step.seed, r);
      const participants = chooseParticipants(n, opts.participation, step.seed, r);
      // Each result shrinks to its uplink message as it arrives.
      const sparseUplinks = new Map<number, SparseVector>();
      const onResult = (res: TrainResult): void => {
        const u = uplinkVector(method, res.xhat, res.h, step);
        checkFinite(u, `client ${res.client}'s update in round ${r}`, step);
        const sv = toSparse(u);
        const enc = chooseEncoding(sv);
        ledger.record(r, 'up', res.client, floatsOf(enc.kind, sv), enc.bytes, enc.kind);
        if (uplinkInSlot) {
          state.put(res.client, u);
        } else {
          state.put(res.client, res.h!);
          sparseUplinks.set(res.client, sv);
        }
      };
      for (let s = 0; s < participants.length; s += wave) {
        const tasks = participants.slice(s, s + wave).map((i) => ({ client: i, h: method.controlVariates ? state.get(i) : null }));
        await exec.train(r, current, steps, tasks, onResult);
      }
      // read one at a time (from disk with a state directory), in client order
      const uplinkOf = (i: number): Uplink => sparseUplinks.get(i) ?? state.get(i);
      const sent = (function* () {
        for (const i of participants) yield uplinkOf(i);
      })();
      const server = serverStep(method, pruner, d, sent, participants, ledger, r);
      average = server.average;
      const b = server.broadcast;

      let hNorms: [number, number] = [0, 0];
      if (b.ref) hNorms = updateControlVariates(method, state, participants, uplinkOf, b.ref, step);
      else for (const i of participants) state.delete(i);
      current = b.model;
      evalModel = evaluatedModel(method, average, b, pruner, opts.postHocTopk);
      await record(r, steps, r % opts.evalEvery === 0 || r === opts.rounds, hNorms);
      done = r;
      hooks.checkpoint?.(snapshot, false);
      if (hasConverged(records, opts.stopTol ?? 0)) {
        converged = true;
        break;
      }
    }
    if (!method.sparse && !opts.postHocTopk && opts.sparsity > 0) {
      const pruned = pruner.apply(average);
      postHocTopk = {
        trainLoss: mean(await exec.losses(pruned)),
        testMetric: data.test ? model.metric(pruned, data.test).value : null,
        nnz: nnz(pruned),
      };
    }
    for (const s of opts.topkAt ?? []) {
      const p = makePruner(model.layout, s, opts.topkScope);
      const pruned = p.apply(average);
      topkAt.push({ sparsity: s, k: p.k, trainLoss: mean(await exec.losses(pruned)), testMetric: data.test ? model.metric(pruned, data.test).value : null, nnz: nnz(pruned) });
    }
    // the final h_i, unless they are on disk (reading them all back would defeat the state directory)
    h = stateDir !== null ? [] : Array.from({ length: n }, (_, i) => (method.controlVariates ? state.get(i) : null));
  } finally {
    await exec.close();
    state.close();
  }
  return { records, model: evalModel, average, h, ledger, interrupted, converged, postHocTopk, topkAt, testMetricName, k: pruner.k, d };
}

/**
 * x₀: a given start (a copy, checked for length), else the same seeded random init on every client for
 * neural nets and 0 for convex tasks (SPEC §1). Shared with the networked server.
 */
export function initialModel(model: Model, seed: number, init?: Float32Array | null, prune?: Pruner | null): Float32Array {
  let x: Float32Array;
  if (init) {
    if (init.length !== model.layout.d) throw new RangeError(`the initial model has length ${init.length}, the ${model.spec.kind} model has d = ${model.layout.d}`);
    x = init.slice();
  } else x = model.init?.(seed) ?? new Float32Array(model.layout.d);
  // pruneInit: start K-sparse, so no pruned mass of x₀ enters the first round (the ablation of issue #14)
  return prune ? prune.apply(x, x) : x;
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
  sent: Iterable<Uplink>,
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
  const acc = new NormAccumulator(d);
  for (const hi of h) if (hi) acc.add(hi);
  return acc.result();
}

/** controlVariateNorms one h_i at a time (add them in client order), so they need not all be in memory. */
export class NormAccumulator {
  private readonly sum: Float64Array;
  private normSum = 0;

  constructor(d: number) {
    this.sum = new Float64Array(d);
  }

  add(hi: Float32Array): void {
    const sum = this.sum;
    let s = 0;
    for (let j = 0; j < sum.length; j++) {
      sum[j]! += hi[j]!;
      s += hi[j]! * hi[j]!;
    }
    this.normSum += Math.sqrt(s);
  }

  /** [‖Σ_i h_i‖, Σ_i ‖h_i‖] */
  result(): [number, number] {
    let s = 0;
    for (let j = 0; j < this.sum.length; j++) s += this.sum[j]! * this.sum[j]!;
    return [Math.sqrt(s), this.normSum];
  }
}

/**
 * After the broadcast: moves the participants' h_i (then recentres them to mean zero over the
 * participants for 'recentre'), one client's vector at a time, and returns controlVariateNorms over all
 * clients (a client without state has h_i = 0 and adds nothing).
 */
function updateControlVariates(
  method: MethodSpec,
  state: ClientStateStore,
  participants: readonly number[],
  uplinkOf: (client: number) => Uplink,
  ref: Float32Array,
  step: StepConfig,
): [number, number] {
  const d = state.d;
  const moved = (i: number): Float32Array => {
    const u = uplinkOf(i);
    // a dense uplink sits in the slot itself (shifted methods): it becomes h⁺ in place
    const hi = u instanceof Float32Array ? u : state.get(i);
    updateControlVariate(method, hi, u, ref, step);
    return hi;
  };
  let mean: Float64Array | null = null;
  if (method.hReference === 'recentre') {
    mean = new Float64Array(d);
    for (const i of participants) {
      const hi = moved(i);
      state.put(i, hi);
      for (let j = 0; j < d; j++) mean[j]! += hi[j]!;
    }
    for (let j = 0; j < d; j++) mean[j]! /= participants.length;
  }
  const isParticipant = new Set(participants);
  const norms = new NormAccumulator(d);
  for (let i = 0; i < state.n; i++) {
    if (!state.has(i)) continue;
    let hi: Float32Array;
    if (!isParticipant.has(i)) hi = state.get(i);
    else if (mean) {
      hi = state.get(i);
      for (let j = 0; j < d; j++) hi[j]! -= mean[j]!;
      state.put(i, hi);
    } else {
      hi = moved(i);
      state.put(i, hi);
    }
    norms.add(hi);
  }
  return norms.result();
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
