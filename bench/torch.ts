/**
 * The PyTorch reference for the neural-network benchmark: one SGD step of a network built by
 * bench/torch_step.py from the very layer list our model uses (src/models/nn/arch.ts), so the two
 * cannot drift; the size of every parameter is checked against ours before a time is believed.
 *
 * PyTorch's steps can be interleaved with ours (ours, PyTorch, ours, ...): on a machine shared with
 * other work, both sides then run under the same load, and the ratio means something even when the
 * absolute times do not.
 *
 * Runs Debian's PyTorch (/usr/bin/python3, package python3-torch) on the CPU; when it is missing,
 * scripts/install-bench-deps.sh installs it first (benchmarks only: tests and CI never need it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { paramDefs, type ImageShape, type Layer } from '../src/models/nn/arch.js';
import type { BenchResult } from './types.js';
import { median } from './util.js';

/** Debian's interpreter, which python3-torch installs into (a python3 earlier on PATH may lack torch). */
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./torch_step.py', import.meta.url));
const INSTALL = fileURLToPath(new URL('../scripts/install-bench-deps.sh', import.meta.url));

/** Median times of one step. */
export interface StepTime {
  /** wall clock */
  ms: number;
  /** CPU time of the process, all threads: less sensitive to other work sharing the cores */
  cpuMs: number;
}

export interface TorchStep extends StepTime {
  /** torch.__version__ */
  torch: string;
  /** torch.get_num_threads() during the timed steps */
  threads: number;
  /** parameters of the PyTorch network, equal to ours (checked) */
  params: number;
  /** our step's times, measured interleaved with PyTorch's, when `interleave` was given */
  ours?: StepTime;
}

export interface StepOptions {
  /** untimed steps first (default 2) */
  warmup?: number;
  /** timed steps, of which the median is taken (default 5) */
  runs?: number;
  /** our step: run (and timed) before each PyTorch step, warm-up included */
  interleave?: () => void;
}

let torchChecked = false;

/** Makes sure /usr/bin/python3 can import torch, installing python3-torch when it cannot. */
export function ensureTorch(): void {
  if (torchChecked) return;
  const importsTorch = (): boolean => spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  if (!importsTorch()) {
    console.error(`bench: PyTorch is missing for ${PYTHON}; running scripts/install-bench-deps.sh`);
    const r = spawnSync('sh', [INSTALL], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0 || !importsTorch()) {
      throw new Error(
        `PyTorch reference unavailable: ${PYTHON} cannot import torch and scripts/install-bench-deps.sh could not install python3-torch (needs Debian/Ubuntu apt-get and root)`,
      );
    }
  }
  torchChecked = true;
}

/**
 * Times one SGD step (forward, mean cross-entropy, backward, p -= lr·grad) of `layers` at `batch` random
 * images of `inputShape` [h, w, c] in PyTorch: the median of `runs` steps after `warmup` steps.
 * `threads` sets torch.set_num_threads; left out, PyTorch's default is used (and reported).
 */
