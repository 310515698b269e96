/** Reading data files, plain or gzip (told apart by gzip's magic bytes 1f 8b, not by the name). */
import { createReadStream, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip, gunzipSync } from 'node:zlib';
import { DataError } from './errors.js';

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function cannotRead(path: string, e: unknown): DataError {
  const code = (e as NodeJS.ErrnoException).code;
  return new DataError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? (e as Error).message})`);
}

/** A stream of the file's (decompressed) bytes; a corrupt or truncated gzip errors the stream. */
export async function openMaybeGzip(path: string, highWaterMark = 1 << 20): Promise<Readable> {
  let magic: Uint8Array;
  try {
    const file = await open(path, 'r');
    try {
      const { bytesRead, buffer } = await file.read(new Uint8Array(2), 0, 2, 0);
      magic = buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  } catch (e) {
    throw cannotRead(path, e);
  }
  const raw = createReadStream(path, { highWaterMark });
  if (!isGzip(magic)) return raw;
  const gunzip = createGunzip({ chunkSize: highWaterMark });
  raw.on('error', (e) => gunzip.destroy(e)); // pipe() does not forward errors
  return raw.pipe(gunzip);
}

/** The whole file's (decompressed) bytes. */
export function readMaybeGzip(path: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (e) {
    throw cannotRead(path, e);
  }
  if (!isGzip(raw)) return raw;
  try {
    return gunzipSync(raw);
  } catch (e) {
    throw new DataError(`${path}: corrupt or truncated gzip (${(e as Error).message})`);
  }
}
