/**
 * CSV rows of numbers, the target last (BlogFeedback's files, a client's own data): parsed straight from
 * the bytes, line by line, for files (blogfeedback.ts, readBlogCsv) and for a browser's Blob
 * (readCsvChunks) alike. Imports nothing from `node:`.
 */
import { excerpt } from '../errors.js';
import { DataError } from './errors.js';
import { resolveLimits, type DataLimits } from './limits.js';
import { forEachLineOf, utf8Text } from './lines.js';

/** What a row holds. */
export interface CsvFormat {
  /** numbers per row: the features, then the target */
  columns: number;
  /** group rows by their first this many columns (BlogFeedback's source blog); 0 or absent: no groups */
  sourceColumns?: number;
  /** a target below 0 (or NaN) is an error */
  nonNegativeTarget?: boolean;
}

/** Parsed rows: features row-major (rows x (columns - 1)), targets, and the source group of each row. */
export interface CsvRows {
  rows: number;
  x: Float32Array;
  y: Float64Array;
  /** group id of each row, numbered by first appearance (only when sources were asked for) */
  group?: Uint32Array;
  groups?: number;
}

/** The parser over a stream of bytes (a Blob's, in the browser client); `name` stands for the path in messages. */
export async function readCsvChunks(chunks: AsyncIterable<Uint8Array>, name: string, format: CsvFormat, limits: Partial<DataLimits> = {}): Promise<CsvRows> {
  const parser = new CsvRowsParser(name, format);
  await forEachLineOf(chunks, name, resolveLimits(limits).maxLineBytes, (buf, start, end, lineNo) => parser.line(buf, start, end, lineNo));
  return parser.result();
}

/** Rows per storage block: blocks grow the store without copying what is already parsed. */
const BLOCK_ROWS = 4096;
const COMMA = 44;
const CR = 13;
/** Exact powers of ten: m / 10^k rounds correctly for integers m < 2^53 and k <= 22 (Clinger's fast path). */
const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

/** Parses each line straight from the buffer it arrived in (no strings per cell). */
export class CsvRowsParser {
  private lineNo = 0;
  private rows = 0;
  private blocks: Float32Array[] = [];
  private targets: number[] = [];
  private readonly groupOf = new Map<string, number>();
  private readonly groupIds: number[] = [];
  private readonly key: Float64Array;
  private readonly keyChars: Uint16Array;
  /** the row being parsed */
  private readonly row: Float64Array;
  private readonly columns: number;
  private readonly features: number;

  constructor(
    private readonly name: string,
    private readonly format: CsvFormat,
  ) {
    this.columns = format.columns;
    this.features = format.columns - 1;
    this.row = new Float64Array(this.columns);
    this.key = new Float64Array(format.sourceColumns ?? 0);
    this.keyChars = new Uint16Array(this.key.buffer);
  }

  /** Line `lineNo` is buf[start, end) without its newline; blank lines are skipped. */
  line(buf: Uint8Array, start: number, end: number, lineNo: number): void {
    this.lineNo = lineNo;
    if (end > start && buf[end - 1] === CR) end--;
    if (end > start) this.parseLine(buf, start, end);
  }

  result(): CsvRows {
    if (this.rows === 0) throw new DataError(`${this.name}: empty file (no rows)`);
    const x = new Float32Array(this.rows * this.features);
    this.blocks.forEach((b, i) => {
      const start = i * BLOCK_ROWS * this.features;
      x.set(b.subarray(0, Math.min(b.length, x.length - start)), start);
    });
    const out: CsvRows = { rows: this.rows, x, y: Float64Array.from(this.targets) };
    if (this.key.length > 0) {
      out.group = Uint32Array.from(this.groupIds);
      out.groups = this.groupOf.size;
    }
    return out;
  }