export async function torchStep(
  layers: Layer[],
  inputShape: number[],
  nClasses: number,
  batch: number,
  threads?: number,
  { warmup = 2, runs = 5, interleave }: StepOptions = {},
): Promise<TorchStep> {
  if (inputShape.length !== 3) throw new RangeError(`inputShape must be [height, width, channels], got ${JSON.stringify(inputShape)}`);
  const ours = paramDefs(layers, inputShape as ImageShape).map((p) => p.shape.reduce((a, b) => a * b, 1));
  ensureTorch();
  const child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  // a write after the script died: its exit status and stderr are reported instead
  child.stdin.on('error', () => {});
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const ask = async <T>(command: string): Promise<T> => {
    child.stdin.write(`${command}\n`);
    const line = await lines.next();
    if (line.done) {
      await exited;
      throw new Error(`bench/torch_step.py exited with ${child.exitCode}: ${stderr.trim().split('\n').at(-1) ?? ''}`);
    }
    return JSON.parse(line.value as string) as T;
  };
  try {
    const info = await ask<{ torch: string; threads: number; params: number; sizes: number[] }>(
      JSON.stringify({ layers, input: inputShape, nClasses, batch, threads: threads ?? null }),
    );
    if (info.sizes.length !== ours.length || info.sizes.some((s, i) => s !== ours[i])) {
      throw new Error(`the PyTorch network's parameters [${info.sizes.join(', ')}] differ from ours [${ours.join(', ')}]`);
    }
    const theirs: StepTime[] = [];
    const mine: StepTime[] = [];
    for (let i = 0; i < warmup + runs; i++) {
      if (interleave) {
        const t = performance.now();
        const u = process.cpuUsage();
        interleave();
        const du = process.cpuUsage(u);
        if (i >= warmup) mine.push({ ms: performance.now() - t, cpuMs: (du.user + du.system) / 1000 });
      }
      const step = await ask<StepTime>('step');
      if (i >= warmup) theirs.push(step);
    }
    const medians = (ts: StepTime[]): StepTime => ({ ms: median(ts.map((t) => t.ms)), cpuMs: median(ts.map((t) => t.cpuMs)) });
    return { ...medians(theirs), torch: info.torch, threads: info.threads, params: info.params, ...(interleave ? { ours: medians(mine) } : {}) };
  } finally {
    child.stdin.end();
    await exited;
  }
}

/**
 * Our step next to PyTorch's, interleaved, as the fields of a BenchResult: `value` is our median step
 * in ms; the reference is PyTorch with its default threads (what the target is judged on, wall clock);
 * the note adds the 1-thread figure and the CPU times. `maxRatio` sets the target "≤ maxRatio× PyTorch";
 * left out, the ratio is only reported. When PyTorch cannot be installed, our step is timed alone and the
 * note says why there is no reference, instead of the benchmark failing.
 */
export async function versusTorch(
  layers: Layer[],
  inputShape: number[],
  nClasses: number,
  batch: number,
  ourStep: () => void,
  { maxRatio, warmup = 2, runs = 5 }: { maxRatio?: number; warmup?: number; runs?: number } = {},
): Promise<Pick<BenchResult, 'value' | 'unit' | 'reference' | 'target' | 'pass' | 'note'>> {
  const target = maxRatio === undefined ? undefined : `≤ ${maxRatio}× PyTorch`;
  const how = `median of ${runs} steps after ${warmup} warm-up`;
  try {
    ensureTorch();
  } catch (e) {
    const times: number[] = [];
    for (let i = 0; i < warmup + runs; i++) {
      const t = performance.now();
      ourStep();
      if (i >= warmup) times.push(performance.now() - t);
    }
    return { value: median(times), unit: 'ms', target, note: `${how}; ${(e as Error).message}` };
  }
  const def = await torchStep(layers, inputShape, nClasses, batch, undefined, { warmup, runs, interleave: ourStep });
  const ours = def.ours!;
  // PyTorch's default may already be one thread (it is on the 2-core machine of docs/performance-nn.md)
  const one = def.threads === 1 ? def : await torchStep(layers, inputShape, nClasses, batch, 1, { warmup, runs, interleave: ourStep });
  const x = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
  const notes = [
    `${how}, ours and PyTorch's interleaved`,
    `PyTorch ${def.torch} on the CPU, default threads = ${def.threads}` +
      (def.threads === 1 ? ' (the 1-thread figure is the same)' : `; with 1 thread ${one.ms.toFixed(0)} ms against ours ${one.ours!.ms.toFixed(0)} ms (${x(one.ours!.ms, one.ms)})`),
    `CPU time per step: ours ${ours.cpuMs.toFixed(0)} ms, PyTorch ${def.cpuMs.toFixed(0)} ms (${x(ours.cpuMs, def.cpuMs)})`,
    `same ${def.params.toLocaleString('en-US')} parameters (checked layer by layer)`,
  ];
  return {
    value: ours.ms,
    unit: 'ms',
    reference: { name: `PyTorch ${def.torch} CPU, ${def.threads} thread${def.threads === 1 ? '' : 's'}, same network and batch`, value: def.ms, unit: 'ms' },
    ...(maxRatio === undefined ? {} : { target, pass: ours.ms <= maxRatio * def.ms }),
    note: notes.join('; '),
  };
}
