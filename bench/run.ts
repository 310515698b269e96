/**
 * `npm run bench [-- NAME ...] [--repeat N]`: runs the benchmarks (all, or those named), prints a table,
 * and records each benchmark's figures with the machine they came from in bench/results.json. Then it
 * writes docs/benchmarks.md from that file, so the figures of benchmarks not re-run this time are kept.
 *
 * To add a benchmark: write bench/NAME.ts exporting `run(): Promise<BenchResult[]>` (bench/types.ts)
 * and add one entry to BENCHES below.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, loadavg, release, totalmem, type } from 'node:os';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic, writeJsonAtomic } from '../src/report/io.js';
import type { BenchResult } from './types.js';
import { formatValue, isMain, median, numpyEnv, printResults, ratioOf } from './util.js';

export interface Bench {
  name: string;
  /** what it measures, one line (the heading of its section in docs/benchmarks.md) */
  title: string;
  run(): Promise<BenchResult[]>;
}

// Imported when run, so one benchmark that fails to load does not stop the others.
export const BENCHES: Bench[] = [
  {
    name: 'topk',
    title: 'TopK of 11.17M floats at 10% density, against numpy argpartition and a full sort',
    run: async () => (await import('./topk.js')).run(),
  },
  {
    name: 'encoding',
    title: 'Encoding + decoding of 1M-float 1%-dense vectors; encoded size against log2 C(d, K) bits + 32 bits per value',
    run: async () => (await import('./encoding.js')).run(),
  },
  {
    name: 'gradient',
    title: 'Full-batch multinomial loss + gradient at FEMNIST size, against numpy',
    run: async () => (await import('./gradient.js')).run(),
  },
  {
    name: 'round',
    title: 'One round of sparse-proxskip with 1,000 clients (d = 1,000): time, and memory per client against 3·d floats',
    run: async () => (await import('./round.js')).run(),
  },
  {
    name: 'round-real',
    title: 'One real round of sparse-proxskip (10 local steps per client + evaluation, 2 workers) on FEMNIST and on BlogFeedback',
    run: async () => (await import('./round-real.js')).run(),
  },
  {
    name: 'net',
    title: 'FEMNIST over gRPC on loopback: 306 clients in pool processes, sparse-proxskip, 20 rounds, against the simulator',
    run: async () => (await import('./net.js')).run(),
  },
  {
    name: 'nn-reference',
    title: 'One SGD step (batch 32) of the small CNN and of ResNet18, against the same step in PyTorch on the same CPU',
    run: async () => (await import('./nn-reference.js')).run(),
  },
  {
    name: 'nn',
    title: 'Where a neural-network SGD step goes (TF.js wasm), and our gradient kernels against the backend\'s own',
    run: async () => (await import('./nn.js')).run(),
  },
  {
    name: 'dashboard',
    title: 'The web dashboard (`view`) with an experiment of 100 runs × 2,000 rounds in headless Chromium: page weight, server aggregation, time to draw',
    run: async () => (await import('./dashboard.js')).run(),
  },
  {
    name: 'browser-client',
    title: 'The browser client (`/client`): its scripts, and one round in a Chromium tab against the same client in Node, for a convex model and a small CNN',
    run: async () => (await import('./browser-client.js')).run(),
  },
];

export interface Machine {
  cpu: string;
  /** logical CPUs node sees */
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** null when python3 or numpy is missing */
  numpy: string | null;
}

/** One benchmark's last recorded run. */
export interface Section {
  date: string;
  machine: Machine;
  /** 1-minute load average before and after the benchmark: how busy the machine was */
  load: [number, number];
  repeats: number;
  results: BenchResult[];
}

export interface Store {
  benches: Record<string, Section>;
}

const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url));
const DOC = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));

