/** The hand-written protobuf codec of the WebSocket transport, against proto-loader (gRPC's), both ways. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CodecError, decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeServerMessage } from './codec.js';
import type { ClientMessage, ServerMessage } from './messages.js';
import { federation } from './proto.js';

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const bytes = fc.uint8Array({ maxLength: 64 });
const double = fc.double();
const client: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record({ dim: u32, smoothness: double, samples: u32, pendingRound: u32, protocol: u32 }).map((ready) => ({ msg: 'ready' as const, ready })),
  fc.record({ round: u32, payload: bytes }).map((update) => ({ msg: 'update' as const, update })),
  fc.record({ round: u32, loss: double, postHoc: fc.boolean() }).map((loss) => ({ msg: 'loss' as const, loss })),
);
const server: fc.Arbitrary<ServerMessage> = fc.oneof(
  fc.record({ configJson: fc.string({ unit: 'grapheme' }), modelSpecJson: fc.string(), protocol: u32 }).map((welcome) => ({ msg: 'welcome' as const, welcome })),
  fc.record({ gamma: double }).map((start) => ({ msg: 'start' as const, start })),
  fc.record({ round: u32, payload: bytes, evaluate: fc.boolean(), postHoc: fc.boolean(), lastIncludedRound: u32 }).map((broadcast) => ({ msg: 'broadcast' as const, broadcast })),
  fc.record({ round: u32, steps: u32 }).map((train) => ({ msg: 'train' as const, train })),
  fc.record({ message: fc.string() }).map((done) => ({ msg: 'done' as const, done })),
);

/** as the session code sees a message: plain values (proto-loader gives Buffers for bytes) */
const plain = (v: unknown): unknown =>
  v instanceof Uint8Array ? [...v] : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v;
const body = (m: { msg: string }) => ({ [m.msg]: (m as unknown as Record<string, unknown>)[m.msg] });

describe('the WebSocket codec', () => {
  const join = federation().service.Join!;
  it('property: the same bytes as proto-loader, and each decodes the other’s', () => {
    fc.assert(
      fc.property(client, (m) => {
        const mine = encodeClientMessage(m);
        expect([...mine]).toEqual([...join.requestSerialize(body(m))]);
        expect(plain(decodeClientMessage(mine))).toEqual(plain(m));
        expect(plain(join.requestDeserialize(Buffer.from(mine)))).toEqual(plain(m));
      }),
    );
    fc.assert(
      fc.property(server, (m) => {
        const mine = encodeServerMessage(m);
        expect([...mine]).toEqual([...join.responseSerialize(body(m))]);
        expect(plain(decodeServerMessage(join.responseSerialize(body(m))))).toEqual(plain(m));
      }),
    );
  });

  it('by hand: Train{round 3, steps 300}; defaults fill absent fields; unknown fields are skipped', () => {
    expect([...encodeServerMessage({ msg: 'train', train: { round: 3, steps: 300 } })]).toEqual([0x22, 5, 0x08, 3, 0x10, 0xac, 0x02]);
    expect(decodeServerMessage(Uint8Array.from([0x22, 0]))).toEqual({ msg: 'train', train: { round: 0, steps: 0 } });
    expect(decodeServerMessage(Uint8Array.from([0x22, 4, 0x38, 1, 0x08, 7]))).toEqual({ msg: 'train', train: { round: 7, steps: 0 } });
  });

  it('property: any bytes decode or throw a CodecError (or TypeError for bad UTF-8), never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
        try {
          decodeServerMessage(b);
        } catch (e) {
          expect(e instanceof CodecError || e instanceof TypeError).toBe(true);
        }
      }),
    );
    expect(() => decodeServerMessage(new Uint8Array(0))).toThrow('an empty ServerMessage');
    expect(() => decodeServerMessage(Uint8Array.from([0x1a, 10, 0x08]))).toThrow('a field runs past the end of the message');
  });
});
