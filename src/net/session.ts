/**
 * A client's session (`sparse-proxskip client`, and the browser client's Web Worker): the protocol of
 * docs/network.md over any transport (transport.ts), the computations of the simulator
 * (src/sim/runner.ts over src/algorithms/client.ts), so a networked run reproduces `sparse-proxskip run`
 * bit for bit. Where the data come from and where the state is kept are the caller's (a ShardLoader, a
 * StateStore). Imports nothing from `node:`: the browser client bundles this very code.
 */
import { decode, encode } from '../core/encoding.js';
import { makePruner, type Pruner } from '../core/prune.js';
import { toDense, toSparse, type SparseVector } from '../core/sparse.js';
import { createModel, initNnBackend, isNeuralNet } from '../models/index.js';
import type { Dataset, Model, ModelSpec } from '../models/types.js';
import { updateControlVariate, uplinkVector, type StepConfig } from '../algorithms/client.js';
import type { MethodSpec } from '../algorithms/methods.js';
import { broadcast, evaluatedModel, type Broadcast } from '../algorithms/server.js';
import { UsageError } from '../errors.js';
import { methodOf, type RunConfig } from '../sim/config.js';
import { createRunner, type ClientRunner } from '../sim/runner.js';
import { NetError, PROTOCOL, Status, streamError, type ClientMessage, type ClientTransport, type StreamError } from './messages.js';

/** The points of a session at which `onStep` is called. */
export type ClientStep = 'welcome' | 'broadcast' | 'applied' | 'loss-sent' | 'train' | 'update-saved' | 'update-sent';


export interface SessionOptions {
  /** the server's address, for messages */
  server: string;
  /** seconds to keep trying to reach the server before giving up */
  connectTimeout: number;
  /** the token of each id (when the server has a tokens file) */
  tokens: Map<number, string> | null;
  /**
   * Awaited at each step of a session, so tests can cut or kill a client at an exact point: it may wait,
   * or throw (an error whose gRPC `code` is retried acts as a cut connection; any other stops the client, as a kill).
   */
  onStep?: (id: number, step: ClientStep, round: number) => void | Promise<void>;
}

/** Where the data of a pool's client ids come from (every process or tab keeps only its own shards). */
export type ShardLoader = (config: RunConfig, modelSpec: ModelSpec) => Promise<{ shards: Map<number, Dataset>; evalReference: Dataset | undefined }>;

/**
 * Where a client's h_i and its update in flight are kept: saved (awaited) before anything is sent, so a
 * client stopped at any point resumes exactly (Node: --state-dir files; a browser tab: IndexedDB).
 */
export interface StateStore {
  /** for messages */
  where: string;
  /** `run`: the run's config (JSON), for stores that keep the states of several runs */
  load(id: number, d: number, run: string): ClientState | null | Promise<ClientState | null>;
  save(st: ClientState): void | Promise<void>;
}

/**
 * What a client does with the broadcast of `round`, given its state (the last broadcast it applied, the
 * round of the update it holds) and `lastIncluded`, the last round in which the server used its update:
 * fold the update it holds into h_i ('apply'), nothing ('skip'), or stop, with the reason. A client with a
 * control variate must have folded in every update the server used; one that cannot (it missed that
 * round's broadcast, or lost its state) stops rather than go on with a wrong h_i. The caller then drops an
 * update of this round or earlier, and records `round` as applied.
 */
export function onBroadcast(st: { round: number; pendingRound: number | null; hasH: boolean }, round: number, lastIncluded: number): 'apply' | 'skip' | { stop: string } {
  if (round < st.round) return { stop: `the server is at round ${round} but this client's state is at round ${st.round}: the server's checkpoint is older than the client's state` };
  // the broadcast it last applied, sent again after a reconnect; an update of a later round stays pending
  if (round === st.round || !st.hasH) return 'skip';
  if (lastIncluded === round && st.pendingRound === round) return 'apply';
  if (lastIncluded <= st.round) return 'skip';
  if (lastIncluded === st.pendingRound) {
    return { stop: `missed the broadcast of round ${lastIncluded}, in which the server used its update, so its control variate cannot be brought up to date` };
  }
  return {
    stop:
      `the server used this client's update of round ${lastIncluded}, which this client does not hold (its state ends at round ${st.round}), ` +
      'so its control variate cannot be brought up to date: restart it with the --state-dir it ran with',
  };
}

/** Errors worth waiting out: the server is (re)starting, or the connection dropped. */
const RETRY = new Set<number>([Status.UNAVAILABLE, Status.CANCELLED, Status.UNKNOWN, Status.INTERNAL, Status.ALREADY_EXISTS]);

export interface Pending {
  round: number;
  payload: Uint8Array;
  vector: SparseVector;
}

export interface ClientState {
  id: number;
  h: Float32Array | null;
  /** the last round whose broadcast this client has applied */
  round: number;
  pending: Pending | null;
}

