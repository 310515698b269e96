/**
 * `sparse-proxskip data ...`: commands about datasets. `describe` loads a dataset as `run` would and
 * reports its clients (the paper's Figure 5 is the client-size histogram of BlogFeedback).
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULTS } from '../../sim/config.js';
import { loadFederated, parseDatasetSpec } from '../../data/index.js';
import type { FederatedDataset } from '../../data/types.js';
import { sizeSummary } from '../../data/rows.js';
import { writeJsonAtomic } from '../../report/io.js';
import { writeHistogram } from '../../report/plot.js';
import { formatNumber } from '../../report/table.js';
import { addLimitOptions } from '../options.js';
import { registerDataFetch } from './data-fetch.js';

/** Adds the `data` command and returns it, so further subcommands can be added to it. */
export function registerData(program: Command): Command {
  const data = program.command('data').description('describe a dataset or fetch one (see docs/data.md, docs/cifar10.md)');
  const describe = data
    .command('describe')
    .description('client counts and sizes of a dataset; writes OUT/describe.json and the client-size histogram OUT/client_sizes.{svg,png,vl.json}')
    .argument('<dataset>', 'dataset spec, e.g. blogfeedback, femnist, femnist:drop-truncated (as --dataset of run)')
    .option('--data-dir <dir>', 'folder holding blogfeedback/ and femnist/ (default: ../shared/data if it exists, else ./data)')
    .option('--out <dir>', 'output directory (default: runs/data/NAME)');
  addLimitOptions(describe).action(
    async (spec: string, o: { dataDir?: string; out?: string; maxLineBytes?: number; maxDimension?: number; maxDecompressedMb?: number }) => {
      const { maxLineBytes, maxDimension, maxDecompressedMb } = o;
      const { dataset, warnings } = await loadFederated(parseDatasetSpec(spec), {
        clients: DEFAULTS.clients,
        partition: { kind: 'contiguous' },
        seed: DEFAULTS.seed,
        ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
        limits: { maxLineBytes, maxDimension, maxDecompressedMb },
      });
      for (const w of warnings) console.error(`warning: ${w}`);
      const out = o.out ?? join('runs', 'data', dataset.name);
      const description = describeDataset(spec, dataset);
      console.log(formatDescription(description));
      writeJsonAtomic(join(out, 'describe.json'), description);
      const dropped = droppedNote(description.meta);
      const written = await writeHistogram(join(out, 'client_sizes'), {
        title: `${dataset.name}: training samples per client (${dataset.clients.length} clients)`,
        ...(dropped !== null && { subtitle: [dropped] }),
        xLabel: 'training samples per client (log scale)',
        xScale: 'log',
        yLabel: 'clients',
        values: description.clientSizes,
        maxBins: 30,
      });
      console.log(`wrote ${[join(out, 'describe.json'), ...written].join(', ')}`);
    });
  registerDataFetch(data);
  return data;
}

export interface DatasetDescription {
  spec: string;
  name: string;
  task: string;
  nFeatures: number;
  nClasses: number;
  clients: number;
  trainSamples: number;
  testSamples: number;
  clientSize: { min: number; median: number; mean: number; max: number };
  /** training samples of each client, in client order */
  clientSizes: number[];
  meta: Record<string, unknown>;
}

export function describeDataset(spec: string, d: FederatedDataset): DatasetDescription {
  const { min, median, max, total } = sizeSummary(d.clients);
  const { samplesPerClient: _s, ...meta } = d.meta;
  return {
    spec,
    name: d.name,
    task: d.task,
    nFeatures: d.nFeatures,
    nClasses: d.nClasses,
    clients: d.clients.length,
    trainSamples: total,
    testSamples: d.test?.y.length ?? 0,
    clientSize: { min, median, mean: total / d.clients.length, max },
    clientSizes: d.clients.map((c) => c.y.length),
    meta,
  };
}

/** What the loader left out, for the histogram's subtitle: small sources (BlogFeedback) or flagged writers (FEMNIST). */
export function droppedNote(meta: Record<string, unknown>): string | null {
  const n = (k: string) => (typeof meta[k] === 'number' ? (meta[k] as number) : null);
  const sources = n('droppedSources');
  if (sources !== null) {
    const min = n('minClientSize');
    const pooled = n('pooledClients') ?? 0;
    if (sources === 0) return pooled > 0 ? `sources under ${min} rows pooled into ${pooled} clients` : 'no source dropped';
    return `${sources} of ${n('sources')} sources dropped: under ${min} rows (${n('droppedRows')} rows in all)`;
  }
  const writers = n('droppedTruncated');
  if (writers !== null && writers > 0) return `${writers} writers flagged maybe_truncated dropped`;
  return null;
}

function formatDescription(d: DatasetDescription): string {
  const s = d.clientSize;
  const rows: [string, string][] = [
    ['dataset', `${d.name} (${d.task}${d.task === 'multiclass' ? `, ${d.nClasses} classes` : ''}, ${d.nFeatures} features)`],
    ['clients', String(d.clients)],
    ['train samples', String(d.trainSamples)],
    ['test samples', String(d.testSamples)],
    ['per client', `min ${s.min}, median ${s.median}, mean ${formatNumber(s.mean)}, max ${s.max}`],
    ...Object.entries(d.meta).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
