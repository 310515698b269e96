/**
 * The client side of a networked run (`sparse-proxskip client`): one process hosts one client id or a
 * pool of them, each on its own stream (gRPC, or WebSocket for a ws:// or wss:// server). A client holds
 * its data, its model state and its control variate h_i, which never leaves it. The session itself is
 * session.ts, shared with the browser client; here are what is Node's: the data files and the state files.
 *
 * With a state directory, h_i and the update in flight are saved atomically before anything is sent,
 * so a client killed at any point and restarted with the same --state-dir carries on where it was.
 */
import { dataChunks } from '../data/files.js';
import { pickLimits, resolveLimits, type DataLimits } from '../data/limits.js';
import { ownDataChunks } from '../data/own-data.js';
import { join } from 'node:path';
import { decode } from '../core/encoding.js';
import { evalReferenceOf } from '../models/index.js';
import type { Dataset } from '../models/types.js';
import { UsageError } from '../errors.js';
import { loadRunData } from '../sim/run.js';
import type { KeepaliveOptions } from './proto.js';
import type { ClientTls } from './security.js';
import { Pool, runSession, type ClientState, type SessionOptions, type ShardLoader, type StateStore } from './session.js';
import { bytesF32, f32bytes, readStateFile, writeStateFile } from '../sim/state-file.js';
import { grpcTransport } from './transport.js';
import { wsTransport } from './ws.js';

export { onBroadcast, type ClientStep } from './session.js';

export interface ClientOptions extends SessionOptions {
  /** HOST:PORT of the server (gRPC), or ws://HOST:PORT, wss://HOST:PORT of its dashboard port (WebSocket) */
  server: string;
  ids: number[];
  /** the dataset spec of `run --dataset`; each id keeps its own shard. Default: the server's config.dataset */
  data: string | null;
  /** where this machine keeps the dataset files; default: the server's config.dataDir */
  dataDir?: string | null;
  /**
   * a LIBSVM file that is all of this (single) client's data, in the model's coding: labels -1/+1
   * (binary), 0..C-1 (multiclass) or real (regression), feature indices up to the model's nFeatures
   */
  ownData?: string | null;
  /** data-file limits of this machine, over the server config's (which apply otherwise) */
  limits?: Partial<DataLimits>;
  stateDir: string | null;
  tls: ClientTls | null;
  maxMessageBytes: number;
  /** keepalive pings to the server (default: the server's defaults) */
  keepalive?: KeepaliveOptions;
  log?: (line: string) => void;
}

/** Parses '3', '0-99', '0-9,20,30-35' into ascending unique ids. */
export function parseClientIds(text: string): number[] {
  const ids = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UsageError(`bad client ids '${text}' (expected e.g. 3, 0-99 or 0-9,20,30-35)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new UsageError(`bad client id range '${part.trim()}'`);
    for (let i = a; i <= b; i++) ids.add(i);
  }
  return [...ids].sort((x, y) => x - y);
}

interface StateHeader {
  version: 1;
  id: number;
  round: number;
  pendingRound: number | null;
  hasH: boolean;
}

function statePath(dir: string, id: number): string {
  return join(dir, `client-${id}.state`);
}

function loadState(dir: string | null, id: number, d: number): ClientState | null {
  if (!dir) return null;
  const f = readStateFile<StateHeader>(statePath(dir, id));
  if (!f) return null;
  const { header, sections } = f;
  if (header.id !== id) throw new UsageError(`${statePath(dir, id)} belongs to client ${header.id}`);
  let k = 0;
  const h = header.hasH ? new Float32Array(bytesF32(sections[k++]!)) : null;
  if (h && h.length !== d) throw new UsageError(`${statePath(dir, id)} holds a vector of dimension ${h.length}, the model has ${d}`);
  const pending =
    header.pendingRound === null ? null : { round: header.pendingRound, payload: sections[k]!, vector: decode(sections[k]!, d).vector };
  return { id, h, round: header.round, pending };
}

function saveState(dir: string | null, st: ClientState): void {
  if (!dir) return;
  const header: StateHeader = { version: 1, id: st.id, round: st.round, pendingRound: st.pending?.round ?? null, hasH: st.h !== null };
  writeStateFile(statePath(dir, st.id), header, [...(st.h ? [f32bytes(st.h)] : []), ...(st.pending ? [st.pending.payload] : [])]);
}

/** Runs every client id of `opts` until the server says the run is done. */
export async function runClients(opts: ClientOptions): Promise<void> {
  const log = opts.log ?? ((line) => console.error(`[client] ${line}`));
  const transport = /^wss?:\/\//.test(opts.server) ? wsTransport(opts.server, opts.tls, opts.maxMessageBytes, opts.keepalive) : grpcTransport(opts.server, opts.tls, opts.maxMessageBytes, opts.keepalive);
  const pool = new Pool(fileShards(opts));
  const store: StateStore = { where: opts.stateDir ?? '', load: (id, d) => loadState(opts.stateDir, id, d), save: (st) => saveState(opts.stateDir, st) };
  const states = new Map<number, ClientState>();
  try {
    await Promise.all(opts.ids.map((id) => runSession(id, transport, pool, states, store, opts, log)));
  } finally {
    transport.close();
  }
}

/** The shards of this process's ids: from --own-data, else from the dataset (every process loads it and keeps only its own). */
function fileShards(opts: ClientOptions): ShardLoader {
  return async (config, modelSpec) => {
    const shards = new Map<number, Dataset>();
    if (opts.ownData) {
      if (opts.ids.length !== 1) throw new UsageError('--own-data is the data of one client: give one --client-id');
      const path = opts.ownData;
      const limits = resolveLimits({ ...pickLimits(config), ...opts.limits });
      // the browser client's reader of a picked file (own-data.ts), on the file's bytes
      shards.set(opts.ids[0]!, await ownDataChunks(modelSpec, path, () => dataChunks(path, limits), limits));
      return { shards, evalReference: undefined };
    }
    const loaded = await loadRunData({ ...config, ...opts.limits, dataset: opts.data ?? config.dataset, dataDir: opts.dataDir ?? config.dataDir });
    for (const id of opts.ids) {
      const shard = loaded.dataset.clients[id];
      if (!shard) throw new UsageError(`client id ${id} is out of range: the data has ${loaded.dataset.clients.length} clients`);
      shards.set(id, shard);
    }
    // BatchNorm's evaluation statistics come from all clients' images, as on the server (evalReferenceOf)
    return { shards, evalReference: evalReferenceOf(modelSpec, loaded.dataset.clients) };
  };
}
