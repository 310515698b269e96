/**
 * The protobuf encoding of proto/sparse_proxskip.proto's messages, without a protobuf library: for
 * the WebSocket transport, whose clients include browsers, where the page's Content-Security-Policy
 * forbids the code generation of protobufjs (used by gRPC through proto-loader). It writes every field,
 * defaults too, in field order, as protobufjs does, so both give the same bytes (codec.test.ts checks
 * both ways against proto-loader). Imports nothing from `node:`.
 */
import type { ClientMessage, ServerMessage } from './messages.js';

type Scalar = 'uint32' | 'double' | 'bool' | 'bytes' | 'string';
/** a message's fields: name → [field number, type], in field order */
type Fields = Record<string, readonly [number, Scalar]>;
/** a oneof: kind → [field number, the fields of its message] */
type OneOf = Record<string, readonly [number, Fields]>;

const CLIENT: OneOf = {
  ready: [1, { dim: [1, 'uint32'], smoothness: [2, 'double'], samples: [3, 'uint32'], pendingRound: [4, 'uint32'], protocol: [5, 'uint32'] }],
  update: [2, { round: [1, 'uint32'], payload: [2, 'bytes'] }],
  loss: [3, { round: [1, 'uint32'], loss: [2, 'double'], postHoc: [3, 'bool'] }],
};

const SERVER: OneOf = {
  welcome: [1, { configJson: [1, 'string'], modelSpecJson: [2, 'string'], protocol: [4, 'uint32'] }],
  start: [2, { gamma: [1, 'double'] }],
  broadcast: [3, { round: [1, 'uint32'], payload: [2, 'bytes'], evaluate: [4, 'bool'], postHoc: [5, 'bool'], lastIncludedRound: [6, 'uint32'] }],
  train: [4, { round: [1, 'uint32'], steps: [2, 'uint32'] }],
  done: [5, { message: [1, 'string'] }],
};

export class CodecError extends Error {
  override name = 'CodecError';
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

class Writer {
  private bytes: number[] = [];
  varint(x: number): void {
    while (x >= 128) {
      this.bytes.push((x % 128) | 128);
      x = Math.floor(x / 128);
    }
    this.bytes.push(x);
  }
  tag(no: number, wire: number): void {
    this.varint(no * 8 + wire);
  }
  raw(b: Uint8Array): void {
    for (const x of b) this.bytes.push(x);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

function encodeFields(fields: Fields, body: Record<string, unknown>): Uint8Array {
  const w = new Writer();
  for (const [name, [no, type]] of Object.entries(fields)) {
    const v = body[name];
    switch (type) {
      case 'uint32':
        w.tag(no, 0);
        w.varint(v as number);
        break;
      case 'bool':
        w.tag(no, 0);
        w.varint(v ? 1 : 0);
        break;
      case 'double': {
        w.tag(no, 1);
        const b = new Uint8Array(8);
        new DataView(b.buffer).setFloat64(0, v as number, true);
        w.raw(b);
        break;
      }
      case 'bytes':
      case 'string': {
        const b = type === 'string' ? utf8.encode(v as string) : (v as Uint8Array);
        w.tag(no, 2);
        w.varint(b.length);
        w.raw(b);
        break;
      }
    }
  }
  return w.done();
}

function encodeOneOf(oneOf: OneOf, m: { msg: string }): Uint8Array {
  const [no, fields] = oneOf[m.msg]!;
  const inner = encodeFields(fields, (m as unknown as Record<string, Record<string, unknown>>)[m.msg]!);
  const w = new Writer();
  w.tag(no, 2);
  w.varint(inner.length);
  w.raw(inner);
  return w.done();
}

/** A reader over one message's bytes; every read is bounds-checked. */
class Reader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}
  get more(): boolean {
    return this.pos < this.b.length;
  }
  varint(): number {
    let x = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.b.length) throw new CodecError('truncated varint');
      const byte = this.b[this.pos++]!;
      x += (byte & 127) * scale;
      if (byte < 128) return x;
      scale *= 128;
    }
    throw new CodecError('varint longer than 10 bytes');
  }
  take(n: number): Uint8Array {
    if (n > this.b.length - this.pos) throw new CodecError('a field runs past the end of the message');
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.take(8);
    else if (wire === 2) this.take(this.varint());
    else if (wire === 5) this.take(4);
    else throw new CodecError(`wire type ${wire}`);
  }
}

const WIRE: Record<Scalar, number> = { uint32: 0, bool: 0, double: 1, bytes: 2, string: 2 };
const DEFAULT: Record<Scalar, () => unknown> = { uint32: () => 0, bool: () => false, double: () => 0, bytes: () => new Uint8Array(0), string: () => '' };

function decodeFields(fields: Fields, bytes: Uint8Array): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const byNo = new Map(Object.entries(fields).map(([name, [no, type]]) => [no, [name, type] as const]));
  for (const [name, [, type]] of Object.entries(fields)) out[name] = DEFAULT[type]();
  const r = new Reader(bytes);
  while (r.more) {
    const key = r.varint();
    const no = Math.floor(key / 8);
    const wire = key % 8;
    const f = byNo.get(no);
    if (!f || WIRE[f[1]] !== wire) {
      r.skip(wire);
      continue;
    }
    const [name, type] = f;
    if (type === 'uint32') out[name] = r.varint() % 2 ** 32;
    else if (type === 'bool') out[name] = r.varint() !== 0;
    else if (type === 'double') {
      const b = r.take(8);
      out[name] = new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
    } else {
      const b = r.take(r.varint());
      out[name] = type === 'string' ? fromUtf8.decode(b) : b.slice();
    }
  }
  return out;
}

function decodeOneOf(oneOf: OneOf, bytes: Uint8Array, what: string): { msg: string } {
  const kinds = new Map(Object.entries(oneOf).map(([kind, [no, fields]]) => [no, [kind, fields] as const]));
  let found: { msg: string } | null = null;
  const r = new Reader(bytes);
  while (r.more) {
    const key = r.varint();
    const k = kinds.get(Math.floor(key / 8));
    if (!k || key % 8 !== 2) {
      r.skip(key % 8);
      continue;
    }
    // as protobuf does: the last member of a oneof on the wire wins
    found = { msg: k[0], [k[0]]: decodeFields(k[1], r.take(r.varint())) } as { msg: string };
  }
  if (!found) throw new CodecError(`an empty ${what}`);
  return found;
}

export const encodeClientMessage = (m: ClientMessage): Uint8Array => encodeOneOf(CLIENT, m);
export const encodeServerMessage = (m: ServerMessage): Uint8Array => encodeOneOf(SERVER, m);
/** Throws CodecError (or a TypeError for invalid UTF-8) on bytes that are not a ServerMessage. */
export const decodeServerMessage = (bytes: Uint8Array): ServerMessage => decodeOneOf(SERVER, bytes, 'ServerMessage') as ServerMessage;
export const decodeClientMessage = (bytes: Uint8Array): ClientMessage => decodeOneOf(CLIENT, bytes, 'ClientMessage') as ClientMessage;
