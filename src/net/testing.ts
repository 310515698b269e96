/**
 * Helpers for the tests and the benchmark of networked runs: the simulator's results for a config, to
 * compare against, and the CLI as a real process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { RunConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';
import { simulate } from '../sim/simulate.js';
import { runClients, type ClientOptions } from './client.js';
import { SERVER_DEFAULTS } from './config.js';
import { channelOptions, federation, type ClientMessage, type ServerMessage } from './proto.js';

export const sha = (v: Float32Array): string => createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');

/** The simulator's run of `config`: rounds.jsonl as runToDir writes it, and a hash of each round's evaluated model. */
export async function simulated(config: RunConfig): Promise<{ jsonl: string; models: string[] }> {
  const prepared = await prepareRun(config);
  const models: string[] = [];
  const c = config;
  const res = await simulate(
    prepared.dataset,
    {
      method: prepared.method,
      modelSpec: prepared.modelSpec,
      sparsity: c.sparsity,
      topkScope: c.topkScope,
      step: { gamma: prepared.gamma, p: c.p, lambda: c.lambda as number, steDecay: c.steDecay, batchSize: c.batchSize, seed: c.seed },
      localSteps: c.localSteps,
      schedule: c.schedule,
      rounds: c.rounds,
      participation: c.participation,
      workers: 1,
      evalEvery: c.evalEvery,
      postHocTopk: c.postHocTopk,
      timing: c.timing,
    },
    { onRound: (_r, m) => models.push(sha(m)) },
  );
  return { jsonl: res.records.map((r) => JSON.stringify(r) + '\n').join(''), models };
}

