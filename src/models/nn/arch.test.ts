import { describe, expect, it } from 'vitest';
import { makePruner } from '../../core/prune.js';
import { createModel, evalReferenceOf } from '../index.js';
import type { Dataset, DenseMatrix, ModelSpec } from '../types.js';
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

  it('passes are limited to 32 rows for ResNet18 (wasm heap) and 128 for the CNNs; BatchNorm batches to one pass of 65 rows', () => {
    const resnet = networkOf(spec('resnet18', [32, 32, 3], 10));
    expect(resnet).toMatchObject({ batchNorm: true, chunkRows: 32, maxBatchRows: 65, referenceRows: 256 });
    expect(networkOf(spec('resnet18', [64, 64, 3], 10))).toMatchObject({ chunkRows: 8, maxBatchRows: 16, referenceRows: 64 });
    for (const s of [spec('cnn', [32, 32, 3], 10), spec('femnist-cnn', [28, 28, 1], 62)]) {
      expect(networkOf(s)).toMatchObject({ batchNorm: false, chunkRows: 128, maxBatchRows: Infinity, referenceRows: 0 });
    }
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

  it('evalReferenceOf: rows spread evenly over the clients in client order, row ⌊i·N/R⌋; none without BatchNorm', () => {
    // three clients of 100, 200 and 300 images whose first pixel is the pooled row index
    const resnet = spec('resnet18', [4, 4, 3], 10);
    let next = 0;
    const client = (rows: number): Dataset => {
      const data = new Float32Array(rows * 48);
      for (let r = 0; r < rows; r++) data[r * 48] = next++;
      return { x: { kind: 'dense', rows, cols: 48, data }, y: Float32Array.from({ length: rows }, (_, r) => r % 10) };
    };
    const clients = [client(100), client(200), client(300)];
    const ref = evalReferenceOf(resnet, clients)!;
    expect(ref.x.rows).toBe(256);
    const picked = Array.from({ length: 256 }, (_, i) => (ref.x as DenseMatrix).data[i * 48]!);
    expect(picked).toEqual(Array.from({ length: 256 }, (_, i) => Math.floor((i * 600) / 256)));
    // by client: rows below 100 (i < 42.7), below 300 (i < 128), the rest, each about its share of 256
    expect([picked.filter((r) => r < 100).length, picked.filter((r) => r >= 100 && r < 300).length, picked.filter((r) => r >= 300).length]).toEqual([43, 85, 128]);
    expect(ref.y[1]).toBe(2 % 10); // labels come along: row 2 of client 0
    // fewer images than the reference wants: all of them
    expect(evalReferenceOf(resnet, [clients[0]!])!.x.rows).toBe(100);
    expect(evalReferenceOf(spec('cnn', [8, 8, 3], 3), clients)).toBeUndefined();
    expect(evalReferenceOf({ kind: 'multinomial', nFeatures: 48, nClasses: 10, intercept: false, l2: 0 }, clients)).toBeUndefined();
  });

  it('createModel asks for initNnBackend() before it has run', () => {
    expect(() => createModel(spec('cnn', [8, 8, 3], 3))).toThrow(/await initNnBackend\(\)/);
  });
});