/** What every client of the pool derives from one broadcast (decoded once per pool). */
interface Derived {
  round: number;
  payload: Uint8Array;
  average: Float32Array | null;
  b: Broadcast;
  evalModel: Float32Array;
}

/** What the clients of one process (or one browser tab) share: the run's setup, the data, the model, the decoded broadcast. */
export class Pool {
  private setup: Promise<{ config: RunConfig; method: MethodSpec; modelSpec: ModelSpec; model: Model; pruner: Pruner; shards: Map<number, Dataset>; evalReference: Dataset | undefined }> | null = null;
  private setupKey = '';
  private runner: { gamma: number; runner: ClientRunner } | null = null;
  private derived: Derived | null = null;

  constructor(private readonly load: ShardLoader) {}

  /** Loads the data once for all ids (through the loader: every process keeps only its own shards). */
  prepare(configJson: string, modelSpecJson: string) {
    const key = configJson + modelSpecJson;
    if (this.setup && this.setupKey === key) return this.setup;
    this.setupKey = key;
    this.runner = null;
    this.derived = null;
    this.L.clear();
    this.setup = (async () => {
      const config = JSON.parse(configJson) as RunConfig;
      const modelSpec = JSON.parse(modelSpecJson) as ModelSpec;
      const { shards, evalReference } = await this.load(config, modelSpec);
      if (isNeuralNet(modelSpec)) await initNnBackend();
      const model = createModel(modelSpec);
      return { config, method: methodOf(config), modelSpec, model, pruner: makePruner(model.layout, config.sparsity, config.topkScope), shards, evalReference };
    })();
    return this.setup;
  }

  async step(gamma: number): Promise<{ runner: ClientRunner; step: StepConfig }> {
    const s = await this.setup!;
    const c = s.config;
    const step: StepConfig = { gamma, p: c.p, lambda: c.lambda as number, steDecay: c.steDecay, batchSize: c.batchSize, seed: c.seed };
    if (this.runner?.gamma !== gamma) {
      const ids = [...s.shards.keys()];
      const runner = createRunner({ modelSpec: s.modelSpec, method: s.method, sparsity: c.sparsity, topkScope: c.topkScope, step, clientIds: ids, data: ids.map((i) => s.shards.get(i)!), evalReference: s.evalReference, evalRows: c.evalTrainRows ?? null });
      this.runner = { gamma, runner };
    }
    return { runner: this.runner.runner, step };
  }

  /** The model to continue from, the reference for h, and the evaluated model, from a broadcast payload. */
  async derive(round: number, payload: Uint8Array): Promise<Derived> {
    const c = this.derived;
    if (c && c.round === round && sameBytes(c.payload, payload)) return c;
    const s = await this.setup!;
    const d = s.model.layout.d;
    const v = toDense(decode(payload, d).vector);
    // round 0 is x₀; later the payload is the average where clients need it, else the model (server.ts broadcast)
    let b: Broadcast;
    let average: Float32Array | null = null;
    if (round === 0) b = { model: v, ref: null, downlink: v };
    else if (downlinkIsAverage(s.method)) {
      average = v;
      b = broadcast(s.method, v, s.pruner);
    } else b = { model: v, ref: s.method.controlVariates ? v : null, downlink: v };
    const evalModel = round === 0 ? v : evaluatedModel(s.method, average ?? v, b, s.pruner, s.config.postHocTopk);
    this.derived = { round, payload, average, b, evalModel };
    return this.derived;
  }

  private readonly L = new Map<number, number>();

  /** L_i of a client's loss (computed once: a client that rejoins reports it again) */
  async smoothness(id: number): Promise<number> {
    const s = await this.setup!;
    // networks have no smoothness constant (the server then uses the default step): report 0
    if (!this.L.has(id)) this.L.set(id, isNeuralNet(s.modelSpec) ? 0 : s.model.smoothness(s.shards.get(id)!));
    return this.L.get(id)!;
  }

  get setupReady() {
    return this.setup!;
  }
}

/** Whether broadcast() sends the plain average (mirrors its `needsAverage`). */
function downlinkIsAverage(m: MethodSpec): boolean {
  return !m.pruneAfterAverage || (m.controlVariates && m.hReference === 'unprunedAverage');
}

/**
 * One client id's session, until the server says the run is done: the protocol of docs/network.md over
 * any transport, reconnecting while the server cannot be reached (for opts.connectTimeout seconds).
 */
