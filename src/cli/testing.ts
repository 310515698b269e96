/** For tests: runs `sparse-proxskip ...args` in this process and captures everything it prints. */
import { format } from 'node:util';
import { vi } from 'vitest';
import { main } from './program.js';

export interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cli(...args: string[]): Promise<CliOutcome> {
  const out: string[] = [];
  const err: string[] = [];
  const capture = (sink: string[]) => (chunk: unknown): boolean => (sink.push(String(chunk)), true);
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(capture(out)),
    vi.spyOn(process.stderr, 'write').mockImplementation(capture(err)),
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(format(...a) + '\n')),
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(format(...a) + '\n')),
  ];
  try {
    const code = await main(['node', 'sparse-proxskip', ...args]);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}
