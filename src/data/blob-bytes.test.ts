/**
 * A picked file's bytes in the browser client (blobBytes): gzip told by its content, decompressed by the
 * platform's DecompressionStream (Node's is the same Web API), and a gzip bomb refused at the limit with the
 * message a file on disk gets from dataChunks.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { blobBytes } from './blob-bytes.js';
import { DataError } from './errors.js';
import { dataChunks } from './files.js';
import { resolveLimits } from './limits.js';

const dir = mkdtempSync(join(tmpdir(), 'blob-bytes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

async function failure(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const e = await collect(chunks).then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(DataError);
  expect((e as Error).message).not.toMatch(/\n/);
  return (e as Error).message;
}

const limits = resolveLimits();

describe('blobBytes', () => {
  it('property: the content of a Blob, plain or gzip', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), fc.boolean(), async (bytes, gzip) => {
        const blob = new Blob([gzip ? gzipSync(bytes) : bytes]);
        expect(await collect(blobBytes(blob, 'x', limits))).toEqual(bytes);
      }),
      { numRuns: 100 },
    );
  });

  it('a gzip bomb stops at the limit with the message a file on disk gets; a truncated gzip is a one-line error', async () => {
    const bomb = gzipSync(new Uint8Array(3 * 2 ** 20)); // 3 MB of zeros in 3 kB
    const path = join(dir, 'bomb.csv.gz');
    writeFileSync(path, bomb);
    const small = resolveLimits({ maxDecompressedMb: 1 });
    const message = await failure(blobBytes(new Blob([bomb]), path, small));
    expect(message).toBe(`${path}: decompresses to more than 1 MB, the limit (--max-decompressed-mb; a gzip bomb, or raise it)`);
    expect(await failure(dataChunks(path, small))).toBe(message);
    expect(await failure(blobBytes(new Blob([bomb.subarray(0, bomb.length - 10)]), 'cut.gz', limits))).toMatch(/^cut\.gz: corrupt or truncated gzip \(/);
  });

  it('plain bytes are passed on whatever their size: the readers after it hold their own limits', async () => {
    const plain = new Uint8Array(2 ** 20 + 5).fill(65);
    expect((await collect(blobBytes(new Blob([plain]), 'big.txt', resolveLimits({ maxDecompressedMb: 1 })))).length).toBe(plain.length);
  });
});
