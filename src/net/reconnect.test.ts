/**
 * Reconnects are exact: a client killed (restarted from its --state-dir) or cut (the same process
 * reconnects) at each step of a round finishes with the simulator's rounds.jsonl, or stops with a
 * message saying why it cannot; never a silent difference.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';
import { runClients, type ClientOptions, type ClientStep } from './client.js';
import { SERVER_DEFAULTS } from './config.js';
import { FederationServer } from './server.js';
import { simulatedJsonl } from './testing.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'spx-reconnect-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const KILLED = 'killed by the test';

/** Polls `cond` every 5 ms, at most 2000 times. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error('condition not reached');
}

/** One fault of the victim (client 2) per round, each at a different step of the round. */
const FAULTS: [round: number, step: ClientStep][] = [
  [1, 'train'], // before its update
  [2, 'update-saved'], // during: computed and saved, not sent
  [3, 'update-sent'], // after: the server holds it, the broadcast has not come
  [4, 'broadcast'], // the broadcast arrived, h_i not yet updated
  [5, 'applied'], // during the evaluation: h_i updated, loss not sent
  [6, 'loss-sent'], // after its loss
];

async function faultyRun(mode: 'kill' | 'cut'): Promise<{ jsonl: string; logs: string[] }> {
  const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 3, rounds: 8, timing: false });
  const dir = tmp();
  const logs: string[] = [];
  const srv = await FederationServer.start({
    config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(dir, 'out'), roundTimeout: 20 } },
    log: (l) => logs.push(l),
    prepared: await prepareRun(config),
  });
  const base: ClientOptions = { server: `127.0.0.1:${srv.port}`, ids: [], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };
  const done = new Set<number>();
  let back: () => void = () => {};
  const victimBack = new Promise<void>((r) => (back = r));
  // the server's copy of the updates of the round it is collecting (private: the test needs to know it has arrived)
  const serverHolds = (id: number): boolean => (srv['updates'] as Map<number, unknown>).has(id);
  const victim = async (id: number, step: ClientStep, round: number): Promise<void> => {
    // round 3: the victim is back and has had the broadcast of round 2 again while the server still collects round 3
    if (step === 'applied' && round === 2 && done.has(3)) back();
    const fault = FAULTS.find(([r, s]) => r === round && s === step);
    if (!fault || done.has(round)) return;
    done.add(round);
    if (round === 3) await until(() => serverHolds(id));
    throw mode === 'kill' ? new Error(KILLED) : Object.assign(new Error('cut by the test'), { code: grpc.status.CANCELLED });
  };
  const others = runClients({ ...base, ids: [0, 1], onStep: async (_id, step, round) => (step === 'train' && round === 3 ? victimBack : undefined) });
  const runVictim = async (): Promise<void> => {
    const stateDir = mode === 'kill' ? join(dir, 'state') : null;
    for (let life = 0; life <= FAULTS.length; life++) {
      try {
        return await runClients({ ...base, ids: [2], stateDir, onStep: victim });
      } catch (e) {
        if (!(e as Error).message.includes(KILLED)) throw e;
      }
    }
    throw new Error('more kills than faults');
  };
  try {
    await Promise.all([srv.done, others, runVictim()]);
  } finally {
    srv.stop('test over');
    await srv.done.catch(() => {});
  }
  expect([...done].sort()).toEqual(FAULTS.map(([r]) => r));
  return { jsonl: readFileSync(join(dir, 'out', 'rounds.jsonl'), 'utf8'), logs };
}

describe('a client faulted at every step of a round', () => {
  const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 3, rounds: 8, timing: false });
  for (const mode of ['kill', 'cut'] as const) {
    it(`${mode}: the run still writes the simulator's rounds.jsonl`, { timeout: 60_000 }, async () => {
      const { jsonl } = await faultyRun(mode);
      expect(jsonl).toBe(await simulatedJsonl(config));
    });
  }
});
