import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { decode } from '../core/encoding.js';
import { toDense } from '../core/sparse.js';
import { DataError } from '../data/errors.js';
import { initialParams, inputTransformOf, labelMapOf, loadModel, modelBytes, saveModel, tensorLayout, writeModelFiles, type SavedModel } from './io.js';
import type { ModelSpec } from './types.js';

const dir = mkdtempSync(join(tmpdir(), 'model-io-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bits = (v: Float32Array): Uint32Array => new Uint32Array(v.buffer, v.byteOffset, v.length);

/** Scrambled float32 bit patterns (none NaN or infinite), −0 first and a subnormal second. */
function params(d: number, seed: number): Float32Array {
  const u = Uint32Array.from({ length: d }, (_, i) => Math.imul(i + seed, 2654435761) >>> 0);
  for (let i = 0; i < d; i++) if ((u[i]! & 0x7f800000) === 0x7f800000) u[i]! ^= 0x40000000;
  u[0] = 0x80000000;
  if (d > 1) u[1] = 1;
  return new Float32Array(u.buffer);
}

const SPECS: [string, ModelSpec][] = [
  ['linear with intercept', { kind: 'linear', nFeatures: 7, nClasses: 1, intercept: true, l2: 0.5 }],
  ['logistic', { kind: 'logistic', nFeatures: 5, nClasses: 1, intercept: false, l2: 0 }],
  ['multinomial with intercept', { kind: 'multinomial', nFeatures: 6, nClasses: 4, intercept: true, l2: 0 }],
  ['cnn', { kind: 'cnn', nFeatures: 8 * 8 * 3, nClasses: 3, intercept: false, l2: 0, inputShape: [8, 8, 3] }],
  ['femnist-cnn', { kind: 'femnist-cnn', nFeatures: 8 * 8, nClasses: 5, intercept: false, l2: 0, inputShape: [8, 8, 1], pruneAll: true }],
  // ResNet18 keeps its 11M parameters at any input size: built and saved, never run here
  ['resnet18', { kind: 'resnet18', nFeatures: 4 * 4 * 3, nClasses: 10, intercept: false, l2: 1e-4, inputShape: [4, 4, 3] }],
];

describe('saveModel → loadModel', () => {
  it.each(SPECS)('%s: bit-exact parameters, the same spec, the metadata kept', (_name, spec) => {
    const d = tensorLayout(spec).reduce((s, t) => s + t.size, 0);
    const x = params(d, d);
    const path = join(dir, `${spec.kind}.safetensors`);
    const bytes = saveModel(path, { spec, params: x, metadata: { algorithm: 'sparse-proxskip', K: '3' } });
    expect(statSync(path).size).toBe(bytes);
    const back = loadModel(path);
    expect(back.spec).toEqual(spec);
    expect(back.params.length).toBe(d);
    expect(Buffer.compare(Buffer.from(bits(back.params).buffer), Buffer.from(bits(x).slice().buffer))).toBe(0);
    expect(back.metadata).toMatchObject({ algorithm: 'sparse-proxskip', K: '3', library: 'sparse-proxskip', d: String(d), nnz: String(d - 1) });
  });

  it('names the tensors after the layout: convex weights [features, classes] and bias, network layers as TF.js stores them', () => {
    expect(tensorLayout(SPECS[2]![1])).toEqual([
      { name: 'weights', shape: [6, 4], offset: 0, size: 24 },
      { name: 'bias', shape: [4], offset: 24, size: 4 },
    ]);
    expect(tensorLayout(SPECS[3]![1]).slice(0, 2)).toEqual([
      { name: 'conv1.weight', shape: [3, 3, 3, 32], offset: 0, size: 864 },
      { name: 'conv1.bias', shape: [32], offset: 864, size: 32 },
    ]);
    expect(tensorLayout(SPECS[5]![1]).reduce((s, t) => s + t.size, 0)).toBe(11_173_962);
  });
});

describe('loading hostile model files', () => {
  const spec = SPECS[2]![1];
  const good = modelBytes({ spec, params: params(28, 1), metadata: {} });
  const header = (bytes: Uint8Array): Record<string, unknown> => {
    const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
    return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  };
  /** The good file with its header replaced (data unchanged). */
  const withHeader = (h: unknown): Uint8Array => {
    const json = new TextEncoder().encode(JSON.stringify(h));
    const data = good.subarray(8 + new DataView(good.buffer).getUint32(0, true));
    const out = new Uint8Array(8 + json.length + data.length);
    new DataView(out.buffer).setUint32(0, json.length, true);
    out.set(json, 8);
    out.set(data, 8 + json.length);
    return out;
  };
  const loadError = (bytes: Uint8Array): string => {
    const path = join(dir, 'hostile.safetensors');
    writeFileSync(path, bytes);
    try {
      loadModel(path);
    } catch (e) {
      expect(e).toBeInstanceOf(DataError);
      expect((e as Error).message.startsWith(`${path}: `)).toBe(true);
      expect((e as Error).message).not.toContain('\n');
      return (e as Error).message.slice(path.length + 2);
    }
    return 'accepted';
  };
  const meta = (h: Record<string, unknown>): Record<string, string> => h.__metadata__ as Record<string, string>;

  it('refuses a spec that is missing, malformed, or does not match the tensors', () => {
    const h = header(good);
    const specWith = (s: object): unknown => ({ ...h, __metadata__: { ...meta(h), modelSpec: JSON.stringify({ ...spec, ...s }) } });
    expect(loadError(withHeader({ ...h, __metadata__: {} }))).toBe('no modelSpec in the metadata: not a sparse-proxskip model file');
    expect(loadError(withHeader({ ...h, __metadata__: { modelSpec: '{' } }))).toMatch(/^metadata modelSpec is not valid JSON/);
    expect(loadError(withHeader(specWith({ kind: 'svm' })))).toMatch(/^metadata modelSpec: kind must be one of linear, .*got "svm"/);
    expect(loadError(withHeader(specWith({ nFeatures: 1.5 })))).toMatch(/nFeatures must be a positive integer/);
    expect(loadError(withHeader(specWith({ extra: 1 })))).toMatch(/unknown field 'extra'/);
    expect(loadError(withHeader(specWith({ nClasses: 1 })))).toMatch(/nClasses must be an integer >= 2/);
    expect(loadError(withHeader(specWith({ nFeatures: 7 })))).toBe("tensor 'weights' has shape [6, 4], the multinomial model in its metadata needs [7, 4]");
    expect(loadError(withHeader(specWith({ intercept: false })))).toBe("tensor 'bias' is not a parameter of the multinomial model in its metadata");
    const { bias: _b, ...noBias } = h;
    expect(loadError(withHeader(noBias))).toMatch(/tensors cover 96 data bytes, the file has 112/);
    expect(loadError(good.subarray(0, 5))).toMatch(/too short for a safetensors file/);
  });

  it('any mutation of a model file: a one-line DataError naming the file, or a model of the metadata\'s shape', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), fc.integer({ min: -30, max: 4 }), (flips, cut) => {
        const b = good.slice();
        for (const [i, v] of flips) b[i] = v;
        const bytes = cut >= 0 ? Uint8Array.from([...b, ...Array(cut).fill(7)]) : b.subarray(0, b.length + cut);
        const result = loadError(bytes);
        if (result === 'accepted') {
          const m = loadModel(join(dir, 'hostile.safetensors'));
          expect(m.params.length).toBe(tensorLayout(m.spec).reduce((s, t) => s + t.size, 0));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a missing file: one line, exit-2 kind', () => {
    expect(() => loadModel(join(dir, 'none.safetensors'))).toThrow(new DataError(`cannot read model ${join(dir, 'none.safetensors')}: ENOENT`));
  });
});

describe('--init: a saved model as x₀', () => {
  const saved: SavedModel = { spec: SPECS[0]![1], params: Float32Array.from({ length: 8 }, (_, i) => i + 1), metadata: {} };
  it('lays the saved tensors out for the run (a logistic model may start a linear one of the same shape)', () => {
    expect(Array.from(initialParams(saved, { ...saved.spec, l2: 0 }, 'm'))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const logistic: SavedModel = { ...saved, spec: { ...saved.spec, kind: 'logistic' } };
    expect(Array.from(initialParams(logistic, saved.spec, 'm'))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
  it('refuses another shape with one line naming the tensor', () => {
    expect(() => initialParams(saved, { ...saved.spec, nFeatures: 9 }, 'm.st')).toThrow(
      new DataError("--init m.st: tensor 'weights' is [7, 1] in the saved linear model, this run's linear model needs [9, 1]"),
    );
    expect(() => initialParams(saved, { ...saved.spec, intercept: false }, 'm.st')).toThrow(new DataError("--init m.st: the saved linear model has tensor 'bias', which this run's linear model lacks"));
    expect(() => initialParams({ ...saved, spec: { ...saved.spec, intercept: false }, params: new Float32Array(7) }, saved.spec, 'm.st')).toThrow(
      new DataError("--init m.st: the saved linear model has no tensor 'bias', which this run's linear model needs"),
    );
  });
});

describe('metadata fields', () => {
  const base: SavedModel = { spec: SPECS[1]![1], params: new Float32Array(5), metadata: {} };
  it('input transform and label map: checked against the model, absent is null', () => {
    expect(inputTransformOf(base)).toBeNull();
    expect(labelMapOf({ ...base, metadata: { labelMap: '[0, 7]' } })).toEqual([0, 7]);
    expect(() => labelMapOf({ ...base, metadata: { labelMap: '[1, 2, 3]' } })).toThrow('metadata labelMap must be a list of 2 numbers for a logistic model');
    const shift = [0, 1, 2, 3, 4];
    expect(inputTransformOf({ ...base, metadata: { input: JSON.stringify({ kind: 'features', shift, factor: shift }) } })).toEqual({ kind: 'features', shift, factor: shift });
    expect(() => inputTransformOf({ ...base, metadata: { input: JSON.stringify({ kind: 'features', shift: [1], factor: [1] }) } })).toThrow(/metadata input must be/);
    expect(() => inputTransformOf({ ...base, metadata: { input: '{"kind":"image-bytes","mean":[0],"std":[0]}' } })).toThrow(/std ≠ 0/);
  });
});

describe('writeModelFiles (what a run leaves)', () => {
  it('model.safetensors with the run facts, and model.wire: the smallest wire encoding of the model, its size recorded', async () => {
    const spec = SPECS[2]![1];
    const x = new Float32Array(28);
    x[3] = 1.5;
    x[20] = -2;
    x[25] = 0.25; // the bias
    const out = join(dir, 'run');
    const files = await writeModelFiles(out, x, { spec, algorithm: 'sparse-proxskip', sparsity: 0.9, k: 3, dataset: 'synthetic', round: 7, config: { seed: 1 } });
    // 3 nonzeros of d = 28: coo is 9 + 3·8 = 33 bytes, delta-varint 9 + 3 one-byte gaps + 12 = 24
    expect(files).toEqual({ file: 'model.safetensors', bytes: statSync(join(out, 'model.safetensors')).size, encodedFile: 'model.wire', encodedBytes: 24, encoding: 'delta-varint', tfjs: null });
    const wire = readFileSync(join(out, 'model.wire'));
    expect(wire.length).toBe(24);
    expect(Array.from(toDense(decode(wire, 28).vector))).toEqual(Array.from(x));
    expect(loadModel(join(out, 'model.safetensors')).metadata).toMatchObject({ algorithm: 'sparse-proxskip', sparsity: '0.9', K: '3', d: '28', nnz: '3', dataset: 'synthetic', round: '7', config: '{"seed":1}' });
  });
});

const python = '/usr/bin/python3';
const numpy = spawnSync(python, ['-c', 'import numpy'], { encoding: 'utf8' });
const numpyMissing = numpy.error ? `${python} not found` : numpy.status !== 0 ? `${python} has no numpy` : null;

describe('other tools read the file', () => {
  it.skipIf(numpyMissing !== null)(`plain numpy reads every tensor and the metadata${numpyMissing ? ` (skipped: ${numpyMissing})` : ''}`, () => {
    const spec = SPECS[2]![1];
    const x = params(28, 5);
    const path = join(dir, 'numpy.safetensors');
    saveModel(path, { spec, params: x, metadata: { algorithm: 'fedavg' } });
    const script = [
      'import json, struct, sys, numpy as np',
      'b = open(sys.argv[1], "rb").read()',
      'n = struct.unpack("<Q", b[:8])[0]',
      'h = json.loads(b[8:8 + n])',
      'meta = h.pop("__metadata__")',
      'out = {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype="<f4").reshape(v["shape"]).view("<u4").tolist() for k, v in h.items()}',
      'print(json.dumps({"meta": meta, "tensors": out}))',
    ].join('\n');
    const r = spawnSync(python, ['-c', script, path], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const got = JSON.parse(r.stdout) as { meta: Record<string, string>; tensors: { weights: number[][]; bias: number[] } };
    expect(got.meta).toMatchObject({ algorithm: 'fedavg', d: '28', modelSpec: JSON.stringify(spec) });
    // weights [6, 4] row-major, then bias [4], as the float32 bit patterns
    expect([...got.tensors.weights.flat(), ...got.tensors.bias]).toEqual(Array.from(bits(x)));
  });
});
