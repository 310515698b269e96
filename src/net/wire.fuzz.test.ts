/**
 * Fuzzing the wire: whatever bytes or values a peer sends, the decoder and the server's handlers give a
 * valid message or a clean one-line refusal, within bounded time, and the run goes on. FUZZ_RUNS=N runs N
 * cases per property (default: a few seconds in all, for `npm test`).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { decode, encode, EncodingError } from '../core/encoding.js';
import { toSparse } from '../core/sparse.js';
import { createModel } from '../models/index.js';
import { resolveConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';
import { runClients } from './client.js';
import { SERVER_DEFAULTS } from './config.js';
import { checkClientMessage, decodeClientMessage, federation, PROTOCOL, wireBytes, type ClientMessage, type Refusal } from './proto.js';
import { FederationServer } from './server.js';
import { rawClient, simulatedJsonl } from './testing.js';

const RUNS = Number(process.env.FUZZ_RUNS) || 0;
/** Cases per property: FUZZ_RUNS, or `base` */
const runs = (base: number): number => RUNS || base;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const join_ = federation().service.Join!;
const serialize = (m: unknown): Buffer => join_.requestSerialize(m);

/** Any ClientMessage a protobuf encoder could write, with values of every range. */
const uint32 = fc.oneof(fc.constantFrom(0, 1, 2, 0xffffffff), fc.nat({ max: 0xffffffff }));
const double = fc.oneof(fc.constantFrom(0, -0, 1, -1, NaN, Infinity, -Infinity, 1e308, 5e-324), fc.double());
const payload = fc.uint8Array({ maxLength: 300 });
const clientMessage = fc.oneof(
  fc.record({ ready: fc.record({ dim: uint32, smoothness: double, samples: uint32, pendingRound: uint32, protocol: uint32 }) }),
  fc.record({ update: fc.record({ round: uint32, payload }) }),
  fc.record({ loss: fc.record({ round: uint32, loss: double, postHoc: fc.boolean() }) }),
  fc.constant({}),
);

/** A message, then damaged: bytes flipped, cut, or spliced in. */
const mutated = fc
  .tuple(clientMessage, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'insert')), { maxLength: 6 }))
  .map(([m, edits]) => {
    const bytes = [...serialize(m)];
    for (const [at, byte, how] of edits) {
      const i = bytes.length === 0 ? 0 : at % bytes.length;
      if (how === 'flip' && bytes.length > 0) bytes[i] = byte;
      else if (how === 'cut') bytes.length = i;
      else bytes.splice(i, 0, byte);
    }
    return Uint8Array.from(bytes);
  });

/** Decodes, checking the promise: a message or a one-line refusal, never a throw, in bounded time. */
function decodeChecked(bytes: Uint8Array): ClientMessage | Refusal {
  const t = performance.now();
  const m = decodeClientMessage(bytes);
  expect(performance.now() - t).toBeLessThan(250);
  if ('refused' in m) {
    expect(m.refused).toMatch(/^[^\n\r]{1,260}$/);
  } else {
    expect(['ready', 'update', 'loss']).toContain(m.msg);
    // exactly what a well-formed message of that kind holds
    expect(checkClientMessage(m)).toEqual(m);
  }
  return m;
}

describe('the wire decoder (decodeClientMessage)', () => {
  it('random bytes: a checked message or a one-line refusal, never a throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => void decodeChecked(b)), { numRuns: runs(2000) });
  });

  it('damaged messages: the same', () => {
    fc.assert(fc.property(mutated, (b) => void decodeChecked(b)), { numRuns: runs(2000) });
  });

  it('well-formed messages decode to themselves (and the empty one is refused)', () => {
    fc.assert(
      fc.property(clientMessage, (m) => {
        const got = decodeChecked(serialize(m));
        const kind = Object.keys(m)[0];
        if (kind === undefined) return void expect(got).toEqual({ refused: 'an empty message (none of ready, update, loss)' });
        expect(got).toMatchObject({ msg: kind });
      }),
      { numRuns: runs(500) },
    );
  });

  it('any JavaScript value: checkClientMessage never throws', () => {
    fc.assert(
      fc.property(fc.anything({ withTypedArray: true, withNullPrototype: true }), (v) => {
        const m = checkClientMessage(v);
        if ('refused' in m) expect(typeof m.refused).toBe('string');
      }),
      { numRuns: runs(2000) },
    );
  });

  it('update payloads: any bytes decode to a vector of the model or an EncodingError, in bounded time', () => {
    const d = 600;
    const valid = fc.uniqueArray(fc.nat({ max: d - 1 }), { maxLength: 60 }).map((idx) => {
      const v = new Float32Array(d);
      for (const i of idx) v[i] = 1 + i;
      return [...encode(toSparse(v))];
    });
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 1024 }), fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([b, at, x]) => (b.length && (b[at % b.length] = x), Uint8Array.from(b))));
    fc.assert(
      fc.property(bytes, (b) => {
        const t = performance.now();
        try {
          expect(decode(b, d).vector.d).toBe(d);
        } catch (e) {
          expect(e).toBeInstanceOf(EncodingError);
        }
        expect(performance.now() - t).toBeLessThan(250);
      }),
      { numRuns: runs(2000) },
    );
  });
});