export async function runSession(id: number, transport: ClientTransport, pool: Pool, states: Map<number, ClientState>, store: StateStore, opts: SessionOptions, log: (line: string) => void): Promise<void> {
  let lastContact = performance.now();
  for (let attempt = 0; ; attempt++) {
    const call = transport.open(id, opts.tokens?.get(id));
    const send = (m: ClientMessage): void => call.send(m);
    let done = false;
    try {
      let gamma = 0;
      let current: Derived | null = null;
      for await (const m of call.messages) {
        lastContact = performance.now();
        attempt = 0;
        switch (m.msg) {
          case 'welcome': {
            const w = m.welcome;
            await opts.onStep?.(id, 'welcome', states.get(id)?.round ?? 0);
            if (w.protocol !== PROTOCOL) throw new NetError(`client ${id}: the server speaks protocol ${w.protocol}, this client ${PROTOCOL}: run the same sparse-proxskip version on both ends`);
            const s = await pool.prepare(w.configJson, w.modelSpecJson);
            const d = s.model.layout.d;
            if (!states.has(id)) {
              const st = (await store.load(id, d, w.configJson)) ?? { id, h: s.method.controlVariates ? new Float32Array(d) : null, round: 0, pending: null };
              if (st.round > 0 || st.pending) log(`client ${id}: resumed from ${store.where} (round ${st.round}${st.pending ? `, update of round ${st.pending.round} in flight` : ''})`);
              states.set(id, st);
            }
            const pendingRound = states.get(id)!.pending?.round ?? 0;
            send({ msg: 'ready', ready: { dim: d, smoothness: await pool.smoothness(id), samples: s.shards.get(id)!.y.length, pendingRound, protocol: PROTOCOL } });
            break;
          }
          case 'start':
            gamma = m.start.gamma;
            break;
          case 'broadcast': {
            const b = m.broadcast;
            const st = states.get(id)!;
            await opts.onStep?.(id, 'broadcast', b.round);
            const s = await pool.setupReady;
            const der = (current = await pool.derive(b.round, b.payload));
            const { step } = await pool.step(gamma);
            const pendingRound = st.pending?.round ?? null;
            const action = onBroadcast({ round: st.round, pendingRound, hasH: st.h !== null }, b.round, b.lastIncludedRound);
            if (typeof action === 'object') throw new NetError(`client ${id}: ${action.stop}`);
            if (action === 'apply' && der.b.ref) updateControlVariate(s.method, st.h!, st.pending!.vector, der.b.ref, step);
            const settled = pendingRound !== null && pendingRound <= b.round;
            if (settled || st.round !== b.round) {
              if (settled) st.pending = null;
              st.round = b.round;
              await store.save(st);
            }
            await opts.onStep?.(id, 'applied', b.round);
            if (b.evaluate || b.postHoc) {
              const { runner } = await pool.step(gamma);
              const x = b.postHoc ? s.pruner.apply(der.average!) : der.evalModel;
              send({ msg: 'loss', loss: { round: b.round, loss: runner.loss(x, id), postHoc: b.postHoc } });
              await opts.onStep?.(id, 'loss-sent', b.round);
            }
            break;
          }
          case 'train': {
            const t = m.train;
            const st = states.get(id)!;
            await opts.onStep?.(id, 'train', t.round);
            if (!st.pending || st.pending.round !== t.round) {
              const s = await pool.setupReady;
              const { runner, step } = await pool.step(gamma);
              if (!current) throw new NetError(`client ${id}: asked to train before any model arrived`);
              const xhat = runner.train(t.round, current.b.model, t.steps, { client: id, h: st.h }).xhat;
              const u = uplinkVector(s.method, xhat, st.h, step);
              let payload: Uint8Array;
              try {
                payload = encode(toSparse(u));
              } catch (e) {
                throw new NetError(`client ${id}: round ${t.round}: ${(e as Error).message}: the run diverged; try a smaller step size than γ=${gamma}`);
              }
              st.pending = { round: t.round, payload, vector: decode(payload, u.length).vector };
              await store.save(st);
            }
            await opts.onStep?.(id, 'update-saved', t.round);
            send({ msg: 'update', update: { round: t.round, payload: st.pending.payload } });
            await opts.onStep?.(id, 'update-sent', t.round);
            break;
          }
          case 'done':
            done = true;
            log(`client ${id}: ${m.done.message}`);
            break;
        }
        if (done) break;
      }
      if (done) return;
      throw streamError(Status.UNAVAILABLE, 'the server closed the stream');
    } catch (e) {
      call.close();
      const err = e as StreamError;
      if (err.code === undefined || !RETRY.has(err.code)) {
        if (e instanceof NetError || e instanceof UsageError) throw e;
        const why = err.code === undefined ? err.message : err.code === Status.ABORTED ? err.details : `the server refused: ${err.details}`;
        throw new NetError(`client ${id}: ${why}`);
      }
      const waited = (performance.now() - lastContact) / 1000;
      if (waited > opts.connectTimeout) throw new NetError(`client ${id}: cannot reach the server at ${opts.server} for ${Math.round(waited)} s (${err.details ?? err.message})`);
      if (attempt === 0) log(`client ${id}: ${err.details || err.message}; retrying`);
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
