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
import { cli } from '../cli/testing.js';
import { resolveConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';
import { onBroadcast, runClients, type ClientOptions, type ClientStep } from './client.js';
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

const CONFIG = resolveConfig({ algorithm: 'sparse-proxskip', clients: 3, rounds: 8, timing: false });

async function serve(dir: string, logs: string[], roundTimeout = 20): Promise<{ srv: FederationServer; base: ClientOptions }> {
  const srv = await FederationServer.start({
    config: { run: CONFIG, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(dir, 'out'), roundTimeout } },
    log: (l) => logs.push(l),
    prepared: await prepareRun(CONFIG),
  });
  const base: ClientOptions = { server: `127.0.0.1:${srv.port}`, ids: [], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };
  return { srv, base };
}

async function faultyRun(mode: 'kill' | 'cut'): Promise<{ jsonl: string; logs: string[] }> {
  const dir = tmp();
  const logs: string[] = [];
  const { srv, base } = await serve(dir, logs);
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
  for (const mode of ['kill', 'cut'] as const) {
    it(`${mode}: the run still writes the rounds.jsonl of \`sparse-proxskip run --no-timing\``, { timeout: 60_000 }, async () => {
      const { jsonl, logs } = await faultyRun(mode);
      const out = join(tmp(), 'run');
      expect((await cli('run', '--algorithm', 'sparse-proxskip', '--clients', '3', '--rounds', '8', '--no-timing', '--out', out)).code).toBe(0);
      expect(jsonl).toBe(readFileSync(join(out, 'rounds.jsonl'), 'utf8'));
      // round 3: the server held the update the client holds, and kept it
      expect(logs).toContain('client 2 is back with its update of round 3, which the server holds: kept');
    });
  }
});

describe('a client restarted without its state', () => {
  /**
   * Client 2 is killed at `step` of `round`, then started again without a state directory; with `hold`, the
   * others send their updates of that round only once it is back.
   */
  async function restartedWithoutState(round: number, step: ClientStep, hold = false): Promise<{ result: Promise<void>; logs: string[]; srv: FederationServer; dir: string }> {
    const dir = tmp();
    const logs: string[] = [];
    const { srv, base } = await serve(dir, logs, 2);
    let killed = false;
    let back: () => void = () => {};
    const victimBack = new Promise<void>((r) => (back = r));
    const others = runClients({ ...base, ids: [0, 1], onStep: async (_id, s, r) => (hold && s === 'train' && r === round ? victimBack : undefined) });
    others.catch(() => {});
    const first = runClients({
      ...base,
      ids: [2],
      stateDir: join(dir, 'state'),
      onStep: async (id, s, r) => {
        if (r !== round || s !== step || killed) return;
        killed = true;
        if (s === 'update-sent') await until(() => (srv['updates'] as Map<number, unknown>).has(id));
        throw new Error(KILLED);
      },
    });
    await expect(first).rejects.toThrow(KILLED);
    return { result: runClients({ ...base, ids: [2], onStep: (_id, s) => void (s === 'applied' && back()) }), logs, srv, dir };
  }

  it('after the server used its updates: it stops, saying it lost h_i, instead of going on with h_i = 0', { timeout: 60_000 }, async () => {
    const { result, srv } = await restartedWithoutState(3, 'train');
    await expect(result).rejects.toThrow(/client 2: the server used this client's update of round 2, which this client does not hold .*restart it with the --state-dir it ran with/);
    await expect(srv.done).rejects.toThrow(/round 3: no update from client 2/);
  });

  it('in round 1, with its update held by the server: the server drops its copy, asks again, and the run is exact', { timeout: 60_000 }, async () => {
    const { result, srv, logs, dir } = await restartedWithoutState(1, 'update-sent', true);
    await result;
    await srv.done;
    expect(logs).toContain('client 2 is back without its update of round 1: the server drops its copy and asks again');
    expect(readFileSync(join(dir, 'out', 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(CONFIG));
  });
});

describe('onBroadcast: what a client does with a broadcast (state: last applied round S, pending update of round P)', () => {
  const st = (round: number, pendingRound: number | null, hasH = true) => ({ round, pendingRound, hasH });
  it('applies its pending update when the broadcast of that round says the server used it', () => {
    expect(onBroadcast(st(4, 5), 5, 5)).toBe('apply');
  });
  it('skips: an update the server did not use, a broadcast already applied, a stale one while an update is pending, a round it sat out', () => {
    expect(onBroadcast(st(4, 5), 5, 4)).toBe('skip'); // allowPartial left it out
    expect(onBroadcast(st(5, null), 5, 5)).toBe('skip'); // sent again after a reconnect
    expect(onBroadcast(st(4, 5), 4, 4)).toBe('skip'); // the bug of issue 10: the pending update of round 5 stays
    expect(onBroadcast(st(4, null), 6, 3)).toBe('skip');
    expect(onBroadcast(st(0, null, false), 7, 7)).toBe('skip'); // no control variate: nothing to keep up to date
  });
  it('stops when it cannot update h_i: the server is behind, it missed the broadcast that used its update, or it lost its state', () => {
    expect(onBroadcast(st(6, null), 5, 5)).toEqual({ stop: expect.stringContaining("the server's checkpoint is older") });
    expect(onBroadcast(st(4, 5), 7, 5)).toEqual({ stop: expect.stringContaining('missed the broadcast of round 5') });
    expect(onBroadcast(st(0, null), 3, 3)).toEqual({ stop: expect.stringContaining('does not hold') });
    expect(onBroadcast(st(0, null), 5, 3)).toEqual({ stop: expect.stringContaining('update of round 3, which this client does not hold') });
  });
});
