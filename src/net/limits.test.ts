/**
 * Connections: at most maxConnections, idle ones closed after idleTimeout, keepalive on both ends so a
 * peer that vanished without closing is noticed, and its replacement accepted. On loopback, in-process.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';
import { runClients, type ClientOptions } from './client.js';
import { parseServeConfig, SERVER_DEFAULTS, type ServerOptions } from './config.js';
import { throttled } from './listener.js';
import { makeCerts } from './security.js';
import { FederationServer } from './server.js';
import { runWithVanishingClient, simulatedJsonl, tcpProxy } from './testing.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'spx-limits-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const CONFIG = resolveConfig({ algorithm: 'sparse-proxskip', clients: 3, rounds: 6, timing: false });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function serve(server: Partial<ServerOptions>, logs: string[]): Promise<{ srv: FederationServer; base: ClientOptions; out: string }> {
  const out = join(tmp(), 'out');
  const srv = await FederationServer.start({
    config: { run: CONFIG, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 20, ...server } },
    log: (l) => logs.push(l),
    prepared: await prepareRun(CONFIG),
  });
  const base: ClientOptions = { server: `127.0.0.1:${srv.port}`, ids: [], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };
  return { srv, base, out };
}

/** Opens `n` TCP connections that never send a byte; resolves when all are connected (or closed by the server). */
async function silentSockets(port: number, n: number): Promise<{ sockets: Socket[]; open: () => number }> {
  const sockets = await Promise.all(
    Array.from({ length: n }, () => new Promise<Socket>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', () => resolve(s));
      // read, so the server's close is seen
      s.on('end', () => s.destroy());
      s.resume();
    })),
  );
  return { sockets, open: () => sockets.filter((s) => !s.destroyed).length };
}

async function stop(srv: FederationServer): Promise<void> {
  srv.stop('test over');
  await srv.done.catch(() => {});
}

describe('connection limits', () => {
  it('connections that never speak are closed after idleTimeout; past maxConnections they are closed at once; both are logged', { timeout: 30_000 }, async () => {
    const logs: string[] = [];
    const { srv } = await serve({ maxConnections: 5, idleTimeout: 0.3 }, logs);
    try {
      const flood = await silentSockets(srv.port, 12);
      await sleep(100);
      expect(flood.open()).toBe(5);
      expect(srv['listener'].size).toBe(5);
      await sleep(600);
      expect(flood.open()).toBe(0);
      expect(srv['listener'].size).toBe(0);
      expect(logs.filter((l) => l.includes('(maxConnections)'))).toHaveLength(7);
      expect(logs.filter((l) => l.includes('no client joined on it for 0.3 s (idleTimeout)'))).toHaveLength(5);
    } finally {
      await stop(srv);
    }
  });

  for (const tls of [false, true]) {
    it(`a connection that carries a client is never idle${tls ? ' (TLS: the listener does the handshake)' : ''}: a run of many idle timeouts matches the simulator`, { timeout: 30_000 }, async () => {
      const logs: string[] = [];
      const certs = tmp();
      if (tls) makeCerts({ out: certs, clients: 3, hosts: [], days: 1 });
      const { srv, base, out } = await serve(
        { idleTimeout: 0.1, ...(tls ? { tls: { cert: join(certs, 'server.pem'), key: join(certs, 'server.key'), ca: join(certs, 'ca.pem'), requireClientCert: true } } : {}) },
        logs,
      );
      try {
        // each local round takes 60 ms more, so the run lasts several idle timeouts
        await runClients({
          ...base,
          ...(tls ? { server: `localhost:${srv.port}`, tls: { ca: join(certs, 'ca.pem'), cert: join(certs, 'client.pem'), key: join(certs, 'client.key') } } : {}),
          ids: [0, 1, 2],
          onStep: (_id, step) => (step === 'train' ? sleep(60) : undefined),
        });
        await srv.done;
        expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(CONFIG));
        expect(logs.filter((l) => l.includes('idleTimeout'))).toEqual([]);
      } finally {
        await stop(srv);
      }
    });
  }

  it('a failed TLS handshake is logged', { timeout: 30_000 }, async () => {
    const logs: string[] = [];
    const certs = tmp();
    makeCerts({ out: certs, clients: 3, hosts: [], days: 1 });
    const { srv, base } = await serve({ tls: { cert: join(certs, 'server.pem'), key: join(certs, 'server.key'), ca: join(certs, 'ca.pem'), requireClientCert: true } }, logs);
    try {
      // no client certificate: the handshake fails
      await expect(runClients({ ...base, server: `localhost:${srv.port}`, tls: { ca: join(certs, 'ca.pem'), cert: null, key: null }, ids: [0], connectTimeout: 0.5 })).rejects.toThrow(/cannot reach the server/);
      expect(logs).toContainEqual(expect.stringMatching(/^TLS handshake with 127\.0\.0\.1:\d+ failed: .*certificate/i));
    } finally {
      await stop(srv);
    }
  });
});

