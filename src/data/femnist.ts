/**
 * FEMNIST (LEAF): 28x28 handwritten characters in 62 classes, one client per writer.
 *
 * Two sources: this project's compact writer format (train/test images and labels as gzipped
 * uint8, writers.tsv giving each writer's contiguous sample ranges; see shared/data/README.md),
 * and LEAF's own JSON output (leaf.ts). Pixels become x = 1 - byte/255, so ink is 1 and the
 * background an exact 0 (LEAF stores byte/255 with a white background).
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../models/types.js';
import { excerpt } from '../errors.js';
import { DataError } from './errors.js';
import { forEachLine, readMaybeGzip } from './files.js';
import { resolveLimits, type DataLimits } from './limits.js';
import { readLeafDir, type LeafUser } from './leaf.js';
import { concatDatasets, sizeSummary } from './rows.js';
import type { FederatedDataset } from './types.js';

export const FEMNIST_PIXELS = 784;
export const FEMNIST_CLASSES = 62;

export interface FemnistOptions {
  /** compact format: leave out the writers flagged maybe_truncated */
  dropTruncated: boolean;
  /** read LEAF's JSON layout from this directory instead of the compact format */
  leaf: string | null;
}

export const FEMNIST_DEFAULTS: FemnistOptions = { dropTruncated: false, leaf: null };

const WRITER_COLUMNS = ['writer', 'train_start', 'train_count', 'test_start', 'test_count', 'maybe_truncated'] as const;
const FILES = {
  writers: 'writers.tsv',
  trainImages: 'train_images.u8.gz',
  trainLabels: 'train_labels.u8.gz',
  testImages: 'test_images.u8.gz',
  testLabels: 'test_labels.u8.gz',
};

/** 1 - b/255 for every byte value b. */
const INK = Float32Array.from({ length: 256 }, (_, b) => 1 - b / 255);

/** Loads FEMNIST from `root/femnist/` or `root` (compact format), or from opts.leaf (LEAF JSON). */
export async function loadFemnist(
  root: string,
  opts: FemnistOptions = FEMNIST_DEFAULTS,
  limits: Partial<DataLimits> = {},
): Promise<{ dataset: FederatedDataset; warnings: string[] }> {
  const checked = resolveLimits(limits);
  if (opts.leaf !== null) {
    if (opts.dropTruncated) throw new DataError(`femnist: drop-truncated needs the compact format's maybe_truncated flags; LEAF JSON has none`);
    return loadFemnistLeaf(opts.leaf, checked);
  }
  return loadFemnistCompact(await findCompactDir(root), opts.dropTruncated, checked);
}

