import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from './errors.js';
import { DATASET_FORMS, loadFederated, parseDatasetSpec, type LoadOptions } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'dataset-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fixture(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** n rows of a 3-class problem over 4 features. */
function multiclassText(n: number, labels = [0, 1, 2]): string {
  return Array.from({ length: n }, (_, i) => `${labels[i % labels.length]} ${(i % 4) + 1}:${i + 1}`).join('\n') + '\n';
}

const base: LoadOptions = { clients: 3, partition: { kind: 'contiguous' }, seed: 1 };

describe('parseDatasetSpec', () => {
  it('parses every form', () => {
    expect(parseDatasetSpec('synthetic')).toEqual({ kind: 'synthetic', alpha: 1, beta: 1 });
    expect(parseDatasetSpec('synthetic:0.5,0')).toEqual({ kind: 'synthetic', alpha: 0.5, beta: 0 });
    expect(parseDatasetSpec('lsq')).toEqual({ kind: 'lsq' });
    expect(parseDatasetSpec('images')).toEqual({ kind: 'images', side: 8 });
    expect(parseDatasetSpec('images:16')).toEqual({ kind: 'images', side: 16 });
    expect(parseDatasetSpec('libsvm:data/a9a.gz')).toEqual({ kind: 'libsvm', path: 'data/a9a.gz' });
    expect(parseDatasetSpec('libsvm:C:\\data\\x.svm')).toEqual({ kind: 'libsvm', path: 'C:\\data\\x.svm' });
    expect(DATASET_FORMS).toEqual([
      'synthetic', 'synthetic:ALPHA,BETA', 'lsq', 'images', 'images:SIDE', 'libsvm:PATH',
      'blogfeedback', 'blogfeedback:log1p,min=N,small=drop|merge,scale=zscore|minmax', 'femnist', 'femnist:drop-truncated', 'femnist:leaf=DIR',
      'cifar10', 'cifar10:test=N', 'cifar10:validation=N',
    ]);
  });

  it('rejects unknown names listing the valid forms, and bad arguments', () => {
    for (const bad of ['mnist', '', 'toString', 'Synthetic']) {
      expect(() => parseDatasetSpec(bad)).toThrow(`unknown dataset '${bad}' (valid: ${DATASET_FORMS.join(', ')})`);
    }
    for (const bad of ['synthetic:1', 'synthetic:1,2,3', 'synthetic:a,b', 'synthetic:-1,1', 'synthetic:', 'lsq:2', 'images:7', 'images:65', 'images:08', 'images:', 'libsvm:']) {
      expect(() => parseDatasetSpec(bad)).toThrow(DataError);
      expect(() => parseDatasetSpec(bad)).toThrow(`bad dataset '${bad}'`);
    }
  });
});

describe('loadFederated: generated datasets', () => {
  it('makes the requested number of natural clients, with a test set', async () => {
    const { dataset, warnings } = await loadFederated(parseDatasetSpec('synthetic:0.5,0.5'), base);
    expect(dataset.name).toBe('synthetic(0.5,0.5)');
    expect(dataset.clients).toHaveLength(3);
    expect(dataset.test).toBeDefined();
    expect(warnings).toEqual([]);
    const lsq = await loadFederated(parseDatasetSpec('lsq'), { ...base, clients: 5 });
    expect(lsq.dataset.task).toBe('regression');
    expect(lsq.dataset.clients).toHaveLength(5);
  });

  it('ignores a partition with a warning, rejects test data and a different task', async () => {
    const { warnings } = await loadFederated(parseDatasetSpec('lsq'), { ...base, partition: { kind: 'dirichlet', alpha: 0.1 } });
    expect(warnings).toEqual(['partition dirichlet:0.1 ignored: lsq has natural clients (one generated distribution each)']);
    await expect(loadFederated(parseDatasetSpec('synthetic'), { ...base, test: 'libsvm:x' })).rejects.toThrow(/can only go with a libsvm dataset/);
    await expect(loadFederated(parseDatasetSpec('lsq'), { ...base, task: 'binary' })).rejects.toThrow('this generated dataset is regression, not binary');
  });
});

describe('loadFederated: libsvm', () => {
  it('reads, partitions and describes a file', async () => {
    const path = fixture('train.svm', multiclassText(30));
    const { dataset, warnings } = await loadFederated(parseDatasetSpec(`libsvm:${path}`), { ...base, partition: { kind: 'iid' } });
    expect(dataset.name).toBe('train.svm');
    expect(dataset.task).toBe('multiclass');
    expect(dataset.nClasses).toBe(3);
    expect(dataset.nFeatures).toBe(4);
    expect(dataset.clients.map((c) => c.y.length)).toEqual([10, 10, 10]);
    expect(dataset.test).toBeUndefined();
    expect(dataset.meta).toMatchObject({ source: path, partition: 'iid', labelMap: [0, 1, 2], samplesPerClient: { total: 30 } });
    expect(warnings).toEqual([]);
  });

  it('reads the test file with the training width, task and label coding', async () => {
    const train = fixture('train2.svm', multiclassText(30, [3, 5, 9]));
    const test = fixture('test2.svm', '9 1:1\n3 2:1\n');
    const { dataset } = await loadFederated(parseDatasetSpec(`libsvm:${train}`), { ...base, test: `libsvm:${test}` });
    expect(dataset.test!.x.cols).toBe(4);
    expect(Array.from(dataset.test!.y)).toEqual([2, 0]);
    expect(dataset.meta.test).toBe(test);
  });

  it('rejects a test file that does not fit the training data', async () => {
    const train = `libsvm:${fixture('train3.svm', multiclassText(30))}`;
    const wide = fixture('wide.svm', '0 1:1\n1 5:1\n');
    await expect(loadFederated(parseDatasetSpec(train), { ...base, test: `libsvm:${wide}` })).rejects.toThrow(
      `${wide}:2: feature index 5 is beyond the expected 4 features`,
    );
    const unseen = fixture('unseen.svm', '0 1:1\n7 2:1\n');
    await expect(loadFederated(parseDatasetSpec(train), { ...base, test: `libsvm:${unseen}` })).rejects.toThrow(
      `${unseen}:2: label 7 is not one of the known labels (0, 1, 2)`,
    );
    await expect(loadFederated(parseDatasetSpec(train), { ...base, test: 'lsq' })).rejects.toThrow("test data 'lsq' must be libsvm:PATH");
  });

  it('passes the task and the partition errors through', async () => {
    const path = fixture('train4.svm', multiclassText(6));
    const spec = parseDatasetSpec(`libsvm:${path}`);
    const asRegression = await loadFederated(spec, { ...base, task: 'regression' });
    expect(asRegression.dataset.task).toBe('regression');
    expect(asRegression.warnings).toEqual(['3 of 3 clients have fewer than 10 samples (smallest: 2)']);
    await expect(loadFederated(spec, { ...base, clients: 7 })).rejects.toThrow('cannot split 6 samples over 7 clients');
    await expect(loadFederated(parseDatasetSpec(`libsvm:${join(dir, 'missing.svm')}`), base)).rejects.toThrow(/missing\.svm: no such file/);
  });
});
