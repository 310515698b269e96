import { describe, expect, it } from 'vitest';
import { makePruner } from '../../core/prune.js';
import { createModel } from '../index.js';
import type { ModelSpec } from '../types.js';
import { networkOf } from './arch.js';

const spec = (kind: ModelSpec['kind'], inputShape: [number, number, number], nClasses: number, over: Partial<ModelSpec> = {}): ModelSpec => ({
  kind,
  nFeatures: inputShape[0] * inputShape[1] * inputShape[2],
  nClasses,
  intercept: false,
  l2: 0,
  inputShape,
  ...over,
});

describe('network layouts (no backend needed)', () => {
  it('ResNet18 with the CIFAR stem has 11,173,962 parameters, BatchNorm γ and β included', () => {
    const net = networkOf(spec('resnet18', [32, 32, 3], 10));
    expect(net.layout.d).toBe(11_173_962);
    const names = net.layout.segments.map((s) => s.name);
    expect(names.slice(0, 3)).toEqual(['conv1.weight', 'bn1.gamma', 'bn1.beta']);
    expect(names).toContain('layer2.0.shortcut.conv.weight');
    expect(names).not.toContain('layer1.0.shortcut.conv.weight'); // identity shortcut: same shape
    expect(names.slice(-2)).toEqual(['fc.weight', 'fc.bias']);
    // 20 convolutions (17 3×3 + 3 shortcuts), 20 BatchNorms, one dense layer
    expect(names.filter((n) => n.endsWith('conv.weight') || /conv\d\.weight$/.test(n))).toHaveLength(20);
    expect(names.filter((n) => n.endsWith('.gamma'))).toHaveLength(20);
    // BatchNorm affine parameters: 2 × (64 + 4·64 + 4·128 + 4·256 + 4·512 + 128 + 256 + 512) = 9,600
    const bn = net.layout.segments.filter((s) => !s.prunable);
    expect(bn.reduce((a, s) => a + s.size, 0)).toBe(9_600 + 10); // and the fc bias
  });

  it('passes are limited to 32 rows for ResNet18 (wasm heap) and 128 for the CNNs', () => {
    expect(networkOf(spec('resnet18', [32, 32, 3], 10)).chunkRows).toBe(32);
    expect(networkOf(spec('cnn', [32, 32, 3], 10)).chunkRows).toBe(128);
    expect(networkOf(spec('femnist-cnn', [28, 28, 1], 62)).chunkRows).toBe(128);
  });

  it('the small CNN has 122,570 parameters at 32×32×3 and the FEMNIST CNN 461,630 at 28×28×1', () => {
    expect(networkOf(spec('cnn', [32, 32, 3], 10)).layout.d).toBe(896 + 18_496 + 36_928 + 65_600 + 650);
    expect(networkOf(spec('femnist-cnn', [28, 28, 1], 62)).layout.d).toBe(832 + 51_264 + 401_536 + 7_998);
  });

  it('segments are contiguous; weights are prunable, biases and BatchNorm only with pruneAll', () => {
    const net = networkOf(spec('cnn', [8, 8, 3], 3));
    let offset = 0;
    for (const s of net.layout.segments) {
      expect(s.offset).toBe(offset);
      offset += s.size;
      expect(s.prunable).toBe(s.name.endsWith('.weight'));
    }
    expect(offset).toBe(net.layout.d);
    const conv1 = net.layout.segments[0]!;
    expect(conv1).toEqual({ name: 'conv1.weight', offset: 0, size: 3 * 3 * 3 * 32, prunable: true });
    const all = networkOf(spec('resnet18', [8, 8, 3], 10, { pruneAll: true }));
    expect(all.layout.segments.every((s) => s.prunable)).toBe(true);
    // the Pruner keeps K of the prunable entries only
    const pruner = makePruner(net.layout, 0.9);
    const weights = net.layout.segments.filter((s) => s.prunable).reduce((a, s) => a + s.size, 0);
    expect(pruner.prunable).toBe(weights);
    expect(pruner.k).toBe(Math.ceil(0.1 * weights));
  });

  it('rejects bad specs with a clear message', () => {
    expect(() => networkOf({ ...spec('cnn', [8, 8, 3], 3), inputShape: undefined })).toThrow(/needs inputShape/);
    expect(() => networkOf({ ...spec('cnn', [8, 8, 3], 3), nFeatures: 100 })).toThrow(/must equal height·width·channels/);
    expect(() => networkOf(spec('cnn', [8, 8, 3], 1))).toThrow(/nClasses/);
    expect(() => networkOf(spec('cnn', [4, 4, 3], 3))).toThrow(/too small for layer/);
  });

  it('createModel asks for initNnBackend() before it has run', () => {
    expect(() => createModel(spec('cnn', [8, 8, 3], 3))).toThrow(/await initNnBackend\(\)/);
  });
});
