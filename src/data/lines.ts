/**
 * Cutting a stream of bytes into lines within DataLimits' line length: for files (files.ts) and for the
 * browser client's Blobs alike. Imports nothing from `node:`.
 */
import { DataError } from './errors.js';
import { LIMIT_OPTIONS } from './limits.js';

/**
 * Called with each non-empty line of a file: bytes buf[start, end) without the '\n' (a '\r' before it is
 * kept), and its 1-based number. Empty lines are counted, not passed: a run of newlines (a gzip bomb of
 * them, say) is skipped in a tight loop instead of a call per line.
 */
export type LineHandler<B extends Uint8Array = Uint8Array> = (buf: B, start: number, end: number, lineNo: number) => void;

/** Cuts chunks into lines; the unfinished last line waits, as a list of pieces, for the chunk that ends it. */
export class LineSplitter<B extends Uint8Array = Uint8Array> {
  lineNo = 0;
  private pending: B[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly name: string,
    private readonly maxLineBytes: number,
    private readonly onLine: LineHandler<B>,
    /** joins the pieces of a line that spans chunks (Node: Buffer.concat, so handlers get Buffers) */
    private readonly concat: (parts: B[]) => B = concatBytes as unknown as (parts: B[]) => B,
  ) {}

  push(chunk: B): void {
    let start = 0;
    let nl = chunk.indexOf(10);
    if (nl >= 0 && this.pendingBytes > 0) {
      this.check(this.pendingBytes + nl);
      const line = this.concat([...this.pending, chunk.subarray(0, nl) as B]);
      this.pending = [];
      this.pendingBytes = 0;
      this.onLine(line, 0, line.length, ++this.lineNo);
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    while (nl >= 0) {
      if (nl === start) {
        // empty lines: count the run of newlines without a call each
        while (start < chunk.length && chunk[start] === 10) {
          start++;
          this.lineNo++;
        }
      } else {
        this.check(nl - start);
        this.onLine(chunk, start, nl, ++this.lineNo);
        start = nl + 1;
      }
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) {
      this.check(this.pendingBytes + chunk.length - start);
      this.pending.push(chunk.subarray(start) as B);
      this.pendingBytes += chunk.length - start;
    }
  }

  /** The last line, when the data does not end with a newline. */
  end(): void {
    if (this.pendingBytes === 0) return;
    const line = this.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.onLine(line, 0, line.length, ++this.lineNo);
  }

  private check(bytes: number): void {
    if (bytes > this.maxLineBytes) {
      throw new DataError(`${this.name}:${this.lineNo + 1}: line longer than ${this.maxLineBytes} bytes, the limit (${LIMIT_OPTIONS.maxLineBytes}; is this a text file?)`);
    }
  }
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const utf8 = new TextDecoder();

/** The text of bytes buf[start, end), UTF-8. */
export function utf8Text(buf: Uint8Array, start: number, end: number): string {
  return utf8.decode(buf.subarray(start, end));
}

/** Every line of a stream of byte chunks (a Blob's stream, say), as forEachLine does for a file. */
export async function forEachLineOf(chunks: AsyncIterable<Uint8Array>, name: string, maxLineBytes: number, onLine: LineHandler): Promise<void> {
  const lines = new LineSplitter(name, maxLineBytes, onLine);
  for await (const chunk of chunks) lines.push(chunk);
  lines.end();
}
