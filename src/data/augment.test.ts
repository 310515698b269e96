import { describe, expect, it } from 'vitest';
import { rngFor, type Rng } from '../core/rng.js';
import { augmentBatch, augmentedBatches, IMAGE_SIZE } from './augment.js';

/** Pixel (h, w, c) of image i holds i·100000 + h·1000 + w·10 + c, so every value names its source. */
function images(n: number): Float32Array {
  const x = new Float32Array(n * IMAGE_SIZE);
  for (let i = 0; i < n; i++) for (let h = 0; h < 32; h++) for (let w = 0; w < 32; w++) for (let c = 0; c < 3; c++) {
    x[i * IMAGE_SIZE + (h * 32 + w) * 3 + c] = i * 100000 + h * 1000 + w * 10 + c;
  }
  return x;
}
const at = (x: Float32Array, k: number, h: number, w: number, c: number): number => x[k * IMAGE_SIZE + (h * 32 + w) * 3 + c]!;

/** An Rng whose int() returns the given values in turn. */
const scripted = (values: number[]): Rng => ({ int: () => values.shift()! }) as unknown as Rng;

describe('augmentBatch', () => {
  it('offset 0 without a flip is the identity; rows are gathered in the order given', () => {
    const x = images(3);
    const out = augmentBatch(x, [2, 0], scripted([4, 4, 0, 4, 4, 0]), new Float32Array(2 * IMAGE_SIZE));
    expect(out.subarray(0, IMAGE_SIZE)).toEqual(x.subarray(2 * IMAGE_SIZE));
    expect(out.subarray(IMAGE_SIZE)).toEqual(x.subarray(0, IMAGE_SIZE));
  });

  it('crops and flips by hand: dy = +2, dx = −1, flipped', () => {
    // int(9) = 6 -> dy = 2; int(9) = 3 -> dx = -1; int(2) = 1 -> flip. out(h, w) = in(h + 2, 31 − w − 1).
    const x = images(1);
    const out = augmentBatch(x, [0], scripted([6, 3, 1]), new Float32Array(IMAGE_SIZE));
    expect(at(out, 0, 0, 0, 0)).toBe(2 * 1000 + 30 * 10); // in(2, 30)
    expect(at(out, 0, 0, 30, 2)).toBe(2 * 1000 + 0 * 10 + 2); // in(2, 0)
    expect(at(out, 0, 5, 31, 1)).toBe(0); // column −1: padding
    expect(at(out, 0, 29, 10, 0)).toBe(31 * 1000 + 20 * 10); // in(31, 20)
    for (let w = 0; w < 32; w++) expect(at(out, 0, 30, w, 0)).toBe(0); // rows 32, 33: padding
    expect(at(out, 0, 31, 3, 2)).toBe(0);
  });

  it('crops without a flip: dy = −4, dx = +4', () => {
    const x = images(1);
    const out = augmentBatch(x, [0], scripted([0, 8, 0]), new Float32Array(IMAGE_SIZE));
    expect(at(out, 0, 3, 5, 1)).toBe(0); // row −1
    expect(at(out, 0, 4, 5, 1)).toBe(0 * 1000 + 9 * 10 + 1); // in(0, 9)
    expect(at(out, 0, 10, 27, 0)).toBe(6 * 1000 + 31 * 10); // in(6, 31)
    expect(at(out, 0, 10, 28, 0)).toBe(0); // column 32
  });

  it('is deterministic for a keyed stream, and other keys give other crops', () => {
    const x = images(4);
    const run = (client: number) => augmentBatch(x, [0, 1, 2, 3], rngFor(7, 'augment', client, 1), new Float32Array(4 * IMAGE_SIZE));
    expect(run(0)).toEqual(run(0));
    expect(run(0)).not.toEqual(run(1));
  });

  it('checks the output size and the rows', () => {
    const x = images(2);
    expect(() => augmentBatch(x, [0], rngFor(1, 'a'), new Float32Array(10))).toThrow('out has 10 values');
    expect(() => augmentBatch(x, [2], rngFor(1, 'a'), new Float32Array(IMAGE_SIZE))).toThrow('row 2 out of range');
  });
});

describe('augmentedBatches', () => {
  it('gives fresh augmented batches with their labels, the same for the same (seed, client, round)', () => {
    const data = { x: { kind: 'dense' as const, rows: 3, cols: IMAGE_SIZE, data: images(3) }, y: Float32Array.from([7, 8, 9]) };
    const a = augmentedBatches(data, 1, 0, 1);
    const b = augmentedBatches(data, 1, 0, 1);
    const a1 = a(Uint32Array.from([2, 0]));
    expect(Array.from(a1.y)).toEqual([9, 7]);
    expect(a1.x.rows).toBe(2);
    expect(a1).toEqual(b(Uint32Array.from([2, 0])));
    const full = a(undefined);
    expect(Array.from(full.y)).toEqual([7, 8, 9]);
    expect(() => augmentedBatches({ x: { kind: 'dense', rows: 1, cols: 5, data: new Float32Array(5) }, y: new Float32Array(1) }, 1, 0, 1)).toThrow(
      'augmentation needs dense 32×32×3 images',
    );
  });
});
