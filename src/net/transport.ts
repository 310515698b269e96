/**
 * What carries a client's stream, seen from the session code: the server's round loop (server.ts) and
 * the client's session (client.ts) speak to these interfaces, and each transport (gRPC here, WebSocket in
 * ws.ts) adapts its own stream to them. The messages are the same protobuf messages on every transport;
 * refusals are gRPC status codes with details on every transport.
 */
import * as grpc from '@grpc/grpc-js';
import { SERVER_DEFAULTS } from './config.js';
import { channelOptions, federation, grpcRefusal, type ClientMessage, type JoinServerCall, type KeepaliveOptions, type Refusal, type ServerMessage } from './proto.js';
import type { ClientConnection, ClientTransport } from './messages.js';
import { channelCredentials, type ClientTls } from './security.js';

export type { ClientConnection, ClientTransport };

/** One client's stream on the server. */
export interface ServerStream {
  /** the remote address, for the log and the dashboard */
  peer: string;
  /** the client id and the `Bearer TOKEN` as the client presented them (unchecked) */
  clientId: string;
  authorization: string;
  send(m: ServerMessage): void;
  /** ends the stream with a refusal: a gRPC status and its details */
  fail(code: grpc.status, details: string): void;
  /** ends the stream normally (after Done) */
  end(): void;
  onMessage(f: (m: ClientMessage | Refusal) => void): void;
  /** called once when the stream ends for any reason other than end(); `reason` explains it, when it can */
  onClose(f: (reason: Promise<string>) => void): void;
  /** the connection carries an accepted client (it is not idle) until the returned function is called */
  hold(): () => void;
}

// ---- gRPC ------------------------------------------------------------------------------------------

/** A gRPC Join call as a ServerStream; `hold` is the TCP listener's idle accounting for its connection. */
export function grpcServerStream(call: JoinServerCall, hold: (peer: string) => () => void): ServerStream {
  const md = call.metadata;
  const peer = call.getPeer();
  return {
    peer,
    clientId: String(md.get('client-id')[0] ?? ''),
    authorization: String(md.get('authorization')[0] ?? ''),
    send: (m) => call.write({ [m.msg]: (m as Record<string, unknown>)[m.msg] } as unknown as ServerMessage),
    fail: (code, details) => call.emit('error', { code, details }),
    end: () => call.end(),
    onMessage: (f) => call.on('data', f),
    onClose(f) {
      let called = false;
      const gone = (event: string) => () => {
        if (called) return;
        called = true;
        // gRPC ends a call itself when a message breaks its limits: the reason is the status it sent
        f(new Promise((resolve) => grpcRefusal(call, (refusal) => resolve(refusal ?? event))));
      };
      call.on('end', gone('stream closed'));
      call.on('cancelled', gone('cancelled'));
      call.on('error', gone('error'));
      call.on('close', gone('closed'));
    },
    hold: () => hold(peer),
  };
}

/** The client's gRPC channel to `server` (HOST:PORT): one stream per client id, all on one connection. */
export function grpcTransport(server: string, tls: ClientTls | null, maxMessageBytes: number, keepalive: KeepaliveOptions = SERVER_DEFAULTS): ClientTransport {
  const { Client } = federation();
  const channel = new Client(server, channelCredentials(tls), channelOptions(maxMessageBytes, keepalive));
  return {
    open(id, token) {
      const md = new grpc.Metadata();
      md.set('client-id', String(id));
      if (token) md.set('authorization', `Bearer ${token}`);
      const call = channel.Join(md);
      return {
        messages: call as AsyncIterable<ServerMessage>,
        send: (m) => call.write({ [m.msg]: (m as Record<string, unknown>)[m.msg] } as unknown as ClientMessage),
        close: () => call.cancel(),
      };
    },
    close: () => channel.close(),
  };
}
