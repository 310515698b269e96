/**
 * The live dashboard of a networked run (`serve --http [HOST:]PORT`): the page of `view`, fed by the
 * server as it runs. The server reports what happens as ServeEvents (at the points where it logs or
 * counts); a LiveRun keeps them as the dashboard's per-client table and event log in a MemorySource
 * (trackRun), and the dashboard's own HTTP(S) server (src/web/server.ts) shows them, with its safety
 * rules: 127.0.0.1 by default, TLS (the server's certificate) and a dashboard token anywhere else,
 * read-only, a Content-Security-Policy.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { RoundRecord } from '../sim/simulate.js';
import { MemorySource, trackRun } from '../web/memory-source.js';
import type { ClientRow, RunInfo } from '../web/protocol.js';
import { isLoopback, startDashboard, type DashboardOptions, type DashboardServer } from '../web/server.js';
import { parseHttpAddress, type ServeConfig } from './config.js';
import { throttled } from './listener.js';

/** What the server reports to its dashboard. */
export type ServeEvent =
  /** the run starts its rounds (all clients ready) */
  | { kind: 'start'; metricName: RunInfo['metricName'] }
  /** a client was accepted on `peer` */
  | { kind: 'join'; id: number; peer: string }
  | { kind: 'leave'; id: number; reason: string }
  /** a connection or a message refused; `id` when it names a client of this run */
  | { kind: 'refusal'; id: number | null; peer: string; reason: string }
  /** a Train request sent (the round trip is timed from here) */
  | { kind: 'train'; id: number; round: number }
  /** an update accepted: its bytes as sent on the wire */
  | { kind: 'update'; id: number; round: number; bytes: number }
  | { kind: 'broadcast'; id: number; round: number; bytes: number }
  | { kind: 'round'; record: RoundRecord }
  | { kind: 'note'; what: 'timeout' | 'resume' | 'info'; message: string }
  | { kind: 'end'; status: 'done' | 'interrupted' | 'failed'; message: string };

/** The dashboard token: in the environment unless a file is named. */
export const DASHBOARD_TOKEN_ENV = 'SPARSE_PROXSKIP_DASHBOARD_TOKEN';
/** The most distinct refusal reasons kept per client (the others are counted under the last one). */
export const REASONS_PER_CLIENT = 8;
/** The client table is sent to the page at most this often (a round of 300 clients is 600 events). */
const PUBLISH_MS = 250;

/** The per-client table and the event log of one run, from its ServeEvents. */
export class LiveRun {
  private readonly rows: ClientRow[];
  /** when each client's last Train was sent, in seconds */
  private readonly trainSent: (number | null)[];
  private readonly live: ReturnType<typeof trackRun>;
  private readonly logRefusal: (kind: string, line: string) => void;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    source: MemorySource,
    run: { id: string; title: string; algorithm: string; rounds: number; where: string; clients: number },
    /** seconds, for round trips */
    private readonly now: () => number = () => performance.now() / 1000,
  ) {
    this.rows = Array.from({ length: run.clients }, (_, id) => ({ id, connected: false, address: null, lastRound: null, uplinkBytes: 0, downlinkBytes: 0, refusals: [], lastRoundTrip: null }));
    this.trainSent = new Array(run.clients).fill(null);
    this.live = trackRun(source, { id: run.id, title: run.title, label: run.algorithm, method: run.algorithm, algorithm: run.algorithm, rounds: run.rounds, metricName: null, where: run.where });
    this.live.clients(this.rows.map((r) => ({ ...r })));
    // anyone can cause refusals: a flood of them is thinned out of the log (and counted) as in the server's log
    this.logRefusal = throttled((line) => this.live.event('refusal', line));
  }

  on(e: ServeEvent): void {
    const row = 'id' in e && e.id !== null && e.id >= 0 && e.id < this.rows.length ? this.rows[e.id]! : null;
    switch (e.kind) {
      case 'start':
        this.live.set({ metricName: e.metricName });
        return this.live.event('info', `all ${this.rows.length} clients ready: the rounds start`);
      case 'join':
        Object.assign(row!, { connected: true, address: e.peer });
        this.live.event('join', `client ${e.id} joined from ${e.peer}`);
        break;
      case 'leave':
        row!.connected = false;
        this.live.event('leave', `client ${e.id} left (${e.reason})`);
        break;
      case 'refusal':
        if (row) countRefusal(row, e.reason);
        this.logRefusal('refusal', `refused ${e.id === null ? '' : `client ${e.id} `}from ${e.peer}: ${e.reason}`);
        if (!row) return;
        break;
      case 'train':
        this.trainSent[e.id] = this.now();
        return;
      case 'update': {
        const sent = this.trainSent[e.id];
        Object.assign(row!, { lastRound: e.round, uplinkBytes: row!.uplinkBytes + e.bytes, lastRoundTrip: sent === null ? null : this.now() - sent! });
        break;
      }
      case 'broadcast':
        row!.downlinkBytes += e.bytes;
        break;
      case 'round':
        this.publish();
        return this.live.round(e.record);
      case 'note':
        return this.live.event(e.what, e.message);
      case 'end':
        this.publish();
        this.live.event('info', e.message);
        return this.live.finish(e.status, e.status === 'failed' ? e.message : undefined);
    }
    this.schedule();
  }

  /** The table as it stands (a copy). */
  clients(): ClientRow[] {
    return this.rows.map((r) => ({ ...r, refusals: r.refusals.map((x) => ({ ...x })) }));
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.publish(), PUBLISH_MS);
    this.timer.unref();
  }

  private publish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.live.clients(this.clients());
  }
}

