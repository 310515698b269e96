/**
 * The bytes of a Blob (a file picked in the browser client) as a stream of chunks, gunzipped when the
 * content is gzip (told by its magic bytes 1f 8b, as files.ts tells a file on disk) by the platform's
 * DecompressionStream, and stopped past limits.maxDecompressedMb with the message of files.ts: a gzip
 * bomb is refused after the limit's worth of bytes, never held whole. Imports nothing from `node:`.
 */
import { DataError } from './errors.js';
import { maxContentBytes, tooMuchContent, type DataLimits } from './limits.js';

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** `blob`'s (decompressed) content, chunk by chunk; `name` is the file's, for messages. */
export async function* blobBytes(blob: Blob, name: string, limits: DataLimits): AsyncGenerator<Uint8Array> {
  const gzip = isGzip(new Uint8Array(await blob.slice(0, 2).arrayBuffer()));
  const stream = gzip ? blob.stream().pipeThrough(new DecompressionStream('gzip')) : blob.stream();
  const reader = stream.getReader();
  const max = maxContentBytes(limits);
  let total = 0;
  try {
    for (;;) {
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (e) {
        throw new DataError(`${name}: ${gzip ? 'corrupt or truncated gzip' : 'cannot read'} (${(e as Error).message})`);
      }
      if (next.done) return;
      total += next.value.length;
      if (gzip && total > max) throw tooMuchContent(name, limits, true);
      yield next.value;
    }
  } finally {
    // stops the decompression when the consumer stops part-way (or the limit is passed)
    await reader.cancel().catch(() => {});
  }
}
