/**
 * What survives a kill: the simulator's and the networked server's checkpoints and each network client's
 * control variate. Each is one file of a JSON header and binary sections, written atomically (temp file, fsync,
 * rename), so a kill -9 leaves the previous or the new state, never half of one.
 *
 * Layout: "SPXN", u32 header length, header JSON (UTF-8), then the sections back to back; the header
 * lists their lengths and a CRC-32 of each.
 */
import { closeSync, existsSync, fstatSync, readSync } from 'node:fs';
import { openRegularFile, readRegularFile } from '../data/files.js';
import { crc32 } from 'node:zlib';
import { DataError } from '../data/errors.js';
import { writeFileAtomic } from '../report/io.js';

const MAGIC = 'SPXN';

export function writeStateFile(path: string, header: object, sections: Uint8Array[]): void {
  const meta = Buffer.from(JSON.stringify({ ...header, sections: sections.map((s) => [s.byteLength, crc32(s)]) }), 'utf8');
  const head = Buffer.alloc(8);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(meta.length, 4);
  // 0600: the control variates are derived from the clients' private data
  writeFileAtomic(path, Buffer.concat([head, meta, ...sections.map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength))]), 0o600);
}

/** What one Buffer can hold: a state file is d floats per section, far below this for every model here. */
const MAX_STATE_BYTES = 2 ** 32 - 1;

function invalid(path: string, why: string): never {
  throw new DataError(`${path}: not a valid state file (${why})`);
}

/** The header of a state file (without reading its sections), or null when there is none. */
export function readStateHeader<H>(path: string): H | null {
  if (!existsSync(path)) return null;
  const fd = openRegularFile(path);
  try {
    const head = Buffer.alloc(8);
    if (readSync(fd, head, 0, 8, 0) < 8 || head.toString('latin1', 0, 4) !== MAGIC) invalid(path, 'bad magic');
    const metaLen = head.readUInt32LE(4);
    if (8 + metaLen > fstatSync(fd).size) invalid(path, 'truncated header');
    const meta = Buffer.alloc(metaLen);
    readSync(fd, meta, 0, metaLen, 8);
    return parseHeader<H>(path, meta);
  } finally {
    closeSync(fd);
  }
}

function parseHeader<H>(path: string, meta: Buffer): H & { sections: [number, number][] } {
  let header: H & { sections: [number, number][] };
  try {
    header = JSON.parse(meta.toString('utf8'));
  } catch {
    return invalid(path, 'corrupt header');
  }
  const ok = (x: unknown): boolean => Number.isSafeInteger(x) && (x as number) >= 0;
  if (typeof header !== 'object' || header === null || !Array.isArray(header.sections) || !header.sections.every((e) => Array.isArray(e) && e.length === 2 && ok(e[0]) && ok(e[1]))) {
    invalid(path, 'corrupt header');
  }
  return header;
}

export function readStateFile<H>(path: string): { header: H; sections: Uint8Array[] } | null {
  if (!existsSync(path)) return null;
  const buf = readRegularFile(path, MAX_STATE_BYTES, 'a state file is our own; this bound only stops a wrong path');
  const bad = (why: string): never => invalid(path, why);
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== MAGIC) bad('bad magic');
  const metaLen = buf.readUInt32LE(4);
  if (8 + metaLen > buf.length) bad('truncated header');
  const header = parseHeader<H>(path, buf.subarray(8, 8 + metaLen));
  const sections: Uint8Array[] = [];
  let at = 8 + metaLen;
  for (const [len, crc] of header.sections) {
    if (at + len > buf.length) bad('truncated section');
    // copied, so Float32Array views are aligned
    const s = new Uint8Array(buf.subarray(at, at + len));
    if (crc32(s) !== crc) bad('checksum mismatch');
    sections.push(s);
    at += len;
  }
  if (at !== buf.length) bad('trailing bytes');
  return { header, sections };
}

export function f32bytes(v: Float32Array): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

export function bytesF32(b: Uint8Array): Float32Array {
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}
