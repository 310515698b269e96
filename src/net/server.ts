/**
 * The server of a networked run (`sparse-proxskip serve`): it holds the round loop, the schedule and the
 * averaging, and nothing of the clients' data or state. Each round is the simulator's, step for step
 * (src/sim/simulate.ts: serverStep, roundRecord), so a loopback run writes the same rounds.jsonl.
 *
 * The server keeps a shadow copy of each h_i, rebuilt from the uplinks it has seen exactly as the client
 * updates its own, only for the ‖Σh_i‖ diagnostic of rounds.jsonl: h_i itself never crosses the wire.
 *
 * Rounds: Train{r} to the participants, their Updates (validated; a bad one is refused with a gRPC
 * status to that client alone), the average, a checkpoint, then Broadcast{r} to everyone (with a Loss
 * wanted back on evaluated rounds), and the record. Checkpointing before the broadcast means no client
 * can be ahead of the newest checkpoint, so `--resume` after a kill -9 continues exactly.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { decode, encode, EncodingError, floatsOf, type EncodingName } from '../core/encoding.js';
import { Ledger } from '../core/ledger.js';
import { makePruner, type Pruner } from '../core/prune.js';
import { toSparse, type SparseVector } from '../core/sparse.js';
import { nnz } from '../core/vec.js';
import { createModel, evalReferenceOf, isNeuralNet } from '../models/index.js';
import type { Model } from '../models/types.js';
import { updateControlVariate, type StepConfig } from '../algorithms/client.js';
import { localStepsForRound } from '../algorithms/schedule.js';
import { evaluatedModel } from '../algorithms/server.js';
import { JsonlWriter, readJsonl, truncateJsonl, writeFileAtomic, writeJsonAtomic } from '../report/io.js';
import { writeModelFiles, type ModelFiles } from '../models/io.js';
import { prepareRun, runModelInfo, type PreparedRun } from '../sim/run.js';
import { chooseParticipants, controlVariateNorms, initialModel, mean, roundRecord, serverStep, type RoundRecord } from '../sim/simulate.js';
import { VERSION } from '../version.js';
import type { ServeConfig } from './config.js';
import { startServeDashboard, type ServeDashboard, type ServeEvent } from './dashboard.js';
import { channelOptions, oneLine, PROTOCOL, serverService, wireBytes, type ClientMessage, type JoinServerCall, type Refusal, type ServerMessage } from './proto.js';
import { Listener, throttled } from './listener.js';
import { parseClientId, readTokens, serverTlsOptions, tokenMatches } from './security.js';
import { bytesF32, f32bytes, readStateFile, readStateHeader, writeStateFile } from '../sim/state-file.js';
import { grpcServerStream, type ServerStream } from './transport.js';
import { WS_PATH, WsFederation } from './ws.js';

import { NetError } from './messages.js';

export { NetError };

export interface ServeOptions {
  config: ServeConfig;
  /** continue from the checkpoint in checkpointDir (a fresh start when there is none) */
  resume?: boolean;
  /** one line per event (joins, rejections, rounds); default: stderr */
  log?: (line: string) => void;
  onRound?(record: RoundRecord, model: Float32Array): void;
  /** the data already loaded (tests, benchmarks); default: load config.run.dataset */
  prepared?: PreparedRun;
  /** the dashboard's built page (tests); default: dist/web/page */
  dashboardAssets?: string;
}

/** One line of net.jsonl: what the network added to a round. */
export interface NetRecord {
  round: number;
  participants: number;
  answered: number;
  /** seconds from Train sent to the last update received */
  trainSeconds: number;
  /** seconds from Broadcast sent to the last loss received (0 on rounds not evaluated) */
  evalSeconds: number;
  roundSeconds: number;
  /** gRPC messages as sent: protobuf plus the 5-byte gRPC prefix */
  wireUpBytes: number;
  wireDownBytes: number;
}

export interface ServeResult {
  records: RoundRecord[];
  net: NetRecord[];
  model: Float32Array;
  out: string;
}

interface Session {
  id: number;
  stream: ServerStream;
  peer: string;
  ready: boolean;
  closed: boolean;
  /** frees the connection's place in the listener's idle accounting */
  release: () => void;
}

type Phase = 'join' | 'train' | 'evaluate' | 'done';

interface LastBroadcast {
  round: number;
  payload: Uint8Array;
}

