/** `sparse-proxskip view`: the real entry point serving a run directory on loopback, and bad input. */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../testing.js';

const dir = mkdtempSync(join(tmpdir(), 'view-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sparse-proxskip view', () => {
  it('prints its address first, serves the runs below PATH, and stops on Ctrl-C', async () => {
    const run = join(dir, 'runs', 'sparse-proxskip');
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'rounds.jsonl'), '{"round":0,"trainLoss":1,"uplinkFloats":0,"uplinkBytes":0}\n');
    // the page is served from dist/web/page, which `npm run build` (run by `npm ci`) makes
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../main.ts'), 'view', join(dir, 'runs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const first = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0]!);
        });
        child.on('exit', (code) => reject(new Error(`view exited with ${code}`)));
        setTimeout(() => reject(new Error('no address within 20 s')), 20_000);
      });
      expect(first).toMatch(/^view: http:\/\/127\.0\.0\.1:\d+\/$/);
      const url = first.slice('view: '.length);
      const state = (await (await fetch(`${url}api/state`)).json()) as { runs: { label: string; algorithm: string }[] };
      expect(state.runs).toMatchObject([{ label: 'sparse-proxskip', algorithm: 'sparse-proxskip' }]);
      expect((await fetch(url)).headers.get('content-security-policy')).toContain("default-src 'none'");
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('bad input: one line, exit code 2, nothing served', async () => {
    const missing = await cli('view', join(dir, 'nope'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^sparse-proxskip: error: view: .*nope: no such file or directory\n$/);
    const open = await cli('view', dir, '--host', '0.0.0.0', '--port', '0');
    expect(open.code).toBe(2);
    expect(open.stderr).toBe('sparse-proxskip: error: view: --host 0.0.0.0 is not loopback: it needs --tls-cert, --tls-key and a token (--token-file or SPARSE_PROXSKIP_DASHBOARD_TOKEN)\n');
    expect(open.stdout).toBe('');
    const half = await cli('view', dir, '--tls-cert', join(dir, 'c.pem'));
    expect(half.stderr).toBe('sparse-proxskip: error: view: --tls-cert and --tls-key go together\n');
    const port = await cli('view', dir, '--port', '70000');
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/--port must be an integer in \[0, 65535\], got '70000'/);
  });
});
