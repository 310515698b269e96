/**
 * sparse-proxskip: the library API. See README.md for an example.
 */
export { Rng, rngFor } from './core/rng.js';
export * as vec from './core/vec.js';
export { toSparse, toDense, type SparseVector } from './core/sparse.js';
export { topk, topkIndices, keepCount } from './core/topk.js';
export { makePruner, type Pruner, type TopkScope } from './core/prune.js';
export {
  encode,
  decode,
  chooseEncoding,
  encodedSize,
  supportBoundBits,
  EncodingError,
  ENCODINGS,
  type EncodingName,
} from './core/encoding.js';
export { Ledger, type Direction } from './core/ledger.js';

export type { Dataset, Matrix, DenseMatrix, CsrMatrix, Model, ModelSpec, ParamLayout, Segment, Task } from './models/types.js';
export { createModel, defaultModelSpec, initNnBackend, isNeuralNet } from './models/index.js';
export { setKernelThreads } from './models/kernels/threads.js';
export { saveModel, loadModel, tensorLayout, writeModelFiles, type SavedModel, type TensorDef, type ModelFiles } from './models/io.js';
export { encodeSafetensors, decodeSafetensors } from './models/safetensors.js';
export { exactLeastSquares } from './models/linear.js';

export type { FederatedDataset } from './data/types.js';
export { loadFederated, parseDatasetSpec } from './data/index.js';
export { syntheticLogistic, heterogeneousLeastSquares, syntheticImages } from './data/synthetic.js';
export { readLibsvm } from './data/libsvm.js';
export { partition, parsePartition, type PartitionScheme } from './data/partition.js';
export { DataError } from './data/errors.js';
export { DEFAULT_LIMITS, resolveLimits, type DataLimits } from './data/limits.js';
export { loadBlogFeedback, type BlogOptions } from './data/blogfeedback.js';
export { loadFemnist, type FemnistOptions } from './data/femnist.js';
export { loadCifar10, type Cifar10Options } from './data/cifar10.js';
export { fetchCifar10, type FetchOptions } from './data/fetch.js';
export { augmentBatch } from './data/augment.js';

export { ALGORITHMS, PRESETS, methodSpec, type AlgorithmName, type MethodSpec, type PruneMode, type HReference } from './algorithms/methods.js';
export { localTrain, uplinkVector, updateControlVariate, type StepConfig, type LocalContext } from './algorithms/client.js';
export { averageUplinks, broadcast, evaluatedModel, type Broadcast } from './algorithms/server.js';
export { localStepsForRound, type Schedule } from './algorithms/schedule.js';

export { simulate, smoothnessOf, SimulationError, type SimOptions, type SimResult, type RoundRecord } from './sim/simulate.js';
export { resolveConfig, DEFAULTS, type RunConfig } from './sim/config.js';
export { prepareRun, runToDir, loadRunData, type RunSummary, type PreparedRun } from './sim/run.js';
export { createStateStore, type ClientStateStore } from './sim/state.js';
export { evaluateModel, type Evaluation } from './sim/evaluate.js';
export { findLambda, type LambdaSearchResult } from './sim/lambda.js';
export { loadExperiment, parseExperiment, type ExperimentSpec } from './experiment/spec.js';
export { runExperiment } from './experiment/run.js';
export { writeReport } from './experiment/report.js';
export { readResults, resultsJson } from './experiment/results-file.js';
export { UsageError } from './errors.js';
export { VERSION } from './version.js';
