import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig, type RunConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';
import { simulate } from '../sim/simulate.js';
import { runClients } from './client.js';
import { SERVER_DEFAULTS, type ServerOptions } from './config.js';
import { FederationServer } from './server.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'spx-net-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sha = (v: Float32Array): string => createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');

/** The simulator's run of `config`: rounds.jsonl as runToDir writes it, and each round's evaluated model. */
async function simulated(config: RunConfig): Promise<{ jsonl: string; models: string[] }> {
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
      timing: false,
    },
    { onRound: (_r, m) => models.push(sha(m)) },
  );
  return { jsonl: res.records.map((r) => JSON.stringify(r) + '\n').join(''), models };
}

export async function networked(config: RunConfig, server: Partial<ServerOptions> = {}): Promise<{ jsonl: string; models: string[]; out: string }> {
  const out = tmp();
  const models: string[] = [];
  const srv = await FederationServer.start({
    config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 20, ...server } },
    log: () => {},
    onRound: (_r, m) => models.push(sha(m)),
  });
  const ids = Array.from({ length: config.clients }, (_, i) => i);
  await Promise.all([
    srv.done,
    runClients({ server: `127.0.0.1:${srv.port}`, ids, data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} }),
  ]);
  return { jsonl: readFileSync(join(out, 'rounds.jsonl'), 'utf8'), models, out };
}

describe('networked run on loopback', () => {
  const cases: [string, Partial<RunConfig>][] = [
    ['sparse-proxskip', {}],
    ['proxskip', { sparsity: 0.5 }],
    ['fedavg', {}],
    ['accelerated-server-pruning', { schedule: 'random' }],
    ['randprox-l1', { participation: 0.5, evalEvery: 2 }],
    ['sparse-proxskip-local', { batchSize: 5 }],
  ];
  for (const [algorithm, extra] of cases) {
    it(`${algorithm}: the same rounds.jsonl and model bytes as the simulator`, { timeout: 30_000 }, async () => {
      const config = resolveConfig({ algorithm, clients: 4, rounds: 4, timing: false, ...extra });
      const sim = await simulated(config);
      const net = await networked(config);
      expect(net.models).toEqual(sim.models);
      expect(net.jsonl).toBe(sim.jsonl);
    });
  }
});
