/**
 * The client side of a networked run (`sparse-proxskip client`): one process hosts one client id or a
 * pool of them, each on its own stream. A client holds its data, its model state and its control
 * variate h_i, which never leaves it; the computations are the simulator's (src/sim/runner.ts over
 * src/algorithms/client.ts), so a loopback run reproduces `sparse-proxskip run` bit for bit.
 *
 * With a state directory, h_i and the update in flight are saved atomically before anything is sent,
 * so a client killed at any point and restarted with the same --state-dir carries on where it was.
 */
import { pickLimits, type DataLimits } from '../data/limits.js';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { decode, encode } from '../core/encoding.js';
import { makePruner, type Pruner } from '../core/prune.js';
import { toDense, toSparse, type SparseVector } from '../core/sparse.js';
import { createModel, evalReferenceOf, initNnBackend, isNeuralNet } from '../models/index.js';
import type { Dataset, Model, ModelSpec, Task } from '../models/types.js';
import { readLibsvm } from '../data/libsvm.js';
import { updateControlVariate, uplinkVector, type StepConfig } from '../algorithms/client.js';
import type { MethodSpec } from '../algorithms/methods.js';
import { broadcast, evaluatedModel, type Broadcast } from '../algorithms/server.js';
import { UsageError } from '../errors.js';
import { methodOf, type RunConfig } from '../sim/config.js';
import { loadRunData } from '../sim/run.js';
import { createRunner, type ClientRunner } from '../sim/runner.js';
import { PROTOCOL, type ClientMessage, type KeepaliveOptions } from './proto.js';
import type { ClientTls } from './security.js';
import { NetError } from './server.js';
import { bytesF32, f32bytes, readStateFile, writeStateFile } from './state.js';
import { grpcTransport, type ClientTransport, type StreamError } from './transport.js';
import { wsTransport } from './ws.js';

export interface ClientOptions {
  /** HOST:PORT of the server (gRPC), or ws://HOST:PORT, wss://HOST:PORT of its dashboard port (WebSocket) */
  server: string;
  ids: number[];
  /** the dataset spec of `run --dataset`; each id keeps its own shard. Default: the server's config.dataset */
  data: string | null;
  /** where this machine keeps the dataset files; default: the server's config.dataDir */
  dataDir?: string | null;
  /**
   * a LIBSVM file that is all of this (single) client's data, in the model's coding: labels -1/+1
   * (binary), 0..C-1 (multiclass) or real (regression), feature indices up to the model's nFeatures
   */
  ownData?: string | null;
  /** data-file limits of this machine, over the server config's (which apply otherwise) */
  limits?: Partial<DataLimits>;
  stateDir: string | null;
  tls: ClientTls | null;
  /** the token of each id (when the server has a tokens file) */
  tokens: Map<number, string> | null;
  maxMessageBytes: number;
  /** seconds to keep trying to reach the server before giving up */
  connectTimeout: number;
  /** keepalive pings to the server (default: the server's defaults) */
  keepalive?: KeepaliveOptions;
  log?: (line: string) => void;
  /**
   * Awaited at each step of a session, so tests can cut or kill a client at an exact point: it may wait,
   * or throw (an error whose gRPC `code` is retried acts as a cut connection; any other stops the client, as a kill).
   */
  onStep?: (id: number, step: ClientStep, round: number) => void | Promise<void>;
}

/** The points of a session at which `onStep` is called. */
export type ClientStep = 'welcome' | 'broadcast' | 'applied' | 'loss-sent' | 'train' | 'update-saved' | 'update-sent';

