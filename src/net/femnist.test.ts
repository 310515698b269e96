/**
 * The load case end to end, shortened to 2 rounds: FEMNIST with all 306 writers as clients, hosted
 * by two `client` pool processes over loopback, sparse-proxskip; the rounds equal the simulator's.
 * (bench/net.ts runs the 20-round version and times it.) Skips where ../shared/data is absent.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../sim/config.js';
import { SERVER_DEFAULTS } from './config.js';
import { FederationServer } from './server.js';
import { sha, simulated, spawnCli } from './testing.js';

const DATA = resolve(import.meta.dirname, '../../../shared/data');
const hasData = existsSync(join(DATA, 'femnist', 'writers.tsv'));
const running = new Set<ChildProcess>();
const dir = mkdtempSync(join(tmpdir(), 'spx-net-femnist-'));
afterAll(() => {
  for (const c of running) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasData)('FEMNIST, 306 writers in two client pool processes (needs ../shared/data)', () => {
  it('gives the rounds and model bytes of the simulator', { timeout: 300_000 }, async () => {
    const config = resolveConfig({ algorithm: 'sparse-proxskip', dataset: 'femnist', dataDir: DATA, intercept: true, sparsity: 0.99, rounds: 2, timing: false });
    const sim = await simulated(config);
    const models: string[] = [];
    const server = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(dir, 'net'), roundTimeout: 240 } },
      log: () => {},
      onRound: (_r, m) => models.push(sha(m)),
    });
    const ids = (k: number): string => Array.from({ length: 306 }, (_, i) => i).filter((i) => i % 2 === k).join(',');
    const pools = [0, 1].map((k) =>
      spawnCli(['client', '--server', `127.0.0.1:${server.port}`, '--client-ids', ids(k), '--data', 'femnist', '--data-dir', DATA], dir, running),
    );
    // a pool that fails (a bad option, missing data) would leave the server waiting: fail at once instead
    const failed = pools.map((p) => p.exit.then((c) => (c === 0 ? new Promise<never>(() => {}) : Promise.reject(new Error(p.output())))));
    await Promise.race([server.done, ...failed]);
    expect(await Promise.all(pools.map((p) => p.exit)), pools.map((p) => p.output()).join('\n')).toEqual([0, 0]);
    expect(models).toEqual(sim.models);
    expect(readFileSync(join(dir, 'net', 'rounds.jsonl'), 'utf8')).toBe(sim.jsonl);
  });
});
