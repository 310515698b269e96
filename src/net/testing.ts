/** Test helpers: the simulator's results for a config, to compare networked runs against. */
import { createHash } from 'node:crypto';
import type { RunConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';
import { simulate } from '../sim/simulate.js';

export const sha = (v: Float32Array): string => createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');

/** The simulator's run of `config`: rounds.jsonl as runToDir writes it, and a hash of each round's evaluated model. */
export async function simulated(config: RunConfig): Promise<{ jsonl: string; models: string[] }> {
  const prepared = await prepareRun(config);
  const models: string[] = [];
  const c = config;
  const res = await simulate(
    prepared.dataset,
    {
      method: prepared.method,
      modelSpec: prepared.modelSpec,
      sparsity: c.sparsity,
      topkScope: c.topkScope,
      step: { gamma: prepared.gamma, p: c.p, lambda: c.lambda as number, steDecay: c.steDecay, batchSize: c.batchSize, seed: c.seed },
      localSteps: c.localSteps,
      schedule: c.schedule,
      rounds: c.rounds,
      participation: c.participation,
      workers: 1,
      evalEvery: c.evalEvery,
      postHocTopk: c.postHocTopk,
      timing: c.timing,
    },
    { onRound: (_r, m) => models.push(sha(m)) },
  );
  return { jsonl: res.records.map((r) => JSON.stringify(r) + '\n').join(''), models };
}

export async function simulatedJsonl(config: RunConfig): Promise<string> {
  return (await simulated(config)).jsonl;
}