interface Checkpoint {
  version: 1;
  config: string;
  round: number;
  steps: number;
  gamma: number;
  elapsed: number;
  lastIncluded: number[];
  ledger: ReturnType<Ledger['toJSON']>;
  hasH: boolean;
}

const CHECKPOINT = 'checkpoint.bin';

export class FederationServer {
  readonly port: number;
  /** the live dashboard's address (`http` in the config), else null */
  readonly dashboardUrl: string | null;
  private readonly sessions: (Session | null)[];
  private readonly model: Model;
  /** L_i of the server's copy of each client's data, computed when the client joins */
  private readonly ownSmoothness: (number | undefined)[];
  private readonly tokens: Map<number, string> | null;
  private readonly log: (line: string) => void;
  /** refusals before a client is accepted: anyone can cause them, so a flood of them is thinned out */
  private readonly logRefusal: (kind: string, line: string) => void;
  private phase: Phase = 'join';
  private round = 0;
  /** local steps of the current round */
  private steps = 0;
  private readonly dim: number;
  private gamma: number | null = null;
  private participants = new Set<number>();
  private updates = new Map<number, { vector: SparseVector; kind: EncodingName; payload: Uint8Array }>();
  private losses = new Map<number, number>();
  private evalPostHoc = false;
  private evalRound = -1;
  private last: LastBroadcast | null = null;
  private lastIncluded: number[];
  private wake: (() => void) | null = null;
  /** clients left out after missing a round timeout (allowPartial), until they rejoin */
  private readonly absent = new Set<number>();
  private stopReason: string | null = null;
  private wire = { up: 0, down: 0 };
  readonly done: Promise<ServeResult>;

  private constructor(
    private readonly opts: ServeOptions,
    private readonly prepared: PreparedRun,
    private readonly grpcServer: grpc.Server,
    private readonly listener: Listener,
    private readonly dashboard: ServeDashboard | null,
    private readonly ws: WsFederation | null,
  ) {
    const n = prepared.dataset.clients.length;
    this.port = listener.port;
    this.dashboardUrl = dashboard?.url ?? null;
    this.sessions = new Array(n).fill(null);
    this.ownSmoothness = new Array(n).fill(undefined);
    this.lastIncluded = new Array(n).fill(0);
    // a network with BatchNorm evaluates with the statistics of a fixed sample of the training images, as the clients do
    this.model = createModel(prepared.modelSpec, evalReferenceOf(prepared.modelSpec, prepared.dataset.clients));
    this.dim = this.model.layout.d;
    this.tokens = opts.config.server.tokens ? readTokens(opts.config.server.tokens) : null;
    this.log = opts.log ?? ((line) => console.error(`[serve] ${line}`));
    this.logRefusal = throttled(this.log);
    this.done = this.run().then(
      (r) => {
        this.emit({ kind: 'end', status: 'done', message: `finished ${r.records.at(-1)!.round} rounds` });
        return this.shutdown().then(() => r);
      },
      async (e: unknown) => {
        this.emit({ kind: 'end', status: this.stopReason ? 'interrupted' : 'failed', message: (e as Error).message });
        // an aborted run is over for the clients too (a stopped server is not: they wait for --resume)
        if (!this.stopReason) for (const s of this.sessions) if (s && !s.closed) s.stream.fail(grpc.status.ABORTED, `the server aborted the run: ${(e as Error).message}`);
        await this.shutdown();
        throw e;
      },
    );
    // a rejection is the caller's to handle via `done`; do not crash the process before it looks
    this.done.catch(() => {});
  }

