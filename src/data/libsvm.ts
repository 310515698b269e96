/**
 * LIBSVM / SVMlight files (plain or gzip, detected by the magic bytes): the parser of libsvm-parser.ts
 * over a file's lines (files.ts).
 */
import { forEachLine } from './files.js';
import { resolveLimits } from './limits.js';
import { LibsvmParser, type LibsvmData, type LibsvmOptions } from './libsvm-parser.js';

export { ownData, parseLibsvmText, readLibsvmChunks, type LibsvmData, type LibsvmOptions } from './libsvm-parser.js';

/** Reads a LIBSVM file (plain or gzip). Throws DataError `PATH:LINE: ...` on bad content. */
export async function readLibsvm(path: string, opts: LibsvmOptions = {}): Promise<LibsvmData> {
  const limits = resolveLimits(opts.limits);
  const parser = new LibsvmParser(path, opts, limits.maxDimension);
  await forEachLine(path, limits, (buf, start, end, lineNo) => parser.line(buf.toString('utf8', start, end), lineNo));
  return parser.finish();
}

