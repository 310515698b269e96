/**
 * Every refusal of the server, each from a hand-driven raw client, while a real client waits in the
 * same round: the run then finishes exactly as the simulator's.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { createModel } from '../models/index.js';
import { resolveConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';
import { runClients } from './client.js';
import { SERVER_DEFAULTS } from './config.js';
import { channelOptions, federation, type ClientMessage, type ServerMessage } from './proto.js';
import { makeCerts } from './security.js';
import { FederationServer } from './server.js';
import { simulatedJsonl } from './testing.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'spx-sec-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Raw {
  next(): Promise<ServerMessage>;
  /** the next message of this kind, skipping others */
  until<K extends ServerMessage['msg']>(kind: K): Promise<Extract<ServerMessage, { msg: K }>>;
  send(m: ClientMessage): void;
  /** how the server ended the stream */
  status: Promise<{ code: grpc.status; details: string }>;
  close(): void;
}

/** A client driven by hand, message by message. */
function raw(port: number, id: string, token?: string, creds = grpc.credentials.createInsecure()): Raw {
  const { Client } = federation();
  // TLS names the server by host name (localhost is in the `certs` server certificate)
  const c = new Client(`${creds._isSecure() ? 'localhost' : '127.0.0.1'}:${port}`, creds, channelOptions(SERVER_DEFAULTS.maxMessageBytes, SERVER_DEFAULTS));
  const md = new grpc.Metadata();
  md.set('client-id', id);
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  const call = c.Join(md);
  const queue: ServerMessage[] = [];
  let waiter: (() => void) | null = null;
  call.on('data', (m: ServerMessage) => {
    queue.push(m);
    waiter?.();
  });
  const status = new Promise<{ code: grpc.status; details: string }>((resolve) => {
    call.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
  });
  const next = async (): Promise<ServerMessage> => {
    while (queue.length === 0) await new Promise<void>((r) => (waiter = r));
    return queue.shift()!;
  };
  return {
    next,
    async until(kind) {
      for (;;) {
        const m = await next();
        if (m.msg === kind) return m as never;
      }
    },
    send: (m) => call.write({ [m.msg]: (m as Record<string, unknown>)[m.msg] } as unknown as ClientMessage),
    status,
    close: () => {
      call.cancel();
      c.close();
    },
  };
}

/** A coo message (kind 1) written by hand, so it can be wrong in any way. */
function coo(d: number, idx: number[], vals: number[]): Uint8Array {
  const b = Buffer.alloc(9 + 8 * idx.length);
  b.writeUInt8(1, 0);
  b.writeUInt32LE(d, 1);
  b.writeUInt32LE(idx.length, 5);
  idx.forEach((i, k) => b.writeUInt32LE(i, 9 + 4 * k));
  vals.forEach((v, k) => b.writeFloatLE(v, 9 + 4 * idx.length + 4 * k));
  return new Uint8Array(b);
}

