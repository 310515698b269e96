/**
 * The `sparse-proxskip` command, without side effects (tests import it; main.ts is the entry).
 * Bad input: one line on stderr, exit code 2, no stack trace.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { ALGORITHMS, PRESETS } from '../algorithms/methods.js';
import { registerRun } from './commands/run.js';
import { registerCompare } from './commands/compare.js';
import { registerExperiment } from './commands/experiment.js';
import { registerData } from './commands/data.js';
import { registerServe } from './commands/serve.js';
import { registerClient } from './commands/client.js';
import { registerCerts } from './commands/certs.js';
import { registerEvaluate } from './commands/evaluate.js';
import { registerPredict } from './commands/predict.js';
import { registerView } from './commands/view.js';

const USER_ERRORS = new Set(['UsageError', 'SearchInterrupted', 'DataError', 'EncodingError', 'SimulationError', 'RangeError', 'NetError']);

export function buildProgram(): Command {
  const program = new Command('sparse-proxskip')
    .description('Sparse federated learning with accelerated local training (Sparse-ProxSkip and baselines)')
    .version(VERSION)
    // commander's own errors (unknown option, bad value) in the same one-line form as ours
    .configureOutput({ outputError: (str, write) => write(`sparse-proxskip: ${str.trimEnd()} (see --help)\n`) })
    .exitOverride();
  registerRun(program);
  registerCompare(program);
  registerExperiment(program);
  registerData(program);
  registerServe(program);
  registerClient(program);
  registerCerts(program);
  registerEvaluate(program);
  registerPredict(program);
  registerView(program);
  program
    .command('algorithms')
    .description('list the algorithms and the switches of their presets')
    .action(() => {
      for (const name of ALGORITHMS) {
        const { name: _n, ...m } = PRESETS[name];
        console.log(`${name.padEnd(28)} ${JSON.stringify(m)}`);
      }
    });
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its message; help and version are not errors
      return e.exitCode === 0 ? 0 : 2;
    }
    const err = e as Error;
    if (USER_ERRORS.has(err?.name)) {
      console.error(`sparse-proxskip: error: ${err.message}`);
      return 2;
    }
    const fsProblem = fileSystemProblem(err);
    if (fsProblem) {
      console.error(`sparse-proxskip: error: ${fsProblem}`);
      return 2;
    }
    console.error(`sparse-proxskip: internal error: ${err?.message ?? String(e)}`);
    if (process.env.SPARSE_PROXSKIP_DEBUG) console.error(err?.stack);
    else console.error('(set SPARSE_PROXSKIP_DEBUG=1 for a stack trace, and please report it)');
    return 1;
  }
}

const FS_REASONS: Record<string, string> = {
  EEXIST: 'a file is in the way',
  ENOTDIR: 'a file is in the way of a directory',
  EISDIR: 'is a directory',
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
};

/** A file-system error on a path the user chose (e.g. --out naming a file), in words; null otherwise. */
function fileSystemProblem(err: NodeJS.ErrnoException | undefined): string | null {
  const reason = err?.code ? FS_REASONS[err.code] : undefined;
  return reason && err?.path ? `${err.path}: ${reason} (${err.syscall ?? err.code})` : null;
}
