/**
 * `serve --http`: the live dashboard of a networked run. The per-client table and the event log from
 * hand-made server events; then a real run on loopback, watched over HTTP (the JSON API and the
 * Server-Sent Events) while it runs.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { resolveConfig } from '../sim/config.js';
import type { RoundRecord } from '../sim/simulate.js';
import { MemorySource } from '../web/memory-source.js';
import type { DashboardEvent, DashboardState, LogEntry, RunPayload } from '../web/protocol.js';
import { runClients } from './client.js';
import { SERVER_DEFAULTS, type ServerOptions } from './config.js';
import { LiveRun, REASONS_PER_CLIENT } from './dashboard.js';
import { makeCerts } from './security.js';
import { FederationServer, type NetRecord } from './server.js';
import { rawClient, simulatedJsonl } from './testing.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'spx-netdash-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const record = (round: number): RoundRecord => ({
  round,
  localSteps: round === 0 ? 0 : 5,
  trainLoss: 1,
  testMetric: null,
  nnz: 3,
  sumHNorm: 0,
  hNormSum: 0,
  uplinkFloats: 6 * round,
  uplinkBytes: 60 * round,
  downlinkFloats: 6 * round,
  downlinkBytes: 60 * round,
  seconds: null,
});

describe('LiveRun: the server events as the client table and the event log', () => {
  it('joins, round trips, bytes, refusals by reason, leaves, rounds and the end, by hand', () => {
    const source = new MemorySource();
    let t = 10;
    const live = new LiveRun(source, { id: 'net', title: 't', algorithm: 'proxskip', rounds: 2, where: '127.0.0.1:1', clients: 2 }, () => t);
    live.on({ kind: 'join', id: 0, peer: 'ipv4:127.0.0.1:4000' });
    live.on({ kind: 'join', id: 1, peer: 'ipv4:127.0.0.1:4001' });
    live.on({ kind: 'refusal', id: null, peer: 'ipv4:127.0.0.1:4002', reason: "unknown client id '7'" });
    live.on({ kind: 'refusal', id: 1, peer: 'ipv4:127.0.0.1:4003', reason: 'client 1: missing or wrong token' });
    live.on({ kind: 'refusal', id: 1, peer: 'ipv4:127.0.0.1:4003', reason: 'client 1: missing or wrong token' });
    live.on({ kind: 'start', metricName: 'r2' });
    live.on({ kind: 'broadcast', id: 0, round: 0, bytes: 50 });
    live.on({ kind: 'broadcast', id: 1, round: 0, bytes: 50 });
    live.on({ kind: 'round', record: record(0) });
    live.on({ kind: 'train', id: 0, round: 1 });
    live.on({ kind: 'train', id: 1, round: 1 });
    t = 10.25;
    live.on({ kind: 'update', id: 0, round: 1, bytes: 100 });
    t = 10.5;
    live.on({ kind: 'update', id: 1, round: 1, bytes: 80 });
    live.on({ kind: 'broadcast', id: 0, round: 1, bytes: 70 });
    live.on({ kind: 'leave', id: 1, reason: 'stream closed' });
    live.on({ kind: 'round', record: record(1) });
    expect(live.clients()).toEqual([
      { id: 0, connected: true, address: 'ipv4:127.0.0.1:4000', lastRound: 1, uplinkBytes: 100, downlinkBytes: 120, refusals: [], lastRoundTrip: 0.25 },
      { id: 1, connected: false, address: 'ipv4:127.0.0.1:4001', lastRound: 1, uplinkBytes: 80, downlinkBytes: 50, refusals: [{ reason: 'client 1: missing or wrong token', count: 2 }], lastRoundTrip: 0.5 },
    ]);
    // published at each round (and at most every 250 ms between them)
    expect(source.clients('net')).toEqual(live.clients());
    live.on({ kind: 'note', what: 'timeout', message: 'round 2: going on without client 1' });
    live.on({ kind: 'end', status: 'failed', message: 'round 2: no client answered' });
    expect(source.log('net').map((e: LogEntry) => `${e.kind} ${e.message}`)).toEqual([
      'join client 0 joined from ipv4:127.0.0.1:4000',
      'join client 1 joined from ipv4:127.0.0.1:4001',
      "refusal refused from ipv4:127.0.0.1:4002: unknown client id '7'",
      'refusal refused client 1 from ipv4:127.0.0.1:4003: client 1: missing or wrong token',
      'refusal refused client 1 from ipv4:127.0.0.1:4003: client 1: missing or wrong token',
      'info all 2 clients ready: the rounds start',
      'leave client 1 left (stream closed)',
      'timeout round 2: going on without client 1',
      'info round 2: no client answered',
    ]);
    expect(source.records('net')!.map((r) => r.round)).toEqual([0, 1]);
    expect(source.state().runs).toEqual([
      { id: 'net', group: 'net', label: 'proxskip', method: 'proxskip', algorithm: 'proxskip', rounds: 2, metricName: 'r2', where: '127.0.0.1:1', status: 'failed', roundsDone: 1, error: 'round 2: no client answered' },
    ]);
  });

  it('keeps at most REASONS_PER_CLIENT reasons per client and 10 refusal lines a minute: a flood is bounded', () => {
    const source = new MemorySource();
    const live = new LiveRun(source, { id: 'net', title: 't', algorithm: 'fedavg', rounds: 1, where: 'x', clients: 1 });
    for (let i = 0; i < 1000; i++) live.on({ kind: 'refusal', id: 0, peer: 'p', reason: `reason ${i}` });
    const [row] = live.clients();
    expect(row!.refusals).toHaveLength(REASONS_PER_CLIENT);
    expect(row!.refusals.reduce((s, x) => s + x.count, 0)).toBe(1000);
    expect(row!.refusals.at(-1)).toEqual({ reason: `reason ${REASONS_PER_CLIENT - 1}`, count: 1000 - REASONS_PER_CLIENT + 1 });
    expect(source.log('net')).toHaveLength(10);
  });
});

/** GET on the dashboard: status and parsed JSON. */
function getJson<T>(url: string, ca?: string, token?: string): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const cb = (res: IncomingMessage) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: (res.headers['content-type'] ?? '').startsWith('application/json') ? JSON.parse(text) : text }));
    };
    const req = ca ? httpsGet(url, { ca, headers }, cb) : httpGet(url, { headers }, cb);
    req.on('error', reject);
  });
}

