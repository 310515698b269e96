/**
 * The WebSocket transport (`ws`), for clients that cannot speak gRPC (browsers): on the dashboard's
 * HTTP(S) port (`serve --http`), path /ws, `wss` when the server has TLS. It carries the same protobuf
 * messages as gRPC, one per binary frame, into the same session code (transport.ts). The client first
 * sends a text frame `{"clientId": "3", "token": "..."}` (a browser cannot set headers on a WebSocket, and
 * a token in the address would reach logs). A refusal is a text frame `{"code": C, "details": "..."}` (a
 * gRPC status) and a close with code 4000 + C.
 *
 * The limits are gRPC's: messages over maxMessageBytes + 64 KiB are refused by the frame length (close
 * 1009, RESOURCE_EXHAUSTED), a connection that sends no hello within idleTimeout is closed, the server
 * pings every keepaliveTime and drops a peer that does not answer within keepaliveTimeout, the HTTP
 * server holds at most maxConnections, and with requireClientCert the TLS client certificate is required.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import type { ServerOptions } from './config.js';
import { decodeClientMessage, federation, oneLine, type ClientMessage, type Refusal, type ServerMessage } from './proto.js';
import { readPem, type ClientTls } from './security.js';
import { streamError, type ClientConnection, type ClientTransport, type ServerStream } from './transport.js';

/** The path of the federation's WebSocket on the dashboard's port. */
export const WS_PATH = '/ws';
/** Close codes 4000..4016 carry a gRPC status. */
const STATUS_CLOSE = 4000;
/** The close code `ws` uses for a frame over maxPayload. */
const TOO_BIG = 1009;
const SLACK = 64 * 1024;

interface Hello {
  clientId: string;
  token?: string;
}

function serialize(m: ServerMessage | ClientMessage, kind: 'request' | 'response'): Buffer {
  const join = federation().service.Join!;
  const body = { [m.msg]: (m as Record<string, unknown>)[m.msg] };
  return kind === 'request' ? join.requestSerialize(body) : join.responseSerialize(body);
}

/** Why a WebSocket closed, in the words of gRPC's statuses. */
function closeReason(code: number, reason: string): { code: grpc.status; details: string } {
  if (code >= STATUS_CLOSE && code <= STATUS_CLOSE + 16) return { code: code - STATUS_CLOSE, details: reason };
  if (code === TOO_BIG) return { code: grpc.status.RESOURCE_EXHAUSTED, details: 'a message over the size limit' };
  return { code: grpc.status.UNAVAILABLE, details: `the connection closed (WebSocket code ${code}${reason ? `: ${reason}` : ''})` };
}

/** At most 123 bytes of UTF-8: the room for a close reason. */
function closeText(details: string): string {
  let t = oneLine(details);
  while (Buffer.byteLength(t) > 123) t = t.slice(0, -1);
  return t;
}

export class WsFederation {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();

  constructor(
    private readonly o: Pick<ServerOptions, 'maxMessageBytes' | 'idleTimeout' | 'keepaliveTime' | 'keepaliveTimeout'> & { requireClientCert: boolean },
    private readonly join: (s: ServerStream) => void,
    private readonly log: (kind: string, line: string) => void,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: o.maxMessageBytes + SLACK, perMessageDeflate: false });
  }

  /** Takes an HTTP upgrade request for WS_PATH (the dashboard's server has checked its Host and Origin). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.o.requireClientCert && !(req.socket as TLSSocket).authorized) {
      this.log('refused', `refused WebSocket from ${req.socket.remoteAddress}: no client certificate signed by tls.ca`);
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connection(ws, `websocket ${req.socket.remoteAddress}:${req.socket.remotePort}`));
  }

  private connection(ws: WebSocket, peer: string): void {
    this.sockets.add(ws);
    const idle = setTimeout(() => {
      this.log('idle', `closed an idle WebSocket from ${peer} (no hello within ${this.o.idleTimeout} s)`);
      ws.terminate();
    }, this.o.idleTimeout * 1000);
    // keepalive: a peer that leaves a ping unanswered for keepaliveTimeout is gone
    let answered = performance.now();
    ws.on('pong', () => (answered = performance.now()));
    const ping = setInterval(() => {
      if (performance.now() - answered > (this.o.keepaliveTime + this.o.keepaliveTimeout) * 1000) ws.terminate();
      else ws.ping();
    }, this.o.keepaliveTime * 1000);
    ping.unref();
    let onMessage: ((m: ClientMessage | Refusal) => void) | null = null;
    let onClose: ((reason: Promise<string>) => void) | null = null;
    let ended = false;
    ws.on('close', (code, reason) => {
      clearTimeout(idle);
      clearInterval(ping);
      this.sockets.delete(ws);
      if (ended || !onClose) return;
      const r = closeReason(code, reason.toString());
      onClose(Promise.resolve(code === TOO_BIG ? `refused: RESOURCE_EXHAUSTED: ${r.details}` : code >= STATUS_CLOSE ? `${grpc.status[r.code]}: ${r.details}` : r.details));
    });
    ws.on('error', () => {}); // followed by 'close'
    const fail = (code: grpc.status, details: string): void => {
      if (ended) return;
      ended = true;
      ws.send(JSON.stringify({ code, details }));
      ws.close(STATUS_CLOSE + code, closeText(details));
    };
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (onMessage) return onMessage(isBinary ? decodeClientMessage(bytes) : { refused: 'a text frame after the hello' });
      clearTimeout(idle);
      const hello = parseHello(isBinary ? null : bytes.toString('utf8'));
      if (typeof hello === 'string') {
        this.log('refused', `refused ${peer}: ${hello}`);
        return fail(grpc.status.INVALID_ARGUMENT, hello);
      }
      onMessage = () => {}; // until the session registers
      this.join({
        peer,
        clientId: hello.clientId,
        authorization: hello.token === undefined ? '' : `Bearer ${hello.token}`,
        send: (m) => {
          if (!ended && ws.readyState === WebSocket.OPEN) ws.send(serialize(m, 'response'));
        },
        fail,
        end: () => {
          if (ended) return;
          ended = true;
          ws.close(1000, 'done');
        },
        onMessage: (f) => (onMessage = f),
        onClose: (f) => (onClose = f),
        hold: () => () => {},
      });
    });
  }

  /** Closes every WebSocket at once. */
  close(): void {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
  }
}

