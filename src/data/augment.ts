/**
 * The standard CIFAR-10 training augmentation, random crop with 4 pixels of padding and a horizontal
 * flip, applied to each minibatch at training time to images stored NHWC (32×32×3, one row each).
 */
import { rngFor, type Rng } from '../core/rng.js';
import type { Dataset } from '../models/types.js';

export const IMAGE_HEIGHT = 32;
export const IMAGE_WIDTH = 32;
export const IMAGE_CHANNELS = 3;
export const IMAGE_SIZE = IMAGE_HEIGHT * IMAGE_WIDTH * IMAGE_CHANNELS;
/** padding of the random crop, on every side */
export const CROP_PAD = 4;

/**
 * Writes augmented copies of the images `rows` of `images` (n × 3072, NHWC) into `out` (rows.length ×
 * 3072) and returns it. Each image is padded with zeros (the channel mean: the images are normalised),
 * cropped back to 32×32 at a random offset, then mirrored left-right with probability 1/2, so
 * out(h, w) = in(h + dy, w' + dx) with w' = 31 − w when flipped, else w, and 0 outside the image.
 * Draws per image, in order: dy, dx (each uniform in −4..4), the flip. Deterministic for a given rng state.
 */
export function augmentBatch(images: Float32Array, rows: ArrayLike<number>, rng: Rng, out: Float32Array): Float32Array {
  if (out.length !== rows.length * IMAGE_SIZE) {
    throw new RangeError(`augmentBatch: out has ${out.length} values, expected ${rows.length} × ${IMAGE_SIZE}`);
  }
  const rowStride = IMAGE_WIDTH * IMAGE_CHANNELS;
  for (let k = 0; k < rows.length; k++) {
    const src = rows[k]! * IMAGE_SIZE;
    if (!(Number.isInteger(rows[k]) && src >= 0 && src + IMAGE_SIZE <= images.length)) {
      throw new RangeError(`augmentBatch: row ${rows[k]} out of range [0, ${images.length / IMAGE_SIZE})`);
    }
    const dy = rng.int(2 * CROP_PAD + 1) - CROP_PAD;
    const dx = rng.int(2 * CROP_PAD + 1) - CROP_PAD;
    const flip = rng.int(2) === 1;
    const dst = k * IMAGE_SIZE;
    for (let h = 0; h < IMAGE_HEIGHT; h++) {
      const sh = h + dy;
      const outRow = dst + h * rowStride;
      if (sh < 0 || sh >= IMAGE_HEIGHT) {
        out.fill(0, outRow, outRow + rowStride);
        continue;
      }
      const inRow = src + sh * rowStride;
      for (let w = 0; w < IMAGE_WIDTH; w++) {
        const sw = (flip ? IMAGE_WIDTH - 1 - w : w) + dx;
        const o = outRow + w * IMAGE_CHANNELS;
        if (sw < 0 || sw >= IMAGE_WIDTH) {
          for (let c = 0; c < IMAGE_CHANNELS; c++) out[o + c] = 0;
        } else {
          const i = inRow + sw * IMAGE_CHANNELS;
          for (let c = 0; c < IMAGE_CHANNELS; c++) out[o + c] = images[i + c]!;
        }
      }
    }
  }
  return out;
}

/**
 * The augmented minibatches of one client in one round: each call turns a batch's rows (all rows when
 * undefined, i.e. full batch) into a fresh Dataset of augmented images and their labels. The draws come
 * from the stream (seed, 'augment', client, round), so no client's augmentation depends on another's.
 */
export function augmentedBatches(data: Dataset, seed: number, client: number, round: number): (rows: Uint32Array | undefined) => Dataset {
  const x = data.x;
  if (x.kind !== 'dense' || x.cols !== IMAGE_SIZE) {
    throw new RangeError(`augmentation needs dense ${IMAGE_HEIGHT}×${IMAGE_WIDTH}×${IMAGE_CHANNELS} images (${IMAGE_SIZE} columns), got ${x.kind} with ${x.cols}`);
  }
  const rng = rngFor(seed, 'augment', client, round);
  let all: Uint32Array | null = null;
  return (rows) => {
    const r = rows ?? (all ??= Uint32Array.from({ length: x.rows }, (_, i) => i));
    const images = augmentBatch(x.data, r, rng, new Float32Array(r.length * IMAGE_SIZE));
    const y = Float32Array.from(r, (i) => data.y[i]!);
    return { x: { kind: 'dense', rows: r.length, cols: IMAGE_SIZE, data: images }, y };
  };
}
