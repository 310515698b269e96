/**
 * The gRPC service of proto/sparse_proxskip.proto, loaded at run time. The path is relative to this
 * module, and both src/net (tsx) and dist/net (the build) sit two levels below the package root.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_PATH = fileURLToPath(new URL('../../proto/sparse_proxskip.proto', import.meta.url));

export interface ReadyMsg {
  dim: number;
  smoothness: number;
  samples: number;
}
export interface UpdateMsg {
  round: number;
  payload: Uint8Array;
}
export interface LossMsg {
  round: number;
  loss: number;
  postHoc: boolean;
}
export type ClientMessage =
  | { msg: 'ready'; ready: ReadyMsg }
  | { msg: 'update'; update: UpdateMsg }
  | { msg: 'loss'; loss: LossMsg };

export interface WelcomeMsg {
  configJson: string;
  modelSpecJson: string;
  lastIncludedRound: number;
}
export interface BroadcastMsg {
  round: number;
  payload: Uint8Array;
  included: boolean;
  evaluate: boolean;
  postHoc: boolean;
}
export type ServerMessage =
  | { msg: 'welcome'; welcome: WelcomeMsg }
  | { msg: 'start'; start: { gamma: number } }
  | { msg: 'broadcast'; broadcast: BroadcastMsg }
  | { msg: 'train'; train: { round: number; steps: number } }
  | { msg: 'done'; done: { message: string } };

export type JoinServerCall = grpc.ServerDuplexStream<ClientMessage, ServerMessage>;
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

/** gRPC's own limits, a little above our explicit payload limit so the explicit check gives the clearer error. */
export function messageLimitOptions(maxMessageBytes: number): grpc.ChannelOptions {
  const limit = maxMessageBytes + 64 * 1024;
  return { 'grpc.max_receive_message_length': limit, 'grpc.max_send_message_length': limit };
}

function varintLength(x: number): number {
  let n = 1;
  while (x >= 128) {
    x = Math.floor(x / 128);
    n++;
  }
  return n;
}

/** A length-delimited protobuf field of `len` bytes (0 when proto3 leaves it out). */
function field(len: number): number {
  return len === 0 ? 0 : 1 + varintLength(len) + len;
}

function uintField(x: number): number {
  return x === 0 ? 0 : 1 + varintLength(x);
}

/** gRPC frame prefix: compressed flag and u32 length. */
const GRPC_PREFIX = 5;

/**
 * Bytes of an Update or Broadcast message as gRPC sends it: the protobuf encoding inside the 5-byte
 * gRPC prefix (HTTP/2 frame headers and TLS records not included).
 */
export function wireBytes(round: number, payloadBytes: number, flags = 0): number {
  const inner = uintField(round) + field(payloadBytes) + 2 * flags;
  return GRPC_PREFIX + 1 + varintLength(inner) + inner;
}
