/**
 * Every method of SPEC §3 is one skeleton with a few switches (a preset below):
 * local steps with or without control variates, where pruning happens, and what the
 * control-variate update refers to. The switches are exposed so other readings of the paper can be run.
 */

export const ALGORITHMS = [
  'fedavg',
  'proxskip',
  'server-pruning',
  'accelerated-server-pruning',
  'server-pruning-modified',
  'randprox-l1',
  'sparse-proxskip-prox',
  'sparse-proxskip',
  'sparse-proxskip-local',
] as const;

export type AlgorithmName = (typeof ALGORITHMS)[number];

/**
 * How the local iterate is made sparse.
 * 'none': dense local steps. 'prox': TopK applied after every local step (projection onto the l0 ball).
 * 'l1': soft-thresholding SoftThr_{γλ} after every local step. 'ste': dense latent z, gradients taken at
 * TopK(z) (straight-through), the sent vector is TopK(z).
 */
export type PruneMode = 'none' | 'prox' | 'l1' | 'ste';

/**
 * What h_i is moved towards after communication: h_i += (p/γ)(ref − x̂_i).
 * 'sent': the model the server sent back (pruned when pruneAfterAverage).
 * 'unprunedAverage': the plain average a, so Σ h_i stays 0.
 * 'recentre': ref = the sent model, then h_i −= mean_j h_j (simulator only: needs every h_j in one place;
 *   equal to 'unprunedAverage' in exact arithmetic whenever Σh was 0 before the round).
 */
export type HReference = 'sent' | 'unprunedAverage' | 'recentre';

export interface MethodSpec {
  name: AlgorithmName;
  /** keep a control variate h_i at each client (ProxSkip/Scaffnew) */
  controlVariates: boolean;
  pruneMode: PruneMode;
  /** upload x̂_i − (γ/p) h_i (ProxSkip). Without it x̂_i is sent, which has the same average while Σh = 0 and stays sparse. */
  uplinkShift: boolean;
  /** clients continue from TopK(average) instead of the average */
  pruneAfterAverage: boolean;
  hReference: HReference;
  /** the evaluated and reported model is TopK of the average */
  sparse: boolean;
}

const dense = { pruneMode: 'none', pruneAfterAverage: false, hReference: 'sent', sparse: false } as const;

export const PRESETS: Record<AlgorithmName, MethodSpec> = {
  fedavg: { name: 'fedavg', controlVariates: false, uplinkShift: false, ...dense },
  proxskip: { name: 'proxskip', controlVariates: true, uplinkShift: true, ...dense },
  'server-pruning': {
    name: 'server-pruning', controlVariates: false, uplinkShift: false, pruneMode: 'none',
    pruneAfterAverage: true, hReference: 'sent', sparse: true,
  },
  'accelerated-server-pruning': {
    name: 'accelerated-server-pruning', controlVariates: true, uplinkShift: true, pruneMode: 'none',
    pruneAfterAverage: true, hReference: 'sent', sparse: true,
  },
  'server-pruning-modified': {
    name: 'server-pruning-modified', controlVariates: true, uplinkShift: true, pruneMode: 'none',
    pruneAfterAverage: true, hReference: 'unprunedAverage', sparse: true,
  },
  'randprox-l1': {
    name: 'randprox-l1', controlVariates: true, uplinkShift: false, pruneMode: 'l1',
    pruneAfterAverage: false, hReference: 'sent', sparse: true,
  },
  'sparse-proxskip-prox': {
    name: 'sparse-proxskip-prox', controlVariates: true, uplinkShift: false, pruneMode: 'prox',
    pruneAfterAverage: false, hReference: 'sent', sparse: true,
  },
  'sparse-proxskip': {
    name: 'sparse-proxskip', controlVariates: true, uplinkShift: false, pruneMode: 'ste',
    pruneAfterAverage: true, hReference: 'unprunedAverage', sparse: true,
  },
  'sparse-proxskip-local': {
    name: 'sparse-proxskip-local', controlVariates: true, uplinkShift: false, pruneMode: 'ste',
    pruneAfterAverage: false, hReference: 'unprunedAverage', sparse: true,
  },
};

export function isAlgorithm(name: string): name is AlgorithmName {
  return (ALGORITHMS as readonly string[]).includes(name);
}

/** A preset with switches overridden; rejects combinations that cannot work. */
export function methodSpec(name: AlgorithmName, overrides: Partial<Omit<MethodSpec, 'name'>> = {}): MethodSpec {
  const m: MethodSpec = { ...PRESETS[name], ...overrides };
  if (!m.controlVariates && m.hReference === 'recentre') {
    throw new RangeError(`${name}: hReference 'recentre' needs control variates`);
  }
  return m;
}
