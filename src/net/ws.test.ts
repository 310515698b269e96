/**
 * The WebSocket transport (issue 12, item 1): clients over WebSocket on the dashboard's port and clients
 * over gRPC in one federation, driven by the same session code, equal to the simulator; the same tokens,
 * refusals and limits as gRPC. On loopback, in-process.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { cli } from '../cli/testing.js';
import { resolveConfig, type RunConfig } from '../sim/config.js';
import { runClients, type ClientOptions } from './client.js';
import { SERVER_DEFAULTS, type ServerOptions } from './config.js';
import { federation } from './proto.js';
import { makeCerts } from './security.js';
import { FederationServer } from './server.js';
import { runWithVanishingClient, simulatedJsonl, tcpProxy } from './testing.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'spx-ws-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function serve(run: RunConfig, server: Partial<ServerOptions> = {}): Promise<{ srv: FederationServer; out: string; ws: string; base: ClientOptions }> {
  const out = join(tmp(), 'out');
  const srv = await FederationServer.start({
    config: { run, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 20, http: '127.0.0.1:0', ...server } },
    log: () => {},
  });
  const ws = srv.dashboardUrl!.replace(/^http/, 'ws');
  const base: ClientOptions = { server: `127.0.0.1:${srv.port}`, ids: [], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };
  return { srv, out, ws, base };
}

async function stop(srv: FederationServer): Promise<void> {
  srv.stop('test over');
  await srv.done.catch(() => {});
}

describe('clients over WebSocket and over gRPC in one federation', () => {
  for (const [algorithm, extra] of [
    ['sparse-proxskip', {}],
    ['proxskip', { sparsity: 0.5 }],
  ] as const) {
    it(`${algorithm}: one WebSocket client and three gRPC clients write the simulator's rounds.jsonl`, { timeout: 30_000 }, async () => {
      const config = resolveConfig({ algorithm, clients: 4, rounds: 4, timing: false, ...extra });
      const { srv, out, ws, base } = await serve(config);
      await Promise.all([runClients({ ...base, server: ws, ids: [2] }), runClients({ ...base, ids: [0, 1, 3] }), srv.done]);
      expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
    });
  }

  it('wss with the server certificate and tokens: the WebSocket client checks the certificate, presents its token, and the run equals the simulator', { timeout: 30_000 }, async () => {
    const dir = tmp();
    makeCerts({ out: dir, clients: 2, hosts: [], days: 1 });
    const tokens = new Map(Object.entries(JSON.parse(readFileSync(join(dir, 'tokens.json'), 'utf8')) as Record<string, string>).map(([k, v]) => [Number(k), v]));
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 2, rounds: 3, timing: false });
    const tls = { cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), ca: null, requireClientCert: false };
    const { srv, out, base } = await serve(config, { tls, tokens: join(dir, 'tokens.json'), http: 'localhost:0' });
    const wss = srv.dashboardUrl!.replace(/^https/, 'wss');
    expect(wss).toMatch(/^wss:\/\/localhost:\d+\/$/);
    const clientTls = { ca: join(dir, 'ca.pem'), cert: null, key: null };
    await Promise.all([runClients({ ...base, server: wss, ids: [0], tls: clientTls, tokens }), runClients({ ...base, server: `localhost:${srv.port}`, ids: [1], tls: clientTls, tokens }), srv.done]);
    expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
  });
});

/** A WebSocket driven by hand: what the server sent, and how it closed. */
function rawWs(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(`${url}ws`, { headers });
  const texts: string[] = [];
  const binaries: Buffer[] = [];
  ws.on('message', (d: Buffer, binary: boolean) => (binary ? binaries.push(d) : texts.push(d.toString())));
  const closed = new Promise<{ code: number; reason: string; status: { code: number; details: string } | null }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), status: texts.length ? (JSON.parse(texts.at(-1)!) as { code: number; details: string }) : null }));
  });
  const unexpected = new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode!)));
  ws.on('error', () => {});
  const opened = new Promise<void>((resolve) => ws.on('open', () => resolve()));
  return { ws, opened, closed, unexpected, binaries };
}

