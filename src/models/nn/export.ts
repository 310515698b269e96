/**
 * A network as a TensorFlow.js LayersModel (model.json + weights.bin), which `tf.loadLayersModel` loads in
 * Node and in a browser. Built from the same layer list as the forward pass (arch.ts), so each layer maps
 * to standard Keras layers: conv → Conv2D (ZeroPadding2D first where the stride is not 1, since Keras'
 * 'same' pads a stride-2 convolution on one side only and ours pads ⌊k/2⌋ on both), a conv whose ReLU
 * our forward fuses → Conv2D with activation 'relu', bn → BatchNormalization, block → two branches and
 * Add, and so on. Input: normalised images [n, height, width, channels]; output: logits.
 *
 * BatchNorm: our model normalises with the statistics of the batch it sees, which Keras does when called
 * with `training: true` (`model.apply(x, {training: true})` gives our outputs on the same batch);
 * `predict` uses the moving statistics, which are set to the statistics of a calibration batch: a run's
 * evaluation sample of training images (evalReferenceOf), so predict matches our evaluation.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic, writeJsonAtomic } from '../../report/io.js';
import type { Dataset, ModelSpec } from '../types.js';
import { blockParts, networkOf, type Layer } from './arch.js';
import { BN_EPS } from './kernels.js';

/** Keras' default BatchNorm momentum, for users who train the export further. */
const MOMENTUM = 0.99;

/**
 * The LayersModel of a network with parameters `x`. `calibration`: rows whose batch statistics become
 * every BatchNorm layer's moving mean and variance (all its rows, one batch); without it they stay 0 and 1.
 * The caller disposes the model.
 */
export function layersModel(spec: ModelSpec, x: Float32Array, calibration?: Dataset): tf.LayersModel {
  const model = build(spec, x, MOMENTUM);
  const net = networkOf(spec);
  if (calibration && net.layers.some(hasBatchNorm)) {
    const X = calibration.x;
    if (X.kind !== 'dense') throw new RangeError('calibration rows must be dense images');
    const [a, b] = [0, X.rows];
    // momentum 0: one training-mode pass leaves the batch's mean and variance as the moving statistics
    const probe = build(spec, x, 0);
    tf.tidy(() => {
      const rows = X.data.subarray(a * spec.nFeatures, b * spec.nFeatures);
      probe.apply(tf.tensor4d(rows, [b - a, ...net.input]), { training: true });
    });
    const batchNorms = (m: tf.LayersModel) => m.layers.filter((l) => l.getClassName() === 'BatchNormalization');
    const probed = batchNorms(probe);
    batchNorms(model).forEach((l, i) => l.setWeights(probed[i]!.getWeights()));
    probe.dispose();
  }
  return model;
}

function hasBatchNorm(l: Layer): boolean {
  return l.op === 'bn' || l.op === 'block';
}

/** The network's layers as Keras layers on a symbolic input, weights set from x (zero-initialised first: no random draws to throw away). */
function build(spec: ModelSpec, x: Float32Array, momentum: number): tf.LayersModel {
  const net = networkOf(spec);
  const { segments } = net.layout;
  let next = 0;
  const take = (): tf.Tensor => {
    const p = net.params[next]!;
    const seg = segments[next++]!;
    return tf.tensor(x.subarray(seg.offset, seg.offset + seg.size), p.shape, 'float32');
  };
  const weighted: [tf.layers.Layer, tf.Tensor[]][] = [];
  const apply = (layer: tf.layers.Layer, t: tf.SymbolicTensor): tf.SymbolicTensor => layer.apply(t) as tf.SymbolicTensor;
  const run = (ls: Layer[], input: tf.SymbolicTensor): tf.SymbolicTensor => {
    let t = input;
    for (let i = 0; i < ls.length; i++) {
      const l = ls[i]!;
      switch (l.op) {
        case 'conv': {
          const pad = Math.floor(l.k / 2);
          const same = l.stride === 1 && l.k % 2 === 1;
          if (pad > 0 && !same) t = apply(tf.layers.zeroPadding2d({ padding: [[pad, pad], [pad, pad]], name: `${l.name}.pad` }), t);
          // the forward pass fuses a biased conv with the ReLU after it; so does a Conv2D with activation 'relu'
          const fused = l.bias && ls[i + 1]?.op === 'relu';
          if (fused) i++;
          const layer = tf.layers.conv2d({ filters: l.out, kernelSize: l.k, strides: l.stride, padding: same ? 'same' : 'valid', useBias: l.bias, activation: fused ? 'relu' : 'linear', kernelInitializer: 'zeros', name: l.name });
          t = apply(layer, t);
          weighted.push([layer, l.bias ? [take(), take()] : [take()]]);
          break;
        }
        case 'bn': {
          const layer = tf.layers.batchNormalization({ axis: -1, epsilon: BN_EPS, momentum, name: l.name });
          t = apply(layer, t);
          const [c] = t.shape.slice(-1) as [number];
          weighted.push([layer, [take(), take(), tf.zeros([c]), tf.ones([c])]]);
          break;
        }
        case 'relu':
          t = apply(tf.layers.reLU(), t);
          break;
        case 'maxpool':
          t = apply(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'valid' }), t);
          break;
        case 'gap':
          t = apply(tf.layers.globalAveragePooling2d({}), t);
          break;
        case 'flatten':
          t = apply(tf.layers.flatten(), t);
          break;
        case 'dense': {
          const layer = tf.layers.dense({ units: l.out, kernelInitializer: 'zeros', name: l.name });
          t = apply(layer, t);
          weighted.push([layer, [take(), take()]]);
          break;
        }
        case 'block': {
          const { main, shortcut } = blockParts(l, t.shape[3]!);
          const y = run(main, t);
          const s = shortcut.length > 0 ? run(shortcut, t) : t;
          t = apply(tf.layers.reLU({ name: `${l.name}.relu` }), tf.layers.add({ name: `${l.name}.add` }).apply([y, s]) as tf.SymbolicTensor);
          break;
        }
      }
    }
    return t;
  };
  const input = tf.input({ shape: net.input, name: 'images' });
  const model = tf.model({ inputs: input, outputs: run(net.layers, input), name: spec.kind });
  for (const [layer, ws] of weighted) {
    layer.setWeights(ws);
    tf.dispose(ws);
  }
  return model;
}

/** Writes DIR/weights.bin, then DIR/model.json (each atomically), for `tf.loadLayersModel('…/model.json')`. */
export async function writeTfjsModel(dir: string, spec: ModelSpec, x: Float32Array, calibration?: Dataset): Promise<void> {
  const model = layersModel(spec, x, calibration);
  try {
    let artifacts: tf.io.ModelArtifacts | null = null;
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const a = artifacts! as tf.io.ModelArtifacts;
    writeFileAtomic(`${dir}/weights.bin`, new Uint8Array(tf.io.concatenateArrayBuffers(a.weightData!)));
    writeJsonAtomic(`${dir}/model.json`, {
      format: 'layers-model',
      generatedBy: a.generatedBy,
      convertedBy: null,
      modelTopology: a.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
    });
  } finally {
    model.dispose();
  }
}
