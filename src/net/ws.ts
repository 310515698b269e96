/**
 * The WebSocket transport (`ws`), for clients that cannot speak gRPC (browsers): the server's side (and
 * the Node client's WebSocket; the client's side itself is ws-client.ts, shared with browsers), on the dashboard's
 * HTTP(S) port (`serve --http`), path /ws, `wss` when the server has TLS. It carries the same protobuf
 * messages as gRPC, one per binary frame, into the same session code (transport.ts). The client first
 * sends a text frame `{"clientId": "3", "token": "..."}` (a browser cannot set headers on a WebSocket, and
 * a token in the address would reach logs). A refusal is a text frame `{"code": C, "details": "..."}` (a
 * gRPC status) and a close with code 4000 + C.
 *
 * The limits are gRPC's: messages over maxMessageBytes + 64 KiB are refused by the frame length (close
 * 1009, RESOURCE_EXHAUSTED), a connection that sends no hello within idleTimeout is closed, the server
 * pings every keepaliveTime and drops a peer that does not answer within keepaliveTimeout (a Node client
 * pings the server likewise), the HTTP
 * server holds at most maxConnections, and with requireClientCert the TLS client certificate is required.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { SERVER_DEFAULTS, type ServerOptions } from './config.js';
import { encodeServerMessage } from './codec.js';
import { decodeClientMessage, oneLine, type ClientMessage, type KeepaliveOptions, type Refusal } from './proto.js';
import { readPem, type ClientTls } from './security.js';
import type { ClientTransport, ServerStream } from './transport.js';
import { closeReason, STATUS_CLOSE, TOO_BIG, webSocketTransport, WS_PATH, type WebSocketLike } from './ws-client.js';

export { WS_PATH };
const SLACK = 64 * 1024;

interface Hello {
  clientId: string;
  token?: string;
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
    const ping = keepAlive(ws, this.o);
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
          if (!ended && ws.readyState === WebSocket.OPEN) ws.send(encodeServerMessage(m));
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

/**
 * gRPC's keepalive on a WebSocket: a ping every keepaliveTime; a peer that leaves them unanswered for
 * keepaliveTimeout more is gone, and the socket is dropped (a 'close' follows). Returns the timer, which
 * the caller clears on 'close'. A browser cannot send pings, but answers them.
 */
function keepAlive(ws: WebSocket, k: KeepaliveOptions): NodeJS.Timeout {
  let answered = performance.now();
  ws.on('pong', () => (answered = performance.now()));
  const ping = setInterval(() => {
    if (performance.now() - answered > (k.keepaliveTime + k.keepaliveTimeout) * 1000) ws.terminate();
    else if (ws.readyState === WebSocket.OPEN) ws.ping();
  }, k.keepaliveTime * 1000);
  ping.unref();
  return ping;
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
 * The client's side in Node: the `ws` package, checking the server certificate against tls.ca (and
 * presenting a client certificate), with keepalive pings to the server, as the gRPC client sends.
 */
export function wsTransport(server: string, tls: ClientTls | null, maxMessageBytes: number, keepalive: KeepaliveOptions = SERVER_DEFAULTS): ClientTransport {
  const options: WebSocket.ClientOptions = {
    maxPayload: maxMessageBytes + SLACK,
    perMessageDeflate: false,
    ...(tls && { ca: readPem(tls.ca, 'CA certificate'), ...(tls.cert && tls.key && { cert: readPem(tls.cert, 'client certificate'), key: readPem(tls.key, 'client key') }) }),
  };
  return webSocketTransport(server, (url) => {
    const ws = new WebSocket(url, options);
    const ping = keepAlive(ws, keepalive);
    ws.on('close', () => clearInterval(ping));
    return ws as unknown as WebSocketLike;
  });
}