describe('the same refusals and limits as gRPC', () => {
  it('unknown id, wrong token, a second connection, a bad hello, an undecodable message, a message over the limit: each refused with its status', { timeout: 30_000 }, async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify({ '0': 'token-zero-0123456789', '1': 'token-one-0123456789' }));
    const { srv, ws } = await serve(resolveConfig({ algorithm: 'proxskip', clients: 2, rounds: 2, timing: false }), { tokens: join(dir, 'tokens.json'), maxMessageBytes: 1024 });
    try {
      const refusal = async (hello: string | Buffer, after?: Buffer) => {
        const c = rawWs(ws);
        await c.opened;
        c.ws.send(hello);
        if (after) {
          // wait for the welcome: the client was accepted
          while (c.binaries.length === 0) await new Promise((r) => setTimeout(r, 10));
          c.ws.send(after);
        }
        return c.closed;
      };
      expect(await refusal(JSON.stringify({ clientId: '7' }))).toEqual({
        code: 4000 + grpc.status.NOT_FOUND,
        reason: "unknown client id '7': this run has clients 0..1 (plain decimal integers)",
        status: { code: grpc.status.NOT_FOUND, details: "unknown client id '7': this run has clients 0..1 (plain decimal integers)" },
      });
      expect(await refusal(JSON.stringify({ clientId: '1', token: 'wrong-token-0123456789' }))).toMatchObject({ code: 4016, status: { code: grpc.status.UNAUTHENTICATED, details: 'client 1: missing or wrong token' } });
      expect(await refusal(JSON.stringify({ clientId: '01' }))).toMatchObject({ status: { code: grpc.status.NOT_FOUND } });
      expect(await refusal('not json')).toMatchObject({ status: { code: grpc.status.INVALID_ARGUMENT, details: 'the hello is not JSON' } });
      expect(await refusal(Buffer.from([1, 2, 3]))).toMatchObject({ status: { code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^the first frame must be the hello/) } });
      const hello0 = JSON.stringify({ clientId: '0', token: 'token-zero-0123456789' });
      expect(await refusal(hello0, Buffer.from([0xff, 0xff, 0xff]))).toMatchObject({ status: { code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^undecodable message of 3 bytes/) } });
      // an Update before Ready: in the wrong place
      const update = federation().service.Join!.requestSerialize({ update: { round: 1, payload: new Uint8Array(4) } });
      expect(await refusal(hello0, update)).toMatchObject({ status: { code: grpc.status.FAILED_PRECONDITION, details: 'update before the run started' } });
      // over maxMessageBytes + 64 KiB: refused by the frame's length, before it is read
      expect(await refusal(hello0, Buffer.alloc(1024 + 64 * 1024 + 1))).toMatchObject({ code: 1009, status: null });
      // a second connection for an id that is connected
      const first = rawWs(ws);
      await first.opened;
      first.ws.send(hello0);
      while (first.binaries.length === 0) await new Promise((r) => setTimeout(r, 10));
      expect(await refusal(hello0)).toMatchObject({ status: { code: grpc.status.ALREADY_EXISTS } });
      first.ws.terminate();
    } finally {
      await stop(srv);
    }
  });

  it('another origin, another path and a wrong Host are refused at the upgrade; a connection without a hello is closed after idleTimeout', { timeout: 30_000 }, async () => {
    const { srv, ws } = await serve(resolveConfig({ algorithm: 'proxskip', clients: 2, rounds: 2, timing: false }), { idleTimeout: 0.3 });
    try {
      expect(await rawWs(ws, { Origin: 'https://evil.example' }).unexpected).toBe(403);
      expect(await rawWs(ws, { Host: 'evil.example' }).unexpected).toBe(403);
      expect(await rawWs(ws, { Origin: ws.replace(/^ws/, 'http').slice(0, -1) }).opened).toBeUndefined(); // its own origin
      const other = new WebSocket(`${ws}other`);
      other.on('error', () => {});
      expect(await new Promise((r) => other.on('unexpected-response', (_q, res) => r(res.statusCode)))).toBe(404);
      const silent = rawWs(ws);
      await silent.opened;
      // maxConnections holds for the dashboard's port too (this one is the second open connection)
      const t0 = performance.now();
      expect((await silent.closed).code).toBe(1006); // terminated
      expect(performance.now() - t0).toBeGreaterThan(250);
    } finally {
      await stop(srv);
    }
  });

  it('a WebSocket client whose connection drops reconnects and the run still equals the simulator', { timeout: 30_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 2, rounds: 4, timing: false });
    const { srv, out, ws, base } = await serve(config);
    let cut = false;
    const onStep = (_id: number, step: string, round: number) => {
      if (!cut && step === 'update-sent' && round === 2) {
        cut = true;
        throw Object.assign(new Error('cut'), { code: grpc.status.UNAVAILABLE, details: 'cut by the test' });
      }
    };
    await Promise.all([runClients({ ...base, server: ws, ids: [0], onStep }), runClients({ ...base, ids: [1] }), srv.done]);
    expect(cut).toBe(true);
    expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
  });

  it('maxConnections bounds the connections of the dashboard port', { timeout: 30_000 }, async () => {
    const { srv, ws } = await serve(resolveConfig({ algorithm: 'proxskip', clients: 2, rounds: 2, timing: false }), { maxConnections: 2 });
    try {
      const [a, b] = [rawWs(ws), rawWs(ws)];
      await Promise.all([a.opened, b.opened]);
      const c = rawWs(ws);
      expect((await c.closed).code).toBe(1006); // closed by the server before the upgrade
      a.ws.terminate();
      b.ws.terminate();
    } finally {
      await stop(srv);
    }
  });
});

