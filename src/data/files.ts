/**
 * Reading data files, plain or gzip (told apart by gzip's magic bytes 1f 8b, not by the name), within
 * DataLimits. Only regular files are read: a FIFO would block forever and a device (/dev/zero) never
 * ends, so both are refused when opened (opened non-blocking, then checked with fstat).
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip, gunzipSync } from 'node:zlib';
import { isGzip } from './blob-bytes.js';
import { DataError } from './errors.js';
import { LIMIT_OPTIONS, maxContentBytes, tooMuchContent, type DataLimits } from './limits.js';
import { LineSplitter, type LineHandler } from './lines.js';

export type { LineHandler };

/** O_NONBLOCK: opening a FIFO for reading does not wait for a writer (absent on Windows, where FIFOs are not files). */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

function cannotRead(path: string, e: unknown): DataError {
  const code = (e as NodeJS.ErrnoException).code;
  return new DataError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? (e as Error).message})`);
}

function notRegular(path: string, st: Stats): DataError | null {
  if (st.isFile()) return null;
  const what = st.isDirectory()
    ? 'a directory'
    : st.isFIFO()
      ? 'a FIFO (named pipe)'
      : st.isCharacterDevice()
        ? 'a character device'
        : st.isBlockDevice()
          ? 'a block device'
          : st.isSocket()
            ? 'a socket'
            : 'not a plain file';
  return new DataError(`${path}: is ${what}, not a regular file`);
}

/** "12.3 MB" (2^20 bytes) or "532 bytes". */
export function formatBytes(n: number): string {
  return n < 2 ** 20 ? `${n} bytes` : `${Math.round((n / 2 ** 20) * 10) / 10} MB`;
}

/**
 * A descriptor of the regular file `path`, opened without blocking (a FIFO would block an open for
 * reading until a writer comes) and refused at once when it is no plain file. The caller closes it.
 */
export function openRegularFile(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw cannotRead(path, e);
  }
  const bad = notRegular(path, fstatSync(fd));
  if (bad) {
    closeSync(fd);
    throw bad;
  }
  return fd;
}

/**
 * The bytes of the regular file `path`, refused unread when it is larger than maxBytes; `limit`
 * says in the message which limit that is and how to change it.
 */
export function readRegularFile(path: string, maxBytes: number, limit: string): Buffer {
  const fd = openRegularFile(path);
  try {
    const st = fstatSync(fd);
    if (st.size > maxBytes) throw new DataError(`${path}: ${formatBytes(st.size)}, more than ${formatBytes(maxBytes)} (${limit})`);
    const buf = Buffer.allocUnsafe(st.size);
    let got = 0;
    for (let n = 1; got < buf.length && n > 0; got += n) n = readSync(fd, buf, got, buf.length - got, got);
    return buf.subarray(0, got); // shorter when the file shrank meanwhile
  } catch (e) {
    throw e instanceof DataError ? e : cannotRead(path, e);
  } finally {
    closeSync(fd);
  }
}

/** The whole file's (decompressed) bytes: at most limits.maxDecompressedMb, plain or gzip. */
export function readMaybeGzip(path: string, limits: DataLimits): Buffer {
  const max = maxContentBytes(limits);
  const raw = readRegularFile(path, max, `the limit, ${LIMIT_OPTIONS.maxDecompressedMb} ${limits.maxDecompressedMb}`);
  if (!isGzip(raw)) return raw;
  try {
    // maxOutputLength stops the decompression there, so a bomb never grows past the limit
    return gunzipSync(raw, { maxOutputLength: max });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooMuchContent(path, limits, true);
    throw new DataError(`${path}: corrupt or truncated gzip (${(e as Error).message})`);
  }
}

async function openRegular(path: string): Promise<FileHandle> {
  let file: FileHandle;
  try {
    file = await open(path, OPEN_FLAGS);
  } catch (e) {
    throw cannotRead(path, e);
  }
  try {
    const bad = notRegular(path, await file.stat());
    if (bad) throw bad;
    return file;
  } catch (e) {
    await file.close();
    throw e instanceof DataError ? e : cannotRead(path, e);
  }
}

const CHUNK_BYTES = 1 << 20;

/**
 * The file's (decompressed) bytes as a stream of chunks; a gzip file is stopped past
 * limits.maxDecompressedMb. `where()` adds context (the line reached) to a read or gzip error.
 */
export async function* dataChunks(path: string, limits: DataLimits, where: () => string = () => ''): AsyncGenerator<Buffer> {
  const file = await openRegular(path);
  let raw: Readable;
  let gzip: boolean;
  try {
    const { bytesRead, buffer } = await file.read(new Uint8Array(2), 0, 2, 0);
    gzip = isGzip(buffer.subarray(0, bytesRead));
    raw = file.createReadStream({ start: 0, highWaterMark: CHUNK_BYTES }); // closes the file when done or destroyed
  } catch (e) {
    await file.close();
    throw cannotRead(path, e);
  }
  const source = gzip ? raw.pipe(createGunzip({ chunkSize: CHUNK_BYTES })) : raw;
  if (gzip) raw.on('error', (e) => source.destroy(e)); // pipe() does not forward errors
  const max = maxContentBytes(limits);
  let total = 0;
  try {
    for await (const chunk of source) {
      total += (chunk as Buffer).length;
      if (gzip && total > max) throw tooMuchContent(path, limits, true);
      yield chunk as Buffer;
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    const err = e as NodeJS.ErrnoException;
    const corrupt = gzip && (err.code?.startsWith('Z_') || /unexpected end of file/.test(err.message));
    throw new DataError(`${path}: ${corrupt ? 'corrupt or truncated gzip' : 'cannot read'} (${err.message})${where()}`);
  } finally {
    source.destroy(); // stops reading when the consumer stops part-way
    raw.destroy();
  }
}

/**
 * Calls `onLine` for every line of the (decompressed) file, in order, in time linear in its size. A
 * line longer than limits.maxLineBytes is refused as soon as that many bytes have arrived without a
 * newline, so a file without one (GBs of anything) holds at most the limit and a chunk in memory.
 */
export async function forEachLine(path: string, limits: DataLimits, onLine: LineHandler<Buffer>): Promise<void> {
  const lines = new LineSplitter<Buffer>(path, limits.maxLineBytes, onLine, (parts) => Buffer.concat(parts));
  for await (const chunk of dataChunks(path, limits, () => ` after line ${lines.lineNo}`)) lines.push(chunk);
  lines.end();
}

