/**
 * The client's side of the WebSocket transport (ws.ts has the protocol and the server's side), for Node
 * (the `ws` package) and browsers (their WebSocket) alike: the caller gives the constructor. One
 * WebSocket per client id; the hello first, then one protobuf message per binary frame (codec.ts).
 * Imports nothing from `node:`: the browser client bundles it.
 */
import { decodeServerMessage, encodeClientMessage } from './codec.js';
import { Status, streamError, type ClientConnection, type ClientTransport, type ServerMessage } from './messages.js';

/** The path of the federation's WebSocket on the dashboard's port. */
export const WS_PATH = '/ws';
/** Close codes 4000..4016 carry a gRPC status. */
export const STATUS_CLOSE = 4000;
/** The close code for a frame over the size limit. */
export const TOO_BIG = 1009;

/** What this transport needs of a WebSocket: the browser's API, which `ws` implements too. */
export interface WebSocketLike {
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (e: { data?: unknown; code?: number; reason?: string; message?: string }) => void): void;
}

/** Why a WebSocket closed, in the words of gRPC's statuses. */
export function closeReason(code: number, reason: string): { code: number; details: string } {
  if (code >= STATUS_CLOSE && code <= STATUS_CLOSE + 16) return { code: code - STATUS_CLOSE, details: reason };
  if (code === TOO_BIG) return { code: Status.RESOURCE_EXHAUSTED, details: 'a message over the size limit' };
  return { code: Status.UNAVAILABLE, details: `the connection closed (WebSocket code ${code}${reason ? `: ${reason}` : ''})` };
}

/** The federation's WebSocket address from a ws:// or wss:// server address (the path defaults to /ws). */
export function federationUrl(server: string): string {
  const url = new URL(server);
  if (url.pathname === '/') url.pathname = WS_PATH;
  return url.href;
}

/** A ClientTransport over WebSockets made by `connect(url)`. */
export function webSocketTransport(server: string, connect: (url: string) => WebSocketLike): ClientTransport {
  const url = federationUrl(server);
  const open = new Set<WebSocketLike>();
  return {
    open(id, token): ClientConnection {
      const ws = connect(url);
      ws.binaryType = 'arraybuffer';
      open.add(ws);
      const queue: ServerMessage[] = [];
      let failure: Error | null = null;
      let finished = false;
      let status: { code: number; details: string } | null = null;
      let wake: (() => void) | null = null;
      const settle = (): void => {
        wake?.();
        wake = null;
      };
      ws.addEventListener('open', () => ws.send(JSON.stringify({ clientId: String(id), ...(token !== undefined && { token }) })));
      ws.addEventListener('message', (e) => {
        if (typeof e.data === 'string') {
          status = JSON.parse(e.data) as { code: number; details: string };
          return;
        }
        try {
          queue.push(decodeServerMessage(new Uint8Array(e.data as ArrayBuffer)));
        } catch (err) {
          failure ??= streamError(Status.INTERNAL, `an undecodable message from the server: ${(err as Error).message}`);
          ws.close();
        }
        settle();
      });
      ws.addEventListener('error', (e) => {
        failure ??= streamError(Status.UNAVAILABLE, `cannot reach ${url}${e.message ? `: ${e.message}` : ''}`);
        settle();
      });
      ws.addEventListener('close', (e) => {
        open.delete(ws);
        const code = e.code ?? 1006;
        if (code === 1000 && !status) finished = true;
        else {
          const s = status ?? closeReason(code, e.reason ?? '');
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
        send: (m) => ws.send(encodeClientMessage(m)),
        close: () => ws.close(1000, 'closed by the client'),
      };
    },
    close() {
      for (const ws of open) ws.close(1000, 'closed by the client');
    },
  };
}