describe('client --server ws://HOST:PORT', () => {
  it("a client process over WebSocket with one over gRPC: the simulator's run; a bad --server is one line", { timeout: 60_000 }, async () => {
    const config = resolveConfig({ algorithm: 'proxskip', clients: 2, rounds: 2, timing: false });
    const { srv, out, ws, base } = await serve(config);
    const [r] = await Promise.all([cli('client', '--server', ws, '--client-id', '0'), runClients({ ...base, ids: [1] }), srv.done]);
    expect(r).toMatchObject({ code: 0 });
    expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
    expect((await cli('client', '--server', 'ws://host', '--client-id', '0')).stderr).toMatch(/--server must be HOST:PORT \(gRPC.*\) or ws:\/\/HOST:PORT, wss:\/\/HOST:PORT/);
  });
});

describe('keepalive over WebSocket', () => {
  it("the server's pings notice a WebSocket client that vanished without closing, and its replacement is accepted: the run matches the simulator", { timeout: 30_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 3, rounds: 6, timing: false });
    const logs: string[] = [];
    const out = join(tmp(), 'out');
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 10, http: '127.0.0.1:0', keepaliveTime: 0.2, keepaliveTimeout: 0.3 } },
      log: (l) => logs.push(l),
    });
    const httpPort = Number(new URL(srv.dashboardUrl!).port);
    const proxy = await tcpProxy(httpPort, { http: true });
    const base: ClientOptions = { server: `127.0.0.1:${srv.port}`, ids: [], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };
    try {
      // client 2 speaks WebSocket through the proxy, and its replacement too (directly)
      const ms = await runWithVanishingClient({
        base, proxy, via: `ws://127.0.0.1:${proxy.port}`, replacement: srv.dashboardUrl!.replace(/^http/, 'ws'),
        stateDir: join(tmp(), 'state'), logs, serverDone: srv.done,
      });
      expect(ms).toBeLessThan(5000);
      expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
    } finally {
      await stop(srv);
    }
  });

  it('a WebSocket client whose server went silent notices by its own pings, and gives up after its connect timeout instead of waiting forever', { timeout: 30_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 3, rounds: 6, timing: false });
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(tmp(), 'out'), roundTimeout: 30, http: '127.0.0.1:0', keepaliveTime: 3600, keepaliveTimeout: 3600 } },
      log: () => {},
    });
    const proxy = await tcpProxy(Number(new URL(srv.dashboardUrl!).port), { http: true });
    try {
      const t = performance.now();
      const client = runClients({
        server: `ws://127.0.0.1:${proxy.port}`,
        ids: [0, 1, 2],
        data: null,
        stateDir: null,
        tls: null,
        tokens: null,
        maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes,
        connectTimeout: 0.5,
        keepalive: { keepaliveTime: 0.2, keepaliveTimeout: 0.3 },
        log: () => {},
        onStep: (_id, step, round) => void (step === 'train' && round === 2 && proxy.freeze()),
      });
      await expect(client).rejects.toThrow(/cannot reach the server at ws:\/\/127\.0\.0\.1:\d+ for \d+ s/);
      expect(performance.now() - t).toBeLessThan(10_000);
    } finally {
      proxy.close();
      await stop(srv);
    }
  });
});
