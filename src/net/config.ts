/**
 * The `serve` configuration file: the RunConfig fields of `sparse-proxskip run` (same names, same
 * defaults) plus the server's own options. Relative paths resolve against the file's directory.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { DEFAULTS, resolveConfig, type RunConfig } from '../sim/config.js';

export interface TlsFiles {
  /** server certificate chain (PEM) */
  cert: string;
  /** server private key (PEM) */
  key: string;
  /** CA that signs client certificates (PEM); needed for requireClientCert */
  ca: string | null;
  /** mutual TLS: reject clients without a certificate signed by `ca` */
  requireClientCert: boolean;
}

export interface ServerOptions {
  host: string;
  /** 0 = any free port (the bound one is printed, and written to portFile) */
  port: number;
  portFile: string | null;
  tls: TlsFiles | null;
  /** JSON file {"0": "token", ...}: every client id must present its token */
  tokens: string | null;
  /** largest accepted vector payload in bytes (gRPC's own limit is set a little above) */
  maxMessageBytes: number;
  /** seconds to wait for the clients' answers in a round */
  roundTimeout: number;
  /** on a round timeout, go on with the clients that answered instead of aborting */
  allowPartial: boolean;
  /** where rounds.jsonl, net.jsonl and summary.json go */
  out: string;
  /** where the per-round checkpoint goes (default: out) */
  checkpointDir: string | null;
  /** most TCP connections open at once; more are closed at once (bounds file descriptors and memory) */
  maxConnections: number;
  /** seconds a connection may stay open without carrying an accepted client before it is closed */
  idleTimeout: number;
  /** seconds between keepalive pings to each client */
  keepaliveTime: number;
  /** seconds without an answer to a ping after which a client's connection counts as dead */
  keepaliveTimeout: number;
}

export interface ServeConfig {
  run: RunConfig;
  server: ServerOptions;
}

export const SERVER_DEFAULTS: ServerOptions = {
  host: '0.0.0.0',
  port: 50051,
  portFile: null,
  tls: null,
  tokens: null,
  maxMessageBytes: 64 * 1024 * 1024,
  roundTimeout: 300,
  allowPartial: false,
  out: '',
  checkpointDir: null,
  maxConnections: 1024,
  idleTimeout: 30,
  keepaliveTime: 30,
  keepaliveTimeout: 120,
};

const RUN_KEYS = new Set(['algorithm', ...Object.keys(DEFAULTS)]);
const SERVER_KEYS = new Set(Object.keys(SERVER_DEFAULTS));

/** Reads and checks a config file; `overrides` (command-line options) win over the file. */
export function loadServeConfig(path: string, overrides: Partial<ServerOptions> = {}): ServeConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read config ${path}: ${(e as Error).message}`);
  }
  return parseServeConfig(raw, dirname(resolve(path)), overrides, path);
}

export function parseServeConfig(raw: unknown, baseDir: string, overrides: Partial<ServerOptions> = {}, what = 'config'): ServeConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError(`${what}: expected a JSON object`);
  const runPart: Record<string, unknown> = {};
  const serverPart: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (RUN_KEYS.has(k)) runPart[k] = v;
    else if (SERVER_KEYS.has(k)) serverPart[k] = v;
    else throw new UsageError(`${what}: unknown key '${k}' (run options: ${[...RUN_KEYS].join(', ')}; server options: ${[...SERVER_KEYS].join(', ')})`);
  }
  if (typeof runPart.algorithm !== 'string') throw new UsageError(`${what}: 'algorithm' is required`);
  const run = resolveConfig(runPart as Parameters<typeof resolveConfig>[0]);
  if (run.lambda === 'auto') throw new UsageError(`${what}: lambda 'auto' searches by simulation; give the number \`run --lambda auto\` found`);
  if (run.hReference === 'recentre') throw new UsageError(`${what}: hReference 'recentre' needs every h_i in one place (simulator only)`);
  const path = (v: unknown, key: string): string => {
    if (typeof v !== 'string' || v === '') throw new UsageError(`${what}: '${key}' must be a file path`);
    return resolve(baseDir, v);
  };
  const s: ServerOptions = { ...SERVER_DEFAULTS, out: resolve(baseDir, `runs/net-${run.algorithm}`) };
  const merged = { ...serverPart, ...definedOnly(overrides) };
  for (const [k, v] of Object.entries(merged)) {
    switch (k) {
      case 'host':
        if (typeof v !== 'string' || v === '') throw new UsageError(`${what}: 'host' must be a host name or address`);
        s.host = v;
        break;
      case 'port':
        if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) throw new UsageError(`${what}: 'port' must be in 0..65535, got ${v}`);
        s.port = v as number;
        break;
      case 'maxMessageBytes':
        if (!Number.isInteger(v) || (v as number) < 1024 || (v as number) > 2 ** 31 - 2 ** 20) {
          throw new UsageError(`${what}: 'maxMessageBytes' must be an integer in [1024, 2^31 - 2^20], got ${v}`);
        }
        s.maxMessageBytes = v as number;
        break;
      case 'roundTimeout':
        if (typeof v !== 'number' || !(v > 0)) throw new UsageError(`${what}: 'roundTimeout' must be a positive number of seconds, got ${v}`);
        s.roundTimeout = v;
        break;
      case 'maxConnections':
        if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65536) throw new UsageError(`${what}: 'maxConnections' must be an integer in [1, 65536], got ${v}`);
        s.maxConnections = v as number;
        break;
      case 'idleTimeout':
      case 'keepaliveTime':
      case 'keepaliveTimeout':
        if (typeof v !== 'number' || !(v >= 0.01 && v <= 86400)) throw new UsageError(`${what}: '${k}' must be a number of seconds in [0.01, 86400], got ${v}`);
        s[k] = v;
        break;
      case 'allowPartial':
        if (typeof v !== 'boolean') throw new UsageError(`${what}: 'allowPartial' must be true or false`);
        s.allowPartial = v;
        break;
      case 'portFile':
      case 'tokens':
      case 'checkpointDir':
        s[k] = v === null ? null : path(v, k);
        break;
      case 'out':
        s.out = path(v, k);
        break;
      case 'tls':
        s.tls = v === null ? null : parseTls(v, path, what);
        break;
    }
  }
  if (s.tls?.requireClientCert && !s.tls.ca) throw new UsageError(`${what}: tls.requireClientCert needs tls.ca (the CA of the client certificates)`);
  return { run, server: s };
}

function parseTls(v: unknown, path: (v: unknown, key: string) => string, what: string): TlsFiles {
  if (typeof v !== 'object' || v === null) throw new UsageError(`${what}: 'tls' must be {cert, key, ca?, requireClientCert?}`);
  const t = v as Record<string, unknown>;
  for (const k of Object.keys(t)) {
    if (!['cert', 'key', 'ca', 'requireClientCert'].includes(k)) throw new UsageError(`${what}: unknown key tls.${k}`);
  }
  return {
    cert: path(t.cert, 'tls.cert'),
    key: path(t.key, 'tls.key'),
    ca: t.ca === undefined || t.ca === null ? null : path(t.ca, 'tls.ca'),
    requireClientCert: t.requireClientCert === true,
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
