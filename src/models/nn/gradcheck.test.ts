/**
 * Gradient checks of every network on real images against two independent references:
 *
 * - float64 central differences of a plain JS forward pass (reference.ts) at a few coordinates of every
 *   checked segment: in float64 the difference quotient is accurate to ~1e-9 at h = 1e-6, far below the
 *   float32 noise of our gradient (~1e-6 relative), so a tolerance of 1e-3 relative needs no tuning per
 *   coordinate; central differences in float32 would need h ≈ 1e-2 and cross ReLU and max-pool kinks;
 * - PyTorch's autograd in float64 on the same network (bench/torch_step.py builds it from our layer list),
 *   the whole gradient, where a python3 that imports torch exists.
 *
 * The images are chosen for ties in max-pooling windows: CIFAR-10 test images 218 (saturated white
 * background), 118 (saturated black), 180 (flat sky) and 0 (ordinary); FEMNIST's exactly-zero background.
 * Biases are positive, so background windows are 4-way ties after conv + ReLU, as after a few steps of
 * training. ResNet18 (no max-pooling) runs on the central 8×8 pixels of the CIFAR images, with BatchNorm
 * in training mode (the batch's statistics) on both sides.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { rngFor } from '../../core/rng.js';
import { channelStats, cifarFile, cifarImages, readCifarBatches } from '../../data/cifar10.js';
import { loadFemnist } from '../../data/femnist.js';
import { defaultDataDir } from '../../data/index.js';
import { createModel, initNnBackend } from '../index.js';
import type { Dataset, Model, ModelSpec } from '../types.js';
import { layersOf, networkOf, type NnKind } from './arch.js';
import { lossF64 } from './reference.js';

const DATA = defaultDataDir();
const HAVE_CIFAR = ['test_batch.bin', 'test_batch.bin.gz'].some((f) => existsSync(join(DATA, 'cifar10', f)));
const HAVE_FEMNIST = existsSync(join(DATA, 'femnist', 'writers.tsv'));
const NO_DATA = (what: string): string => `skipped: no ${what} in ${DATA} (the real datasets are not on this machine)`;

/** A python3 that imports torch, or why there is none. */
const TORCH = ((): { python: string } | { reason: string } => {
  for (const python of ['python3', '/usr/bin/python3']) {
    if (spawnSync(python, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0) return { python };
  }
  return { reason: 'skipped: no python3 here imports torch and numpy (Debian: apt-get install python3-torch)' };
})();
const TORCH_SCRIPT = fileURLToPath(new URL('./torch_grad.py', import.meta.url));

let testBatch: { records: ReturnType<typeof readCifarBatches>; stats: ReturnType<typeof channelStats> } | null = null;

/** CIFAR-10 test images by index, normalised with the test batch's channel statistics; `crop`: the central crop×crop pixels. */
function cifar(rows: number[], crop = 32): Dataset {
  if (!testBatch) {
    const records = readCifarBatches([cifarFile(join(DATA, 'cifar10'), 'test_batch.bin')]);
    testBatch = { records, stats: channelStats(records) };
  }
  const full = cifarImages(testBatch.records, rows, testBatch.stats);
  if (crop === 32 || full.x.kind !== 'dense') return full;
  const src = full.x.data;
  const data = new Float32Array(rows.length * crop * crop * 3);
  const top = (32 - crop) >> 1;
  for (let i = 0; i < rows.length; i++) {
    for (let r = 0; r < crop; r++) {
      const from = ((i * 32 + top + r) * 32 + top) * 3;
      data.set(src.subarray(from, from + crop * 3), (i * crop + r) * crop * 3);
    }
  }
  return { x: { kind: 'dense', rows: rows.length, cols: crop * crop * 3, data }, y: full.y };
}

/** The first `n` training images of FEMNIST's first writer. */
async function femnist(n: number): Promise<Dataset> {
  const c = (await loadFemnist(DATA)).dataset.clients[0]!;
  if (c.x.kind !== 'dense') throw new Error('dense FEMNIST rows expected');
  return { x: { kind: 'dense', rows: n, cols: 784, data: c.x.data.slice(0, n * 784) }, y: c.y.slice(0, n) };
}

function specOf(kind: NnKind, data: Dataset, nClasses: number): ModelSpec {
  const side = Math.round(Math.sqrt(data.x.cols / (kind === 'femnist-cnn' ? 1 : 3)));
  return { kind, nFeatures: data.x.cols, nClasses, intercept: false, l2: 0, inputShape: [side, side, kind === 'femnist-cnn' ? 1 : 3] };
}

/** He-normal weights; positive biases (0.05–0.15); γ = 1 ± 0.2 and β ± 0.1 at random, so BatchNorm is not at its init. */
function params(model: Model): Float32Array {
  const x = model.init!(1);
  const rng = rngFor(1, 'gradcheck');
  for (const s of model.layout.segments) {
    for (let j = s.offset; j < s.offset + s.size; j++) {
      if (s.name.endsWith('.bias')) x[j] = 0.05 + 0.1 * rng.float();
      else if (s.name.endsWith('.gamma')) x[j] = 1 + 0.2 * rng.normal();
      else if (s.name.endsWith('.beta')) x[j] = 0.1 * rng.normal();
    }
  }
  return x;
}

interface Case {
  kind: NnKind;
  nClasses: number;
  /** the largest ‖ours − PyTorch's‖ / ‖PyTorch's‖ over the whole gradient; 10× that per segment */
  tol: number;
  /** segments whose largest gradient entry is checked by finite differences (all, when absent) */
  segments?: string[];
  data: () => Promise<Dataset>;
  skip: string | null;
}

const CASES: Case[] = [
  { kind: 'cnn', nClasses: 10, tol: 1e-5, data: async () => cifar([218, 118, 180, 0]), skip: HAVE_CIFAR ? null : NO_DATA('cifar10/test_batch.bin') },
  { kind: 'femnist-cnn', nClasses: 62, tol: 1e-5, data: () => femnist(4), skip: HAVE_FEMNIST ? null : NO_DATA('femnist/writers.tsv') },
  {
    kind: 'resnet18',
    nClasses: 10,
    // float32 through 20 BatchNorms over 4 images of 8×8 (measured 5e-5)
    tol: 3e-4,
    segments: ['conv1.weight', 'bn1.beta', 'layer1.0.conv2.weight', 'layer2.0.shortcut.bn.gamma', 'layer4.1.bn2.beta', 'fc.bias'],
    data: async () => cifar([218, 118, 180, 0], 8),
    skip: HAVE_CIFAR ? null : NO_DATA('cifar10/test_batch.bin'),
  },
];

beforeAll(async () => {
  await initNnBackend();
});

/** ‖a − b‖ / ‖b‖ */
function relDist(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let j = 0; j < a.length; j++) {
    num += (a[j]! - b[j]!) ** 2;
    den += b[j]! ** 2;
  }
  return Math.sqrt(num / den);
}

