/**
 * UCI BlogFeedback (Buza 2014): CSV rows of 280 features and a target (comments in the next 24 h).
 *
 * The federation is natural: one client per source blog, recognised by identical features 1-50
 * (statistics of the source's comment and link counts). Features are z-scored (or min-max scaled)
 * with statistics of the federated training rows only, so the test rows never inform the training input.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../models/types.js';
import { CsvRowsParser, type CsvFormat, type CsvRows } from './csv-parser.js';
import { DataError } from './errors.js';
import { forEachLine } from './files.js';
import { resolveLimits, type DataLimits } from './limits.js';
import { sizeSummary } from './rows.js';
import type { FederatedDataset } from './types.js';

/** Columns per CSV row: 280 features, then the target. */
export const BLOG_COLUMNS = 281;
export const BLOG_FEATURES = BLOG_COLUMNS - 1;
/** Features 1-50 describe the source blog; equal values mean the same source. */
const SOURCE_COLUMNS = 50;

export type SmallGroupRule = 'drop' | 'merge';
/** zscore: (x - mean) / std; minmax: (x - min) / (max - min); both fitted on the federated training rows */
export type Scaling = 'zscore' | 'minmax';

export interface BlogOptions {
  /** sources with fewer training rows than this are handled by `small` */
  minClientSize: number;
  /** drop: their rows are left out; merge: they are pooled, in order, into clients of >= minClientSize rows */
  small: SmallGroupRule;
  /** train on log(1 + y) instead of y (comment counts are heavy-tailed) */
  log1p: boolean;
  scale: Scaling;
}

/**
 * Groups under 10 rows are 133 of the 554 sources but hold only 705 of the 52,397 training rows
 * (1.3%): dropping them keeps every client one real blog and costs almost no data.
 */
export const BLOG_DEFAULTS: BlogOptions = { minClientSize: 10, small: 'drop', log1p: false, scale: 'zscore' };

const TRAIN_NAMES = ['blogData_train.csv', 'blogData_train.csv.gz'];
const FLAT_TEST = /^blogData_test-.*\.csv(\.gz)?$/;
const ANY_CSV = /\.csv(\.gz)?$/;

/** Parsed rows: features row-major (rows x 280), targets, and the source group of each row. */
export type BlogRows = CsvRows;
/** BlogFeedback's rows, for csv-parser.ts */
const BLOG_FORMAT: CsvFormat = { columns: BLOG_COLUMNS, nonNegativeTarget: true };

/** The train file and the test files of a BlogFeedback copy, found under `root`. */
export interface BlogFiles {
  dir: string;
  train: string;
  tests: string[];
}

/**
 * Finds the files in `root/blogfeedback/` or in `root` itself: blogData_train.csv(.gz) and the test
 * files, either in `test/` (this project's layout) or beside the train file as blogData_test-*.csv(.gz)
 * (the layout of UCI's zip).
 */
export async function findBlogFiles(root: string): Promise<BlogFiles> {
  const dirs = [join(root, 'blogfeedback'), root];
  for (const dir of dirs) {
    const names = await listDir(dir);
    const train = TRAIN_NAMES.find((n) => names.includes(n));
    if (train === undefined) continue;
    const testDir = join(dir, 'test');
    const inTestDir = (await listDir(testDir)).filter((n) => ANY_CSV.test(n));
    const tests =
      inTestDir.length > 0 ? inTestDir.sort().map((n) => join(testDir, n)) : names.filter((n) => FLAT_TEST.test(n)).sort().map((n) => join(dir, n));
    if (tests.length === 0) {
      throw new DataError(`blogfeedback: ${join(dir, train)} has no test files beside it (expected ${testDir}/*.csv(.gz) or ${dir}/blogData_test-*.csv(.gz))`);
    }
    return { dir, train: join(dir, train), tests };
  }
  throw new DataError(
    `blogfeedback: no blogData_train.csv(.gz) in ${dirs.join(' or ')}; unzip UCI's BlogFeedback.zip ` +
      `(https://archive.ics.uci.edu/dataset/304/blogfeedback) into DIR/blogfeedback and pass --data-dir DIR`,
  );
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return []; // missing or unreadable: the caller reports what it looked for
  }
}

