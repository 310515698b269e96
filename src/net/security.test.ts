/**
 * Every refusal of the server, each from a hand-driven raw client, while a real client waits in the
 * same round: the run then finishes exactly as the simulator's.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { createModel } from '../models/index.js';
import { resolveConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';
import { runClients } from './client.js';
import { SERVER_DEFAULTS } from './config.js';
import { federation, PROTOCOL } from './proto.js';
import { makeCerts } from './security.js';
import { FederationServer } from './server.js';
import { rawClient, simulatedJsonl, type RawClient } from './testing.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'spx-sec-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

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
        const r = rawClient(srv.port, id, token);
        const s = await Promise.race([r.status, new Promise<{ code: number; details: string }>((res) => setTimeout(() => res({ code: -1, details: 'not refused within 5 s' }), 5000))]);
        r.close();
        return s;
      };
      expect(await refused('7', tokens['1'])).toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringContaining("unknown client id '7'") });
      // ids are plain decimal integers: the other spellings JavaScript's Number() reads as 1 are refused
      const oddIds = ['1e0', '0x1', '01', '+1', '1.0', ' 1'];
      for (const id of oddIds) expect(await refused(id, tokens['1'])).toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringContaining('plain decimal integers') });
      expect(await refused('1', 'wrong-token-0123456789')).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringContaining('wrong token') });
      expect(await refused('1', undefined)).toMatchObject({ code: grpc.status.UNAUTHENTICATED });

      /** Joins as client 1 up to its Train of round 1 (answering the evaluation of round 0 the first time). */
      const join1 = async (): Promise<RawClient> => {
        const r = rawClient(srv.port, '1', tokens['1']);
        await r.until('welcome');
        r.send({ msg: 'ready', ready: { dim: d, smoothness: model.smoothness(shard), samples: shard.y.length, pendingRound: 0, protocol: PROTOCOL } });
        const b = await r.until('broadcast');
        if (b.broadcast.evaluate) r.send({ msg: 'loss', loss: { round: 0, loss: model.lossGrad(new Float32Array(d), shard, null), postHoc: false } });
        await r.until('train');
        return r;
      };
      const first = await join1();
      // a second connection for the same id while the first is open
      expect(await refused('1', tokens['1'])).toMatchObject({ code: grpc.status.ALREADY_EXISTS, details: expect.stringContaining('already connected') });

      const update = (round: number, payload: Uint8Array) => (r: RawClient) => r.send({ msg: 'update', update: { round, payload } });
      const bytes = (b: Uint8Array) => (r: RawClient) => r.sendBytes(b);
      const serialize = federation().service.Join!.requestSerialize;
      const bad: [string, (r: RawClient) => void, grpc.status, string][] = [
        ['wrong dimension', update(1, coo(d - 1, [0], [1])), grpc.status.INVALID_ARGUMENT, `dimension d = ${d - 1}`],
        ['NaN', update(1, coo(d, [0, 1], [1, NaN])), grpc.status.INVALID_ARGUMENT, 'not finite'],
        ['Inf', update(1, coo(d, [2], [-Infinity])), grpc.status.INVALID_ARGUMENT, 'not finite'],
        ['index out of range', update(1, coo(d, [d], [1])), grpc.status.INVALID_ARGUMENT, 'out of range'],
        ['unsorted indices', update(1, coo(d, [5, 3], [1, 1])), grpc.status.INVALID_ARGUMENT, 'not increasing'],
        ['duplicate indices', update(1, coo(d, [3, 3], [1, 1])), grpc.status.INVALID_ARGUMENT, 'duplicate'],
        ['over the maximum size', update(1, coo(d, Array.from({ length: 600 }, (_, i) => i), new Array(600).fill(1))), grpc.status.RESOURCE_EXHAUSTED, 'exceeds the maximum message size of 4096'],
        ["over gRPC's limit", update(1, new Uint8Array(200_000)), grpc.status.RESOURCE_EXHAUSTED, ''],
        ['another round', update(2, coo(d, [0], [1])), grpc.status.FAILED_PRECONDITION, 'update for round 2'],
        // issue 10: an empty ClientMessage after Start crashed the server
        ['an empty message', bytes(new Uint8Array(0)), grpc.status.INVALID_ARGUMENT, 'an empty message (none of ready, update, loss)'],
        ['two kinds in one', bytes(Buffer.concat([serialize({ ready: { dim: d } }), serialize({ loss: { round: 1, loss: 1 } })])), grpc.status.INVALID_ARGUMENT, 'several kinds (ready, loss)'],
        ['undecodable protobuf', bytes(Uint8Array.of(0x0a, 0xff)), grpc.status.INVALID_ARGUMENT, 'undecodable message of 2 bytes'],
        ['Ready again', (r) => r.send({ msg: 'ready', ready: { dim: d, smoothness: 1, samples: 1, pendingRound: 0, protocol: PROTOCOL } }), grpc.status.FAILED_PRECONDITION, 'sent Ready twice'],
        ['a loss not asked for', (r) => r.send({ msg: 'loss', loss: { round: 1, loss: 1, postHoc: false } }), grpc.status.FAILED_PRECONDITION, 'was not asked for'],
      ];
      let r = first;
      for (const [what, send, code, text] of bad) {
        send(r);
        const s = await r.status;
        expect({ what, code: s.code }).toEqual({ what, code });
        expect(s.details).toContain(text);
        r.close();
        if (what !== bad.at(-1)![0]) r = await join1();
      }
      // gRPC itself refuses the one over its limit; the log says so, from the status it sent
      expect(logs.filter((l) => l.includes('rejected')).length).toBe(bad.length - 1);
      expect(logs).toContainEqual(expect.stringMatching(/^client 1 disconnected \(gRPC refused it: RESOURCE_EXHAUSTED: Received message larger than max/));
      expect(logs.filter((l) => l.startsWith('refused')).length).toBe(4 + oddIds.length);

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
      const noCert = rawClient(srv.port, '0', undefined, grpc.credentials.createSsl(ca));
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

describe('the smoothness constant a client reports', () => {
  it('must be a finite positive number, and does not set γ: the server uses its own copy of the data, and logs a disagreement', { timeout: 60_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 2, rounds: 2, timing: false });
    const prepared = await prepareRun(config);
    const model = createModel(prepared.modelSpec);
    const d = model.layout.d;
    const dir = tmp();
    const logs: string[] = [];
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(dir, 'out'), roundTimeout: 30 } },
      log: (l) => logs.push(l),
      prepared,
    });
    try {
      const clientOpts = { server: `127.0.0.1:${srv.port}`, data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };
      const c0 = runClients({ ...clientOpts, ids: [0] });
      const ready = (smoothness: number, protocol = PROTOCOL): RawClient => {
        const r = rawClient(srv.port, '1');
        r.send({ msg: 'ready', ready: { dim: d, smoothness, samples: 1, pendingRound: 0, protocol } });
        return r;
      };
      // a client of the protocol before issue 10 (no pending_round, no protocol field) would diverge silently
      const old = ready(1, 0);
      expect(await old.status).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: 'client 1 speaks protocol 0, this server 2: run the same sparse-proxskip version on both ends' });
      old.close();
      for (const bad of [NaN, Infinity, 0, -1]) {
        const r = ready(bad);
        expect(await r.status).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: `smoothness ${bad} is not a finite number > 0` });
        r.close();
      }
      // a huge L (it would make γ = 1/L tiny for everyone): accepted, logged, and not used
      const huge = ready(1e30);
      const start = await huge.until('start');
      expect(start.start.gamma).toBe(prepared.gamma);
      expect(logs).toContainEqual(expect.stringMatching(/^warning: client 1 reports a smoothness constant L = 1\.00000e\+30, the server's copy of its data gives /));
      huge.close();
      await runClients({ ...clientOpts, ids: [1] });
      await c0;
      await srv.done;
      expect(readFileSync(join(dir, 'out', 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
    } finally {
      srv.stop('test over');
      await srv.done.catch(() => {});
    }
  });
});

describe('certs', () => {
  it('writes the private keys and the tokens readable by their owner only (0600), in a new directory of mode 0700', () => {
    const dir = join(tmp(), 'new', 'certs');
    makeCerts({ out: dir, clients: 2, hosts: [], days: 1 });
    const mode = (f: string): number => statSync(join(dir, f)).mode & 0o777;
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of ['server.key', 'client.key', 'tokens.json']) expect({ f, mode: mode(f) }).toEqual({ f, mode: 0o600 });
    // certificates are public (the umask may take more away)
    for (const f of ['ca.pem', 'server.pem', 'client.pem']) expect(mode(f) & 0o600).toBe(0o600);
  });
});