async function findCompactDir(root: string): Promise<string> {
  const dirs = [join(root, 'femnist'), root];
  for (const dir of dirs) {
    if (await exists(join(dir, FILES.writers))) return dir;
  }
  throw new DataError(
    `femnist: no ${FILES.writers} in ${dirs.join(' or ')}; pass --data-dir DIR with DIR/femnist in the compact format, ` +
      `or --dataset femnist:leaf=DIR for LEAF's JSON output (DIR/train, DIR/test)`,
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** One writer's row of writers.tsv. */
export interface WriterRow {
  id: string;
  trainStart: number;
  trainCount: number;
  testStart: number;
  testCount: number;
  maybeTruncated: boolean;
  /** line in writers.tsv, for messages */
  line: number;
}

/**
 * Parses writers.tsv: a header naming at least the columns writer, train_start, train_count,
 * test_start, test_count, maybe_truncated, then one row per writer whose ranges continue where the
 * previous writer's ended (the samples are stored writer by writer).
 */
export function parseWriters(text: string, path: string): WriterRow[] {
  const parser = new WritersParser(path);
  text.split('\n').forEach((line, k) => parser.line(line, k + 1));
  return parser.finish();
}

/** writers.tsv line by line (read as a stream within the line limit); `finish` gives the rows. */
class WritersParser {
  private header: string[] | null = null;
  private at: number[] = [];
  private readonly rows: WriterRow[] = [];
  private readonly seen = new Set<string>();
  private trainEnd = 0;
  private testEnd = 0;

  constructor(private readonly path: string) {}

  /** Line `line` of the file; blank lines are skipped. */
  line(raw: string, line: number): void {
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text === '') return;
    const fail = (message: string): never => {
      throw new DataError(`${this.path}:${line}: ${message}`);
    };
    const cells = text.split('\t');
    if (this.header === null) {
      this.header = cells;
      this.at = WRITER_COLUMNS.map((name) => {
        const i = cells.indexOf(name);
        if (i < 0) fail(`header has no '${name}' column (expected ${WRITER_COLUMNS.join(', ')})`);
        return i;
      });
      return;
    }
    const header = this.header;
    const [iWriter, iTrainStart, iTrainCount, iTestStart, iTestCount, iTrunc] = this.at as [number, number, number, number, number, number];
    if (cells.length !== header.length) fail(`${cells.length} fields, expected ${header.length} as in the header`);
    const id = cells[iWriter]!;
    if (id === '') fail('empty writer id');
    if (this.seen.has(id)) fail(`writer ${excerpt(id)} appears twice`);
    this.seen.add(id);
    const int = (i: number): number => {
      const t = cells[i]!;
      if (!/^\d{1,15}$/.test(t)) fail(`writer ${excerpt(id)}: ${excerpt(header[i]!)} '${excerpt(t)}' is not a non-negative integer`);
      return Number(t);
    };
    const row: WriterRow = {
      id,
      trainStart: int(iTrainStart),
      trainCount: int(iTrainCount),
      testStart: int(iTestStart),
      testCount: int(iTestCount),
      maybeTruncated: cells[iTrunc] === '1',
      line,
    };
    const who = `writer ${excerpt(id)}`;
    if (cells[iTrunc] !== '0' && cells[iTrunc] !== '1') fail(`${who}: maybe_truncated '${excerpt(cells[iTrunc]!)}' is not 0 or 1`);
    if (row.trainCount === 0) fail(`${who} has no training samples`);
    if (row.trainStart !== this.trainEnd) fail(`${who}: train_start ${row.trainStart}, expected ${this.trainEnd} (ranges must follow each other in sample order)`);
    if (row.testStart !== this.testEnd) fail(`${who}: test_start ${row.testStart}, expected ${this.testEnd} (ranges must follow each other in sample order)`);
    this.trainEnd += row.trainCount;
    this.testEnd += row.testCount;
    this.rows.push(row);
  }

  finish(): WriterRow[] {
    if (this.header === null) throw new DataError(`${this.path}: empty file`);
    if (this.rows.length === 0) throw new DataError(`${this.path}: no writers`);
    return this.rows;
  }
}

async function loadFemnistCompact(dir: string, dropTruncated: boolean, limits: DataLimits): Promise<{ dataset: FederatedDataset; warnings: string[] }> {
  const path = (f: keyof typeof FILES) => join(dir, FILES[f]);
  const writersParser = new WritersParser(path('writers'));
  await forEachLine(path('writers'), limits, (buf, start, end, line) => writersParser.line(buf.toString('utf8', start, end), line));
  const writers = writersParser.finish();
  const train = readSplit(writers, 'train', path('trainImages'), path('trainLabels'), path('writers'), limits);
  const test = readSplit(writers, 'test', path('testImages'), path('testLabels'), path('writers'), limits);
  const kept = dropTruncated ? writers.filter((w) => !w.maybeTruncated) : writers;
  if (kept.length === 0) throw new DataError(`femnist: every writer in ${path('writers')} is flagged maybe_truncated; nothing left after drop-truncated`);
  const clients = kept.map((w) => samples(train, w.trainStart, w.trainCount));
  const testParts = kept.filter((w) => w.testCount > 0).map((w) => samples(test, w.testStart, w.testCount));
  const flagged = writers.filter((w) => w.maybeTruncated).length;
  const dataset = femnistDataset(clients, testParts, {
    source: dir,
    format: 'compact (writers.tsv + uint8 images)',
    writers: writers.length,
    maybeTruncated: flagged,
    droppedTruncated: dropTruncated ? flagged : 0,
  });
  return { dataset, warnings: [] };
}

interface Split {
  images: Uint8Array;
  labels: Uint8Array;
}

/** Reads one split's images and labels and checks them against the writers' ranges. */
function readSplit(writers: WriterRow[], split: 'train' | 'test', imagesPath: string, labelsPath: string, writersPath: string, limits: DataLimits): Split {
  const labels = readMaybeGzip(labelsPath, limits);
  const images = readMaybeGzip(imagesPath, limits);
  const n = labels.length;
  const startOf = (w: WriterRow) => (split === 'train' ? w.trainStart : w.testStart);
  const countOf = (w: WriterRow) => (split === 'train' ? w.trainCount : w.testCount);
  for (const w of writers) {
    if (startOf(w) + countOf(w) > n) {
      throw new DataError(
        `${writersPath}:${w.line}: writer ${w.id}: ${split} samples ${startOf(w)}..${startOf(w) + countOf(w) - 1} go beyond the ${n} labels in ${labelsPath}`,
      );
    }
  }
  const last = writers[writers.length - 1]!;
  const covered = startOf(last) + countOf(last);
  if (covered !== n) throw new DataError(`${writersPath}: the writers' ${split} ranges cover ${covered} samples, but ${labelsPath} has ${n} labels`);
  if (images.length !== n * FEMNIST_PIXELS) {
    throw new DataError(`${imagesPath}: ${images.length} bytes, expected ${n} images x ${FEMNIST_PIXELS} = ${n * FEMNIST_PIXELS} (one per label in ${labelsPath})`);
  }
  for (const w of writers) {
    for (let i = startOf(w); i < startOf(w) + countOf(w); i++) {
      if (labels[i]! >= FEMNIST_CLASSES) {
        throw new DataError(`${labelsPath}: sample ${i} (writer ${w.id}, ${writersPath}:${w.line}): label ${labels[i]} is outside 0..${FEMNIST_CLASSES - 1}`);
      }
    }
  }
  return { images, labels };
}

/** Samples [start, start + count) of a split as ink features. */
function samples(split: Split, start: number, count: number): Dataset {
  const data = new Float32Array(count * FEMNIST_PIXELS);
  const base = start * FEMNIST_PIXELS;
  for (let i = 0; i < data.length; i++) data[i] = INK[split.images[base + i]!]!;
  const y = Float32Array.from(split.labels.subarray(start, start + count));
  return { x: { kind: 'dense', rows: count, cols: FEMNIST_PIXELS, data }, y };
}

async function loadFemnistLeaf(dir: string, limits: DataLimits): Promise<{ dataset: FederatedDataset; warnings: string[] }> {
  const { train, test } = await readLeafDir(dir, { features: FEMNIST_PIXELS, classes: FEMNIST_CLASSES, min: 0, max: 1 }, limits);
  const asDataset = (u: LeafUser): Dataset => {
    // LEAF's x is byte/255 with a white background: turn it into ink in place
    for (let i = 0; i < u.x.length; i++) u.x[i] = 1 - u.x[i]!;
    return { x: { kind: 'dense', rows: u.y.length, cols: FEMNIST_PIXELS, data: u.x }, y: u.y };
  };
  const empty = train.users.filter((u) => u.y.length === 0).length;
  const clients = train.users.filter((u) => u.y.length > 0).map(asDataset);
  if (clients.length === 0) throw new DataError(`${dir}/train: no user has samples`);
  const testParts = test.users.filter((u) => u.y.length > 0).map(asDataset);
  const dataset = femnistDataset(clients, testParts, {
    source: dir,
    format: 'LEAF JSON',
    writers: train.users.length,
    trainFiles: train.files.length,
    testFiles: test.files.length,
  });
  return { dataset, warnings: empty > 0 ? [`femnist: ${empty} LEAF users without training samples left out`] : [] };
}

function femnistDataset(clients: Dataset[], testParts: Dataset[], meta: Record<string, unknown>): FederatedDataset {
  return {
    name: 'femnist',
    task: 'multiclass',
    nFeatures: FEMNIST_PIXELS,
    nClasses: FEMNIST_CLASSES,
    clients,
    ...(testParts.length > 0 ? { test: concatDatasets(testParts) } : {}),
    meta: {
      ...meta,
      federation: 'natural: one per writer; --clients and --partition do not apply',
      features: 'x = 1 - byte/255 (ink 1, background 0), 28x28 row-major',
      labels: '0-9 digits, 10-35 A-Z, 36-61 a-z',
      samplesPerClient: sizeSummary(clients),
    },
    input: { kind: 'image-bytes', mean: [1], std: [-1] }, // (b/255 − 1)/(−1) = 1 − b/255, the same float
  };
}