describe.each(CASES)('$kind on real images', ({ kind, nClasses, tol, segments, data: load, skip }) => {
  let data: Dataset;
  let spec: ModelSpec;
  let model: Model;
  let x: Float32Array;
  let grad: Float32Array;
  let loss: number;
  beforeAll(async () => {
    if (skip) return;
    data = await load();
    spec = specOf(kind, data, nClasses);
    model = createModel(spec);
    x = params(model);
    grad = new Float32Array(x.length);
    loss = model.lossGrad(x, data, grad);
  });

  it.skipIf(skip !== null)(`the loss and float64 central differences of a plain JS forward pass agree ${skip ?? ''}`, () => {
    const net = networkOf(spec);
    const images = (data.x as { data: Float32Array }).data;
    const theta = Float64Array.from(x);
    const lossAt = (): number => lossF64(net.layers, net.input, theta, images, data.y);
    expect(Math.abs(loss - lossAt()) / lossAt()).toBeLessThan(1e-5);
    const h = 1e-6;
    for (const s of model.layout.segments.filter((q) => !segments || segments.includes(q.name))) {
      const g = grad.subarray(s.offset, s.offset + s.size);
      const j = s.offset + g.reduce((best, v, i) => (Math.abs(v) > Math.abs(g[best]!) ? i : best), 0);
      const v = theta[j]!;
      theta[j] = v + h;
      const up = lossAt();
      theta[j] = v - h;
      const down = lossAt();
      theta[j] = v;
      const fd = (up - down) / (2 * h);
      expect(Math.abs(grad[j]! - fd), `${s.name}[${j - s.offset}]: ours ${grad[j]}, differences ${fd}`).toBeLessThan(1e-3 * Math.abs(fd));
    }
  });

  const torchSkip = skip ?? ('reason' in TORCH ? TORCH.reason : null);
  it.skipIf(torchSkip !== null)(`the whole gradient matches PyTorch's autograd in float64 ${torchSkip ?? ''}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'gradcheck-'));
    try {
      writeFileSync(join(dir, 'params.f32'), x);
      writeFileSync(join(dir, 'images.f32'), (data.x as { data: Float32Array }).data);
      writeFileSync(join(dir, 'labels.i32'), Int32Array.from(data.y));
      const net = networkOf(spec);
      const input = JSON.stringify({ layers: layersOf(kind, nClasses), input: net.input, nClasses, dir });
      const r = spawnSync((TORCH as { python: string }).python, [TORCH_SCRIPT], { input: input + '\n', encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      const { loss: torchLoss } = JSON.parse(r.stdout) as { loss: number };
      const ref = new Float64Array(readFileSync(join(dir, 'grad.f64')).buffer.slice(0));
      expect(ref.length).toBe(x.length);
      expect(Math.abs(loss - torchLoss) / torchLoss).toBeLessThan(1e-5);
      expect(relDist(grad, ref)).toBeLessThan(tol);
      for (const s of model.layout.segments) {
        expect(relDist(grad.subarray(s.offset, s.offset + s.size), ref.subarray(s.offset, s.offset + s.size)), s.name).toBeLessThan(10 * tol);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
