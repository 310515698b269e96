/**
 * Plain-text and Markdown tables for summaries printed by the CLI and written to reports.
 * Number cells go through formatNumber and are right-aligned unless told otherwise.
 */

export type Cell = string | number | undefined;
export type Align = 'left' | 'right';

export interface TableOptions {
  /** Per-column alignment; columns left out default to right for all-number columns, else left. */
  align?: Align[];
}

/**
 * Compact number text: `digits` significant digits, trailing zeros dropped, plain form for
 * magnitudes in [1e-3, 1e6) and exponent form (1.23e-7) otherwise. Never SI suffixes (12.3k),
 * so values read back unambiguously.
 */
export function formatNumber(x: number | undefined, digits = 4): string {
  if (x === undefined) return '—';
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Inf' : '-Inf';
  if (x === 0) return '0';
  const magnitude = Math.abs(x);
  if (magnitude >= 1e-3 && magnitude < 1e6) {
    const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(magnitude)));
    return stripZeros(x.toFixed(decimals));
  }
  const [mantissa, exponent] = x.toExponential(digits - 1).split('e') as [string, string];
  return `${stripZeros(mantissa)}e${exponent.replace('+', '')}`;
}

/** '0.8100' -> '0.81', '2.000' -> '2'; integers are left alone. */
function stripZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** A terminal table: columns padded to width, two spaces between, a dashed line under the header. */
export function formatTable(headers: string[], rows: Cell[][], opts: TableOptions = {}): string {
  const { cells, align, widths } = layout(headers, rows, opts);
  const line = (row: string[]) =>
    row
      .map((c, j) => pad(c, widths[j]!, align[j]!))
      .join('  ')
      .trimEnd();
  const separator = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(cells[0]!), separator, ...cells.slice(1).map(line)].join('\n') + '\n';
}

/** A GitHub-flavoured Markdown table, padded so the source is readable too. */
export function markdownTable(headers: string[], rows: Cell[][], opts: TableOptions = {}): string {
  const escaped = { headers: headers.map(escapePipes), rows: rows.map((r) => r.map(escapeCell)) };
  const { cells, align, widths } = layout(escaped.headers, escaped.rows, opts);
  // A separator cell needs at least 3 characters ('---' or '--:').
  const mdWidths = widths.map((w) => Math.max(w, 3));
  const line = (row: string[]) => `| ${row.map((c, j) => pad(c, mdWidths[j]!, align[j]!)).join(' | ')} |`;
  const separator = `| ${mdWidths.map((w, j) => (align[j] === 'right' ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ')} |`;
  return [line(cells[0]!), separator, ...cells.slice(1).map(line)].join('\n') + '\n';
}

function escapeCell(cell: Cell): Cell {
  return typeof cell === 'string' ? escapePipes(cell) : cell;
}

function escapePipes(text: string): string {
  return text.replace(/\|/g, '\\|');
}

interface Layout {
  /** Header row first, then the body, all as text and all the same length. */
  cells: string[][];
  align: Align[];
  widths: number[];
}

function layout(headers: string[], rows: Cell[][], opts: TableOptions): Layout {
  const ncol = Math.max(headers.length, ...rows.map((r) => r.length));
  const text = (row: readonly Cell[]) =>
    Array.from({ length: ncol }, (_, j) => cellText(row[j]));
  const cells = [text(headers), ...rows.map(text)];
  const align = Array.from({ length: ncol }, (_, j) => opts.align?.[j] ?? defaultAlign(rows, j));
  const widths = Array.from({ length: ncol }, (_, j) => Math.max(...cells.map((r) => displayWidth(r[j]!))));
  return { cells, align, widths };
}

function cellText(cell: Cell): string {
  return typeof cell === 'string' ? cell : formatNumber(cell);
}

/** Right-align a column whose filled cells are all numbers (missing cells do not count). */
function defaultAlign(rows: Cell[][], j: number): Align {
  const filled = rows.map((r) => r[j]).filter((c) => c !== undefined && c !== '');
  return filled.length > 0 && filled.every((c) => typeof c === 'number') ? 'right' : 'left';
}

/** Counts code points, so '—' and 'σ' take one column (wide CJK glyphs are not handled). */
function displayWidth(text: string): number {
  return [...text].length;
}

function pad(text: string, width: number, align: Align): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(text)));
  return align === 'right' ? fill + text : text + fill;
}