function countRefusal(row: ClientRow, reason: string): void {
  const known = row.refusals.find((x) => x.reason === reason) ?? (row.refusals.length >= REASONS_PER_CLIENT ? row.refusals.at(-1) : undefined);
  if (known) known.count++;
  else row.refusals.push({ reason, count: 1 });
}

export interface ServeDashboard {
  url: string;
  on(e: ServeEvent): void;
  close(): Promise<void>;
}

/**
 * Starts the dashboard of `serve --http`, on HOST:PORT of `config.server.http`: HTTPS with the server's
 * certificate when TLS is configured; off loopback only with TLS and a dashboard token.
 */
export async function startServeDashboard(
  config: ServeConfig,
  clients: number,
  grpcWhere: string,
  /** the clients' WebSocket endpoint on the same port (ws.ts) */
  upgrade: DashboardOptions['upgrade'],
  /** the built page (default: dist/web/page) */
  assetsDir?: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServeDashboard> {
  const s = config.server;
  const { host, port } = parseHttpAddress(s.http!);
  const token = s.httpTokenFile !== null ? readLine(s.httpTokenFile) : env[DASHBOARD_TOKEN_ENV];
  if (token !== undefined && token.length < 16) throw new UsageError('serve: the dashboard token must have at least 16 characters');
  if (!isLoopback(host) && (!s.tls || token === undefined)) {
    throw new UsageError(`serve: http ${s.http} is not loopback: the dashboard there needs tls (the server's certificate) and a dashboard token (httpTokenFile or ${DASHBOARD_TOKEN_ENV})`);
  }
  // with requireClientCert the port asks for a client certificate (WebSocket clients must show one; a browser that only views need not)
  const tls = s.tls ? { cert: readFileSync(s.tls.cert), key: readFileSync(s.tls.key), ...(s.tls.requireClientCert && s.tls.ca && { ca: readFileSync(s.tls.ca), requestCert: true }) } : undefined;
  const source = new MemorySource();
  const server: DashboardServer = await startDashboard({ source, host, port, maxConnections: s.maxConnections, upgrade, ...(tls && { tls }), ...(token !== undefined && { token }), ...(assetsDir !== undefined && { assetsDir }) }).catch((e: Error) => {
    throw e instanceof UsageError ? new UsageError(`serve: http ${s.http}: ${e.message.replace(/^view: /, '')}`) : e;
  });
  const algorithm = config.run.algorithm;
  const run = new LiveRun(source, { id: 'net', title: `${algorithm} over the network (${grpcWhere})`, algorithm, rounds: config.run.rounds, where: grpcWhere, clients });
  return {
    url: server.url,
    on: (e) => run.on(e),
    close: async () => {
      await server.close();
      source.close();
    },
  };
}

function readLine(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n')[0]!.trim();
  } catch (e) {
    throw new UsageError(`serve: httpTokenFile ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}
