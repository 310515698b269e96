/**
 * Downloading CIFAR-10's official binary archive into DATA_DIR/cifar10, atomically: the archive goes to
 * a temp file, is checked against its published checksum, unpacked into a temp folder, its batches are
 * read back, and only then is the folder renamed into place. A failure at any step leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { x as untar } from 'tar';
import { CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, readCifarBatch } from './cifar10.js';
import { DataError } from './errors.js';

export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
/** as published on https://www.cs.toronto.edu/~kriz/cifar.html */
export const CIFAR10_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
/** the archive's top folder */
export const CIFAR10_ARCHIVE_FOLDER = 'cifar-10-batches-bin';
export const CIFAR10_FILES = [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE, 'batches.meta.txt'];

export interface FetchOptions {
  /** default: CIFAR10_URL */
  url?: string;
  /** expected md5 (hex); default: CIFAR10_MD5 unless sha256 is given */
  md5?: string;
  /** expected sha256 (hex) */
  sha256?: string;
  /** replace an existing DATA_DIR/cifar10 */
  force?: boolean;
  /** bytes received so far, and the total when the server said it */
  onProgress?(received: number, total: number | null): void;
}

export interface FetchResult {
  /** DATA_DIR/cifar10 */
  dir: string;
  /** false when it was already there (nothing downloaded) */
  downloaded: boolean;
  bytes: number;
  md5: string | null;
  sha256: string | null;
}

/** Whether `dir` holds every batch (plain or gzip). */
export function hasCifar10(dir: string): boolean {
  return [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE].every((f) => existsSync(join(dir, f)) || existsSync(join(dir, `${f}.gz`)));
}

export async function fetchCifar10(dataDir: string, opts: FetchOptions = {}): Promise<FetchResult> {
  const url = opts.url ?? CIFAR10_URL;
  const expected = {
    md5: checkHex(opts.md5 ?? (opts.sha256 === undefined ? CIFAR10_MD5 : undefined), 'md5', 32),
    sha256: checkHex(opts.sha256, 'sha256', 64),
  };
  const target = join(dataDir, 'cifar10');
  if (existsSync(target) && !opts.force) {
    if (hasCifar10(target)) return { dir: target, downloaded: false, bytes: 0, md5: null, sha256: null };
    throw new DataError(`${target} exists but lacks some CIFAR-10 batches; pass --force to replace it`);
  }
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (e) {
    throw new DataError(`cannot create ${dataDir}: ${(e as Error).message}`);
  }
  // temp names inside dataDir, so the final rename stays on one file system
  const work = mkdtempSync(join(dataDir, '.cifar10-fetch-'));
  try {
    const archive = join(work, 'cifar-10-binary.tar.gz');
    const got = await download(url, archive, opts.onProgress);
    for (const kind of ['md5', 'sha256'] as const) {
      const want = expected[kind];
      if (want !== undefined && got[kind] !== want) {
        throw new DataError(`checksum mismatch for ${url}: ${kind} ${got[kind]}, expected ${want} (corrupt download or a different file; nothing was written)`);
      }
    }
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    try {
      await untar({ file: archive, cwd: unpacked, strict: true, filter: (p) => p.replace(/^\.\//, '').startsWith(`${CIFAR10_ARCHIVE_FOLDER}/`) });
    } catch (e) {
      throw new DataError(`${url} is not a readable .tar.gz archive: ${(e as Error).message}`);
    }
    const folder = join(unpacked, CIFAR10_ARCHIVE_FOLDER);
    const missing = CIFAR10_FILES.filter((f) => !existsSync(join(folder, f)));
    if (missing.length > 0) throw new DataError(`the archive from ${url} lacks ${CIFAR10_ARCHIVE_FOLDER}/${missing.join(', ')}`);
    // read every batch back: a good checksum of a wrong file must not end up as the dataset
    for (const f of [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE]) readCifarBatch(join(folder, f));
    if (existsSync(target)) {
      // --force: swap the old folder out before the new one goes in, so the target is never half-written
      const old = join(work, 'old');
      renameSync(target, old);
    }
    renameSync(folder, target);
    return { dir: target, downloaded: true, bytes: got.bytes, md5: got.md5, sha256: got.sha256 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Streams `url` into `path`, hashing as it goes. */
async function download(
  url: string,
  path: string,
  onProgress?: FetchOptions['onProgress'],
): Promise<{ bytes: number; md5: string; sha256: string }> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new DataError(`cannot download ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message} (no network, or a wrong --url?)`);
  }
  if (!res.ok || !res.body) throw new DataError(`download of ${url} failed: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  const lengthHeader = Number(res.headers.get('content-length'));
  const total = Number.isFinite(lengthHeader) && lengthHeader > 0 ? lengthHeader : null;
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  let bytes = 0;
  const fd = openSync(path, 'wx');
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      md5.update(chunk);
      sha256.update(chunk);
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      bytes += chunk.length;
      onProgress?.(bytes, total);
    }
  } catch (e) {
    throw new DataError(`download of ${url} broke off after ${bytes} bytes: ${(e as Error).message}`);
  } finally {
    closeSync(fd);
  }
  if (total !== null && bytes !== total) throw new DataError(`download of ${url} broke off: ${bytes} of ${total} bytes`);
  return { bytes, md5: md5.digest('hex'), sha256: sha256.digest('hex') };
}

function checkHex(value: string | undefined, kind: string, length: number): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (!new RegExp(`^[0-9a-f]{${length}}$`).test(v)) throw new DataError(`--${kind} must be ${length} hex digits, got '${value}'`);
  return v;
}
