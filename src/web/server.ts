/**
 * The dashboard's HTTP server (node:http, or node:https with a certificate): the page (built into
 * dist/web/page by `npm run build`), a read-only JSON API over a DashboardSource, and its changes as
 * Server-Sent Events.
 *
 * Safe by default: it binds 127.0.0.1; bound to any other address it refuses to start without TLS and a
 * dashboard token. It answers GET and HEAD only, sends a Content-Security-Policy that allows nothing from
 * other origins, checks the Host header on loopback (so another site cannot reach it by DNS rebinding),
 * and addresses runs by ids it made, never by paths from the request.
 */
import { timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { UsageError } from '../errors.js';
import type { DashboardEvent, DashboardSource, RunPayload } from './protocol.js';

export interface DashboardOptions {
  source: DashboardSource;
  /** default 127.0.0.1 */
  host?: string;
  /** default 8787; 0 picks a free port */
  port?: number;
  /** PEM certificate and key: serve HTTPS; with `requestCert`, ask for a client certificate signed by `ca` (not required: see `upgrade`) */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer; requestCert?: boolean };
  /** a WebSocket endpoint: upgrade requests for `path` (from this origin, Host checked as for pages) go to `handle` */
  upgrade?: { path: string; handle(req: IncomingMessage, socket: Duplex, head: Buffer): void };
  /** most connections open at once (node's server.maxConnections) */
  maxConnections?: number;
  /** required on every request when set: `?token=` once (then a cookie), or `Authorization: Bearer` */
  token?: string;
  /** where the built page is (default: dist/web/page of this package) */
  assetsDir?: string;
}

export interface DashboardServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_PORT = 8787;
export const DEFAULT_ASSETS = fileURLToPath(new URL('../../dist/web/page/', import.meta.url));

/**
 * Everything from this origin only; no inline script, no eval (the page evaluates Vega expressions with an
 * interpreter). WebAssembly may be compiled ('wasm-unsafe-eval' allows nothing else): the browser client's
 * kernels are built at run time.
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const COOKIE = 'spx_dashboard';
/**
 * The browser client's files: they show nothing of the run, and a client proves itself with its own token
 * (in the WebSocket hello). Its worker's chunks (the networks' code, loaded when a run has one) and the
 * TensorFlow.js wasm backend's binaries too.
 */
