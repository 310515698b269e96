/** The server's part of a round: average what was sent, decide what goes back down. */
import type { Pruner } from '../core/prune.js';
import type { Uplink } from './client.js';
import type { MethodSpec } from './methods.js';

/**
 * Σ u_i / n, summed in float64 in the order given (client order), so results do not depend on scheduling.
 * Any iterable: the simulator reads the uplinks one at a time from its state store.
 */
export function averageUplinks(d: number, uplinks: Iterable<Uplink>): Float32Array {
  const sum = new Float64Array(d);
  let n = 0;
  for (const u of uplinks) {
    n++;
    const ud = u instanceof Float32Array ? u.length : u.d;
    if (ud !== d) throw new RangeError(`uplink has dimension ${ud}, expected ${d}`);
    if (u instanceof Float32Array) {
      for (let j = 0; j < d; j++) sum[j]! += u[j]!;
      continue;
    }
    const idx = u.indices;
    const val = u.values;
    for (let k = 0; k < idx.length; k++) sum[idx[k]!]! += val[k]!;
  }
  const out = new Float32Array(d);
  for (let j = 0; j < d; j++) out[j] = sum[j]! / n;
  return out;
}

export interface Broadcast {
  /** what clients continue from */
  model: Float32Array;
  /** what h_i is moved towards (null without control variates) */
  ref: Float32Array | null;
  /** what crosses the downlink: the average when clients need it (they prune it themselves), else the model */
  downlink: Float32Array;
}

export function broadcast(method: MethodSpec, average: Float32Array, pruner: Pruner): Broadcast {
  const model = method.pruneAfterAverage ? pruner.apply(average) : average;
  const ref = !method.controlVariates ? null : method.hReference === 'unprunedAverage' ? average : model;
  const needsAverage = ref === average || model === average;
  return { model, ref, downlink: needsAverage ? average : model };
}

/** The model that is evaluated and reported: K-sparse for every sparse method (and for post-hoc TopK). */
export function evaluatedModel(
  method: MethodSpec,
  average: Float32Array,
  b: Broadcast,
  pruner: Pruner,
  postHocTopk: boolean,
): Float32Array {
  if (!method.sparse && !postHocTopk) return b.model;
  return method.pruneAfterAverage ? b.model : pruner.apply(average);
}
