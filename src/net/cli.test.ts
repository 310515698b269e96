/**
 * The `serve`, `client` and `certs` commands end to end, in this process (src/cli/testing.ts), against a
 * server on loopback.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../cli/testing.js';
import { resolveConfig } from '../sim/config.js';
import { runClients } from './client.js';
import { loadServeConfig, SERVER_DEFAULTS } from './config.js';
import { FederationServer } from './server.js';
import { simulatedJsonl } from './testing.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'spx-netcli-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Resolves with `p`, or with 'timeout' after `ms`: a command that should end must not hang the test. */
const within = <T,>(ms: number, p: Promise<T>): Promise<T | 'timeout'> => Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);

const RUN = { algorithm: 'proxskip', clients: 2, rounds: 2, timing: false };

describe('certs', () => {
  it('prints the files it wrote; keys and tokens are 0600', async () => {
    const out = join(tmp(), 'certs');
    const r = await cli('certs', '--out', out, '--clients', '2');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => l.slice(out.length + 1))).toEqual(['ca.pem', 'server.pem', 'server.key', 'client.pem', 'client.key', 'tokens.json']);
    expect(statSync(join(out, 'tokens.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(out, 'server.key')).mode & 0o777).toBe(0o600);
  });
});

describe('client tokens', () => {
  it('--token-file: a token read from a file (out of `ps`) joins; without TLS the client warns that it travels in plain text', { timeout: 60_000 }, async () => {
    const dir = tmp();
    const tokens = { '0': 'token-zero-0123456789', '1': 'token-one-0123456789' };
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(tokens));
    writeFileSync(join(dir, 'token0'), `${tokens['0']}\n`);
    const config = resolveConfig(RUN);
    const logs: string[] = [];
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(dir, 'out'), roundTimeout: 30, tokens: join(dir, 'tokens.json') } },
      log: (l) => logs.push(l),
    });
    try {
      const other = runClients({ server: `127.0.0.1:${srv.port}`, ids: [1], data: null, stateDir: null, tls: null, tokens: new Map([[1, tokens['1']]]), maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} });
      const r = await cli('client', '--server', `127.0.0.1:${srv.port}`, '--client-id', '0', '--token-file', join(dir, 'token0'));
      expect(r).toMatchObject({ code: 0 });
      expect(r.stderr).toContain('warning: tokens without TLS (--ca): they cross the network in plain text');
      await other;
      await srv.done;
      expect(readFileSync(join(dir, 'out', 'rounds.jsonl'), 'utf8')).toBe(await simulatedJsonl(config));
      expect(logs).toContain('warning: tokens without TLS: they cross the network in plain text, where anyone on the path can read and reuse them (set tls)');
    } finally {
      srv.stop('test over');
      await srv.done.catch(() => {});
    }
  });

  it('one source of a token at a time; SPARSE_PROXSKIP_TOKEN is read; a token file holds one line', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'two-lines'), 'abc\ndef\n');
    const client = (...args: string[]) => cli('client', '--server', '127.0.0.1:1', ...args);
    expect((await client('--client-id', '0', '--token-file', join(dir, 'none'))).stderr).toMatch(/cannot read --token-file .*none/);
    expect((await client('--client-id', '0', '--token-file', join(dir, 'two-lines'))).stderr).toMatch(/must hold the token on one line/);
    expect((await client('--client-id', '0', '--token-file', join(dir, 'two-lines'), '--token', 'x')).stderr).toMatch(/give one of --tokens, --token-file and --token/);
    process.env.SPARSE_PROXSKIP_TOKEN = 'from-the-environment';
    try {
      const r = await client('--client-ids', '0-1');
      expect(r).toMatchObject({ code: 2, stderr: expect.stringMatching(/a single token is for one --client-id/) });
    } finally {
      delete process.env.SPARSE_PROXSKIP_TOKEN;
    }
  });
});

describe('serve', () => {
  it('--resume after a finished run exits at once, saying so', { timeout: 60_000 }, async () => {
    const dir = tmp();
    const configPath = join(dir, 'serve.json');
    writeFileSync(configPath, JSON.stringify({ ...RUN, host: '127.0.0.1', port: 0, out: 'out' }));
    const srv = await FederationServer.start({ config: loadServeConfig(configPath), log: () => {} });
    await runClients({ server: `127.0.0.1:${srv.port}`, ids: [0, 1], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} });
    await srv.done;
    const r = await within(10_000, cli('serve', '--config', configPath, '--resume'));
    expect(r).toMatchObject({ code: 2, stderr: expect.stringMatching(/^sparse-proxskip: error: the run in .*out is finished \(checkpoint at the last round, 2, and summary.json written\): nothing to resume/) });
  });

  it('takes the limits and keepalive from the command line, and refuses bad values in one line', async () => {
    const dir = tmp();
    const configPath = join(dir, 'serve.json');
    writeFileSync(configPath, JSON.stringify({ ...RUN, maxConnections: 0 }));
    expect((await cli('serve', '--config', configPath)).stderr).toBe("sparse-proxskip: error: " + configPath + ': maxConnections: must be an integer in 1..65536, got 0\n');
    expect((await cli('serve', '--config', configPath, '--keepalive-time', '-1')).stderr).toMatch(/--keepalive-time must be a positive number, got '-1'/);
  });

  it("--http [HOST:]PORT: prints the dashboard's address after its own; a bad address is one line", { timeout: 60_000 }, async () => {
    const dir = tmp();
    const configPath = join(dir, 'serve.json');
    writeFileSync(configPath, JSON.stringify({ ...RUN, host: '127.0.0.1', port: 0, portFile: 'port', out: 'out' }));
    const serve = cli('serve', '--config', configPath, '--http', '127.0.0.1:0');
    let port = '';
    for (let i = 0; i < 400 && !port; i++) {
      await new Promise((r) => setTimeout(r, 25));
      port = existsSync(join(dir, 'port')) ? readFileSync(join(dir, 'port'), 'utf8').trim() : '';
    }
    await runClients({ server: `127.0.0.1:${port}`, ids: [0, 1], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} });
    const r = await within(20_000, serve);
    expect(r).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^listening on 127\\.0\\.0\\.1:${port}\ndashboard: http://127\\.0\\.0\\.1:\\d+/\n`)) });
    writeFileSync(configPath, JSON.stringify({ ...RUN, http: 'localhost:http' }));
    expect((await cli('serve', '--config', configPath)).stderr).toBe(`sparse-proxskip: error: ${configPath}: http: must be '[HOST:]PORT' (e.g. '8787' or '127.0.0.1:8787') or null, got "localhost:http"\n`);
    expect((await cli('serve', '--config', configPath, '--http', '99999')).stderr).toMatch(/--http: '99999' is not \[HOST:\]PORT/);
  });
});
