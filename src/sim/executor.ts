/**
 * Where client computations run: in this thread, or spread over worker_threads (client i on worker
 * i mod W). Both give bit-identical results: each client's work depends only on its own keyed inputs,
 * and the server combines results in client order.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Dataset } from '../models/types.js';
import { createRunner, type RunnerInit, type TrainResult, type TrainTask } from './runner.js';

export interface Executor {
  /**
   * Local training for the given clients. Each result is handed to `onResult` as soon as it exists (in no
   * particular order), so the caller can shrink it to the uplink message before the next one arrives.
   */
  train(round: number, start: Float32Array, steps: number, tasks: TrainTask[], onResult: (r: TrainResult) => void): Promise<void>;
  /** f_i(x) for every client, in client order. */
  losses(x: Float32Array): Promise<Float64Array>;
  close(): Promise<void>;
}

export type ExecutorInit = Omit<RunnerInit, 'clientIds' | 'data'> & { clients: Dataset[] };

export async function createExecutor(init: ExecutorInit, workers: number): Promise<Executor> {
  const n = init.clients.length;
  const w = Math.max(1, Math.min(workers, n));
  return w === 1 ? inProcess(init) : await workerPool(init, w);
}

function inProcess(init: ExecutorInit): Executor {
  const ids = init.clients.map((_, i) => i);
  const runner = createRunner({ ...stripClients(init), clientIds: ids, data: init.clients });
  return {
    async train(round, start, steps, tasks, onResult) {
      for (const t of tasks) onResult(runner.train(round, start, steps, t));
    },
    async losses(x) {
      return Float64Array.from(ids, (i) => runner.loss(x, i));
    },
    async close() {},
  };
}

function stripClients(init: ExecutorInit): Omit<RunnerInit, 'clientIds' | 'data'> {
  const { clients: _clients, ...rest } = init;
  return rest;
}

/** Messages between the pool and a worker (see worker.ts). */
export type ToWorker =
  | { type: 'init'; init: RunnerInit }
  | { type: 'train'; round: number; start: Float32Array; steps: number; tasks: TrainTask[] }
  | { type: 'losses'; x: Float32Array };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'trained'; result: TrainResult }
  | { type: 'done' }
  | { type: 'losses'; clients: number[]; losses: Float64Array }
  | { type: 'error'; message: string };

/**
 * The worker for this build. Under tsx or vitest this module is TypeScript source, and the worker must
 * register tsx's loader itself before importing worker.ts (an `--import tsx` execArgv is not honoured
 * inside vitest's pool).
 */
function spawnWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker.js', import.meta.url));
  const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const api = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./worker.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`, {
    eval: true,
  });
}

class WorkerHandle {
  private pending: { resolve: (m: FromWorker) => void; reject: (e: Error) => void; onPartial?: (m: FromWorker) => void } | null = null;
  private failed: Error | null = null;

  constructor(private readonly worker: Worker) {
    worker.on('message', (m: FromWorker) => {
      const p = this.pending;
      if (!p) return;
      if (m.type === 'trained') {
        try {
          p.onPartial?.(m);
        } catch (e) {
          // the run is over (e.g. a diverged update); later messages of this request are dropped
          this.pending = null;
          p.reject(e as Error);
        }
        return;
      }
      this.pending = null;
      if (m.type === 'error') p.reject(new Error(m.message));
      else p.resolve(m);
    });
    const fail = (e: Error): void => {
      this.failed = e;
      this.pending?.reject(e);
      this.pending = null;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (code !== 0) fail(new Error(`simulation worker exited with code ${code}`));
    });
  }

  /** Sends one request; `onPartial` receives the intermediate 'trained' messages before the final reply. */
  request(msg: ToWorker, transfer: ArrayBuffer[] = [], onPartial?: (m: FromWorker) => void): Promise<FromWorker> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject, ...(onPartial ? { onPartial } : {}) };
      this.worker.postMessage(msg, transfer);
    });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

async function workerPool(init: ExecutorInit, w: number): Promise<Executor> {
  const base = stripClients(init);
  const n = init.clients.length;
  const owner = (client: number): number => client % w;
  const handles: WorkerHandle[] = [];
  for (let k = 0; k < w; k++) handles.push(new WorkerHandle(spawnWorker()));
  try {
    await Promise.all(
      handles.map((hd, k) => {
        const clientIds: number[] = [];
        for (let i = k; i < n; i += w) clientIds.push(i);
        return hd.request({ type: 'init', init: { ...base, clientIds, data: clientIds.map((i) => init.clients[i]!) } });
      }),
    );
  } catch (e) {
    await Promise.all(handles.map((hd) => hd.terminate()));
    throw e;
  }
  return {
    async train(round, start, steps, tasks, onResult) {
      const byWorker = handles.map(() => [] as TrainTask[]);
      for (const t of tasks) byWorker[owner(t.client)]!.push(t);
      await Promise.all(
        handles.map((hd, k) => {
          const mine = byWorker[k]!;
          if (mine.length === 0) return Promise.resolve();
          const transfer = mine.flatMap((t) => (t.h ? [t.h.buffer as ArrayBuffer] : []));
          return hd.request({ type: 'train', round, start, steps, tasks: mine }, transfer, (m) =>
            onResult((m as Extract<FromWorker, { type: 'trained' }>).result),
          );
        }),
      );
    },
    async losses(x) {
      const out = new Float64Array(n);
      const replies = await Promise.all(handles.map((hd) => hd.request({ type: 'losses', x })));
      for (const m of replies) {
        const r = m as Extract<FromWorker, { type: 'losses' }>;
        r.clients.forEach((c, k) => (out[c] = r.losses[k]!));
      }
      return out;
    },
    async close() {
      await Promise.all(handles.map((hd) => hd.terminate()));
    },
  };
}
