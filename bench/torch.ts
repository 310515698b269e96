/**
 * The PyTorch reference for the neural-network benchmark: one SGD step of a network built by
 * bench/torch_step.py from the very layer list our model uses (src/models/nn/arch.ts), so the two
 * cannot drift; the parameter count of each layer is checked against ours before a time is believed.
 *
 * Runs Debian's PyTorch (/usr/bin/python3, package python3-torch) on the CPU; when it is missing,
 * scripts/install-bench-deps.sh installs it first (benchmarks only: tests and CI never need it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { paramDefs, type ImageShape, type Layer } from '../src/models/nn/arch.js';
import type { BenchResult } from './types.js';

/** Debian's interpreter, which python3-torch installs into (a python3 earlier on PATH may lack torch). */
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./torch_step.py', import.meta.url));
const INSTALL = fileURLToPath(new URL('../scripts/install-bench-deps.sh', import.meta.url));

export interface TorchStep {
  /** median wall-clock time of one step */
  ms: number;
  /** median CPU time of one step, all threads: less sensitive to other work sharing the cores */
  cpuMs: number;
  /** torch.__version__ */
  torch: string;
  /** torch.get_num_threads() during the timed steps */
  threads: number;
  /** parameters of the PyTorch network, equal to ours (checked) */
  params: number;
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
      throw new Error(`PyTorch reference unavailable: ${PYTHON} cannot import torch and scripts/install-bench-deps.sh could not install python3-torch (needs Debian/Ubuntu apt-get and root)`);
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
  { warmup = 2, runs = 5 }: { warmup?: number; runs?: number } = {},
): Promise<TorchStep> {
  if (inputShape.length !== 3) throw new RangeError(`inputShape must be [height, width, channels], got ${JSON.stringify(inputShape)}`);
  const ours = paramDefs(layers, inputShape as ImageShape).map((p) => p.shape.reduce((a, b) => a * b, 1));
  ensureTorch();
  const input = JSON.stringify({ layers, input: inputShape, nClasses, batch, threads: threads ?? null, warmup, runs });
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`bench/torch_step.py exited with ${code}: ${err.trim()}`))));
    child.stdin.end(input);
  });
  const r = JSON.parse(stdout) as TorchStep & { sizes: number[] };
  if (r.sizes.length !== ours.length || r.sizes.some((s, i) => s !== ours[i])) {
    throw new Error(`the PyTorch network's parameters [${r.sizes.join(', ')}] differ from ours [${ours.join(', ')}]`);
  }
  return { ms: r.ms, cpuMs: r.cpuMs, torch: r.torch, threads: r.threads, params: r.params };
}

/** Our measured step, to be set beside PyTorch's. */
export interface OurStep {
  /** median wall-clock ms of one step */
  ms: number;
  /** median CPU ms of one step (process.cpuUsage), when measured */
  cpuMs?: number;
}

/**
 * The PyTorch columns of a "one SGD step" result: PyTorch with its default threads as the reference
 * (the comparison the target is judged on, in wall-clock time), the 1-thread figure and the CPU times
 * in the note. `maxRatio` sets the target "≤ maxRatio× PyTorch"; left out, the ratio is only reported.
 * When PyTorch cannot be had, the result says so in the note instead of failing the benchmark.
 */
export async function versusTorch(
  layers: Layer[],
  inputShape: number[],
  nClasses: number,
  batch: number,
  ours: OurStep,
  { maxRatio, warmup, runs }: { maxRatio?: number; warmup?: number; runs?: number } = {},
): Promise<Pick<BenchResult, 'reference' | 'target' | 'pass' | 'note'>> {
  const target = maxRatio === undefined ? undefined : `≤ ${maxRatio}× PyTorch`;
  let def: TorchStep;
  try {
    def = await torchStep(layers, inputShape, nClasses, batch, undefined, { warmup, runs });
  } catch (e) {
    return { target, note: `PyTorch reference absent: ${(e as Error).message}` };
  }
  // PyTorch's default may already be one thread (it uses the physical cores): the same measurement then
  const one = def.threads === 1 ? def : await torchStep(layers, inputShape, nClasses, batch, 1, { warmup, runs });
  const x = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
  const notes = [
    `PyTorch ${def.torch} on the CPU, default threads = ${def.threads}` +
      (def.threads === 1 ? ' (so the 1-thread figure is the same)' : `; with 1 thread ${one.ms.toFixed(0)} ms, ours ${x(ours.ms, one.ms)}`),
    ours.cpuMs === undefined
      ? ''
      : `CPU time per step: ours ${ours.cpuMs.toFixed(0)} ms, PyTorch ${def.cpuMs.toFixed(0)} ms (${x(ours.cpuMs, def.cpuMs)}), 1 thread ${one.cpuMs.toFixed(0)} ms (${x(ours.cpuMs, one.cpuMs)})`,
    `same ${def.params.toLocaleString('en-US')} parameters (checked layer by layer)`,
  ];
  return {
    reference: { name: `PyTorch ${def.torch} CPU, ${def.threads} thread${def.threads === 1 ? '' : 's'}, same network and batch`, value: def.ms, unit: 'ms' },
    target,
    pass: maxRatio === undefined ? undefined : ours.ms <= maxRatio * def.ms,
    note: notes.filter((n) => n !== '').join('; '),
  };
}
