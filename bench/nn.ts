/**
 * Where the time of a neural-network SGD step goes (TF.js wasm backend, one thread), and what our
 * gradient kernels (src/models/nn/kernels.ts) save against the backend's own:
 * - one step at batch 32 (lossGrad: tensors from the flat vector, forward, backward, gradient written
 *   back) of each model, with the kernels that take most of it (tf.profile);
 * - Conv2DBackpropInput at ResNet18 layer shapes, ours (XNNPACK convolution) against the backend's C++ loop;
 * - the 2×2 max-pool gradient, ours against the backend's MaxPoolGrad.
 * The comparison with PyTorch is bench/nn-reference.ts.
 *
 * Standalone: npx tsx bench/nn.ts
 */
import { rngFor } from '../src/core/rng.js';
import { createModel, initNnBackend } from '../src/models/index.js';
import type { NnKind } from '../src/models/nn/arch.js';
import { tf } from '../src/models/nn/backend.js';
import { builtinConv2DBackpropInput, maxPool2x2 } from '../src/models/nn/kernels.js';
import type { Dataset } from '../src/models/types.js';
import type { BenchResult } from './types.js';
import { isMain, medianMs, printResults } from './util.js';

const BATCH = 32;

const MODELS: { kind: NnKind; input: [number, number, number]; classes: number; runs: number }[] = [
  { kind: 'cnn', input: [32, 32, 3], classes: 10, runs: 10 },
  { kind: 'femnist-cnn', input: [28, 28, 1], classes: 62, runs: 10 },
  { kind: 'resnet18', input: [32, 32, 3], classes: 10, runs: 3 },
];

export async function run(): Promise<BenchResult[]> {
  await initNnBackend();
  const results: BenchResult[] = [];
  for (const m of MODELS) results.push(await stepResult(m));
  results.push(...convInputGrad(), maxPoolGrad());
  return results;
}

async function stepResult(m: (typeof MODELS)[number]): Promise<BenchResult> {
  const nFeatures = m.input[0] * m.input[1] * m.input[2];
  const model = createModel({ kind: m.kind, nFeatures, nClasses: m.classes, intercept: false, l2: 0, inputShape: m.input });
  const rng = rngFor(0, 'bench/nn', nFeatures);
  const data: Dataset = {
    x: { kind: 'dense', rows: BATCH, cols: nFeatures, data: Float32Array.from({ length: BATCH * nFeatures }, () => rng.normal()) },
    y: Float32Array.from({ length: BATCH }, () => rng.int(m.classes)),
  };
  const x = model.init!(0);
  const g = new Float32Array(x.length);
  const ms = medianMs(() => model.lossGrad(x, data, g), 1, m.runs);
  // kernel times of one more step; composite kernels (ours) include the kernels they call
  const profile = await tf.profile(() => void model.lossGrad(x, data, g));
  const byKernel = new Map<string, number>();
  for (const k of profile.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
  const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 6);
  return {
    name: `${m.kind} (${x.length.toLocaleString('en-US')} parameters): one SGD step, batch ${BATCH} of ${m.input.join('×')}`,
    value: ms,
    unit: 'ms',
    note: `median of ${m.runs} after 1 warm-up; kernel ms in one step: ${top.map(([n, t]) => `${n} ${t.toFixed(0)}`).join(', ')}`,
  };
}

/** Ours against the backend's own Conv2DBackpropInput, at three ResNet18 layer shapes, batch 32. */
function convInputGrad(): BenchResult[] {
  const builtin = builtinConv2DBackpropInput!;
  const backend = tf.backend();
  builtin.setupFunc?.(backend); // it was replaced before the backend started, so it was never set up
  const cases: [number, number, number, number][] = [
    // [height = width, in, out, stride]
    [32, 64, 64, 1],
    [16, 128, 128, 1],
    [32, 64, 128, 2],
  ];
  return cases.map(([hw, cin, cout, stride]) => {
    const x = tf.zeros([BATCH, hw, hw, cin]) as tf.Tensor4D;
    const filter = tf.randomNormal([3, 3, cin, cout], 0, 0.1, 'float32', 1) as tf.Tensor4D;
    const dy = tf.randomNormal(tf.conv2d(x, filter, stride, 1).shape, 0, 1, 'float32', 2);
    const attrs = { strides: stride, pad: 1, dataFormat: 'NHWC', inputShape: x.shape };
    // tidy must not return the typed array: it walks every element of what it returns
    const ours = medianMs(() => tf.tidy(() => void (tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, attrs) as tf.Tensor).dataSync()), 1, 3);
    const theirs = medianMs(() => {
      const out = builtin.kernelFunc({ inputs: { dy, filter }, backend, attrs }) as tf.TensorInfo;
      backend.readSync(out.dataId);
      backend.disposeData(out.dataId);
    }, 1, 3);
    tf.dispose([x, filter, dy]);
    return {
      name: `Conv2DBackpropInput, dy of ${BATCH}×${hw / stride}×${hw / stride}×${cout}, 3×3 filter ${cin}→${cout}, stride ${stride}`,
      value: ours,
      unit: 'ms',
      reference: { name: 'tfjs-backend-wasm 4.22 built-in kernel', value: theirs, unit: 'ms' },
      note: 'median of 3 after 1 warm-up',
    };
  });
}

/** Gradient of 2×2 max-pooling over 32×32×32×32 activations: ours against tf.maxPool's MaxPoolGrad. */
function maxPoolGrad(): BenchResult {
  const x = tf.relu(tf.randomNormal([BATCH, 32, 32, 32], 0, 1, 'float32', 3)) as tf.Tensor4D;
  const time = (pool: (t: tf.Tensor4D) => tf.Tensor): number =>
    medianMs(() => tf.tidy(() => void tf.grad((t: tf.Tensor) => tf.sum(pool(t as tf.Tensor4D)))(x).dataSync()), 1, 5);
  const ours = time(maxPool2x2);
  const theirs = time((t) => tf.maxPool(t, 2, 2, 'valid'));
  x.dispose();
  return {
    name: `2×2 max-pool forward + gradient, ${BATCH}×32×32×32 activations`,
    value: ours,
    unit: 'ms',
    reference: { name: 'tf.maxPool with the built-in MaxPoolGrad', value: theirs, unit: 'ms' },
    note: 'median of 5 after 1 warm-up',
  };
}

if (isMain(import.meta.url)) {
  const results = await run();
  printResults(results);
  for (const r of results) if (r.note) console.log(`${r.name}: ${r.note}`);
}
