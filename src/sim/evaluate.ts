/**
 * A saved model scored on federated data the way a run scores its evaluated model each round: the train
 * loss is the mean over clients of fᵢ (summed in client order in float64), the test metric R² or accuracy.
 */
import { nnz } from '../core/vec.js';
import type { FederatedDataset } from '../data/types.js';
import { UsageError } from '../errors.js';
import { createModel, evalReferenceOf, initNnBackend, isNeuralNet } from '../models/index.js';
import type { ModelSpec } from '../models/types.js';
import { mean } from './simulate.js';

export interface Evaluation {
  /** mean over the clients of fᵢ (with the L2 term), as rounds.jsonl's trainLoss */
  trainLoss: number;
  /** the loss on the test data (null without test data) */
  testLoss: number | null;
  /** R² or accuracy on the test data, as rounds.jsonl's testMetric (null without test data) */
  testMetric: number | null;
  metricName: 'r2' | 'accuracy';
  nnz: number;
  d: number;
  clients: number;
}

/** Scores parameters `params` of a `spec` model on `data`; a model that does not fit the data is a UsageError. */
export async function evaluateModel(spec: ModelSpec, params: Float32Array, data: FederatedDataset): Promise<Evaluation> {
  if (data.nFeatures !== spec.nFeatures) {
    throw new UsageError(`the ${spec.kind} model takes ${spec.nFeatures} features, ${data.name} has ${data.nFeatures}`);
  }
  const classes = spec.kind === 'multinomial' || isNeuralNet(spec) ? spec.nClasses : 1;
  if (data.nClasses !== classes) throw new UsageError(`the ${spec.kind} model has ${spec.nClasses} outputs, ${data.name} has ${data.nClasses} classes`);
  if (isNeuralNet(spec)) await initNnBackend();
  const model = createModel(spec, evalReferenceOf(spec, data.clients));
  const trainLoss = mean(Float64Array.from(data.clients, (c) => model.lossGrad(params, c, null)));
  const test = data.test;
  const metric = test ? model.metric(params, test) : null;
  return {
    trainLoss,
    testLoss: test ? model.lossGrad(params, test, null) : null,
    testMetric: metric ? metric.value : null,
    metricName: metric?.name ?? (spec.kind === 'linear' ? 'r2' : 'accuracy'),
    nnz: nnz(params),
    d: params.length,
    clients: data.clients.length,
  };
}