  /** Loads the data, opens the port, and starts the run (`done` settles when it ends). */
  static async start(opts: ServeOptions): Promise<FederationServer> {
    const { run, server: s } = opts.config;
    if (opts.resume) {
      // a finished run has nothing to resume: say so, rather than wait for clients that have exited
      const c = readStateHeader<Checkpoint>(join(s.checkpointDir ?? s.out, CHECKPOINT));
      if (c && c.round >= run.rounds && c.config === JSON.stringify(run) && existsSync(join(s.out, 'summary.json'))) {
        throw new NetError(`the run in ${s.out} is finished (checkpoint at the last round, ${run.rounds}, and summary.json written): nothing to resume; start it without --resume to run it again`);
      }
    }
    const prepared = opts.prepared ?? (await prepareRun(run));
    const log = opts.log ?? ((line: string) => console.error(`[serve] ${line}`));
    const grpcServer = new grpc.Server(channelOptions(s.maxMessageBytes, s));
    let self: FederationServer | null = null;
    let listener: Listener | null = null;
    const joinStream = (stream: ServerStream): void => {
      if (self) self.join(stream);
      else stream.fail(grpc.status.UNAVAILABLE, 'server is starting');
    };
    grpcServer.addService(serverService(), { Join: (call: JoinServerCall) => joinStream(grpcServerStream(call, (peer) => listener!.hold(peer))) });
    const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    listener = await Listener.open(
      { host: s.host, port: s.port, tls: serverTlsOptions(s.tls), maxConnections: s.maxConnections, idleTimeout: s.idleTimeout, log },
      (socket) => injector.injectConnection(socket),
    ).catch((e: Error) => {
      grpcServer.forceShutdown();
      throw new NetError(`cannot listen on ${s.host}:${s.port}: ${e.message}`);
    });
    if (s.portFile) writeFileAtomic(s.portFile, `${listener.port}\n`);
    // clients over WebSocket (browsers) on the dashboard's port, into the same sessions
    const ws = s.http === null ? null : new WsFederation({ ...s, requireClientCert: s.tls?.requireClientCert ?? false }, joinStream, throttled(log));
    const dashboard =
      s.http === null
        ? null
        : await startServeDashboard(opts.config, prepared.dataset.clients.length, `${s.host}:${listener.port}`, { path: WS_PATH, handle: (req, socket, head) => ws!.upgrade(req, socket, head) }, opts.dashboardAssets).catch((e: unknown) => {
            grpcServer.forceShutdown();
            listener!.close();
            throw e;
          });
    self = new FederationServer({ ...opts, log }, prepared, grpcServer, listener, dashboard, ws);
    return self;
  }

  /** Stops at once: streams are cut (clients keep retrying, so `serve --resume` can pick the run up). */
  stop(reason: string): void {
    this.stopReason ??= reason;
    this.wake?.();
  }

  /** Tells the live dashboard (`http`), if there is one. */
  private emit(e: ServeEvent): void {
    this.dashboard?.on(e);
  }

  private get n(): number {
    return this.sessions.length;
  }

