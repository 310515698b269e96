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
}