describe('the server refuses bad clients and bad messages', () => {
  it('each with a clear status to that client and a log line, and the round goes on for the others', { timeout: 60_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 2, rounds: 2, timing: false });
    const prepared = await prepareRun(config);
    const model = createModel(prepared.modelSpec);
    const d = model.layout.d;
    const shard = prepared.dataset.clients[1]!;
    const dir = tmp();
    const tokensPath = join(dir, 'tokens.json');
    const tokens = { '0': 'token-zero-0123456789', '1': 'token-one-0123456789' };
    writeFileSync(tokensPath, JSON.stringify(tokens));
    const maxMessageBytes = 4096;
    const logs: string[] = [];
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(dir, 'out'), tokens: tokensPath, maxMessageBytes, roundTimeout: 30 } },
      log: (l) => logs.push(l),
      prepared,
    });
    try {
      const clientOpts = { server: `127.0.0.1:${srv.port}`, data: null, stateDir: null, tls: null, maxMessageBytes, connectTimeout: 10, log: () => {} };
      const c0 = runClients({ ...clientOpts, ids: [0], tokens: new Map([[0, tokens['0']]]) });

      const refused = async (id: string, token: string | undefined): Promise<{ code: grpc.status; details: string }> => {
        const r = raw(srv.port, id, token);
        const s = await r.status;
        r.close();
        return s;
      };
      expect(await refused('7', tokens['1'])).toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringContaining("unknown client id '7'") });
      expect(await refused('1', 'wrong-token-0123456789')).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringContaining('wrong token') });
      expect(await refused('1', undefined)).toMatchObject({ code: grpc.status.UNAUTHENTICATED });

      /** Joins as client 1 up to its Train of round 1 (answering the evaluation of round 0 the first time). */
      const join1 = async (): Promise<Raw> => {
        const r = raw(srv.port, '1', tokens['1']);
        await r.until('welcome');
        r.send({ msg: 'ready', ready: { dim: d, smoothness: model.smoothness(shard), samples: shard.y.length, pendingRound: 0 } });
        const b = await r.until('broadcast');
        if (b.broadcast.evaluate) r.send({ msg: 'loss', loss: { round: 0, loss: model.lossGrad(new Float32Array(d), shard, null), postHoc: false } });
        await r.until('train');
        return r;
      };
      const first = await join1();
      // a second connection for the same id while the first is open
      expect(await refused('1', tokens['1'])).toMatchObject({ code: grpc.status.ALREADY_EXISTS, details: expect.stringContaining('already connected') });

      const bad: [string, number, Uint8Array, grpc.status, string][] = [
        ['wrong dimension', 1, coo(d - 1, [0], [1]), grpc.status.INVALID_ARGUMENT, `dimension d = ${d - 1}`],
        ['NaN', 1, coo(d, [0, 1], [1, NaN]), grpc.status.INVALID_ARGUMENT, 'not finite'],
        ['Inf', 1, coo(d, [2], [-Infinity]), grpc.status.INVALID_ARGUMENT, 'not finite'],
        ['index out of range', 1, coo(d, [d], [1]), grpc.status.INVALID_ARGUMENT, 'out of range'],
        ['unsorted indices', 1, coo(d, [5, 3], [1, 1]), grpc.status.INVALID_ARGUMENT, 'not increasing'],
        ['duplicate indices', 1, coo(d, [3, 3], [1, 1]), grpc.status.INVALID_ARGUMENT, 'duplicate'],
        ['over the maximum size', 1, coo(d, Array.from({ length: 600 }, (_, i) => i), new Array(600).fill(1)), grpc.status.RESOURCE_EXHAUSTED, 'exceeds the maximum message size of 4096'],
        ['over gRPC\'s limit', 1, new Uint8Array(200_000), grpc.status.RESOURCE_EXHAUSTED, ''],
        ['another round', 2, coo(d, [0], [1]), grpc.status.FAILED_PRECONDITION, 'update for round 2'],
      ];
      let r = first;
      for (const [what, round, payload, code, text] of bad) {
        r.send({ msg: 'update', update: { round, payload } });
        const s = await r.status;
        expect({ what, code: s.code }).toEqual({ what, code });
        expect(s.details).toContain(text);
        r.close();
        if (what !== bad.at(-1)![0]) r = await join1();
      }
      expect(logs.filter((l) => l.includes('rejected')).length).toBe(bad.length - 1); // gRPC itself refuses the one over its limit
      expect(logs.filter((l) => l.startsWith('refused')).length).toBe(4);

      // the real client 1 joins: the round completes as if nothing had happened
      await runClients({ ...clientOpts, ids: [1], tokens: new Map([[1, tokens['1']]]) });
      await c0;
      await srv.done;
      expect(readFileSync(join(dir, 'out', 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
    } finally {
      srv.stop('test over');
      await srv.done.catch(() => {});
    }
  });
});

describe('TLS', () => {
  it('mutual TLS with `certs` files: a run with client certificates matches the simulator; a client without one is refused', { timeout: 60_000 }, async () => {
    const dir = tmp();
    makeCerts({ out: dir, clients: 2, hosts: [], days: 1 });
    const config = resolveConfig({ algorithm: 'proxskip', clients: 2, rounds: 2, timing: false });
    const srv = await FederationServer.start({
      config: {
        run: config,
        server: {
          ...SERVER_DEFAULTS,
          host: '127.0.0.1',
          port: 0,
          out: join(dir, 'out'),
          roundTimeout: 30,
          tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), ca: join(dir, 'ca.pem'), requireClientCert: true },
          tokens: join(dir, 'tokens.json'),
        },
      },
      log: () => {},
    });
    try {
      const ca = readFileSync(join(dir, 'ca.pem'));
      const noCert = raw(srv.port, '0', undefined, grpc.credentials.createSsl(ca));
      expect((await noCert.status).code).toBe(grpc.status.UNAVAILABLE);
      noCert.close();
      const tokens = new Map(Object.entries(JSON.parse(readFileSync(join(dir, 'tokens.json'), 'utf8')) as Record<string, string>).map(([k, v]) => [Number(k), v]));
      await runClients({
        server: `localhost:${srv.port}`,
        ids: [0, 1],
        data: null,
        stateDir: null,
        tls: { ca: join(dir, 'ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client.key') },
        tokens,
        maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes,
        connectTimeout: 10,
        log: () => {},
      });
      await srv.done;
      expect(readFileSync(join(dir, 'out', 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
    } finally {
      srv.stop('test over');
      await srv.done.catch(() => {});
    }
  });
});