export async function simulatedJsonl(config: RunConfig): Promise<string> {
  return (await simulated(config)).jsonl;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
// node with tsx's loader in this very process (the tsx command would run node as a child, out of reach of a SIGKILL)
const NODE_ARGS = ['--require', join(ROOT, 'node_modules/tsx/dist/preflight.cjs'), '--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href];

export interface CliProcess {
  child: ChildProcess;
  /** stdout and stderr so far */
  output(): string;
  /** resolves when the output matches */
  waitFor(re: RegExp): Promise<void>;
  exit: Promise<number | null>;
}

/**
 * `sparse-proxskip ARGS` from source, as one process; `running` tracks it until it exits (for cleanup).
 * `fdLimit`: the process may open at most this many files (`ulimit -n`, through bash).
 */
export function spawnCli(args: string[], cwd: string, running: Set<ChildProcess>, fdLimit?: number): CliProcess {
  const command = [process.execPath, ...NODE_ARGS, MAIN, ...args];
  const [file, argv] = fdLimit === undefined ? [command[0]!, command.slice(1)] : ['bash', ['-c', `ulimit -n ${fdLimit} && exec "$@"`, 'bash', ...command]];
  const child = spawn(file, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
  running.add(child);
  let text = '';
  const watchers: { re: RegExp; resolve: () => void }[] = [];
  const onData = (b: Buffer): void => {
    text += b.toString();
    for (const w of [...watchers]) {
      if (w.re.test(text)) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return {
    child,
    output: () => text,
    waitFor: (re) => (re.test(text) ? Promise.resolve() : new Promise((resolve) => watchers.push({ re, resolve }))),
    exit,
  };
}

export interface RawClient {
  next(): Promise<ServerMessage>;
  /** the next message of this kind, skipping others */
  until<K extends ServerMessage['msg']>(kind: K): Promise<Extract<ServerMessage, { msg: K }>>;
  send(m: ClientMessage): void;
  /** a message of any bytes (the gRPC frame around them is right) */
  sendBytes(bytes: Uint8Array): void;
  /** how the server ended the stream */
  status: Promise<{ code: grpc.status; details: string }>;
  close(): void;
}

/** A client driven by hand, message by message (or byte by byte), for tests of the server's checks. */
export function rawClient(port: number, id: string, token?: string, creds = grpc.credentials.createInsecure(), maxMessageBytes = SERVER_DEFAULTS.maxMessageBytes): RawClient {
  const { service } = federation();
  const join = service.Join!;
  // TLS names the server by host name (localhost is in the `certs` server certificate)
  const c = new grpc.Client(`${creds._isSecure() ? 'localhost' : '127.0.0.1'}:${port}`, creds, channelOptions(maxMessageBytes, SERVER_DEFAULTS));
  const md = new grpc.Metadata();
  md.set('client-id', id);
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  const serialize = (m: unknown): Buffer => (m instanceof Uint8Array ? Buffer.from(m) : join.requestSerialize(m));
  const call = c.makeBidiStreamRequest(join.path, serialize, join.responseDeserialize as (b: Buffer) => ServerMessage, md);
  const queue: ServerMessage[] = [];
  let waiter: (() => void) | null = null;
  call.on('data', (m: ServerMessage) => {
    queue.push(m);
    waiter?.();
  });
  const status = new Promise<{ code: grpc.status; details: string }>((resolve) => {
    call.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
  });
  const next = async (): Promise<ServerMessage> => {
    while (queue.length === 0) await new Promise<void>((r) => (waiter = r));
    return queue.shift()!;
  };
  return {
    next,
    async until(kind) {
      for (;;) {
        const m = await next();
        if (m.msg === kind) return m as never;
      }
    },
    send: (m) => call.write({ [m.msg]: (m as Record<string, unknown>)[m.msg] }),
    sendBytes: (bytes) => call.write(bytes),
    status,
    close: () => {
      call.cancel();
      c.close();
    },
  };
}

export interface TcpProxy {
  port: number;
  /** the peer vanishes: bytes stop flowing both ways on every open connection, which stays open; new connections are refused */
  freeze(): void;
  close(): void;
}

/**
 * A TCP proxy on loopback to `targetPort`, to make a connection go silent without closing it. `http`: the
 * first request's Host header names the target, as the dashboard's port wants on loopback (a WebSocket's upgrade).
 */
export async function tcpProxy(targetPort: number, opts: { http?: boolean } = {}): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    if (opts.http) {
      client.once('data', (head: Buffer) => {
        upstream.write(head.toString('latin1').replace(/^Host: .*$/im, `Host: 127.0.0.1:${targetPort}`), 'latin1');
        client.pipe(upstream);
      });
    } else client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    freeze() {
      server.close();
      for (const s of sockets) {
        s.unpipe();
        s.pause();
      }
    },
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

/**
 * The vanishing-client scenario of the keepalive tests: clients 0 and 1 connect directly; client 2
 * reaches the server through `proxy` at `via` and, in round 3, its host vanishes (the proxy freezes: no
 * byte flows, nothing is closed). Once the server logs client 2 as disconnected, its replacement (same
 * state directory, `replacement` server address, a new connection) finishes the run. Returns the
 * milliseconds from the disconnection to the end of the run.
 */
export async function runWithVanishingClient(opts: {
  base: ClientOptions;
  proxy: TcpProxy;
  via: string;
  replacement: string;
  stateDir: string;
  logs: string[];
  serverDone: Promise<unknown>;
  /** options of client 2's first connection (e.g. its own keepalive off) */
  first?: Partial<ClientOptions>;
}): Promise<number> {
  const { base, stateDir, logs } = opts;
  let vanish: (e: Error) => void = () => {};
  const vanished = new Promise<void>((_, reject) => (vanish = reject));
  vanished.catch(() => {});
  try {
    const others = runClients({ ...base, ids: [0, 1] });
    const first = runClients({
      ...base,
      ...opts.first,
      server: opts.via,
      ids: [2],
      stateDir,
      onStep: async (_id, step, round) => {
        if (step !== 'train' || round !== 3) return;
        opts.proxy.freeze();
        await vanished;
      },
    });
    first.catch(() => {});
    while (!logs.some((l) => l.startsWith('client 2 disconnected'))) await new Promise((r) => setTimeout(r, 20));
    const t = performance.now();
    await Promise.all([runClients({ ...base, server: opts.replacement, ids: [2], stateDir }), others, opts.serverDone]);
    return performance.now() - t;
  } finally {
    vanish(new Error('test over'));
    opts.proxy.close();
  }
}
