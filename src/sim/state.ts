/**
 * Per-client vectors of a simulation (control variates h_i, and uplinks waiting for the average), held
 * in memory or, with a state directory, one file per client, so that only the clients being worked on
 * are in memory: with d = 11.17M (ResNet18) a vector is 44.7 MB, and 100 clients' h alone are 4.5 GB.
 */
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { DataError } from '../data/errors.js';

export interface ClientStateStore {
  /** number of clients */
  readonly n: number;
  /** length of every vector */
  readonly d: number;
  /** where the vectors live: 'memory' or the directory of this store's files */
  readonly location: string;
  /** whether client i has a vector (a client without one reads as zeros) */
  has(client: number): boolean;
  /** Client i's vector, zeros if it has none. The caller may change it; changes last only once put back. */
  get(client: number): Float32Array;
  /** Stores v as client i's vector. The store may keep v itself: the caller must not change it afterwards. */
  put(client: number, v: Float32Array): void;
  /** Forgets client i's vector. */
  delete(client: number): void;
  /** Releases everything; a directory store removes its files. */
  close(): void;
}

/** In memory; a client without a vector takes no space (so zero state costs nothing until used). */
export function memoryStateStore(n: number, d: number): ClientStateStore {
  const slots: (Float32Array | undefined)[] = new Array(n);
  return {
    n,
    d,
    location: 'memory',
    has: (client) => slots[checkClient(client, n)] !== undefined,
    get: (client) => slots[checkClient(client, n)] ?? new Float32Array(d),
    put(client, v) {
      checkLength(v, d);
      slots[checkClient(client, n)] = v;
    },
    delete(client) {
      slots[checkClient(client, n)] = undefined;
    },
    close() {
      slots.fill(undefined);
    },
  };
}

/** File header: magic, format version, d, CRC-32 of the payload; then d float32 little-endian. */
const MAGIC = 0x53505853; // 'SPXS'
const VERSION = 1;
const HEADER_BYTES = 16;

/**
 * One file per client in a fresh private subdirectory of `dir` (so runs sharing `dir` never meet, and
 * files from an earlier run are never read), removed by close(). Each put writes a temp file and renames
 * it, so a file is always complete; no fsync, as the state lives only as long as the run.
 */
export function directoryStateStore(dir: string, n: number, d: number): ClientStateStore {
  // the payload is the Float32Array's bytes: the file format is little-endian
  if (endianness() !== 'LE') throw new DataError('--state-dir needs a little-endian machine');
  let root: string;
  try {
    mkdirSync(dir, { recursive: true });
    root = mkdtempSync(join(dir, 'state-'));
  } catch (e) {
    throw new DataError(`cannot create a state directory in ${dir}: ${(e as Error).message}`);
  }
  const written = new Uint8Array(n);
  const file = (client: number): string => join(root, `client-${client}.f32`);
  return {
    n,
    d,
    location: root,
    has: (client) => written[checkClient(client, n)] === 1,
    get(client) {
      if (!written[checkClient(client, n)]) return new Float32Array(d);
      return readStateFile(file(client), d);
    },
    put(client, v) {
      checkLength(v, d);
      const path = file(checkClient(client, n));
      writeStateFile(path, v);
      written[client] = 1;
    },
    delete(client) {
      written[checkClient(client, n)] = 0;
      rmSync(file(client), { force: true });
    },
    close() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A directory store under `dir` when given, else an in-memory one. */
export function createStateStore(n: number, d: number, dir: string | null): ClientStateStore {
  return dir === null ? memoryStateStore(n, d) : directoryStateStore(dir, n, d);
}

function writeStateFile(path: string, v: Float32Array): void {
  const payload = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(VERSION, 4);
  header.writeUInt32LE(v.length, 8);
  header.writeUInt32LE(crc32(payload), 12);
  const tmp = `${path}.tmp`; // one writer per private directory
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, header);
      writeAll(fd, payload);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Reads and checks one state file; anything unexpected is a one-line DataError naming the file. */
export function readStateFile(path: string, d: number): Float32Array {
  const bad = (why: string): DataError => new DataError(`client state ${path} is corrupt: ${why}`);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new DataError(`cannot read client state ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const header = Buffer.alloc(HEADER_BYTES);
    if (readAll(fd, header, 0) < HEADER_BYTES || header.readUInt32LE(0) !== MAGIC) throw bad('not a state file (bad header)');
    if (header.readUInt32LE(4) !== VERSION) throw bad(`format version ${header.readUInt32LE(4)}, expected ${VERSION}`);
    if (header.readUInt32LE(8) !== d) throw bad(`holds ${header.readUInt32LE(8)} values, expected ${d}`);
    const expected = HEADER_BYTES + 4 * d;
    if (size !== expected) throw bad(`${size} bytes, expected ${expected} (truncated?)`);
    // straight into the result's memory: no second copy of a 45 MB vector
    const out = new Float32Array(d);
    const payload = new Uint8Array(out.buffer);
    if (readAll(fd, payload, HEADER_BYTES) !== payload.length) throw bad('shorter than its size (changed while read?)');
    if (crc32(payload) !== header.readUInt32LE(12)) throw bad('checksum mismatch');
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Reads into `into` from `position` until it is full or the file ends; returns the bytes read. */
function readAll(fd: number, into: Uint8Array, position: number): number {
  let off = 0;
  while (off < into.length) {
    const n = readSync(fd, into, off, into.length - off, position + off);
    if (n === 0) break;
    off += n;
  }
  return off;
}

function checkClient(client: number, n: number): number {
  if (!(Number.isInteger(client) && client >= 0 && client < n)) throw new RangeError(`client ${client} out of range [0, ${n})`);
  return client;
}

function checkLength(v: Float32Array, d: number): void {
  if (v.length !== d) throw new RangeError(`state vector has ${v.length} values, expected ${d}`);
}
