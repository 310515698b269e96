/** The convex models: linear regression, binary logistic and multinomial logistic regression. */
import { GlmModel, type Link } from './glm.js';
import { squaredLoss } from './linear.js';
import { logisticLoss } from './logistic.js';
import { softmaxCrossEntropy } from './multinomial.js';
import { createNnModel, isNeuralNet } from './nn/registry.js';
import type { ConvexKind, Dataset, Model, ModelSpec, Task } from './types.js';

export type * from './types.js';
export { paramLayout } from './glm.js';
export { exactLeastSquares } from './linear.js';
export { evalReferenceOf, initNnBackend, isNeuralNet, needsEvalReference, setNnWasmPaths } from './nn/registry.js';

const LINKS: Record<ConvexKind, Link> = {
  linear: squaredLoss,
  logistic: logisticLoss,
  multinomial: softmaxCrossEntropy,
};

/**
 * Builds the model a spec describes; throws a RangeError for an invalid spec. Neural networks need
 * `await initNnBackend()` first. `evalReference`: for a network with BatchNorm, the training images whose
 * statistics evaluation normalises with, `evalReferenceOf(spec, clients)` (without them it can train but
 * not evaluate); other models take none.
 */
export function createModel(spec: ModelSpec, evalReference?: Dataset): Model {
  if (isNeuralNet(spec)) return createNnModel(spec, evalReference);
  return new GlmModel(spec, LINKS[spec.kind as ConvexKind]); // the constructor rejects unknown kinds
}

const KIND_OF_TASK: Record<Task, ModelSpec['kind']> = {
  regression: 'linear',
  binary: 'logistic',
  multiclass: 'multinomial',
};

/** The model for a task: linear for regression, logistic for binary, multinomial for multiclass. */
export function defaultModelSpec(
  task: Task,
  nFeatures: number,
  nClasses: number,
  opts: { intercept?: boolean; l2?: number },
): ModelSpec {
  if (!Object.hasOwn(KIND_OF_TASK, task)) {
    throw new RangeError(`task must be one of ${Object.keys(KIND_OF_TASK).join(', ')}, got ${task}`);
  }
  return { kind: KIND_OF_TASK[task], nFeatures, nClasses, intercept: opts.intercept ?? false, l2: opts.l2 ?? 0 };
}
