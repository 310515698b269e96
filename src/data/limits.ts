/**
 * How much a data file may make the readers hold, so a hostile or broken file (a line without end,
 * an index near 2^31, a gzip bomb) is refused with a message instead of exhausting memory. The same
 * names are RunConfig fields, experiment and serve config keys, and command-line options.
 */
import { DataError } from './errors.js';
import { describeValue } from './parse.js';

export interface DataLimits {
  /** longest line of a text data file (LIBSVM, BlogFeedback CSV, FEMNIST writers.tsv), in bytes */
  maxLineBytes: number;
  /** largest LIBSVM feature index: the model and every per-client vector get this many weights */
  maxDimension: number;
  /**
   * most content of one data file, in MB (2^20 bytes): gzip is decompressed as a stream and stopped
   * past it; files read whole (CIFAR-10 batches, FEMNIST, LEAF JSON) are refused above it, plain or gzip
   */
  maxDecompressedMb: number;
}

/**
 * Far above the real data (longest BlogFeedback line 1.3 kB, largest file 65 MB: BlogFeedback's
 * train CSV; LEAF's full FEMNIST images 631 MB) and within a 24 GB machine: a file read whole is
 * held twice at most while it is assembled (2 GB), and 2^24 weights are 64 MB per vector.
 */
export const DEFAULT_LIMITS: DataLimits = { maxLineBytes: 16 * 2 ** 20, maxDimension: 2 ** 24, maxDecompressedMb: 1024 };

/** The limits' names: run options that change what is refused, never a result. */
export const LIMIT_KEYS = Object.keys(DEFAULT_LIMITS) as (keyof DataLimits)[];

/** The limits among an object's fields (a RunConfig's, say). */
export function pickLimits(o: DataLimits): DataLimits {
  return { maxLineBytes: o.maxLineBytes, maxDimension: o.maxDimension, maxDecompressedMb: o.maxDecompressedMb };
}

/** The command-line option of each limit, for messages that say how to change it. */
export const LIMIT_OPTIONS: Record<keyof DataLimits, string> = {
  maxLineBytes: '--max-line-bytes',
  maxDimension: '--max-dimension',
  maxDecompressedMb: '--max-decompressed-mb',
};

/** Upper bounds of the limits themselves: a line must fit a JS string, an index a uint32, a whole file a Buffer. */
const CEILINGS: DataLimits = { maxLineBytes: 2 ** 28, maxDimension: 2 ** 31, maxDecompressedMb: 2 ** 20 };

/** The limits with defaults filled in; throws DataError for a limit that is not a number in range. */
export function resolveLimits(given: Partial<DataLimits> = {}): DataLimits {
  const limits = { ...DEFAULT_LIMITS, ...definedOnly(given) };
  for (const k of Object.keys(CEILINGS) as (keyof DataLimits)[]) {
    const v = limits[k];
    const integer = k !== 'maxDecompressedMb';
    if (!(typeof v === 'number' && v > 0 && v <= CEILINGS[k] && (!integer || Number.isInteger(v)))) {
      const range = integer ? `an integer in 1..${CEILINGS[k]}` : `a number in (0, ${CEILINGS[k]}]`;
      throw new DataError(`${LIMIT_OPTIONS[k]} must be ${range}, got ${describeValue(v)}`);
    }
  }
  return limits;
}

/** The refusal of a file whose content passes maxDecompressedMb (`gzip`: decompressed; a gzip bomb, say). */
export function tooMuchContent(path: string, limits: DataLimits, gzip: boolean): DataError {
  const what = gzip ? 'decompresses to more than' : 'is larger than';
  return new DataError(`${path}: ${what} ${limits.maxDecompressedMb} MB, the limit (${LIMIT_OPTIONS.maxDecompressedMb}; a gzip bomb, or raise it)`);
}

/** maxDecompressedMb in bytes. */
export function maxContentBytes(limits: DataLimits): number {
  return Math.floor(limits.maxDecompressedMb * 2 ** 20);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