describe('keepalive', () => {
  const fast = { keepaliveTime: 0.2, keepaliveTimeout: 0.3 };

  it('a client whose connection went silent is noticed by the server, and its replacement is accepted: the run matches the simulator', { timeout: 30_000 }, async () => {
    const logs: string[] = [];
    const { srv, base, out } = await serve({ ...fast, roundTimeout: 10 }, logs);
    const proxy = await tcpProxy(srv.port);
    try {
      // client 2's own pings are off, so only the server's can notice; its replacement connects directly
      const ms = await runWithVanishingClient({
        base, proxy, via: `127.0.0.1:${proxy.port}`, replacement: base.server,
        stateDir: join(tmp(), 'state'), logs, serverDone: srv.done, first: { keepalive: { keepaliveTime: 3600, keepaliveTimeout: 3600 } },
      });
      expect(ms).toBeLessThan(5000);
      expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(CONFIG));
    } finally {
      await stop(srv);
    }
  });

  it('a client whose server went silent notices, and gives up after its connect timeout instead of waiting forever', { timeout: 30_000 }, async () => {
    const logs: string[] = [];
    const { srv, base } = await serve({ keepaliveTime: 3600, keepaliveTimeout: 3600, roundTimeout: 30 }, logs);
    const proxy = await tcpProxy(srv.port);
    try {
      const t = performance.now();
      const client = runClients({
        ...base,
        server: `127.0.0.1:${proxy.port}`,
        ids: [0, 1, 2],
        connectTimeout: 0.5,
        keepalive: fast,
        onStep: (_id, step, round) => void (step === 'train' && round === 2 && proxy.freeze()),
      });
      await expect(client).rejects.toThrow(/cannot reach the server at 127\.0\.0\.1:\d+ for \d+ s/);
      expect(performance.now() - t).toBeLessThan(10_000);
    } finally {
      proxy.close();
      await stop(srv);
    }
  });
});

describe('the limits in a serve config', () => {
  const parse = (o: object) => () => parseServeConfig({ algorithm: 'proxskip', ...o }, '/base');
  it('default to values that fit a 24 GB machine, and can be set', () => {
    expect(parseServeConfig({ algorithm: 'proxskip' }, '/base').server).toMatchObject({ maxConnections: 1024, idleTimeout: 30, keepaliveTime: 30, keepaliveTimeout: 120 });
    expect(parseServeConfig({ algorithm: 'proxskip', maxConnections: 8, idleTimeout: 0.5, keepaliveTime: 10, keepaliveTimeout: 600 }, '/base').server).toMatchObject({ maxConnections: 8, idleTimeout: 0.5, keepaliveTime: 10, keepaliveTimeout: 600 });
  });
  it('refuses values out of range or of the wrong type, naming the key', () => {
    for (const v of [0, 1.5, 70000, '8', null]) expect(parse({ maxConnections: v })).toThrow(/maxConnections: must be an integer in 1\.\.65536/);
    for (const k of ['idleTimeout', 'keepaliveTime', 'keepaliveTimeout']) {
      for (const v of [0, -1, NaN, 1e9, '30', true]) expect(parse({ [k]: v })).toThrow(new RegExp(`${k}: must be a number of seconds in \\[0.01, 86400\\]`));
    }
  });
});

describe('throttled log', () => {
  it('keeps at most N lines of a kind a minute, then says how many it left out', () => {
    const lines: string[] = [];
    let now = 0;
    const log = throttled((l) => lines.push(l), 2, () => now);
    for (let i = 0; i < 5; i++) log('idle', `idle ${i}`);
    log('tls', 'tls 0');
    now = 60_000;
    log('idle', 'idle 5');
    expect(lines).toEqual(['idle 0', 'idle 1', 'tls 0', '(3 more lines like the next were left out in the last minute)', 'idle 5']);
  });
});
