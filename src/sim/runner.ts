/** The per-client computations of a simulation, for the clients one executor (or worker) holds. */
import { makePruner, type TopkScope } from '../core/prune.js';
import { createModel } from '../models/index.js';
import type { Dataset, ModelSpec } from '../models/types.js';
import { localTrain, type StepConfig } from '../algorithms/client.js';
import type { MethodSpec } from '../algorithms/methods.js';

/** Everything a worker needs, as plain data (it crosses postMessage). */
export interface RunnerInit {
  modelSpec: ModelSpec;
  method: MethodSpec;
  sparsity: number;
  topkScope: TopkScope;
  step: StepConfig;
  /** global client ids held here, ascending */
  clientIds: number[];
  data: Dataset[];
  /** a network with BatchNorm: the training images whose statistics evaluation uses (evalReferenceOf) */
  evalReference: Dataset | undefined;
  /** the train loss over the first this many rows of each client (null: all) */
  evalRows: number | null;
}

export interface TrainTask {
  client: number;
  h: Float32Array | null;
}

export interface TrainResult {
  client: number;
  xhat: Float32Array;
  /** the same buffer that came in, handed back */
  h: Float32Array | null;
}

export interface ClientRunner {
  train(round: number, start: Float32Array, steps: number, task: TrainTask): TrainResult;
  loss(x: Float32Array, client: number): number;
}

/** 0 … n−1, shared by the clients (a row subset is only read). */
let rowsCache = new Uint32Array(0);
function firstRows(n: number): Uint32Array {
  if (rowsCache.length < n) rowsCache = Uint32Array.from({ length: n }, (_, i) => i);
  return rowsCache.subarray(0, n);
}

export function createRunner(init: RunnerInit): ClientRunner {
  const model = createModel(init.modelSpec, init.evalReference);
  const pruner = makePruner(model.layout, init.sparsity, init.topkScope);
  const slot = new Map(init.clientIds.map((id, k) => [id, k]));
  const dataOf = (client: number): Dataset => {
    const k = slot.get(client);
    if (k === undefined) throw new RangeError(`client ${client} is not held by this runner`);
    return init.data[k]!;
  };
  return {
    train(round, start, steps, task) {
      const ctx = { client: task.client, model, data: dataOf(task.client), method: init.method, pruner, cfg: init.step };
      return { client: task.client, xhat: localTrain(ctx, start, task.h, steps, round), h: task.h };
    },
    loss(x, client) {
      const data = dataOf(client);
      const m = data.y.length;
      if (init.evalRows === null || init.evalRows >= m) return model.lossGrad(x, data, null);
      return model.lossGrad(x, data, null, firstRows(init.evalRows));
    },
  };
}
