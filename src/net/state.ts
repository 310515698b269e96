/**
 * What survives a kill: the server's checkpoint after every round and each client's control variate.
 * Both are one file of a JSON header and binary sections, written atomically (temp file, fsync,
 * rename), so a kill -9 leaves the previous or the new state, never half of one.
 *
 * Layout: "SPXN", u32 header length, header JSON (UTF-8), then the sections back to back; the header
 * lists their lengths and a CRC-32 of each.
 */
import { existsSync, readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { DataError } from '../data/errors.js';
import { writeFileAtomic } from '../report/io.js';

const MAGIC = 'SPXN';

export function writeStateFile(path: string, header: object, sections: Uint8Array[]): void {
  const meta = Buffer.from(JSON.stringify({ ...header, sections: sections.map((s) => [s.byteLength, crc32(s)]) }), 'utf8');
  const head = Buffer.alloc(8);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(meta.length, 4);
  writeFileAtomic(path, Buffer.concat([head, meta, ...sections.map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength))]));
}

export function readStateFile<H>(path: string): { header: H; sections: Uint8Array[] } | null {
  if (!existsSync(path)) return null;
  const buf = readFileSync(path);
  const bad = (why: string): never => {
    throw new DataError(`${path}: not a valid state file (${why})`);
  };
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== MAGIC) bad('bad magic');
  const metaLen = buf.readUInt32LE(4);
  if (8 + metaLen > buf.length) bad('truncated header');
  let header: H & { sections: [number, number][] };
  try {
    header = JSON.parse(buf.toString('utf8', 8, 8 + metaLen));
  } catch {
    return bad('corrupt header');
  }
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
