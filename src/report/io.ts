/**
 * Result files that are never half-written.
 *
 * Whole files (JSON, CSV, plots) go through a temp file in the same directory and a rename, which
 * is atomic on POSIX file systems, so a reader or a killed run sees either the old or the new file.
 * Append-only logs (JSONL) write each record as one complete line in a single write call; the
 * reader tolerates a damaged last line, which is all a kill mid-write can leave.
 */

import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/**
 * Writes `data` to `path` atomically: temp file beside it, fsync, rename over the target. `mode`: the
 * file's permissions (less the umask) from its creation on, e.g. 0o600 for a secret.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o666): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  // Same directory so the rename never crosses file systems; pid + random so concurrent writers never share a temp file.
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      writeAll(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Writes `value` as pretty JSON (2 spaces, trailing newline), atomically. */
export function writeJsonAtomic(path: string, value: unknown, mode?: number): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n', mode);
}

/** writeSync may write fewer bytes than asked; loop until all are written. */
function writeAll(fd: number, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

export interface JsonlWriterOptions {
  /** Keep the existing content and add to it (when resuming); otherwise start an empty file. */
  append?: boolean;
  /** fsync after every record: survives power loss, at a cost per record. */
  fsync?: boolean;
}

/** Append-only JSON-lines log, one record per line. */
export class JsonlWriter {
  private fd: number | null;
  private readonly fsync: boolean;

  constructor(
    readonly path: string,
    opts: JsonlWriterOptions = {},
  ) {
    if (!opts.append) writeFileAtomic(path, '');
    else mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
    this.fsync = opts.fsync ?? false;
    if (opts.append) this.terminateLastLine();
  }

  /** A file from another tool may lack the final newline; without one the next record would be glued onto it. */
  private terminateLastLine(): void {
    const size = fstatSync(this.fd!).size;
    if (size === 0) return;
    const lastByte = Buffer.alloc(1);
    const fd = openSync(this.path, 'r');
    try {
      readSync(fd, lastByte, 0, 1, size - 1);
    } finally {
      closeSync(fd);
    }
    if (lastByte[0] !== 0x0a) writeAll(this.fd!, '\n');
  }

  /** Appends `record` as one line; a single write call, so a line is either all there or (at worst) cut at the end. */
  write(record: object): void {
    if (this.fd === null) throw new Error(`JsonlWriter: ${this.path} is closed`);
    writeAll(this.fd, JSON.stringify(record) + '\n');
    if (this.fsync) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }
}

export interface JsonlContent<T> {
  records: T[];
  /** The last line was incomplete or unparsable (a run killed mid-write) and was dropped. */
  truncatedTail: boolean;
}

/**
 * Reads a JSON-lines file. A damaged last line is dropped and reported; a damaged line anywhere
 * else means real corruption and throws, naming the file and line.
 */
export function readJsonl<T>(path: string): JsonlContent<T> {
  // committed results keep their rounds gzipped (docs/results/*/cells): PATH.gz stands in for a missing PATH
  const text = !existsSync(path) && existsSync(`${path}.gz`) ? gunzipSync(readFileSync(`${path}.gz`)).toString('utf8') : readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const last = lastNonBlank(lines);
  const records: T[] = [];
  for (let i = 0; i <= last; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    try {
      records.push(JSON.parse(line) as T);
    } catch (err) {
      if (i === last) return { records, truncatedTail: true };
      throw new Error(`${path}:${i + 1}: corrupt JSONL record: ${(err as Error).message}`);
    }
  }
  return { records, truncatedTail: false };
}

function lastNonBlank(lines: string[]): number {
  let i = lines.length - 1;
  while (i >= 0 && lines[i]!.trim() === '') i--;
  return i;
}

/** Rewrites `path` atomically with only its first `keep` complete records (resume from a checkpoint). */
export function truncateJsonl(path: string, keep: number): void {
  const { records } = readJsonl<unknown>(path);
  const kept = records.slice(0, Math.max(0, keep));
  writeFileAtomic(path, kept.map((r) => JSON.stringify(r) + '\n').join(''));
}

/**
 * CSV per RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote or line break.
 * Numbers print with full precision (shortest round-trip form); null/undefined become empty fields.
 * Columns default to the union of the rows' keys in first-seen order.
 */
export function toCsv(rows: Record<string, unknown>[], columns?: string[]): string {
  const cols = columns ?? unionKeys(rows);
  const lines = [cols.map(csvField).join(',')];
  for (const row of rows) lines.push(cols.map((c) => csvField(row[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

function unionKeys(rows: Record<string, unknown>[]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const k of Object.keys(row)) seen.add(k);
  return [...seen];
}

function csvField(value: unknown): string {
  const text = csvText(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}