export function machine(): Machine {
  const py = spawnSync('python3', ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8', env: numpyEnv() });
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()} ${arch()}`,
    node: process.version,
    numpy: py.status === 0 ? py.stdout.trim() : null,
  };
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // not Linux: fall through to what node reports
  }
  return cpus()[0]?.model ?? 'unknown CPU';
}

/**
 * The runs of one benchmark combined: each figure (and its reference) is the median over the repeats;
 * pass when the target held in most repeats. Notes come from the first repeat.
 */
export function combineRepeats(runs: BenchResult[][]): BenchResult[] {
  const first = runs[0]!;
  if (runs.length === 1) return first;
  return first.map((r, i) => {
    const same = runs.map((run) => run[i]).filter((x): x is BenchResult => x?.name === r.name);
    const out: BenchResult = { ...r, value: median(same.map((x) => x.value)) };
    if (r.reference) out.reference = { ...r.reference, value: median(same.map((x) => x.reference?.value ?? NaN)) };
    const verdicts = same.filter((x) => x.pass !== undefined);
    if (verdicts.length > 0) {
      const passed = verdicts.filter((x) => x.pass).length;
      out.pass = 2 * passed > verdicts.length;
      out.note = `${r.note ? `${r.note}; ` : ''}target held in ${passed}/${verdicts.length} repeats`;
    }
    return out;
  });
}

export function readStore(path = RESULTS): Store {
  if (!existsSync(path)) return { benches: {} };
  return JSON.parse(readFileSync(path, 'utf8')) as Store;
}

/** docs/benchmarks.md: a section per recorded benchmark, in registry order, then any others recorded. */
export function renderMarkdown(store: Store, benches: readonly Bench[] = BENCHES): string {
  const names = [...benches.map((b) => b.name), ...Object.keys(store.benches).filter((n) => !benches.some((b) => b.name === n))];
  const lines = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (all benchmarks) or `npm run bench -- NAME ...` (some of them; the others',
    'keep their last figures, kept in `bench/results.json`). `--repeat N` runs each benchmark N times and',
    "reports medians (a note's own secondary figures come from the first repeat). Every reference (numpy, a",
    'full sort, a bound) was measured or computed in the same run as the figure beside it, on the machine',
    'named in its section. Timings are medians of several timed calls after warm-up calls. The load average',
    'shows how busy the machine was: on a shared machine absolute times vary, the ratios to the same-run',
    'reference much less.',
    '',
  ];
  for (const name of names) {
    const s = store.benches[name];
    if (!s) continue;
    const title = benches.find((b) => b.name === name)?.title ?? name;
    const m = s.machine;
    lines.push(
      `## ${name}: ${title}`,
      '',
      `Measured ${s.date} on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; node ${m.node}, ` +
        `numpy ${m.numpy ?? 'absent'}. Load average ${s.load[0].toFixed(2)} before, ${s.load[1].toFixed(2)} after` +
        `${s.load[0] >= 0.5 * m.cores ? ' (other work shared the cores: absolute times are pessimistic)' : ''}` +
        `${s.repeats > 1 ? `; medians of ${s.repeats} repeats` : ''}.`,
      '',
      '| measure | value | reference (same run) | ratio | target | result | note |',
      '|---|---:|---|---:|---|---|---|',
      ...s.results.map((r) => {
        const ratio = ratioOf(r);
        const cells = [
          r.name,
          formatValue(r.value, r.unit),
          r.reference ? `${formatValue(r.reference.value, r.reference.unit)}: ${r.reference.name}` : '',
          ratio === null ? '' : `${ratio.toFixed(2)}x`,
          r.target ?? '',
          r.pass === undefined ? '' : r.pass ? 'pass' : '**fail**',
          r.note ?? '',
        ];
        return `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
      }),
      '',
    );
  }
  return lines.join('\n');
}

interface Args {
  names: string[];
  repeat: number;
}

function parseArgs(argv: string[]): Args {
  const names: string[] = [];
  let repeat = 1;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--repeat') {
      repeat = Number(argv[++i]);
      if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be an integer >= 1, got '${argv[i]}'`);
    } else if (a === '--help' || a === '-h') {
      throw new Error('help');
    } else if (a.startsWith('-')) {
      throw new Error(`unknown option '${a}'`);
    } else if (!BENCHES.some((b) => b.name === a)) {
      throw new Error(`unknown benchmark '${a}'`);
    } else {
      names.push(a);
    }
  }
  return { names: names.length > 0 ? names : BENCHES.map((b) => b.name), repeat };
}

const USAGE = `usage: npm run bench [-- NAME ...] [--repeat N]\nbenchmarks: ${BENCHES.map((b) => b.name).join(', ')}`;

async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    const msg = (e as Error).message;
    if (msg === 'help') {
      console.log(USAGE);
      return 0;
    }
    console.error(`bench: ${msg}\n${USAGE}`);
    return 2;
  }
  const host = machine();
  console.log(`${host.cpu}, ${host.cores} cores, ${host.memoryGiB} GiB; node ${host.node}, numpy ${host.numpy ?? 'absent'}`);
  const done: Record<string, Section> = {};
  let failed = 0;
  for (const name of args.names) {
    const bench = BENCHES.find((b) => b.name === name)!;
    console.log(`\n${name}: ${bench.title}`);
    const before = loadavg()[0]!;
    const date = new Date().toISOString();
    try {
      const runs: BenchResult[][] = [];
      for (let i = 0; i < args.repeat; i++) runs.push(await bench.run());
      const results = combineRepeats(runs);
      done[name] = { date, machine: host, load: [before, loadavg()[0]!], repeats: args.repeat, results };
      printResults(results);
    } catch (e) {
      failed++;
      console.error(`${name} failed (its recorded figures are kept): ${(e as Error).stack ?? e}`);
    }
  }
  // Read just before writing, so figures another run recorded meanwhile are kept.
  const store = readStore();
  Object.assign(store.benches, done);
  writeJsonAtomic(RESULTS, store);
  writeFileAtomic(DOC, renderMarkdown(store));
  console.log(`\nwrote ${DOC} and ${RESULTS}`);
  return failed > 0 ? 1 : 0;
}

if (isMain(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
