/**
 * The messages of proto/sparse_proxskip.proto as the session code sees them, on every transport, and the
 * status codes of a refusal (gRPC's, on every transport). Imports nothing: shared with the browser client.
 */

/**
 * The version of the protocol. 2: Ready says which update the client holds and Broadcast the last round
 * the server used it; version 1 had neither, and its clients would go on silently with a wrong h_i.
 */
export const PROTOCOL = 2;

export interface ReadyMsg {
  dim: number;
  smoothness: number;
  samples: number;
  pendingRound: number;
  protocol: number;
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
  protocol: number;
}
export interface BroadcastMsg {
  round: number;
  payload: Uint8Array;
  evaluate: boolean;
  postHoc: boolean;
  lastIncludedRound: number;
}
export type ServerMessage =
  | { msg: 'welcome'; welcome: WelcomeMsg }
  | { msg: 'start'; start: { gamma: number } }
  | { msg: 'broadcast'; broadcast: BroadcastMsg }
  | { msg: 'train'; train: { round: number; steps: number } }
  | { msg: 'done'; done: { message: string } };

/** A client message the server cannot use, and why (one line). */
export interface Refusal {
  refused: string;
}

/** gRPC status codes (the numbering of grpc.status), the vocabulary of refusals on every transport. */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A refusal or a cut, as the client's session sees it: a gRPC status and its details. */
export interface StreamError extends Error {
  code: number;
  details: string;
}

export function streamError(code: number, details: string): StreamError {
  return Object.assign(new Error(details), { code, details });
}

/** One stream of one client id to the server. */
export interface ClientConnection {
  /** the server's messages; ends when the server ends the stream, throws a StreamError when it refuses or the connection drops */
  messages: AsyncIterable<ServerMessage>;
  send(m: ClientMessage): void;
  close(): void;
}

export interface ClientTransport {
  open(id: number, token: string | undefined): ClientConnection;
  close(): void;
}

/** The run cannot go on (a client missing past the round timeout, a bad checkpoint): one line for the user. */
export class NetError extends Error {
  override name = 'NetError';
}