/** The dashboard's Server-Sent Events, collected until the server closes the stream. */
function events(url: string): { seen: DashboardEvent[]; open: Promise<void>; closed: Promise<void> } {
  const seen: DashboardEvent[] = [];
  let opened!: () => void;
  const open = new Promise<void>((r) => (opened = r));
  const closed = new Promise<void>((resolve, reject) => {
    httpGet(`${url}api/events`, (res) => {
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        if (buf.startsWith('retry:')) opened();
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const data = /^data: (.*)$/m.exec(buf.slice(0, end))?.[1];
          if (data) seen.push(JSON.parse(data) as DashboardEvent);
          buf = buf.slice(end + 2);
        }
      });
      res.on('end', () => resolve());
    }).on('error', reject);
  });
  return { seen, open, closed };
}

const base = { data: null, stateDir: null, tls: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };

async function start(dir: string, rounds: number, server: Partial<ServerOptions> = {}): Promise<FederationServer> {
  const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 2, rounds, timing: false });
  return FederationServer.start({
    config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(dir, 'out'), roundTimeout: 20, http: '127.0.0.1:0', ...server } },
    log: () => {},
  });
}

describe('serve with http: the live dashboard of a networked run on loopback', () => {
  it('shows the clients as they join and are refused, every round, and the event log; the run is the simulator’s', { timeout: 30_000 }, async () => {
    const dir = tmp();
    const tokens = { '0': 'token-zero-0123456789', '1': 'token-one-0123456789' };
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(tokens));
    const srv = await start(dir, 3, { tokens: join(dir, 'tokens.json') });
    const url = srv.dashboardUrl!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const sse = events(url);
    await sse.open;
    // a stranger and a wrong token are refused; client 0 joins and waits for client 1
    const stranger = rawClient(srv.port, '7');
    const wrong = rawClient(srv.port, '1', 'not-the-token-0123');
    await Promise.all([stranger.status, wrong.status]);
    stranger.close();
    wrong.close();
    const first = runClients({ ...base, server: `127.0.0.1:${srv.port}`, ids: [0], tokens: new Map([[0, tokens['0']]]) });
    let payload!: RunPayload;
    for (let i = 0; i < 200; i++) {
      payload = (await getJson<RunPayload>(`${url}api/runs/net`)).body;
      if (payload.clients[0]!.connected) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const state = (await getJson<DashboardState>(`${url}api/state`)).body;
    expect(state.runs).toEqual([expect.objectContaining({ id: 'net', algorithm: 'sparse-proxskip', status: 'running', rounds: 3, roundsDone: 0, where: `127.0.0.1:${srv.port}` })]);
    expect(payload.records).toEqual([]);
    expect(payload.clients[0]).toMatchObject({ id: 0, connected: true, address: expect.stringMatching(/127\.0\.0\.1:\d+$/) });
    expect(payload.clients[1]).toMatchObject({ id: 1, connected: false, address: null, refusals: [{ reason: 'client 1: missing or wrong token', count: 1 }] });
    expect(payload.log.map((e) => e.kind)).toEqual(['refusal', 'refusal', 'join']);

    await Promise.all([first, runClients({ ...base, server: `127.0.0.1:${srv.port}`, ids: [1], tokens: new Map([[1, tokens['1']]]) }), srv.done]);
    await sse.closed; // the dashboard closes with the server
    const out = join(dir, 'out');
    const jsonl = readFileSync(join(out, 'rounds.jsonl'), 'utf8');
    expect(jsonl).toBe(await simulatedJsonl(resolveConfig({ algorithm: 'sparse-proxskip', clients: 2, rounds: 3, timing: false })));
    // every round reached the page, in order: the rounds.jsonl records
    const rounds = sse.seen.flatMap((e) => (e.type === 'rounds' ? e.records : []));
    expect(rounds.map((r) => JSON.stringify(r) + '\n').join('')).toBe(jsonl);
    const runs = sse.seen.flatMap((e) => (e.type === 'run' ? [e.run] : []));
    expect(runs.map((r) => r.roundsDone).filter((x, i, a) => x > 0 && x !== a[i - 1])).toEqual([1, 2, 3]);
    expect(runs.at(-1)).toMatchObject({ status: 'done', roundsDone: 3 });
    // the last client table: both took part in every round; their uplink bytes add up to net.jsonl's
    const clients = sse.seen.flatMap((e) => (e.type === 'clients' ? [e.clients] : [])).at(-1)!;
    const net = readFileSync(join(out, 'net.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as NetRecord);
    expect(clients.map((c) => c.lastRound)).toEqual([3, 3]);
    expect(clients[0]!.uplinkBytes + clients[1]!.uplinkBytes).toBe(net.reduce((s, r) => s + r.wireUpBytes, 0));
    expect(clients[0]!.downlinkBytes).toBe(clients[1]!.downlinkBytes);
    for (const c of clients) expect(c.lastRoundTrip! > 0 && c.lastRoundTrip! < 10).toBe(true);
    const log = sse.seen.flatMap((e) => (e.type === 'log' ? e.entries : []));
    expect(log.map((e) => e.kind)).toEqual(['refusal', 'refusal', 'join', 'join', 'info', 'info']);
    expect(log.at(-1)!.message).toBe('finished 3 rounds');
  });

  it('a resumed run says so in the event log', { timeout: 30_000 }, async () => {
    const dir = tmp();
    const first = await start(dir, 2);
    await Promise.all([runClients({ ...base, server: `127.0.0.1:${first.port}`, ids: [0, 1], tokens: null, stateDir: join(dir, 'state') }), first.done]);
    // resuming a finished run is refused; remove summary.json to resume from the checkpoint of the last round
    rmSync(join(dir, 'out', 'summary.json'));
    const srv = await FederationServer.start({
      config: { run: resolveConfig({ algorithm: 'sparse-proxskip', clients: 2, rounds: 2, timing: false }), server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(dir, 'out'), roundTimeout: 20, http: '127.0.0.1:0' } },
      resume: true,
      log: () => {},
    });
    const sse = events(srv.dashboardUrl!);
    await sse.open;
    await Promise.all([runClients({ ...base, server: `127.0.0.1:${srv.port}`, ids: [0, 1], tokens: null, stateDir: join(dir, 'state') }), srv.done]);
    await sse.closed;
    const log = sse.seen.flatMap((e) => (e.type === 'log' ? e.entries : []));
    expect(log.map((e) => `${e.kind} ${e.message}`)).toContain('resume resuming after round 2');
  });

  it('off loopback it needs TLS and a token; with TLS it serves HTTPS with the server certificate, and a token when given', { timeout: 30_000 }, async () => {
    const dir = tmp();
    await expect(start(dir, 1, { http: '0.0.0.0:0' })).rejects.toThrow(
      new UsageError("serve: http 0.0.0.0:0 is not loopback: the dashboard there needs tls (the server's certificate) and a dashboard token (httpTokenFile or SPARSE_PROXSKIP_DASHBOARD_TOKEN)"),
    );
    writeFileSync(join(dir, 'short'), 'short\n');
    await expect(start(dir, 1, { httpTokenFile: join(dir, 'short') })).rejects.toThrow('serve: the dashboard token must have at least 16 characters');
    makeCerts({ out: join(dir, 'certs'), clients: 2, hosts: [], days: 1 });
    const token = 'dashboard-token-0123456789';
    writeFileSync(join(dir, 'dash.token'), `${token}\n`);
    const tls = { cert: join(dir, 'certs', 'server.pem'), key: join(dir, 'certs', 'server.key'), ca: null, requireClientCert: false };
    const srv = await start(dir, 1, { http: 'localhost:0', tls, httpTokenFile: join(dir, 'dash.token') });
    try {
      const url = srv.dashboardUrl!;
      expect(url).toMatch(/^https:\/\/localhost:\d+\/$/);
      const ca = readFileSync(join(dir, 'certs', 'ca.pem'), 'utf8');
      expect((await getJson(`${url}api/state`, ca)).status).toBe(401);
      const ok = await getJson<DashboardState>(`${url}api/state`, ca, token);
      expect(ok.status).toBe(200);
      expect(ok.body.runs.map((r) => r.id)).toEqual(['net']);
    } finally {
      srv.stop('test over');
      await srv.done.catch(() => {});
    }
  });
});
