/**
 * The server's listening socket, in front of gRPC. It holds at most `maxConnections` connections (more
 * are closed at once), closes a connection that carries no accepted client for `idleTimeout` seconds
 * (sockets that never speak, TLS handshakes that never finish, clients that were refused), does the TLS
 * handshake itself so that a failed one is logged, and hands every connection to gRPC
 * (`Server.createConnectionInjector`). So no one can exhaust the process's file descriptors or memory
 * with connections, with or without credentials.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { oneLine } from './proto.js';

export interface ListenerOptions {
  host: string;
  port: number;
  /** TLS server options (certificate, key, CA, whether client certificates are required); null: plain TCP */
  tls: tls.TlsOptions | null;
  maxConnections: number;
  /** seconds */
  idleTimeout: number;
  log: (line: string) => void;
}

interface Connection {
  socket: net.Socket;
  /** accepted clients on this connection */
  holds: number;
  idle: NodeJS.Timeout | null;
}

/** File descriptors kept free of connections, for the checkpoint, the output files, the data files. */
export const RESERVED_FDS = 64;

export class Listener {
  private readonly connections = new Map<string, Connection>();
  private readonly log: (kind: string, line: string) => void;

  private constructor(
    private readonly server: net.Server,
    private readonly opts: ListenerOptions,
    inject: (socket: Duplex) => void,
  ) {
    this.log = throttled(opts.log);
    server.maxConnections = opts.maxConnections;
    server.on('drop', (d?: { remoteAddress?: string; remotePort?: number }) =>
      this.log('drop', `refused a connection from ${d?.remoteAddress}:${d?.remotePort}: ${opts.maxConnections} connections are open (maxConnections)`),
    );
    server.on('connection', (socket: net.Socket) => this.track(socket));
    if (opts.tls) {
      server.on('secureConnection', (socket: tls.TLSSocket) => inject(socket));
      server.on('tlsClientError', (e: Error, socket: tls.TLSSocket) => {
        this.log('tls', `TLS handshake with ${socket.remoteAddress}:${socket.remotePort} failed: ${oneLine(e.message)}`);
        socket.destroy();
      });
    } else server.on('connection', (socket: net.Socket) => inject(socket));
    server.on('error', (e) => opts.log(`listener error: ${oneLine(e.message)}`));
  }

  /** Listens on host:port (0: any free port), handing each connection to `inject`. */
  static open(opts: ListenerOptions, inject: (socket: Duplex) => void): Promise<Listener> {
    const server = opts.tls ? tls.createServer({ ...opts.tls, ALPNProtocols: ['h2'], handshakeTimeout: opts.idleTimeout * 1000 }) : net.createServer();
    const limit = fdLimit();
    let o = opts;
    if (limit !== null && opts.maxConnections > limit - RESERVED_FDS) {
      const max = Math.max(1, limit - RESERVED_FDS);
      opts.log(`warning: maxConnections ${opts.maxConnections} would leave too few of the ${limit} file descriptors this process may open (ulimit -n); using ${max}`);
      o = { ...opts, maxConnections: max };
    }
    const listener = new Listener(server, o, inject);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve(listener);
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Connections open now. */
  get size(): number {
    return this.connections.size;
  }

  /**
   * A client was accepted on the connection of `peer` (`call.getPeer()`): the connection is in use, not
   * idle, until the returned function is called.
   */
  hold(peer: string): () => void {
    const c = this.connections.get(peer);
    if (!c) return () => {};
    c.holds++;
    if (c.idle) clearTimeout(c.idle);
    c.idle = null;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (--c.holds === 0 && !c.socket.destroyed) this.startIdle(peer, c);
    };
  }

  /** Stops listening and closes every connection. */
  close(): void {
    this.server.close();
    for (const c of this.connections.values()) {
      if (c.idle) clearTimeout(c.idle);
      c.socket.destroy();
    }
    this.connections.clear();
  }

  private track(socket: net.Socket): void {
    // the key gRPC's getPeer() gives for the same socket (remote address and port)
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const c: Connection = { socket, holds: 0, idle: null };
    this.connections.set(peer, c);
    this.startIdle(peer, c);
    socket.on('close', () => {
      if (c.idle) clearTimeout(c.idle);
      if (this.connections.get(peer) === c) this.connections.delete(peer);
    });
    // a reset from the peer is the peer's business; gRPC and the close handler above clean up
    socket.on('error', () => {});
  }

  private startIdle(peer: string, c: Connection): void {
    c.idle = setTimeout(() => {
      this.log('idle', `closed the connection from ${peer}: no client joined on it for ${this.opts.idleTimeout} s (idleTimeout)`);
      c.socket.destroy();
    }, this.opts.idleTimeout * 1000);
    c.idle.unref();
  }
}

/** The soft limit on open files of this process (Linux), or null where it cannot be read. */
export function fdLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line ? Number(line.split(/\s+/)[3]) : NaN;
    return Number.isSafeInteger(soft) ? soft : null;
  } catch {
    return null;
  }
}

/**
 * A log that a flood cannot fill: at most 10 lines of each kind a minute; the count of the lines left out
 * is logged with the next line of that kind.
 */
export function throttled(log: (line: string) => void, perMinute = 10, now: () => number = () => performance.now()): (kind: string, line: string) => void {
  const kinds = new Map<string, { start: number; count: number; dropped: number }>();
  return (kind, line) => {
    const t = now();
    let k = kinds.get(kind);
    if (!k || t - k.start >= 60_000) {
      if (k?.dropped) log(`(${k.dropped} more lines like the next were left out in the last minute)`);
      k = { start: t, count: 0, dropped: 0 };
      kinds.set(kind, k);
    }
    if (k.count++ < perMinute) log(line);
    else k.dropped++;
  };
}
