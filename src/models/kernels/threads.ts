/**
 * Runs the kernels' tasks on this thread plus helper threads that share the kernels' WebAssembly
 * memory. The caller stays synchronous: it publishes a job in a shared control block, wakes the
 * helpers, takes tasks itself, and blocks (Atomics.wait) until every task is done.
 *
 * Tasks write disjoint outputs chosen by task index alone (score rows, or one range's gradient
 * accumulator), so which thread runs a task changes nothing: results are bit-identical for every
 * thread count. Helpers are started on first use, unref'd (they never keep the process alive) and
 * wait on the control block between jobs.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, MessageChannel, Worker, type MessagePort } from 'node:worker_threads';

/** The kernel entry points a task calls (all arguments are i32 byte offsets or counts; C the class count). */
export interface TaskKernels {
  scores(indptr: number, indices: number, values: number, rows: number, useRows: number, i0: number, i1: number, w: number, s: number, C: number): void;
  gradRange(
    indptr: number, indices: number, values: number, rows: number, useRows: number, i0: number, i1: number, d: number, g: number, acc: number, count: number, block: number, C: number,
  ): void;
  softmax(s: number, labels: number, i0: number, i1: number, deriv: number, out: number, C: number): void;
}

export const SCORES = 0;
export const GRAD = 1;
export const SOFTMAX = 2;

/**
 * One job: `tasks` tasks of kind op for `classes` classes over `m` batch rows.
 * SCORES and SOFTMAX task t: batch rows [t·block, (t+1)·block) ∩ [0, m) (SOFTMAX: scores at dense,
 * labels at rows, deriv in useRows, out). GRAD task t: batch rows [round(m·t/tasks),
 * round(m·(t+1)/tasks)), in float32 blocks of `block` rows, into g + t·gStride and acc + t·accStride.
 */
export interface Job {
  op: number;
  classes: number;
  tasks: number;
  m: number;
  block: number;
  indptr: number;
  indices: number;
  values: number;
  rows: number;
  useRows: number;
  dense: number;
  out: number;
  acc: number;
  gStride: number;
  accStride: number;
  count: number;
}

// Control block slots (Int32Array over a SharedArrayBuffer); runTasks repeats them as literals.
const GEN = 0;
/** tasks not yet claimed: set last when a job is published, so a claim always sees a whole job */
const REMAIN = 1;
const DONE = 2;
const FAILED = 3;
const JOB = 4;
const JOB_FIELDS: (keyof Job)[] = ['op', 'classes', 'tasks', 'm', 'block', 'indptr', 'indices', 'values', 'rows', 'useRows', 'dense', 'out', 'acc', 'gStride', 'accStride', 'count'];

/**
 * Takes tasks of the published job until none is left. Runs on the calling thread and, as source
 * text (toString), in every helper, so it refers to nothing outside its parameters.
 */
function runTasks(ctl: Int32Array, kernelsOf: () => TaskKernels): void {
  // slots: 1 REMAIN, 2 DONE, 3 FAILED, then the Job fields from 4 in JOB_FIELDS order (tasks at 6)
  for (;;) {
    const remain = Atomics.sub(ctl, 1, 1);
    if (remain <= 0) return;
    const tasks = Atomics.load(ctl, 6);
    const t = tasks - remain;
    try {
      const [op, classes, , m, block, indptr, indices, values, rows, useRows, dense, out, acc, gStride, accStride, count] =
        ctl.subarray(4, 20);
      const k = kernelsOf();
      if (op === 0) {
        k.scores(indptr!, indices!, values!, rows!, useRows!, t * block!, Math.min(m!, (t + 1) * block!), dense!, out!, classes!);
      } else if (op === 2) {
        k.softmax(dense!, rows!, t * block!, Math.min(m!, (t + 1) * block!), useRows!, out!, classes!);
      } else {
        const [i0, i1] = [Math.round((m! * t) / tasks), Math.round((m! * (t + 1)) / tasks)];
        k.gradRange(indptr!, indices!, values!, rows!, useRows!, i0, i1, dense!, out! + t * gStride!, acc! + t * accStride!, count!, block!, classes!);
      }
    } catch {
      Atomics.store(ctl, 3, 1);
    }
    if (Atomics.add(ctl, 2, 1) + 1 === tasks) Atomics.notify(ctl, 2);
  }
}

const HELPER_SOURCE = `
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const { control, memory, port } = workerData;
const ctl = new Int32Array(control);
let kernels = null;
const nap = new Int32Array(new SharedArrayBuffer(4));
function kernelsOf() {
  if (kernels === null) {
    // a module posted just before the job can arrive a moment after the wake-up: wait up to 10 s
    let message = receiveMessageOnPort(port);
    for (let ms = 0; message === undefined && ms < 10000; ms++) {
      Atomics.wait(nap, 0, 0, 1);
      message = receiveMessageOnPort(port);
    }
    if (message === undefined) throw new Error('no kernels module');
    kernels = new WebAssembly.Instance(message.message.module, { env: { memory } }).exports;
  }
  return kernels;
}
const runTasks = ${runTasks.toString()};
let gen = Atomics.load(ctl, ${GEN});
for (;;) {
  Atomics.wait(ctl, ${GEN}, gen);
  gen = Atomics.load(ctl, ${GEN});
  runTasks(ctl, kernelsOf);
}
`;

let threads = isMainThread ? Math.max(1, Math.min(8, availableParallelism())) : 1;
const control = new Int32Array(new SharedArrayBuffer(4 * (JOB + JOB_FIELDS.length)));
const helpers: { worker: Worker; port: MessagePort }[] = [];
let module: object | null = null;

/**
 * Threads the kernels use for one product (this one included). Default: every core, up to 8, on the
 * main thread, and 1 inside worker threads (where the simulator already runs one client per core).
 */
export function setKernelThreads(n: number): void {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`kernel threads must be a positive integer, got ${n}`);
  threads = n;
}

export function kernelThreads(): number {
  return threads;
}

/** Makes the compiled kernel module available to the helpers (they instantiate it on first use). Once. */
export function shareModule(compiled: object): void {
  module = compiled;
  for (const h of helpers) h.port.postMessage({ module });
}

/**
 * Runs the job's tasks on min(threads, tasks) threads and returns when all are done. `memory` is the
 * shared WebAssembly.Memory the kernels use; `local` gives this thread's kernels.
 */
export function runJob(job: Job, memory: object, local: () => TaskKernels): void {
  const helpersWanted = Math.min(threads, job.tasks) - 1;
  while (helpers.length < helpersWanted) startHelper(memory);
  JOB_FIELDS.forEach((field, i) => Atomics.store(control, JOB + i, job[field]));
  Atomics.store(control, FAILED, 0);
  Atomics.store(control, DONE, 0);
  Atomics.store(control, REMAIN, job.tasks);
  if (helpersWanted > 0) {
    Atomics.add(control, GEN, 1);
    Atomics.notify(control, GEN, helpersWanted);
  }
  runTasks(control, local);
  for (let done = Atomics.load(control, DONE); done < job.tasks; done = Atomics.load(control, DONE)) {
    Atomics.wait(control, DONE, done);
  }
  if (Atomics.load(control, FAILED) !== 0) throw new Error('csr-simd: a kernel task failed');
}

function startHelper(memory: object): void {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(HELPER_SOURCE, {
    eval: true,
    workerData: { control: control.buffer, memory, port: port2 },
    transferList: [port2],
  });
  worker.unref();
  port1.unref();
  if (module !== null) port1.postMessage({ module });
  helpers.push({ worker, port: port1 });
}
