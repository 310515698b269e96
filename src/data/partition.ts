/** Splitting one dataset's rows over clients. */
import type { Dataset, Task } from '../models/types.js';
import { rngFor } from '../core/rng.js';
import { DataError } from './errors.js';
import { parseDecimal } from './parse.js';
import { subset } from './rows.js';

export type PartitionScheme = { kind: 'contiguous' } | { kind: 'iid' } | { kind: 'dirichlet'; alpha: number };

const PARTITION_FORMS = 'contiguous, iid, dirichlet:ALPHA (ALPHA > 0, e.g. dirichlet:0.5)';
/** Redraws before a Dirichlet partition with an empty client is given up. */
const DIRICHLET_TRIES = 10;
/** Clients with fewer samples than this are reported in a warning. */
const FEW_SAMPLES = 10;

/** Parses 'contiguous', 'iid' or 'dirichlet:ALPHA'. */
export function parsePartition(s: string): PartitionScheme {
  if (s === 'contiguous' || s === 'iid') return { kind: s };
  const m = /^dirichlet:(.+)$/.exec(s);
  if (m) {
    const alpha = parseDecimal(m[1]!);
    if (alpha !== null && alpha > 0) return { kind: 'dirichlet', alpha };
  }
  throw new DataError(`unknown partition '${s}' (valid: ${PARTITION_FORMS})`);
}

export function describePartition(scheme: PartitionScheme): string {
  return scheme.kind === 'dirichlet' ? `dirichlet:${scheme.alpha}` : scheme.kind;
}

/**
 * Splits data's rows over `clients`; every row goes to exactly one client.
 * - contiguous: consecutive blocks in row order, sizes differing by at most 1 (keeps any order the
 *   file has, e.g. sorted by source, as natural heterogeneity);
 * - iid: the same block sizes over a seeded random permutation;
 * - dirichlet: label skew (Hsu et al. 2019, as Flower's DirichletPartitioner): for each class,
 *   client shares ~ Dir(α) and the class's shuffled rows are cut in those shares; each client's rows
 *   are then shuffled (not grouped by label), so any prefix has the client's label mix. Small α gives
 *   each client few dominant classes; large α approaches iid. Needs class labels (binary: the ±1
 *   labels are the two classes). Redrawn up to 10 times until every client has a sample.
 */
export function partition(
  data: Dataset,
  clients: number,
  scheme: PartitionScheme,
  seed: number,
  task: Task,
): { clients: Dataset[]; warnings: string[] } {
  const n = data.y.length;
  if (!(Number.isInteger(clients) && clients >= 1)) throw new DataError(`clients must be an integer >= 1, got ${clients}`);
  if (clients > n) throw new DataError(`cannot split ${n} samples over ${clients} clients (at most ${n} clients)`);
  let assignment: Uint32Array[];
  if (scheme.kind === 'contiguous') assignment = blocks(identity(n), clients);
  else if (scheme.kind === 'iid') assignment = blocks(rngFor(seed, 'partition-iid').permutation(n), clients);
  else assignment = dirichletSplit(data.y, clients, scheme.alpha, seed, task);
  return { clients: assignment.map((rows) => subset(data, rows)), warnings: smallClientWarnings(assignment) };
}

/** `order` cut into `clients` consecutive blocks; the first n mod clients blocks get one extra row. */
function blocks(order: Uint32Array, clients: number): Uint32Array[] {
  const base = Math.floor(order.length / clients);
  const extra = order.length % clients;
  const out: Uint32Array[] = [];
  let start = 0;
  for (let c = 0; c < clients; c++) {
    const size = base + (c < extra ? 1 : 0);
    out.push(order.slice(start, start + size));
    start += size;
  }
  return out;
}

function dirichletSplit(y: Float32Array, clients: number, alpha: number, seed: number, task: Task): Uint32Array[] {
  if (task === 'regression') throw new DataError('partition dirichlet needs class labels; this is a regression dataset');
  const byClass = rowsByLabel(y);
  for (let attempt = 0; attempt < DIRICHLET_TRIES; attempt++) {
    const parts: number[][] = Array.from({ length: clients }, () => []);
    byClass.forEach((rows, c) => {
      // a keyed stream per (attempt, class): each redraw is independent of the others
      const rng = rngFor(seed, 'partition-dirichlet', attempt, c);
      const shuffled = rng.shuffle(Uint32Array.from(rows));
      const shares = rng.dirichlet(alpha, clients);
      let cumulative = 0;
      let start = 0;
      for (let k = 0; k < clients; k++) {
        cumulative += shares[k]!;
        const end = k === clients - 1 ? shuffled.length : Math.min(shuffled.length, Math.floor(cumulative * shuffled.length));
        for (let i = start; i < end; i++) parts[k]!.push(shuffled[i]!);
        start = end;
      }
    });
    // Shuffle each client's rows: collected class by class they would be sorted by label, and the
    // first rows (what --max-samples keeps) would then be one or two classes only.
    if (parts.every((p) => p.length > 0)) return parts.map((p, k) => rngFor(seed, 'partition-dirichlet-order', attempt, k).shuffle(Uint32Array.from(p)));
  }
  throw new DataError(
    `partition dirichlet:${alpha}: no split giving every one of ${clients} clients a sample found in ${DIRICHLET_TRIES} draws; use a larger alpha or fewer clients`,
  );
}

/** Row indices grouped by label value, groups in increasing label order. */
function rowsByLabel(y: Float32Array): number[][] {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < y.length; i++) {
    const rows = groups.get(y[i]!);
    if (rows) rows.push(i);
    else groups.set(y[i]!, [i]);
  }
  return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([, rows]) => rows);
}

function smallClientWarnings(assignment: Uint32Array[]): string[] {
  const sizes = assignment.map((rows) => rows.length);
  const small = sizes.filter((s) => s < FEW_SAMPLES).length;
  if (small === 0) return [];
  return [`${small} of ${sizes.length} clients have fewer than ${FEW_SAMPLES} samples (smallest: ${sizes.reduce((a, b) => Math.min(a, b))})`];
}

function identity(n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}
