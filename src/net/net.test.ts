import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig, type RunConfig } from '../sim/config.js';
import { runClients } from './client.js';
import { parseServeConfig, SERVER_DEFAULTS, type ServerOptions } from './config.js';
import { FederationServer } from './server.js';
import { sha, simulated } from './testing.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'spx-net-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function networked(
  config: RunConfig,
  server: Partial<ServerOptions> = {},
  ownData: string[] | null = null,
): Promise<{ jsonl: string; models: string[]; out: string }> {
  const out = tmp();
  const models: string[] = [];
  const srv = await FederationServer.start({
    config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 20, ...server } },
    log: () => {},
    onRound: (_r, m) => models.push(sha(m)),
  });
  const ids = Array.from({ length: config.clients }, (_, i) => i);
  const base = { server: `127.0.0.1:${srv.port}`, data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };
  await Promise.all([
    srv.done,
    ...(ownData ? ids.map((i) => runClients({ ...base, ids: [i], ownData: ownData[i]! })) : [runClients({ ...base, ids })]),
  ]);
  return { jsonl: readFileSync(join(out, 'rounds.jsonl'), 'utf8'), models, out };
}

describe('networked run on loopback', () => {
  const cases: [string, Partial<RunConfig>][] = [
    ['sparse-proxskip', {}],
    ['proxskip', { sparsity: 0.5 }],
    ['fedavg', {}],
    ['accelerated-server-pruning', { schedule: 'random' }],
    ['randprox-l1', { participation: 0.5, evalEvery: 2 }],
    ['sparse-proxskip-local', { batchSize: 5 }],
    // all 306 streams of a FEMNIST-sized federation over one connection
    ['sparse-proxskip', { clients: 306, rounds: 2 }],
  ];
  for (const [algorithm, extra] of cases) {
    it(`${algorithm} ${JSON.stringify(extra)}: the same rounds.jsonl and model bytes as the simulator`, { timeout: 30_000 }, async () => {
      const config = resolveConfig({ algorithm, clients: 4, rounds: 4, timing: false, ...extra });
      const sim = await simulated(config);
      const net = await networked(config);
      expect(net.models).toEqual(sim.models);
      expect(net.jsonl).toBe(sim.jsonl);
    });
  }
});

describe('clients with their own data files', () => {
  it('--own-data: each client reads only its file; the run equals the simulator on the concatenated file', { timeout: 30_000 }, async () => {
    const dir = tmp();
    // 2 clients x 12 rows of binary data with 5 features; the simulator splits the whole file contiguously
    const row = (i: number): string => `${i % 3 === 0 ? -1 : 1} ${[1, 2, 3, 4, 5].map((j) => `${j}:${(((i * 7 + j * 3) % 11) / 10).toFixed(1)}`).join(' ')}`;
    const rows = Array.from({ length: 24 }, (_, i) => row(i));
    const files = [0, 1].map((k) => join(dir, `client${k}.txt`));
    files.forEach((f, k) => writeFileSync(f, rows.slice(12 * k, 12 * k + 12).join('\n') + '\n'));
    writeFileSync(join(dir, 'all.txt'), rows.join('\n') + '\n');
    const config = resolveConfig({ algorithm: 'sparse-proxskip', dataset: `libsvm:${join(dir, 'all.txt')}`, clients: 2, rounds: 3, sparsity: 0.4, timing: false });
    const sim = await simulated(config);
    const net = await networked(config, {}, files);
    expect(net.jsonl).toBe(sim.jsonl);
  });

  it('--own-data reads the CSV rows and gzip files the browser client reads: a client of gzipped CSV and one of LIBSVM equal the simulator on the concatenated file', { timeout: 30_000 }, async () => {
    const dir = tmp();
    const row = (i: number): number[] => [...[1, 2, 3, 4, 5].map((j) => (((i * 7 + j * 3) % 11) / 10)), i % 3 === 0 ? -1 : 1];
    const rows = Array.from({ length: 24 }, (_, i) => row(i));
    const libsvm = (r: number[]) => `${r[5]} ${r.slice(0, 5).map((v, j) => `${j + 1}:${v.toFixed(1)}`).join(' ')}`;
    writeFileSync(join(dir, 'all.txt'), rows.map(libsvm).join('\n') + '\n');
    const files = [join(dir, 'client0.csv.gz'), join(dir, 'client1.txt')];
    writeFileSync(files[0]!, gzipSync(rows.slice(0, 12).map((r) => r.map((v) => v.toFixed(1)).join(',')).join('\n') + '\n'));
    writeFileSync(files[1]!, rows.slice(12).map(libsvm).join('\n') + '\n');
    const config = resolveConfig({ algorithm: 'sparse-proxskip', dataset: `libsvm:${join(dir, 'all.txt')}`, clients: 2, rounds: 3, sparsity: 0.4, timing: false });
    expect((await networked(config, {}, files)).jsonl).toBe((await simulated(config)).jsonl);
  });

  it("--own-data is read under the server config's data limits, or the client's own (--max-line-bytes)", { timeout: 30_000 }, async () => {
    const dir = tmp();
    const file = join(dir, 'mine.txt');
    writeFileSync(file, `1 1:0.5 2:0.25 3:${'1'.repeat(200)}\n-1 1:0.1\n`);
    const config = resolveConfig({ algorithm: 'proxskip', dataset: 'lsq', clients: 1, rounds: 1, maxLineBytes: 64, timing: false });
    const srv = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: tmp(), roundTimeout: 5 } },
      log: () => {},
    });
    const base = { server: `127.0.0.1:${srv.port}`, ids: [0], data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 5, log: () => {} };
    await expect(runClients({ ...base, ownData: file })).rejects.toThrow(/longer than 64 bytes.*--max-line-bytes/);
    await expect(runClients({ ...base, ownData: file, limits: { maxLineBytes: 40 } })).rejects.toThrow(/longer than 40 bytes/);
    srv.stop('test over');
    await srv.done.catch(() => {});
  });
});

describe('serve config file', () => {
  const parse = (o: object) => () => parseServeConfig(o, '/base');
  it('takes the run options and the server options, paths relative to the file', () => {
    const c = parseServeConfig({ algorithm: 'proxskip', rounds: 7, port: 0, tokens: 'tokens.json', tls: { cert: 's.pem', key: 's.key' } }, '/base');
    expect(c.run).toMatchObject({ algorithm: 'proxskip', rounds: 7 });
    expect(c.server).toMatchObject({ port: 0, tokens: '/base/tokens.json', tls: { cert: '/base/s.pem', key: '/base/s.key', ca: null, requireClientCert: false } });
  });
  it('refuses unknown keys, simulator-only options and bad values, naming them', () => {
    expect(parse({ algorithm: 'proxskip', rouns: 7 })).toThrow(/unknown key 'rouns'/);
    expect(parse({ algorithm: 'proxskip', hReference: 'recentre' })).toThrow(/simulator only/);
    expect(parse({ algorithm: 'proxskip', roundTimeout: 0 })).toThrow(/roundTimeout/);
    expect(parse({ algorithm: 'proxskip', tls: { cert: 'a', key: 'b', requireClientCert: true } })).toThrow(/needs tls.ca/);
    expect(parse({ rounds: 3 })).toThrow(/'algorithm' is required/);
  });
});