  private parseLine(buf: Uint8Array, start: number, end: number): void {
    const row = this.row;
    let p = start;
    const columns = this.columns;
    for (let col = 0; col < columns; col++) {
      // a line cut short after a comma (a truncated file) is a column count problem, not a bad number
      if (p === end && col > 0) this.fail(`expected ${columns} columns, found ${columnCount(buf, start, end)}`);
      const cellEnd = this.number(buf, p, end, col);
      const sep = cellEnd < end ? buf[cellEnd] : -1;
      if (col < columns - 1 ? sep !== COMMA : sep !== -1) {
        if (sep === COMMA || sep === -1) this.fail(`expected ${columns} columns, found ${columnCount(buf, start, end)}`);
        this.fail(`column ${col + 1}: '${cellText(buf, p, end)}' is not a number`);
      }
      p = cellEnd + 1;
    }
    const target = row[columns - 1]!;
    if (this.format.nonNegativeTarget && !(target >= 0)) this.fail(`target (column ${columns}) is ${target}, must be >= 0`);
    this.store(row);
  }

  /**
   * Parses the decimal starting at p into this.row[col]; returns the index just after it. Digits
   * that fit 2^53 with a power of ten up to 10^22 take the exact fast path, others go through Number().
   */
  private number(buf: Uint8Array, p: number, end: number, col: number): number {
    const begin = p;
    const neg = buf[p] === 45; // -
    if (p < end && (neg || buf[p] === 43)) p++;
    let mant = 0;
    let digits = 0;
    let scale = 0;
    let b = buf[p]!;
    while (p < end && b >= 48 && b <= 57) {
      mant = mant * 10 + (b - 48);
      digits++;
      b = buf[++p]!;
    }
    if (p < end && b === 46) {
      b = buf[++p]!;
      while (p < end && b >= 48 && b <= 57) {
        mant = mant * 10 + (b - 48);
        digits++;
        scale++;
        b = buf[++p]!;
      }
    }
    if (digits === 0) this.fail(`column ${col + 1}: '${cellText(buf, begin, end)}' is not a number`);
    let exponent = false;
    if (p < end && (b === 101 || b === 69)) {
      // e E: rare in this data, so Number() does the arithmetic
      let q = p + 1;
      if (q < end && (buf[q] === 45 || buf[q] === 43)) q++;
      const expStart = q;
      while (q < end && buf[q]! >= 48 && buf[q]! <= 57) q++;
      if (q === expStart) this.fail(`column ${col + 1}: '${cellText(buf, begin, end)}' is not a number`);
      p = q;
      exponent = true;
    }
    if (!exponent && digits <= 15 && scale <= 22) {
      const v = mant / POW10[scale]!;
      this.row[col] = neg ? -v : v;
    } else {
      const text = utf8Text(buf, begin, p); // ASCII digits, signs, '.', 'e' only
      const v = Number(text);
      if (!Number.isFinite(Math.fround(v))) this.fail(`column ${col + 1}: ${excerpt(text)} is out of range`);
      this.row[col] = v;
    }
    return p;
  }

  private store(row: Float64Array): void {
    const slot = this.rows % BLOCK_ROWS;
    const features = this.features;
    if (slot === 0) this.blocks.push(new Float32Array(BLOCK_ROWS * features));
    const block = this.blocks[this.blocks.length - 1]!;
    const o = slot * features;
    for (let c = 0; c < features; c++) block[o + c] = row[c]!;
    this.targets.push(row[features]!);
    if (this.key.length > 0) {
      // the key is the exact float64 bits of the source columns (+0 folds -0 into 0)
      for (let c = 0; c < this.key.length; c++) this.key[c] = row[c]! + 0;
      const key = String.fromCharCode.apply(null, this.keyChars as unknown as number[]);
      let id = this.groupOf.get(key);
      if (id === undefined) {
        id = this.groupOf.size;
        this.groupOf.set(key, id);
      }
      this.groupIds.push(id);
    }
    this.rows++;
  }

  private fail(message: string): never {
    throw new DataError(`${this.name}:${this.lineNo}: ${message}`);
  }
}

function columnCount(buf: Uint8Array, start: number, end: number): number {
  let n = 1;
  for (let i = start; i < end; i++) if (buf[i] === COMMA) n++;
  return n;
}

/** The cell starting at p, for messages (cut at 20 characters; DataError escapes control characters). */
function cellText(buf: Uint8Array, p: number, end: number): string {
  let q = p;
  while (q < end && buf[q] !== COMMA) q++;
  const text = utf8Text(buf, p, Math.min(q, p + 20));
  return q - p > 20 ? `${text}...` : text;
}