/** Parses '3', '0-99', '0-9,20,30-35' into ascending unique ids. */
export function parseClientIds(text: string): number[] {
  const ids = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UsageError(`bad client ids '${text}' (expected e.g. 3, 0-99 or 0-9,20,30-35)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new UsageError(`bad client id range '${part.trim()}'`);
    for (let i = a; i <= b; i++) ids.add(i);
  }
  return [...ids].sort((x, y) => x - y);
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
const RETRY = new Set([grpc.status.UNAVAILABLE, grpc.status.CANCELLED, grpc.status.UNKNOWN, grpc.status.INTERNAL, grpc.status.ALREADY_EXISTS]);

interface Pending {
  round: number;
  payload: Uint8Array;
  vector: SparseVector;
}

interface ClientState {
  id: number;
  h: Float32Array | null;
  /** the last round whose broadcast this client has applied */
  round: number;
  pending: Pending | null;
}

interface StateHeader {
  version: 1;
  id: number;
  round: number;
  pendingRound: number | null;
  hasH: boolean;
}

/** What every client of the pool derives from one broadcast (decoded once per pool). */
interface Derived {
  round: number;
  payload: Uint8Array;
  average: Float32Array | null;
  b: Broadcast;
  evalModel: Float32Array;
}

/** What the clients of one process share: the run's setup, the data, the model, the decoded broadcast. */
class Pool {
  private setup: Promise<{ config: RunConfig; method: MethodSpec; modelSpec: ModelSpec; model: Model; pruner: Pruner; shards: Map<number, Dataset>; evalReference: Dataset | undefined }> | null = null;
  private setupKey = '';
  private runner: { gamma: number; runner: ClientRunner } | null = null;
  private derived: Derived | null = null;

  constructor(private readonly opts: ClientOptions) {}

  /** Loads the data once for all ids (every process loads the dataset and keeps only its own shards). */
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
      const shards = new Map<number, Dataset>();
      let evalReference: Dataset | undefined;
      if (this.opts.ownData) {
        if (this.opts.ids.length !== 1) throw new UsageError('--own-data is the data of one client: give one --client-id');
        const task = TASK_OF_KIND[modelSpec.kind];
        if (!task) throw new UsageError(`--own-data takes LIBSVM files, for the linear models only (this run's model is ${modelSpec.kind})`);
        const labelMap = task === 'binary' ? [-1, 1] : task === 'multiclass' ? Array.from({ length: modelSpec.nClasses }, (_, c) => c) : undefined;
        const limits = { ...pickLimits(config), ...this.opts.limits };
        const own = await readLibsvm(this.opts.ownData, { nFeatures: modelSpec.nFeatures, task, limits, ...(labelMap ? { labelMap } : {}) });
        if (own.nFeatures !== modelSpec.nFeatures) throw new UsageError(`${this.opts.ownData} has ${own.nFeatures} features, the model ${modelSpec.nFeatures}`);
        shards.set(this.opts.ids[0]!, own.data);
      } else {
        const loaded = await loadRunData({ ...config, ...this.opts.limits, dataset: this.opts.data ?? config.dataset, dataDir: this.opts.dataDir ?? config.dataDir });
        for (const id of this.opts.ids) {
          const shard = loaded.dataset.clients[id];
          if (!shard) throw new UsageError(`client id ${id} is out of range: the data has ${loaded.dataset.clients.length} clients`);
          shards.set(id, shard);
        }
        // BatchNorm's evaluation statistics come from all clients' images, as on the server (evalReferenceOf)
        evalReference = evalReferenceOf(modelSpec, loaded.dataset.clients);
      }
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
    if (c && c.round === round && Buffer.compare(c.payload, payload) === 0) return c;
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

const TASK_OF_KIND: Partial<Record<ModelSpec['kind'], Task>> = { linear: 'regression', logistic: 'binary', multinomial: 'multiclass' };

/** Whether broadcast() sends the plain average (mirrors its `needsAverage`). */
function downlinkIsAverage(m: MethodSpec): boolean {
  return !m.pruneAfterAverage || (m.controlVariates && m.hReference === 'unprunedAverage');
}

function statePath(dir: string, id: number): string {
  return join(dir, `client-${id}.state`);
}

function loadState(dir: string | null, id: number, d: number): ClientState | null {
  if (!dir) return null;
  const f = readStateFile<StateHeader>(statePath(dir, id));
  if (!f) return null;
  const { header, sections } = f;
  if (header.id !== id) throw new UsageError(`${statePath(dir, id)} belongs to client ${header.id}`);
  let k = 0;
  const h = header.hasH ? new Float32Array(bytesF32(sections[k++]!)) : null;
  if (h && h.length !== d) throw new UsageError(`${statePath(dir, id)} holds a vector of dimension ${h.length}, the model has ${d}`);
  const pending =
    header.pendingRound === null ? null : { round: header.pendingRound, payload: sections[k]!, vector: decode(sections[k]!, d).vector };
  return { id, h, round: header.round, pending };
}

function saveState(dir: string | null, st: ClientState): void {
  if (!dir) return;
  const header: StateHeader = { version: 1, id: st.id, round: st.round, pendingRound: st.pending?.round ?? null, hasH: st.h !== null };
  writeStateFile(statePath(dir, st.id), header, [...(st.h ? [f32bytes(st.h)] : []), ...(st.pending ? [st.pending.payload] : [])]);
}

/** Runs every client id of `opts` until the server says the run is done. */
export async function runClients(opts: ClientOptions): Promise<void> {
  const log = opts.log ?? ((line) => console.error(`[client] ${line}`));
  const transport = /^wss?:\/\//.test(opts.server) ? wsTransport(opts.server, opts.tls, opts.maxMessageBytes) : grpcTransport(opts.server, opts.tls, opts.maxMessageBytes, opts.keepalive);
  const pool = new Pool(opts);
  const states = new Map<number, ClientState>();
  try {
    await Promise.all(opts.ids.map((id) => runSession(id, transport, pool, states, opts, log)));
  } finally {
    transport.close();
  }
}

async function runSession(
  id: number,
  transport: ClientTransport,
  pool: Pool,
  states: Map<number, ClientState>,
  opts: ClientOptions,
  log: (line: string) => void,
): Promise<void> {
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
              const st = loadState(opts.stateDir, id, d) ?? { id, h: s.method.controlVariates ? new Float32Array(d) : null, round: 0, pending: null };
              if (st.round > 0 || st.pending) log(`client ${id}: resumed from ${opts.stateDir} (round ${st.round}${st.pending ? `, update of round ${st.pending.round} in flight` : ''})`);
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
              saveState(opts.stateDir, st);
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
              saveState(opts.stateDir, st);
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
      throw Object.assign(new Error('the server closed the stream'), { code: grpc.status.UNAVAILABLE });
    } catch (e) {
      call.close();
      const err = e as StreamError;
      if (err.code === undefined || !RETRY.has(err.code)) {
        if (e instanceof NetError || e instanceof UsageError) throw e;
        const why = err.code === undefined ? err.message : err.code === grpc.status.ABORTED ? err.details : `the server refused: ${err.details}`;
        throw new NetError(`client ${id}: ${why}`);
      }
      const waited = (performance.now() - lastContact) / 1000;
      if (waited > opts.connectTimeout) throw new NetError(`client ${id}: cannot reach the server at ${opts.server} for ${Math.round(waited)} s (${err.details ?? err.message})`);
      if (attempt === 0) log(`client ${id}: ${err.details || err.message}; retrying`);
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
}
