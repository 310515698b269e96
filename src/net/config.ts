/**
 * The `serve` configuration file: the RunConfig fields of `sparse-proxskip run` (same names, same
 * defaults) plus the server's own options. Relative paths resolve against the file's directory.
 */
import { dirname, resolve } from 'node:path';
import { excerpt, UsageError } from '../errors.js';
import { resolveConfig, type RunConfig } from '../sim/config.js';
import {
  BOOLEAN,
  checkFields,
  integer,
  NON_EMPTY_STRING,
  nullable,
  object,
  POSITIVE,
  readJsonFile,
  RUN_OPTION_TYPES,
  unknownKeys,
  type Fail,
  type FieldType,
} from '../sim/schema.js';

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
  /** `[HOST:]PORT` of the live dashboard (`serve --http`; HOST defaults to 127.0.0.1); null: none */
  http: string | null;
  /** file whose first line is the dashboard token (else SPARSE_PROXSKIP_DASHBOARD_TOKEN); needed off loopback */
  httpTokenFile: string | null;
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
  http: null,
  httpTokenFile: null,
};

/** Where the dashboard listens when `http` names only a port. */
export const HTTP_DEFAULT_HOST = '127.0.0.1';

/**
 * `[HOST:]PORT` of `serve --http`: `8787`, `0` (any free port), `0.0.0.0:8787`, `localhost:0`, `[::1]:8787`.
 * HOST defaults to 127.0.0.1 (the dashboard stays on this machine unless told otherwise).
 */
export function parseHttpAddress(text: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535 || (m[2]!.length > 1 && m[2]!.startsWith('0'))) {
    throw new UsageError(`http: '${excerpt(text)}' is not [HOST:]PORT (a port in 0..65535, e.g. 8787, 127.0.0.1:8787, [::1]:0)`);
  }
  const host = m[1] === undefined ? HTTP_DEFAULT_HOST : m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host, port };
}

const HTTP_ADDRESS: FieldType = {
  want: "'[HOST:]PORT' (e.g. '8787' or '127.0.0.1:8787')",
  test: (v) => {
    if (typeof v !== 'string') return false;
    try {
      parseHttpAddress(v);
      return true;
    } catch {
      return false;
    }
  },
};

const PATH: FieldType = { want: 'a file path', test: NON_EMPTY_STRING.test };
const OBJECT: FieldType = { want: 'an object', test: (v) => typeof v === 'object' && v !== null && !Array.isArray(v) };

/** The JSON type of every server option (run options: RUN_OPTION_TYPES). */
/** idle timeout and keepalive intervals */
const SECONDS: FieldType = { want: 'a number of seconds in [0.01, 86400]', test: (v) => typeof v === 'number' && v >= 0.01 && v <= 86400 };

const SERVER_OPTION_TYPES: { readonly [K in keyof ServerOptions]: FieldType } = {
  host: { want: 'a host name or address', test: NON_EMPTY_STRING.test },
  port: integer(0, 65535),
  portFile: nullable(PATH),
  tls: nullable(OBJECT),
  tokens: nullable(PATH),
  maxMessageBytes: integer(1024, 2 ** 31 - 2 ** 20),
  roundTimeout: { want: 'a positive number of seconds', test: POSITIVE.test },
  allowPartial: BOOLEAN,
  out: PATH,
  checkpointDir: nullable(PATH),
  maxConnections: integer(1, 65536),
  idleTimeout: SECONDS,
  keepaliveTime: SECONDS,
  keepaliveTimeout: SECONDS,
  http: nullable(HTTP_ADDRESS),
  httpTokenFile: nullable(PATH),
};

/** The fields of `tls`: cert and key are required. */
const TLS_TYPES: { readonly [K in keyof TlsFiles]: FieldType } = { cert: PATH, key: PATH, ca: nullable(PATH), requireClientCert: BOOLEAN };

const RUN_KEYS = Object.keys(RUN_OPTION_TYPES);
const SERVER_KEYS = Object.keys(SERVER_OPTION_TYPES);

/** Reads and checks a config file; `overrides` (command-line options) win over the file. */
export function loadServeConfig(path: string, overrides: Partial<ServerOptions> = {}): ServeConfig {
  return parseServeConfig(readJsonFile(path, 'serve config'), dirname(resolve(path)), overrides, path);
}

export function parseServeConfig(raw: unknown, baseDir: string, overrides: Partial<ServerOptions> = {}, what = 'config'): ServeConfig {
  const fail: Fail = (field, message) => {
    throw new UsageError(`${what}: ${field ? `${field}: ` : ''}${message}`);
  };
  const top = object(raw, '', fail);
  const runPart: Record<string, unknown> = {};
  const serverPart: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(top)) {
    if (RUN_KEYS.includes(k)) runPart[k] = v;
    else if (SERVER_KEYS.includes(k)) serverPart[k] = v;
    else fail('', `unknown key '${excerpt(k)}' (run options: ${RUN_KEYS.join(', ')}; server options: ${SERVER_KEYS.join(', ')})`);
  }
  if (runPart.algorithm === undefined) fail('', "'algorithm' is required");
  checkFields(runPart, RUN_OPTION_TYPES, '', fail);
  let run: RunConfig;
  try {
    run = resolveConfig(runPart as Parameters<typeof resolveConfig>[0]);
  } catch (e) {
    return fail('', (e as Error).message);
  }
  if (run.init !== null) run.init = resolve(baseDir, run.init); // like the server's paths: relative to the file
  if (run.lambda === 'auto') fail('', "lambda 'auto' searches by simulation; give the number `run --lambda auto` found");
  if (run.stopTol > 0) fail('', 'stopTol (stopping a converged run) is simulator only: give the rounds');
  if (run.topkAt.length > 0) fail('', 'topkAt is simulator only');
  if (run.hReference === 'recentre') fail('', "hReference 'recentre' needs every h_i in one place (simulator only)");

  const merged = { ...serverPart, ...definedOnly(overrides) };
  checkFields(merged, SERVER_OPTION_TYPES, '', fail);
  const s: ServerOptions = { ...SERVER_DEFAULTS, out: resolve(baseDir, `runs/net-${run.algorithm}`), ...(merged as Partial<ServerOptions>) };
  const path = (p: string | null): string | null => (p === null ? null : resolve(baseDir, p));
  s.out = path(s.out)!;
  s.portFile = path(s.portFile);
  s.tokens = path(s.tokens);
  s.checkpointDir = path(s.checkpointDir);
  s.httpTokenFile = path(s.httpTokenFile);
  if (s.tls !== null) s.tls = parseTls(s.tls, path, fail);
  if (s.tls?.requireClientCert && !s.tls.ca) fail('', 'tls.requireClientCert needs tls.ca (the CA of the client certificates)');
  return { run, server: s };
}

function parseTls(v: unknown, path: (p: string | null) => string | null, fail: Fail): TlsFiles {
  const t = object(v, 'tls', fail);
  unknownKeys(t, Object.keys(TLS_TYPES), 'tls.', fail);
  for (const k of ['cert', 'key'] as const) if (t[k] === undefined) fail(`tls.${k}`, 'is required (tls is {cert, key, ca?, requireClientCert?})');
  checkFields(t, TLS_TYPES, 'tls.', fail);
  return {
    cert: path(t.cert as string)!,
    key: path(t.key as string)!,
    ca: path((t.ca as string | null | undefined) ?? null),
    requireClientCert: t.requireClientCert === true,
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