  /**
   * Lets the last messages (Done, ABORTED) reach the clients, then closes every connection: a connection
   * to a peer that vanished is closed too, so the process can exit. A stopped server closes at once.
   */
  private shutdown(): Promise<void> {
    this.phase = 'done';
    const close = (): void => {
      this.grpcServer.forceShutdown();
      this.listener.close();
      this.ws?.close();
      void this.dashboard?.close();
    };
    if (this.stopReason) {
      close();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        close();
        resolve();
      }, 2000);
      this.grpcServer.tryShutdown(() => {
        clearTimeout(force);
        close();
        resolve();
      });
    });
  }

  // ---- connections -------------------------------------------------------------------------------

  private join(stream: ServerStream): void {
    const peer = stream.peer;
    const idText = stream.clientId;
    const id = parseClientId(idText);
    const refuse = (code: grpc.status, details: string): void => {
      this.logRefusal('refused', `refused ${peer}: ${details}`);
      this.emit({ kind: 'refusal', id: id !== null && id < this.n ? id : null, peer, reason: details });
      stream.fail(code, details);
    };
    if (id === null || id >= this.n) {
      return refuse(grpc.status.NOT_FOUND, `unknown client id '${oneLine(idText)}': this run has clients 0..${this.n - 1} (plain decimal integers)`);
    }
    if (this.tokens) {
      const expected = this.tokens.get(id);
      const auth = stream.authorization;
      const given = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (expected === undefined) return refuse(grpc.status.PERMISSION_DENIED, `client ${id} has no token in the server's tokens file`);
      if (!tokenMatches(expected, given)) return refuse(grpc.status.UNAUTHENTICATED, `client ${id}: missing or wrong token`);
    }
    const existing = this.sessions[id];
    if (existing && !existing.closed) {
      return refuse(grpc.status.ALREADY_EXISTS, `client ${id} is already connected (from ${existing.peer}); a second connection for the same id is refused`);
    }
    if (this.phase === 'done') return refuse(grpc.status.UNAVAILABLE, 'the run is over');
    const s: Session = { id, stream, peer, ready: false, closed: false, release: stream.hold() };
    this.sessions[id] = s;
    this.log(`client ${id} connected from ${peer}`);
    this.emit({ kind: 'join', id, peer });
    stream.onMessage((m) => this.onMessage(s, m));
    stream.onClose((reason) => {
      if (s.closed) return;
      this.drop(s);
      if (this.phase === 'done') return;
      void reason.then((r) => {
        this.log(`client ${id} disconnected (${r})`);
        this.emit({ kind: 'leave', id, reason: r });
      });
    });
    this.send(s, { msg: 'welcome', welcome: { configJson: JSON.stringify(this.opts.config.run), modelSpecJson: JSON.stringify(this.prepared.modelSpec), protocol: PROTOCOL } });
  }

  private send(s: Session, m: ServerMessage): void {
    if (s.closed) return;
    s.stream.send(m);
    if (m.msg === 'train') this.emit({ kind: 'train', id: s.id, round: m.train.round });
  }

  /** The session is over: its id is free again, its connection may go idle. */
  private drop(s: Session): void {
    s.closed = true;
    if (this.sessions[s.id] === s) this.sessions[s.id] = null;
    s.release();
    this.wake?.();
  }

  /** Refuses one message: that client's stream ends with `code`; the round goes on for the others. */
  private reject(s: Session, code: grpc.status, details: string): void {
    this.log(`client ${s.id}: rejected: ${details}`);
    this.emit({ kind: 'refusal', id: s.id, peer: s.peer, reason: details });
    if (s.closed) return;
    this.drop(s);
    this.emit({ kind: 'leave', id: s.id, reason: 'refused' });
    s.stream.fail(code, details);
  }

  /** Handles one message; whatever goes wrong in doing so drops that client, never the run. */
  private onMessage(s: Session, m: ClientMessage | Refusal): void {
    if (s.closed) return;
    try {
      this.handle(s, m);
    } catch (e) {
      this.reject(s, grpc.status.INTERNAL, `the server failed on this client's message: ${oneLine((e as Error)?.message ?? String(e))}`);
    }
  }

  private handle(s: Session, m: ClientMessage | Refusal): void {
    if ('refused' in m) return this.reject(s, grpc.status.INVALID_ARGUMENT, m.refused);
    const d = this.dim;
    if (m.msg === 'ready') {
      if (s.ready) return this.reject(s, grpc.status.FAILED_PRECONDITION, 'sent Ready twice');
      const r = m.ready;
      if (r.protocol !== PROTOCOL) {
        return this.reject(s, grpc.status.FAILED_PRECONDITION, `client ${s.id} speaks protocol ${r.protocol}, this server ${PROTOCOL}: run the same sparse-proxskip version on both ends`);
      }
      if (r.dim !== d) return this.reject(s, grpc.status.INVALID_ARGUMENT, `client ${s.id} built a model of dimension ${r.dim}, the server's has ${d}: check --data`);
      const refusal = this.checkSmoothness(s.id, r.smoothness);
      if (refusal) return this.reject(s, grpc.status.INVALID_ARGUMENT, refusal);
      s.ready = true;
      this.log(`client ${s.id} ready (${r.samples} samples, L = ${r.smoothness.toPrecision(6)})`);
      if (this.absent.delete(s.id)) this.log(`client ${s.id} is back`);
      if (this.gamma !== null) this.catchUp(s, r.pendingRound);
      this.wake?.();
      return;
    }
    if (!s.ready || this.gamma === null) return this.reject(s, grpc.status.FAILED_PRECONDITION, `${m.msg} before the run started`);
    if (m.msg === 'update') {
      const u = m.update;
      if (this.phase !== 'train' || u.round !== this.round) {
        return this.reject(s, grpc.status.FAILED_PRECONDITION, `update for round ${u.round}, but the server is ${this.phase === 'train' ? 'collecting updates for' : 'past the updates of'} round ${this.round}`);
      }
      if (!this.participants.has(s.id)) return this.reject(s, grpc.status.FAILED_PRECONDITION, `client ${s.id} does not take part in round ${this.round}`);
      const max = this.opts.config.server.maxMessageBytes;
      if (u.payload.length > max) return this.reject(s, grpc.status.RESOURCE_EXHAUSTED, `update of ${u.payload.length} bytes exceeds the maximum message size of ${max} bytes`);
      let decoded: ReturnType<typeof decode>;
      try {
        decoded = decode(u.payload, d);
      } catch (e) {
        if (!(e instanceof EncodingError)) throw e;
        return this.reject(s, grpc.status.INVALID_ARGUMENT, `malformed update for round ${u.round}: ${e.message}`);
      }
      const prev = this.updates.get(s.id);
      if (prev) {
        // a client that reconnected may send its update again; it must be the same one
        if (Buffer.compare(prev.payload, u.payload) !== 0) return this.reject(s, grpc.status.FAILED_PRECONDITION, `a second, different update for round ${u.round}`);
        return;
      }
      this.updates.set(s.id, { ...decoded, payload: u.payload });
      const bytes = wireBytes([u.round], u.payload.length);
      this.wire.up += bytes;
      this.emit({ kind: 'update', id: s.id, round: u.round, bytes });
      this.wake?.();
      return;
    }
    const l = m.loss;
    if (this.phase !== 'evaluate' || l.round !== this.evalRound || l.postHoc !== this.evalPostHoc) {
      return this.reject(s, grpc.status.FAILED_PRECONDITION, `loss for round ${l.round}${l.postHoc ? ' (post-hoc)' : ''} was not asked for`);
    }
    if (!Number.isFinite(l.loss)) return this.reject(s, grpc.status.INVALID_ARGUMENT, `loss ${l.loss} is not finite`);
    if (!this.losses.has(s.id)) this.losses.set(s.id, l.loss);
    this.wake?.();
  }

  /**
   * The smoothness constant a client reports is not used: γ 'auto' is 1/max L_i over the server's own copy
   * of the data, as in the simulator. A report that is not a finite positive number is refused; one that
   * differs from the server's L_i of that client is logged (the client's data is not the server's copy).
   */
  private checkSmoothness(id: number, reported: number): string | null {
    if (isNeuralNet(this.prepared.modelSpec)) return Number.isFinite(reported) ? null : `smoothness ${reported} is not a finite number`;
    if (!Number.isFinite(reported) || !(reported > 0)) return `smoothness ${reported} is not a finite number > 0`;
    const own = (this.ownSmoothness[id] ??= this.model.smoothness(this.prepared.dataset.clients[id]!));
    if (Math.abs(reported - own) > 1e-6 * own) {
      this.log(`warning: client ${id} reports a smoothness constant L = ${reported.toPrecision(6)}, the server's copy of its data gives ${own.toPrecision(6)}: its data differs from the server's; γ uses the server's values`);
    }
    return null;
  }

  /**
   * What a client that (re)joined a running run needs: γ, the current model, and the pending request. An
   * update the server holds from this client is kept if the client holds it too (`pendingRound`), so the
   * broadcast that includes it lets the client update h_i; otherwise the server drops its copy and asks again.
   */
  private catchUp(s: Session, pendingRound: number): void {
    this.send(s, { msg: 'start', start: { gamma: this.gamma! } });
    if (this.last) this.sendBroadcast(s, this.phase === 'evaluate' && this.evalRound === this.last.round && !this.losses.has(s.id));
    if (this.phase !== 'train' || !this.participants.has(s.id)) return;
    if (this.updates.has(s.id)) {
      if (pendingRound === this.round) return this.log(`client ${s.id} is back with its update of round ${this.round}, which the server holds: kept`);
      this.updates.delete(s.id);
      this.log(`client ${s.id} is back without its update of round ${this.round}: the server drops its copy and asks again`);
    }
    this.send(s, { msg: 'train', train: { round: this.round, steps: this.steps } });
  }

  private sendBroadcast(s: Session, wantLoss: boolean): void {
    const b = this.last!;
    const lastIncludedRound = this.lastIncluded[s.id]!;
    const evaluate = wantLoss && !this.evalPostHoc;
    const postHoc = wantLoss && this.evalPostHoc;
    this.send(s, { msg: 'broadcast', broadcast: { round: b.round, payload: b.payload, evaluate, postHoc, lastIncludedRound } });
    const bytes = wireBytes([b.round, lastIncludedRound], b.payload.length, 2);
    this.wire.down += bytes;
    this.emit({ kind: 'broadcast', id: s.id, round: b.round, bytes });
  }

  // ---- the run -----------------------------------------------------------------------------------

  /** Waits until `done()` holds or `timeout` seconds pass; false on timeout. */
  private async waitUntil(done: () => boolean, timeout: number | null): Promise<boolean> {
    const deadline = timeout === null ? Infinity : performance.now() + timeout * 1000;
    for (;;) {
      if (this.stopReason) throw new NetError(this.stopReason);
      if (done()) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = left === Infinity ? null : setTimeout(resolve, left);
        this.wake = () => {
          if (timer) clearTimeout(timer);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  /**
   * Waits for an answer from each of `ids`. Those that miss the round timeout abort the run or, with
   * allowPartial, are left out: of this round, and of the waiting in later rounds until they rejoin.
   */
  private async collect(ids: number[], has: (id: number) => boolean, what: string): Promise<number[]> {
    const { roundTimeout, allowPartial } = this.opts.config.server;
    const waitFor = ids.filter((i) => !this.absent.has(i));
    await this.waitUntil(() => waitFor.every(has), roundTimeout);
    const missing = waitFor.filter((i) => !has(i));
    const list = missing.length > 10 ? `${missing.slice(0, 10).join(', ')}, ... (${missing.length} in all)` : missing.join(', ');
    if (missing.length > 0 && !allowPartial) {
      throw new NetError(
        `round ${this.round}: no ${what} from client${missing.length > 1 ? 's' : ''} ${list} within the round timeout of ${roundTimeout} s; ` +
          'aborting, as the algorithms assume every client takes part (--allow-partial goes on without them; `serve --resume` continues from the last checkpoint)',
      );
    }
    if (missing.length > 0) {
      for (const i of missing) this.absent.add(i);
      const line = `round ${this.round}: going on without client${missing.length > 1 ? 's' : ''} ${list} (no ${what} within ${roundTimeout} s, --allow-partial)`;
      this.log(line);
      this.emit({ kind: 'note', what: 'timeout', message: line });
    }
    const answered = ids.filter(has);
    if (answered.length === 0) throw new NetError(`round ${this.round}: no client answered within ${roundTimeout} s`);
    return answered;
  }

  private async run(): Promise<ServeResult> {
    const { run: config, server: so } = this.opts.config;
    const { method, dataset } = this.prepared;
    const model = this.model;
    const d = this.dim;
    const n = this.n;
    const pruner = makePruner(model.layout, config.sparsity, config.topkScope);
    const h: (Float32Array | null)[] = Array.from({ length: n }, () => (method.controlVariates ? new Float32Array(d) : null));
    const out = so.out;
    const ckptDir = so.checkpointDir ?? out;
    mkdirSync(out, { recursive: true });
    mkdirSync(ckptDir, { recursive: true });
    const roundsPath = join(out, 'rounds.jsonl');
    const netPath = join(out, 'net.jsonl');

    this.log(`listening on ${so.host}:${this.port}${so.tls ? ' (TLS' + (so.tls.requireClientCert ? ', client certificates required)' : ')') : ' (no TLS)'}; waiting for ${n} clients`);
    if (!so.tls && !this.tokens) this.log('warning: no TLS and no tokens: anyone who can reach this port can join as any client');
    if (!so.tls && this.tokens) this.log('warning: tokens without TLS: they cross the network in plain text, where anyone on the path can read and reuse them (set tls)');
    await this.waitUntil(() => this.sessions.every((s) => s?.ready), null);

    const ckpt = this.opts.resume ? readStateFile<Checkpoint>(join(ckptDir, CHECKPOINT)) : null;
    if (this.opts.resume && !ckpt) this.log(`no checkpoint in ${ckptDir}: starting from round 0`);
    if (ckpt && ckpt.header.config !== JSON.stringify(config)) {
      throw new NetError(`the checkpoint in ${ckptDir} belongs to a different configuration; remove it or use the original config`);
    }
    // γ as in the simulator: 1/max L_i over the server's copy of the data for 'auto' (a network has no
    // smoothness constant: prepareRun's default step), never from what the clients report
    const L = this.prepared.L;
    this.gamma = ckpt ? ckpt.header.gamma : this.prepared.gamma;
    const step: StepConfig = { gamma: this.gamma, p: config.p, lambda: config.lambda as number, steDecay: config.steDecay, batchSize: config.batchSize, seed: config.seed };
    const ledger = ckpt ? Ledger.fromJSON(ckpt.header.ledger) : new Ledger(n);
    const test = dataset.test;
    const testMetricName = test ? model.metric(new Float32Array(d), test).name : null;

    // x₀ as in the simulator: --init's model, else 0 for convex models, the seeded random init for networks
    let current = initialModel(model, config.seed, this.prepared.init, config.pruneInit ? pruner : null);
    let average: Float32Array = current;
    let evalModel: Float32Array = current;
    let firstRound = 1;
    let elapsed = 0;
    let records: RoundRecord[] = [];
    let netRecords: NetRecord[] = [];
    if (ckpt) {
      const c = ckpt.header;
      const [payload, avg, mdl, ev, ...hs] = ckpt.sections;
      average = bytesF32(avg!);
      current = bytesF32(mdl!);
      evalModel = bytesF32(ev!);
      if (c.hasH) hs.forEach((x, i) => (h[i] = bytesF32(x)));
      this.lastIncluded = c.lastIncluded;
      this.round = c.round;
      this.steps = c.steps;
      this.last = { round: c.round, payload: payload! };
      elapsed = c.elapsed;
      firstRound = c.round + 1;
      // the record of the checkpointed round is redone below (its broadcast may not have reached everyone)
      truncateJsonl(roundsPath, c.round);
      records = readJsonl<RoundRecord>(roundsPath).records;
      netRecords = existsSync(netPath) ? readJsonl<NetRecord>(netPath).records.filter((x) => x.round < c.round) : [];
      writeFileAtomic(netPath, netRecords.map((x) => JSON.stringify(x) + '\n').join(''));
      this.log(`resuming after round ${c.round} from ${join(ckptDir, CHECKPOINT)}`);
      this.emit({ kind: 'note', what: 'resume', message: `resuming after round ${c.round}` });
    } else {
      this.last = { round: 0, payload: encode(toSparse(current)) };
    }
    const writer = new JsonlWriter(roundsPath, { append: ckpt !== null });
    const netWriter = new JsonlWriter(netPath, { append: ckpt !== null });
    const t0 = performance.now();
    const seconds = (): number => elapsed + (performance.now() - t0) / 1000;
    const all = Array.from({ length: n }, (_, i) => i);

    const evaluate = async (round: number, postHoc: boolean): Promise<number | null> => {
      this.losses = new Map();
      this.evalRound = round;
      this.evalPostHoc = postHoc;
      this.phase = 'evaluate';
      for (const s of this.sessions) if (s?.ready) this.sendBroadcast(s, true);
      const answered = await this.collect(all, (i) => this.losses.has(i), 'loss');
      return mean(Float64Array.from(answered, (i) => this.losses.get(i)!));
    };
    const record = async (round: number, steps: number, doEval: boolean): Promise<number> => {
      const t = performance.now();
      const trainLoss = doEval ? await evaluate(round, false) : null;
      if (!doEval) {
        // everyone still needs the new model (and no loss is wanted)
        this.evalRound = -1;
        this.phase = 'evaluate';
        for (const s of this.sessions) if (s?.ready) this.sendBroadcast(s, false);
      }
      const testMetric = doEval && test ? model.metric(evalModel, test).value : null;
      const rec = roundRecord(round, steps, trainLoss, testMetric, evalModel, controlVariateNorms(h, d), ledger, config.timing ? seconds() : null);
      records.push(rec);
      writer.write(rec);
      this.opts.onRound?.(rec, evalModel);
      this.emit({ kind: 'round', record: rec });
      return (performance.now() - t) / 1000;
    };

    this.log(`all ${n} clients ready; γ = ${this.gamma}${config.gamma === 'auto' ? ` (1/L, L = ${L} the largest over the server's copy of the clients' data)` : ''}`);
    this.emit({ kind: 'start', metricName: testMetricName });
    for (const s of this.sessions) if (s) this.send(s, { msg: 'start', start: { gamma: this.gamma } });
    let postHocTopk: { trainLoss: number; testMetric: number | null; nnz: number } | null = null;
    try {
      if (ckpt) {
        await record(this.round, this.steps, this.round % config.evalEvery === 0 || this.round === config.rounds);
      } else {
        await record(0, 0, true);
      }
      for (let r = firstRound; r <= config.rounds; r++) {
        const tRound = performance.now();
        this.wire = { up: 0, down: 0 };
        const steps = localStepsForRound(config.schedule, config.localSteps, config.p, config.seed, r);
        const participants = chooseParticipants(n, config.participation, config.seed, r);
        this.round = r;
        this.steps = steps;
        this.participants = new Set(participants);
        this.updates = new Map();
        this.phase = 'train';
        for (const i of participants) {
          const s = this.sessions[i];
          if (s?.ready) this.send(s, { msg: 'train', train: { round: r, steps } });
        }
        const answered = await this.collect(participants, (i) => this.updates.has(i), 'update');
        const trainSeconds = (performance.now() - tRound) / 1000;
        const sent = answered.map((i) => {
          const u = this.updates.get(i)!;
          ledger.record(r, 'up', i, floatsOf(u.kind, u.vector), u.payload.length, u.kind);
          return u.vector;
        });
        const server = serverStep(method, pruner, d, sent, answered, ledger, r);
        average = server.average;
        const b = server.broadcast;
        if (b.ref) answered.forEach((i, k) => updateControlVariate(method, h[i]!, sent[k]!, b.ref!, step));
        current = b.model;
        evalModel = evaluatedModel(method, average, b, pruner, config.postHocTopk);
        for (const i of answered) this.lastIncluded[i] = r;
        this.last = { round: r, payload: encode(server.down, server.downKind) };
        this.checkpoint(join(ckptDir, CHECKPOINT), { config: JSON.stringify(config), round: r, steps, gamma: this.gamma, elapsed: seconds(), ledger }, [average, current, evalModel], h);
        const evalSeconds = await record(r, steps, r % config.evalEvery === 0 || r === config.rounds);
        const net: NetRecord = {
          round: r,
          participants: participants.length,
          answered: answered.length,
          trainSeconds,
          evalSeconds,
          roundSeconds: (performance.now() - tRound) / 1000,
          wireUpBytes: this.wire.up,
          wireDownBytes: this.wire.down,
        };
        netRecords.push(net);
        netWriter.write(net);
      }
      if (!method.sparse && !config.postHocTopk && config.sparsity > 0) {
        const pruned = pruner.apply(average);
        postHocTopk = { trainLoss: (await evaluate(config.rounds, true))!, testMetric: test ? model.metric(pruned, test).value : null, nnz: nnz(pruned) };
      }
    } finally {
      writer.close();
      netWriter.close();
    }
    this.phase = 'done';
    for (const s of this.sessions) {
      if (s && !s.closed) {
        this.send(s, { msg: 'done', done: { message: `run finished after ${config.rounds} rounds` } });
        s.stream.end();
      }
    }
    writeFileAtomic(join(out, 'model.f32'), f32bytes(evalModel));
    const files = await writeModelFiles(out, evalModel, runModelInfo(this.prepared, records.at(-1)!.round, pruner.k));
    writeJsonAtomic(join(out, 'summary.json'), this.summary(records, netRecords, ledger, L, pruner, testMetricName, postHocTopk, files));
    this.log(`finished ${config.rounds} rounds -> ${out}`);
    return { records, net: netRecords, model: evalModel, out };
  }

  private checkpoint(
    path: string,
    c: Omit<Checkpoint, 'version' | 'lastIncluded' | 'ledger' | 'hasH'> & { ledger: Ledger },
    vectors: Float32Array[],
    h: (Float32Array | null)[],
  ): void {
    const hasH = h.every((x) => x !== null);
    const header: Checkpoint = { ...c, version: 1, lastIncluded: this.lastIncluded, ledger: c.ledger.toJSON(), hasH };
    writeStateFile(path, header, [this.last!.payload, ...vectors.map(f32bytes), ...(hasH ? h.map((x) => f32bytes(x!)) : [])]);
  }

  private summary(
    records: RoundRecord[],
    net: NetRecord[],
    ledger: Ledger,
    L: number,
    pruner: Pruner,
    testMetricName: ReturnType<Model['metric']>['name'] | null,
    postHocTopk: { trainLoss: number; testMetric: number | null; nnz: number } | null,
    files: ModelFiles,
  ): object {
    const { config, method, dataset, modelSpec } = this.prepared;
    const evaluated = records.filter((r) => r.trainLoss !== null);
    const meanOf = (f: (r: NetRecord) => number): number | null => (net.length ? net.reduce((s, r) => s + f(r), 0) / net.length : null);
    return {
      version: VERSION,
      algorithm: config.algorithm,
      config,
      method,
      dataset: { name: dataset.name, task: dataset.task, clients: dataset.clients.length, nFeatures: dataset.nFeatures, nClasses: dataset.nClasses },
      model: { spec: modelSpec, d: this.dim, k: pruner.k, ...files },
      gamma: this.gamma,
      L,
      roundsDone: records.length - 1,
      interrupted: false,
      final: evaluated.at(-1) ?? null,
      postHocTopk,
      testMetricName,
      communication: {
        uplinkFloatsPerRoundDense: this.dim * dataset.clients.length,
        encodings: ledger.encodingCounts(),
        perClient: ledger.perClient(),
      },
      network: {
        server: { ...this.opts.config.server, tls: this.opts.config.server.tls !== null, tokens: this.tokens !== null },
        meanRoundSeconds: meanOf((r) => r.roundSeconds),
        meanWireUpBytes: meanOf((r) => r.wireUpBytes),
        meanWireDownBytes: meanOf((r) => r.wireDownBytes),
      },
      warnings: this.prepared.warnings,
    };
  }
}
