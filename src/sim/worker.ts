/** A simulation worker thread: holds some clients' data and runs their local training. */
import { parentPort } from 'node:worker_threads';
import { initNnBackend, isNeuralNet } from '../models/index.js';
import { createRunner, type ClientRunner } from './runner.js';
import type { FromWorker, ToWorker } from './executor.js';

if (!parentPort) throw new Error('worker.ts must run as a worker thread');
const port = parentPort;
let runner: ClientRunner | null = null;
let clientIds: number[] = [];

function reply(m: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

port.on('message', async (msg: ToWorker) => {
  try {
    if (msg.type === 'init') {
      if (isNeuralNet(msg.init.modelSpec)) await initNnBackend(); // createRunner is synchronous
      runner = createRunner(msg.init);
      clientIds = msg.init.clientIds;
      reply({ type: 'ready' });
      return;
    }
    if (!runner) throw new Error('worker used before init');
    if (msg.type === 'train') {
      for (const t of msg.tasks) {
        const r = runner.train(msg.round, msg.start, msg.steps, t);
        reply({ type: 'trained', result: r }, [r.xhat.buffer as ArrayBuffer, ...(r.h ? [r.h.buffer as ArrayBuffer] : [])]);
      }
      reply({ type: 'done' });
    } else {
      const losses = Float64Array.from(clientIds, (c) => runner!.loss(msg.x, c));
      reply({ type: 'losses', clients: clientIds, losses }, [losses.buffer]);
    }
  } catch (e) {
    reply({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
});