function parseHello(text: string | null): Hello | string {
  if (text === null) return 'the first frame must be the hello, a text frame {"clientId": "ID", "token": "..."}';
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'the hello is not JSON';
  }
  const o = v as Record<string, unknown>;
  if (typeof v !== 'object' || v === null || typeof o['clientId'] !== 'string' || (o['token'] !== undefined && typeof o['token'] !== 'string')) {
    return 'the hello must be {"clientId": "ID", "token": "..."} (strings)';
  }
  return { clientId: o['clientId'], ...(o['token'] !== undefined && { token: o['token'] as string }) };
}

/**
 * The client's side: one WebSocket per client id to `server`, a ws:// or wss:// address of the dashboard's
 * port (the path defaults to /ws); with TLS, the server certificate is checked against tls.ca.
 */
export function wsTransport(server: string, tls: ClientTls | null, maxMessageBytes: number): ClientTransport {
  const url = new URL(server);
  if (url.pathname === '/') url.pathname = WS_PATH;
  const open = new Set<WebSocket>();
  const options: WebSocket.ClientOptions = {
    maxPayload: maxMessageBytes + SLACK,
    perMessageDeflate: false,
    ...(tls && { ca: readPem(tls.ca, 'CA certificate'), ...(tls.cert && tls.key && { cert: readPem(tls.cert, 'client certificate'), key: readPem(tls.key, 'client key') }) }),
  };
  return {
    open(id, token): ClientConnection {
      const ws = new WebSocket(url, options);
      open.add(ws);
      const queue: ServerMessage[] = [];
      let failure: Error | null = null;
      let finished = false;
      let status: { code: grpc.status; details: string } | null = null;
      let wake: (() => void) | null = null;
      const settle = (): void => {
        wake?.();
        wake = null;
      };
      ws.on('open', () => ws.send(JSON.stringify({ clientId: String(id), ...(token !== undefined && { token }) })));
      ws.on('message', (data: RawData, isBinary: boolean) => {
        const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        if (!isBinary) {
          status = JSON.parse(bytes.toString('utf8')) as { code: grpc.status; details: string };
          return;
        }
        queue.push(federation().service.Join!.responseDeserialize(bytes) as ServerMessage);
        settle();
      });
      ws.on('error', (e) => {
        failure ??= streamError(grpc.status.UNAVAILABLE, `cannot reach ${url.href}: ${oneLine(e.message)}`);
        settle();
      });
      ws.on('close', (code, reason) => {
        open.delete(ws);
        if (code === 1000 && !status) finished = true;
        else {
          const s = status ?? closeReason(code, reason.toString());
          failure = streamError(s.code, s.details);
        }
        settle();
      });
      async function* messages(): AsyncGenerator<ServerMessage> {
        for (;;) {
          if (queue.length > 0) yield queue.shift()!;
          else if (failure) throw failure;
          else if (finished) return;
          else await new Promise<void>((r) => (wake = r));
        }
      }
      return {
        messages: messages(),
        send: (m) => ws.send(serialize(m, 'request')),
        close: () => ws.terminate(),
      };
    },
    close() {
      for (const ws of open) ws.terminate();
    },
  };
}