const PUBLIC = new Set(['/client', '/client.js', '/client-worker.js', '/style.css']);
const isPublic = (path: string): boolean => PUBLIC.has(path) || /^\/client-chunk-[A-Z0-9]+\.js$/.test(path) || /^\/tfjs-backend-wasm(-simd)?\.wasm$/.test(path);
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
};
const HEARTBEAT_MS = 15_000;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Starts the server; resolves once it listens. */
export async function startDashboard(o: DashboardOptions): Promise<DashboardServer> {
  const host = o.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  if (!loopback && (!o.tls || !o.token)) {
    throw new UsageError(`view: binding ${host} (not loopback) needs TLS (--tls-cert and --tls-key) and a dashboard token (--token-file)`);
  }
  const assets = loadAssets(o.assetsDir ?? DEFAULT_ASSETS);
  const streams = new Set<ServerResponse>();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    try {
      handle(req, res);
    } catch (e) {
      send(res, 500, 'text/plain; charset=utf-8', `internal error: ${(e as Error).message}\n`);
    }
  };
  const server: Server = o.tls ? createHttpsServer({ ...o.tls, rejectUnauthorized: false }, handler) : createHttpServer(handler);
  if (o.maxConnections !== undefined) server.maxConnections = o.maxConnections;
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new UsageError(`view: port ${o.port} on ${host} is in use (--port 0 picks a free one)`) : e));
    server.listen(o.port ?? DEFAULT_PORT, host, () => resolveListen());
  });
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  const url = `${o.tls ? 'https' : 'http'}://${hostInUrl}:${port}/`;
  const allowedHosts = new Set([`${hostInUrl}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]);

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const refuse = (status: string): void => void socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    if (!o.upgrade || new URL(req.url ?? '/', 'http://x').pathname !== o.upgrade.path) return refuse('404 Not Found');
    if (loopback && !allowedHosts.has(req.headers.host ?? '')) return refuse('403 Forbidden');
    // a page of another origin must not reach it through the visitor's browser (programs send no Origin)
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `${o.tls ? 'https' : 'http'}://${req.headers.host}`) return refuse('403 Forbidden');
    o.upgrade.handle(req, socket, head);
  });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    securityHeaders(res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'read-only: GET and HEAD only\n');
    }
    if (loopback && !allowedHosts.has(req.headers.host ?? '')) return send(res, 403, 'text/plain; charset=utf-8', 'unexpected Host header\n');
    const u = new URL(req.url ?? '/', 'http://x');
    if (o.token !== undefined && !isPublic(u.pathname)) {
      const given = u.searchParams.get('token');
      if (given !== null && same(given, o.token)) {
        // the token leaves the address bar (and the history) for a cookie scripts cannot read
        res.setHeader('Set-Cookie', `${COOKIE}=${encodeURIComponent(o.token)}; HttpOnly; SameSite=Strict; Path=/${o.tls ? '; Secure' : ''}`);
        u.searchParams.delete('token');
        res.setHeader('Location', `${u.pathname}${u.search}`);
        return send(res, 303, 'text/plain; charset=utf-8', '');
      }
      if (!authorized(req, o.token)) return send(res, 401, 'text/plain; charset=utf-8', 'dashboard token required: open the address with ?token=TOKEN once\n');
    }
    const path = u.pathname;
    if (path === '/') return sendAsset(req, res, 'index.html');
    if (path === '/client' && assets.has('client.html')) return sendAsset(req, res, 'client.html');
    if (path === '/api/events') return events(req, res);
    if (path === '/api/state') return sendJson(req, res, o.source.state());
    let m = /^\/api\/runs\/([A-Za-z0-9_-]+)$/.exec(path);
    if (m) {
      const run = o.source.state().runs.find((r) => r.id === m![1]);
      if (!run) return send(res, 404, 'text/plain; charset=utf-8', 'no such run\n');
      const payload: RunPayload = { run, records: o.source.records(run.id) ?? [], clients: o.source.clients(run.id), log: o.source.log(run.id) };
      return sendJson(req, res, payload);
    }
    m = /^\/api\/experiments\/([A-Za-z0-9_-]+)$/.exec(path);
    if (m) {
      const data = o.source.experiment(m[1]!);
      return data ? sendJson(req, res, data, true) : send(res, 404, 'text/plain; charset=utf-8', 'no such experiment, or not read yet\n');
    }
    const name = path.slice(1);
    if (assets.has(name)) return sendAsset(req, res, name);
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  function sendAsset(req: IncomingMessage, res: ServerResponse, name: string): void {
    const body = assets.get(name)!;
    res.setHeader('Cache-Control', 'no-cache');
    sendBody(req, res, 200, TYPES[extname(name)] ?? 'application/octet-stream', body, true);
  }

  function events(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write('retry: 1000\n\n');
    streams.add(res);
    const unsubscribe = o.source.subscribe((e: DashboardEvent) => res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
    const beat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    beat.unref();
    req.on('close', () => {
      clearInterval(beat);
      unsubscribe();
      streams.delete(res);
    });
  }

  return {
    url,
    port,
    close: async () => {
      for (const s of streams) s.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The built page: every file directly in `dir`, read once. */
function loadAssets(dir: string): Map<string, Buffer> {
  if (!existsSync(join(dir, 'index.html')) || !existsSync(join(dir, 'app.js'))) {
    throw new UsageError(`view: the dashboard page is not built (${join(dir, 'app.js')} is missing); run \`npm run build\``);
  }
  const files = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && TYPES[extname(e.name)] !== undefined);
  return new Map(files.map((e) => [e.name, readFileSync(join(dir, e.name))]));
}

function securityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  // with COOP, cross-origin isolation: the browser client's kernels need shared WebAssembly memory
  res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
}

function authorized(req: IncomingMessage, token: string): boolean {
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (bearer !== undefined && same(bearer, token)) return true;
  const cookie = (req.headers.cookie ?? '').split(';').map((c) => c.trim()).find((c) => c.startsWith(`${COOKIE}=`));
  return cookie !== undefined && same(decodeURIComponent(cookie.slice(COOKIE.length + 1)), token);
}

/** Constant-time comparison (of equal-length strings; the length itself is not secret). */
function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

/** JSON of objects that are replaced, never changed (an experiment's statistics), serialised once. */
const serialised = new WeakMap<object, Buffer>();

function sendJson(req: IncomingMessage, res: ServerResponse, value: unknown, immutable = false): void {
  res.setHeader('Cache-Control', 'no-store');
  let body = immutable ? serialised.get(value as object) : undefined;
  if (!body) body = Buffer.from(JSON.stringify(value));
  if (immutable) serialised.set(value as object, body);
  sendBody(req, res, 200, 'application/json; charset=utf-8', body, immutable);
}

/** The page's files (and immutable JSON) are the same on every request: each is compressed once. */
const compressed = new WeakMap<Buffer, Buffer>();

/** Gzipped when the client takes it and it pays (the JSON of long runs shrinks about tenfold). */
function sendBody(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: Buffer, cache = false): void {
  const gzip = body.length > 1024 && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  let out = body;
  if (gzip) {
    out = (cache && compressed.get(body)) || gzipSync(body);
    if (cache) compressed.set(body, out);
  }
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': out.length, ...(gzip && { 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' }) });
  res.end(req.method === 'HEAD' ? undefined : out);
}