describe('wireBytes', () => {
  it('is the size gRPC sends: protobuf plus the 5-byte prefix', () => {
    const ser = join_.responseSerialize;
    fc.assert(
      fc.property(uint32, uint32, fc.nat({ max: 5000 }), fc.boolean(), fc.boolean(), (round, lastIncludedRound, n, evaluate, postHoc) => {
        const m = { broadcast: { round, payload: new Uint8Array(n), evaluate, postHoc, lastIncludedRound } };
        expect(wireBytes([round, lastIncludedRound], n, 2)).toBe(ser(m).length + 5);
        expect(wireBytes([round], n)).toBe(serialize({ update: { round, payload: new Uint8Array(n) } }).length + 5);
      }),
      { numRuns: runs(300) },
    );
  });
});

describe('the server under hostile messages', () => {
  it('every message out of place or malformed after Start is refused to its sender alone; the run then finishes as the simulator', { timeout: 60_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 2, rounds: 2, timing: false });
    const prepared = await prepareRun(config);
    const model = createModel(prepared.modelSpec);
    const d = model.layout.d;
    const shard = prepared.dataset.clients[1]!;
    const dir = mkdtempSync(join(tmpdir(), 'spx-fuzz-'));
    dirs.push(dir);
    const logs: string[] = [];
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(dir, 'out'), roundTimeout: 30, maxMessageBytes: 4096 } },
      log: (l) => logs.push(l),
      prepared,
    });
    const base = { server: `127.0.0.1:${srv.port}`, data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };
    try {
      const c0 = runClients({ ...base, ids: [0] });
      const hostile = fc.oneof(clientMessage.map((m) => serialize(m)), mutated);
      let answered = 0;
      await fc.assert(
        fc.asyncProperty(hostile, async (bytes) => {
          // client 1, joined and at its Train of round 1 (the round waits for it)
          const r = rawClient(srv.port, '1');
          await r.until('welcome');
          r.send({ msg: 'ready', ready: { dim: d, smoothness: model.smoothness(shard), samples: shard.y.length, pendingRound: 0, protocol: PROTOCOL } });
          const b = await r.until('broadcast');
          if (b.broadcast.evaluate) r.send({ msg: 'loss', loss: { round: 0, loss: model.lossGrad(new Float32Array(d), shard, null), postHoc: false } });
          await r.until('train');
          r.sendBytes(bytes);
          // a refusal ends the stream at once; anything else the server took (a valid update of round 1)
          const end = await Promise.race([r.status, new Promise<null>((res) => setTimeout(() => res(null), 300))]);
          if (end) expect(end.code).not.toBe(grpc.status.OK);
          else answered++;
          r.close();
          // the server's updates of round 1 are then this client's, valid or none: start each case afresh
          (srv['updates'] as Map<number, unknown>).delete(1);
        }),
        { numRuns: runs(40) },
      );
      await runClients({ ...base, ids: [1] });
      await c0;
      await srv.done;
      expect(readFileSync(join(dir, 'out', 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
      expect(logs.filter((l) => l.includes('failed on this client')), 'no handler failed').toEqual([]);
      expect(answered).toBeLessThan(runs(40));
    } finally {
      srv.stop('test over');
      await srv.done.catch(() => {});
    }
  });
});
