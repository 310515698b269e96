import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig, type RunConfig } from '../sim/config.js';
import { runClients } from './client.js';
import { SERVER_DEFAULTS, type ServerOptions } from './config.js';
import { FederationServer } from './server.js';
import { sha, simulated } from './testing.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'spx-net-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function networked(config: RunConfig, server: Partial<ServerOptions> = {}): Promise<{ jsonl: string; models: string[]; out: string }> {
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
