import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rngFor } from '../../core/rng.js';
import { createModel, initNnBackend } from '../index.js';
import type { Dataset, ModelSpec } from '../types.js';
import { layersModel, writeTfjsModel } from './export.js';

const dir = mkdtempSync(join(tmpdir(), 'tfjs-export-test-'));
let server: Server;
let base: string;

beforeAll(async () => {
  await initNnBackend();
  // the browser's way in: loadLayersModel over HTTP (loopback), which fetches model.json, then weights.bin
  server = createServer((req, res) => {
    try {
      res.end(readFileSync(join(dir, decodeURIComponent(new URL(req.url!, 'http://x').pathname))));
    } catch {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function images(spec: ModelSpec, rows: number, key: number): Dataset {
  const rng = rngFor(3, 'export.test', key);
  return {
    x: { kind: 'dense', rows, cols: spec.nFeatures, data: Float32Array.from({ length: rows * spec.nFeatures }, () => rng.normal()) },
    y: new Float32Array(rows),
  };
}

/** Our logits and TF.js's on the same batch agree to float32 rounding (`tol`, relative to the largest). */
function expectSameLogits(ours: Float64Array, theirs: ArrayLike<number>, tol = 1e-5): void {
  expect(theirs.length).toBe(ours.length);
  const scale = Math.max(...Array.from(ours, Math.abs));
  for (let i = 0; i < ours.length; i++) expect(Math.abs(theirs[i]! - ours[i]!), `logit ${i}`).toBeLessThan(tol * scale + 1e-6);
}

function argmaxRows(v: ArrayLike<number>, C: number): number[] {
  return Array.from({ length: v.length / C }, (_, r) => {
    let best = 0;
    for (let c = 1; c < C; c++) if (v[r * C + c]! > v[r * C + best]!) best = c;
    return best;
  });
}

describe('TF.js LayersModel export', () => {
  const cases: [string, ModelSpec][] = [
    ['cnn', { kind: 'cnn', nFeatures: 8 * 8 * 3, nClasses: 4, intercept: false, l2: 0, inputShape: [8, 8, 3] }],
    ['femnist-cnn', { kind: 'femnist-cnn', nFeatures: 12 * 12, nClasses: 6, intercept: false, l2: 0, inputShape: [12, 12, 1] }],
  ];
  it.each(cases)('%s: tf.loadLayersModel loads model.json + weights.bin and predicts what our model outputs', async (kind, spec) => {
    const model = createModel(spec);
    const x = model.init!(4);
    for (let j = 0; j < x.length; j += 3) x[j] = 0; // a sparse model, as runs write
    // twice, as an experiment's cells do in one process: TF.js renames the second model's variables, not the saved weights
    await writeTfjsModel(join(dir, kind), spec, new Float32Array(x.length));
    await writeTfjsModel(join(dir, kind), spec, x);
    const loaded = await tfl.loadLayersModel(`${base}/${kind}/model.json`);
    const batch = images(spec, 6, 1);
    const ours = model.outputs(x, batch.x);
    const input = tfl.tensor4d((batch.x as { data: Float32Array }).data, [6, ...spec.inputShape!]);
    const logits = loaded.predict(input) as tfl.Tensor;
    const theirs = logits.dataSync();
    expectSameLogits(ours, theirs);
    expect(argmaxRows(theirs, spec.nClasses)).toEqual(argmaxRows(ours, spec.nClasses));
    tfl.dispose([input, logits]);
    loaded.dispose();
  });

  it('resnet18: Keras layers with batch statistics (training: true) give our outputs; predict uses the calibration batch\'s', { timeout: 30_000 }, () => {
    const spec: ModelSpec = { kind: 'resnet18', nFeatures: 8 * 8 * 3, nClasses: 3, intercept: false, l2: 0, inputShape: [8, 8, 3] };
    const batch = images(spec, 4, 2);
    const model = createModel(spec, batch); // the batch is the evaluation sample: both normalise with its statistics
    const x = model.init!(2);
    const layers = layersModel(spec, x, batch);
    const ours = model.outputs(x, batch.x);
    tfl.tidy(() => {
      const input = tfl.tensor4d((batch.x as { data: Float32Array }).data, [4, 8, 8, 3]);
      // twenty BatchNorms, each rounding its statistics its own way
      expectSameLogits(ours, (layers.apply(input, { training: true }) as tfl.Tensor).dataSync(), 1e-4);
      // moving statistics = this batch's: inference on the same batch matches too (up to the variance's rounding)
      const predicted = (layers.predict(input) as tfl.Tensor).dataSync();
      expect(argmaxRows(predicted, 3)).toEqual(argmaxRows(ours, 3));
      for (let i = 0; i < ours.length; i++) expect(Math.abs(predicted[i]! - ours[i]!)).toBeLessThan(1e-3 * Math.max(1, Math.abs(ours[i]!)));
    });
    layers.dispose();
  });
});
