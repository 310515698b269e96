/** The LIBSVM parser over a stream of byte chunks (a browser's Blob): the same data as over a file, however it is cut. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from './errors.js';
import { ownData, readLibsvm, readLibsvmChunks } from './libsvm.js';

const dir = mkdtempSync(join(tmpdir(), 'libsvm-chunks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function* chunks(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    yield bytes.subarray(at, c);
    at = c;
  }
  yield bytes.subarray(at);
}

const TEXT = '1 1:0.5 3:2\n-1 2:1.5 # a comment\n\n1 1:-1 2:0.25 3:1e-3\n-1 3:4';

describe('readLibsvmChunks', () => {
  it('property: any cutting of the bytes gives readLibsvm’s data of the same file', async () => {
    const path = join(dir, 'a.txt');
    writeFileSync(path, TEXT);
    const fromFile = await readLibsvm(path);
    const bytes = new TextEncoder().encode(TEXT);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 8 }), async (cuts) => {
        expect(await readLibsvmChunks(chunks(bytes, cuts), path)).toEqual(fromFile);
      }),
    );
  });

  it('the line limit and bad content are DataErrors naming the file and line', async () => {
    const bytes = new TextEncoder().encode('1 1:0.5\n1 1:x\n');
    await expect(readLibsvmChunks(chunks(bytes, [3]), 'pick.txt')).rejects.toThrow(/^pick\.txt:2: /);
    await expect(readLibsvmChunks(chunks(new TextEncoder().encode('1 1:0.5 2:0.5 3:0.5\n'), []), 'long.txt', { limits: { maxLineBytes: 8 } })).rejects.toThrow(
      /^long\.txt:1: line longer than 8 bytes/,
    );
  });

  it('ownData: a binary model takes labels ±1 and at most its features; other models are refused', async () => {
    const read = (text: string) => (opts: object) => readLibsvmChunks(chunks(new TextEncoder().encode(text), []), 'own.txt', opts);
    const spec = { kind: 'logistic', nFeatures: 3 } as const;
    expect((await ownData(spec as never, 'own.txt', read('1 1:1\n-1 3:2\n'))).y).toEqual(new Float32Array([1, -1]));
    await expect(ownData(spec as never, 'own.txt', read('1 4:1\n'))).rejects.toThrow(DataError);
    await expect(ownData({ kind: 'cnn' } as never, 'own.txt', read(''))).rejects.toThrow(/for the linear models only \(this run's model is cnn\)/);
  });
});
