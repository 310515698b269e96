/**
 * The gRPC service of proto/sparse_proxskip.proto, loaded at run time. The path is relative to this
 * module, and both src/net (tsx) and dist/net (the build) sit two levels below the package root.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_PATH = fileURLToPath(new URL('../../proto/sparse_proxskip.proto', import.meta.url));

export { PROTOCOL, type BroadcastMsg, type ClientMessage, type LossMsg, type ReadyMsg, type Refusal, type ServerMessage, type UpdateMsg, type WelcomeMsg } from './messages.js';
import type { ClientMessage, Refusal, ServerMessage } from './messages.js';

export type JoinServerCall = grpc.ServerDuplexStream<ClientMessage | Refusal, ServerMessage>;
export type JoinClientCall = grpc.ClientDuplexStream<ClientMessage, ServerMessage>;

export interface FederationClient extends grpc.Client {
  Join(metadata: grpc.Metadata, options?: grpc.CallOptions): JoinClientCall;
}

interface Loaded {
  service: grpc.ServiceDefinition;
  Client: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => FederationClient;
}

let loaded: Loaded | null = null;

/** The service definition and client constructor (loaded once per process). */
export function federation(): Loaded {
  if (loaded) return loaded;
  const def = protoLoader.loadSync(PROTO_PATH, { keepCase: false, longs: Number, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    sparse_proxskip: { Federation: grpc.ServiceClientConstructor };
  };
  const ctor = pkg.sparse_proxskip.Federation;
  loaded = { service: ctor.service, Client: ctor as unknown as Loaded['Client'] };
  return loaded;
}

/**
 * The service as the server registers it: each request is decoded and checked by decodeClientMessage,
 * which never throws, so an undecodable message reaches the handler as a Refusal (logged, client dropped)
 * instead of ending inside gRPC without a word.
 */
export function serverService(): grpc.ServiceDefinition {
  const join = federation().service.Join!;
  return { Join: { ...join, requestDeserialize: (bytes: Buffer) => decodeClientMessage(bytes) } };
}

type FieldType = 'uint32' | 'double' | 'bool' | 'bytes';

/** The fields of each kind of ClientMessage (as proto-loader decodes them: camelCase, defaults filled in). */
const CLIENT_FIELDS: Record<ClientMessage['msg'], Record<string, FieldType>> = {
  ready: { dim: 'uint32', smoothness: 'double', samples: 'uint32', pendingRound: 'uint32', protocol: 'uint32' },
  update: { round: 'uint32', payload: 'bytes' },
  loss: { round: 'uint32', loss: 'double', postHoc: 'bool' },
};

function hasType(t: FieldType, v: unknown): boolean {
  switch (t) {
    case 'uint32':
      return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
    case 'double':
      return typeof v === 'number';
    case 'bool':
      return typeof v === 'boolean';
    case 'bytes':
      return v instanceof Uint8Array;
  }
}

/** A ClientMessage from the wire: decoded and checked (see checkClientMessage), or why not. Never throws. */
export function decodeClientMessage(bytes: Uint8Array): ClientMessage | Refusal {
  let m: unknown;
  try {
    m = federation().service.Join!.requestDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    return { refused: `undecodable message of ${bytes.length} bytes (${oneLine((e as Error)?.message ?? String(e))})` };
  }
  return checkClientMessage(m);
}

/**
 * Checks a decoded ClientMessage: exactly one of ready, update, loss, and each of its fields of the right
 * type. (Whether it comes in its place, and its values, are the server's to check.)
 */
export function checkClientMessage(m: unknown): ClientMessage | Refusal {
  if (typeof m !== 'object' || m === null) return { refused: 'not a message' };
  const o = m as Record<string, unknown>;
  const kinds = (Object.keys(CLIENT_FIELDS) as ClientMessage['msg'][]).filter((k) => o[k] !== undefined && o[k] !== null);
  if (kinds.length !== 1) {
    return { refused: kinds.length === 0 ? 'an empty message (none of ready, update, loss)' : `one message of several kinds (${kinds.join(', ')})` };
  }
  const kind = kinds[0]!;
  const body = o[kind];
  if (typeof body !== 'object' || body === null) return { refused: `${kind}: not a message` };
  for (const [field, type] of Object.entries(CLIENT_FIELDS[kind])) {
    if (!hasType(type, (body as Record<string, unknown>)[field])) return { refused: `${kind}.${field} is not a ${type}` };
  }
  return { msg: kind, [kind]: body } as unknown as ClientMessage;
}

/** A message made safe for a log line: one line, at most 200 characters. */
export function oneLine(text: string): string {
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}...` : flat;
}

/**
 * Calls `done` with the status gRPC sent on a server call it ended itself (a message over its size limit,
 * one it could not decompress), as "gRPC refused it: CODE: details", or with null. grpc-js (pinned in
 * package.json) refuses such a message below the service handler, which sees only 'cancelled'; the status
 * goes out in the HTTP/2 stream's trailers, which are readable once the stream closes (waited for 1 s at most).
 */
export function grpcRefusal(call: JoinServerCall, done: (reason: string | null) => void): void {
  type Stream = { sentTrailers?: Record<string, unknown>; closed?: boolean; once?: (e: string, f: () => void) => void };
  const stream = (call as unknown as { call?: { stream?: Stream } }).call?.stream;
  let called = false;
  const finish = (): void => {
    if (called) return;
    called = true;
    const trailers = stream?.sentTrailers;
    const code = Number(trailers?.['grpc-status']);
    if (!trailers || !Number.isInteger(code) || code === grpc.status.OK) return done(null);
    let details = String(trailers['grpc-message'] ?? '');
    try {
      details = decodeURIComponent(details);
    } catch {
      // keep it as sent
    }
    done(`gRPC refused it: ${grpc.status[code] ?? code}: ${oneLine(details)}`);
  };
  if (!stream?.once || stream.closed) return finish();
  stream.once('close', finish);
  setTimeout(finish, 1000).unref();
}

export interface KeepaliveOptions {
  /** seconds between keepalive pings */
  keepaliveTime: number;
  /** seconds to wait for a ping's answer before the connection counts as dead */
  keepaliveTimeout: number;
}

/**
 * The gRPC options of both ends: message limits a little above our explicit payload limit (so the explicit
 * check gives the clearer error), and keepalive pings, so a peer that vanished without closing its
 * connection is noticed (its streams then end as if cut).
 */
export function channelOptions(maxMessageBytes: number, k: KeepaliveOptions): grpc.ChannelOptions {
  const limit = maxMessageBytes + 64 * 1024;
  return {
    'grpc.max_receive_message_length': limit,
    'grpc.max_send_message_length': limit,
    'grpc.keepalive_time_ms': Math.round(k.keepaliveTime * 1000),
    'grpc.keepalive_timeout_ms': Math.round(k.keepaliveTimeout * 1000),
    'grpc.keepalive_permit_without_calls': 1,
  };
}

function varintLength(x: number): number {
  let n = 1;
  while (x >= 128) {
    x = Math.floor(x / 128);
    n++;
  }
  return n;
}

/** A length-delimited protobuf field of `len` bytes (protobufjs writes every field the object has, defaults too). */
function field(len: number): number {
  return 1 + varintLength(len) + len;
}

function uintField(x: number): number {
  return 1 + varintLength(x);
}

/** gRPC frame prefix: compressed flag and u32 length. */
const GRPC_PREFIX = 5;

/**
 * Bytes of an Update or Broadcast message as gRPC sends it: the protobuf encoding inside the 5-byte
 * gRPC prefix (HTTP/2 frame headers and TLS records not included). `uints`: the values of its uint32
 * fields; `bools`: how many bool fields it has.
 */
export function wireBytes(uints: number[], payloadBytes: number, bools = 0): number {
  const inner = uints.reduce((sum, x) => sum + uintField(x), 0) + field(payloadBytes) + 2 * bools;
  return GRPC_PREFIX + 1 + varintLength(inner) + inner;
}
