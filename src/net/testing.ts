/**
 * Helpers for the tests and the benchmark of networked runs: the simulator's results for a config, to
 * compare against, and the CLI as a real process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
// node with tsx's loader in this very process (the tsx command would run node as a child, out of reach of a SIGKILL)
const NODE_ARGS = ['--require', join(ROOT, 'node_modules/tsx/dist/preflight.cjs'), '--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href];

export interface CliProcess {
  child: ChildProcess;
  /** stdout and stderr so far */
  output(): string;
  /** resolves when the output matches */
  waitFor(re: RegExp): Promise<void>;
  exit: Promise<number | null>;
}

/** `sparse-proxskip ARGS` from source, as one process; `running` tracks it until it exits (for cleanup). */
export function spawnCli(args: string[], cwd: string, running: Set<ChildProcess>): CliProcess {
  const child = spawn(process.execPath, [...NODE_ARGS, MAIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
  running.add(child);
  let text = '';
  const watchers: { re: RegExp; resolve: () => void }[] = [];
  const onData = (b: Buffer): void => {
    text += b.toString();
    for (const w of [...watchers]) {
      if (w.re.test(text)) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return {
    child,
    output: () => text,
    waitFor: (re) => (re.test(text) ? Promise.resolve() : new Promise((resolve) => watchers.push({ re, resolve }))),
    exit,
  };
}