/** Loads BlogFeedback from `root` (see findBlogFiles) as a federated regression dataset. */
export async function loadBlogFeedback(
  root: string,
  opts: BlogOptions = BLOG_DEFAULTS,
  limits: Partial<DataLimits> = {},
): Promise<{ dataset: FederatedDataset; warnings: string[] }> {
  if (!(Number.isSafeInteger(opts.minClientSize) && opts.minClientSize >= 1)) {
    throw new DataError(`blogfeedback: min client size must be an integer >= 1, got ${opts.minClientSize}`);
  }
  const files = await findBlogFiles(root);
  const train = await readBlogCsv(files.train, { sources: true, limits });
  const tests: BlogRows[] = [];
  for (const f of files.tests) tests.push(await readBlogCsv(f, { limits }));
  const test = concatRows(tests);

  const fed = groupClients(train.group!, train.groups!, opts.minClientSize, opts.small);
  if (fed.clients.length === 0) {
    throw new DataError(`blogfeedback: no source has ${opts.minClientSize} or more training rows; lower min (e.g. blogfeedback:min=1)`);
  }
  const keptRows = fed.clients.flatMap((c) => Array.from(c));
  const scaler = fitScaler(train.x, BLOG_FEATURES, keptRows, opts.scale);
  const target = opts.log1p ? Math.log1p : (v: number) => v;
  const clients = fed.clients.map((rows) => scaledRows(train, rows, scaler, target));
  const testSet = scaledRows(test, null, scaler, target);

  const warnings: string[] = [];
  const undersized = clients.filter((c) => c.y.length < opts.minClientSize).length;
  if (undersized > 0) warnings.push(`blogfeedback: ${undersized} pooled client has fewer than ${opts.minClientSize} rows (all small sources together are fewer)`);
  const dataset: FederatedDataset = {
    name: 'blogfeedback',
    task: 'regression',
    nFeatures: BLOG_FEATURES,
    nClasses: 1,
    clients,
    test: testSet,
    meta: {
      source: files.dir,
      train: files.train,
      testFiles: files.tests.length,
      federation: `natural: one per source blog (identical features 1-50); --clients and --partition do not apply`,
      sources: train.groups,
      minClientSize: opts.minClientSize,
      smallSources: opts.small,
      naturalClients: fed.natural,
      pooledClients: fed.pooled,
      droppedSources: fed.droppedGroups,
      droppedRows: fed.droppedRows,
      scaling: `${opts.scale === 'zscore' ? 'z-score (x - mean) / std' : 'min-max (x - min) / (max - min)'} fitted on the ${keptRows.length} federated training rows; constant columns set to 0`,
      constantColumns: scaler.constant.map((c) => c + 1),
      target: opts.log1p ? 'log(1 + comments in the next 24 h)' : 'comments in the next 24 h',
      samplesPerClient: sizeSummary(clients),
    },
    input: { kind: 'features', shift: Array.from(scaler.shift), factor: Array.from(scaler.factor) },
  };
  return { dataset, warnings };
}

/** Clients as row-index lists, and how the small sources were handled. */
export interface GroupedClients {
  clients: Uint32Array[];
  /** clients that are one source each */
  natural: number;
  /** clients pooled from small sources (rule 'merge') */
  pooled: number;
  droppedGroups: number;
  droppedRows: number;
}

/**
 * One client per group with at least `minSize` rows, in order of first appearance, rows in file
 * order. Smaller groups are dropped, or with 'merge' pooled in order of first appearance: a pool
 * closes as soon as it holds `minSize` rows, and a last pool still short of that joins the pool
 * before it (it stands alone only when it is the only pool). Pooled clients come after the natural ones.
 */
export function groupClients(group: Uint32Array, groups: number, minSize: number, rule: SmallGroupRule): GroupedClients {
  const members: number[][] = Array.from({ length: groups }, () => []);
  for (let i = 0; i < group.length; i++) members[group[i]!]!.push(i);
  const big = members.filter((m) => m.length >= minSize);
  const small = members.filter((m) => m.length < minSize);
  const smallRows = small.reduce((n, m) => n + m.length, 0);
  if (rule === 'drop') {
    return { clients: big.map((m) => Uint32Array.from(m)), natural: big.length, pooled: 0, droppedGroups: small.length, droppedRows: smallRows };
  }
  const pools: number[][] = [];
  let open: number[] = [];
  for (const m of small) {
    open.push(...m);
    if (open.length >= minSize) {
      pools.push(open);
      open = [];
    }
  }
  if (open.length > 0) {
    if (pools.length > 0) pools[pools.length - 1]!.push(...open);
    else pools.push(open);
  }
  // a pool's rows in file order, like a natural client's
  const pooled = pools.map((p) => Uint32Array.from(p).sort());
  return { clients: [...big.map((m) => Uint32Array.from(m)), ...pooled], natural: big.length, pooled: pooled.length, droppedGroups: 0, droppedRows: 0 };
}

