import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTokens, serverTlsOptions } from './security.js';
import { readStateFile, readStateHeader } from '../sim/state-file.js';

const dir = mkdtempSync(join(tmpdir(), 'net-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fifo: string | null = join(dir, 'fifo');
try {
  execFileSync('mkfifo', [fifo]);
} catch {
  fifo = null;
}

describe('files the network side reads: a FIFO (or any non-regular file) is refused at once, never waited on', () => {
  it.skipIf(fifo === null)('tokens file, certificate, state file and checkpoint header (mkfifo is missing here when skipped)', () => {
    const t0 = performance.now();
    expect(() => readTokens(fifo!)).toThrow(/FIFO/);
    expect(() => serverTlsOptions({ cert: fifo!, key: fifo!, ca: null, requireClientCert: false })).toThrow(/FIFO/);
    expect(() => readStateFile(fifo!)).toThrow(/FIFO/);
    expect(() => readStateHeader(fifo!)).toThrow(/FIFO/);
    expect(() => readTokens(dir)).toThrow(/directory/);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});
