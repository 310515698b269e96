import { excerpt, oneLine } from '../errors.js';

/** A plain decimal number ('1', '-0.5', '.5', '2e-3'); no hex, Infinity or NaN. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The finite value of a plain decimal, or null. */
export function parseDecimal(text: string): number | null {
  if (!DECIMAL.test(text)) return null;
  const v = Number(text);
  return Number.isFinite(v) ? v : null;
}

/**
 * JSON.parse whose syntax error is one line with the line and column where known: V8's own
 * message can quote the whole input, newlines included, so that quote is left out.
 */
export function parseJson(text: string, where: string, error: (message: string) => Error): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const v8 = (e as Error).message;
    const at = / in JSON at position (\d+)/.exec(v8);
    const message = v8.replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, '').replace(/ in JSON at position \d+/, '');
    throw error(`${where}: not valid JSON: ${oneLine(message)}${at ? ` (line ${lineColumn(text, Number(at[1]))})` : ''}`);
  }
}

/** "LINE, column COLUMN" (1-based) of offset `pos` in text. */
function lineColumn(text: string, pos: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < pos; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return `${line}, column ${pos - lineStart + 1}`;
}

/** A parsed JSON value for a message: short, one line, and never a deep walk (a nested value is just "a list" or "an object"). */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object' && v !== null) return 'an object';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return excerpt(JSON.stringify(v));
}