/** x -> (x - shift) * factor per column; factor 0 for a column constant on the fitted rows. */
export interface Scaler {
  shift: Float64Array;
  factor: Float64Array;
  /** the constant columns (0-based) */
  constant: number[];
}

/** Fits the scaling on `rows` of a row-major matrix, in float64. */
export function fitScaler(x: Float32Array, cols: number, rows: readonly number[], kind: Scaling): Scaler {
  const shift = new Float64Array(cols);
  const spread = new Float64Array(cols);
  if (kind === 'minmax') {
    const max = new Float64Array(cols).fill(-Infinity);
    shift.fill(Infinity);
    for (const r of rows) {
      const o = r * cols;
      for (let c = 0; c < cols; c++) {
        const v = x[o + c]!;
        if (v < shift[c]!) shift[c] = v;
        if (v > max[c]!) max[c] = v;
      }
    }
    for (let c = 0; c < cols; c++) spread[c] = max[c]! - shift[c]!;
  } else {
    for (const r of rows) {
      const o = r * cols;
      for (let c = 0; c < cols; c++) shift[c]! += x[o + c]!;
    }
    for (let c = 0; c < cols; c++) shift[c]! /= rows.length;
    // two passes: sums of squared deviations, not E[x^2] - E[x]^2, which cancels badly
    for (const r of rows) {
      const o = r * cols;
      for (let c = 0; c < cols; c++) {
        const d = x[o + c]! - shift[c]!;
        spread[c]! += d * d;
      }
    }
    for (let c = 0; c < cols; c++) spread[c] = Math.sqrt(spread[c]! / rows.length); // population std
  }
  const constant: number[] = [];
  const factor = spread.map((v, c) => {
    if (v > 0) return 1 / v;
    constant.push(c);
    return 0;
  });
  return { shift, factor, constant };
}

/** The rows `rows` (all when null) scaled, as a dense dataset. */
function scaledRows(data: BlogRows, rows: ArrayLike<number> | null, s: Scaler, target: (v: number) => number): Dataset {
  const n = rows === null ? data.rows : rows.length;
  const cols = BLOG_FEATURES;
  const out = new Float32Array(n * cols);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows === null ? i : rows[i]!;
    const o = r * cols;
    const p = i * cols;
    for (let c = 0; c < cols; c++) out[p + c] = (data.x[o + c]! - s.shift[c]!) * s.factor[c]!;
    y[i] = target(data.y[r]!);
  }
  return { x: { kind: 'dense', rows: n, cols, data: out }, y };
}

function concatRows(parts: BlogRows[]): BlogRows {
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const x = new Float32Array(rows * BLOG_FEATURES);
  const y = new Float64Array(rows);
  let at = 0;
  for (const p of parts) {
    x.set(p.x, at * BLOG_FEATURES);
    y.set(p.y, at);
    at += p.rows;
  }
  return { rows, x, y };
}

/**
 * Reads one BlogFeedback CSV, plain or gzip (told apart by the gzip magic bytes, not the name).
 * Every row must have 281 finite decimal numbers and a target >= 0; otherwise DataError `PATH:LINE: ...`.
 * With `sources`, rows are also grouped by their features 1-50.
 */
export async function readBlogCsv(path: string, opts: { sources?: boolean; limits?: Partial<DataLimits> } = {}): Promise<BlogRows> {
  const parser = new CsvRowsParser(path, { ...BLOG_FORMAT, sourceColumns: opts.sources ? SOURCE_COLUMNS : 0 });
  await forEachLine(path, resolveLimits(opts.limits), (buf, start, end, lineNo) => parser.line(buf, start, end, lineNo));
  return parser.result();
}
