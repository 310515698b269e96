import type { Dataset, Task } from '../models/types.js';

/** A dataset split over clients, plus optional held-out test data. */
export interface FederatedDataset {
  name: string;
  task: Task;
  nFeatures: number;
  /** 1 for regression and binary, number of classes for multiclass */
  nClasses: number;
  clients: Dataset[];
  test?: Dataset;
  /** free-form facts shown to users (source, partition, counts) */
  meta: Record<string, unknown>;
  /** how raw input becomes the rows above, where the loader transformed it (saved with a model, for `predict`) */
  input?: InputTransform;
}

/**
 * A loader's transform of raw input, applied in float64 and rounded to float32 once, as the loader does.
 * 'features': column c of a raw row becomes (x − shift[c]) · factor[c] (BlogFeedback's scaling).
 * 'image-bytes': byte b of channel c becomes (b/255 − mean[c]) / std[c] (CIFAR-10's per-channel
 * normalisation; FEMNIST's 1 − b/255 is mean 1, std −1).
 */
export type InputTransform =
  | { kind: 'features'; shift: number[]; factor: number[] }
  | { kind: 'image-bytes'; mean: number[]; std: number[] };
