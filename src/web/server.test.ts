/** The dashboard's HTTP server on loopback, over an in-memory source and a stand-in page. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeCerts } from '../net/security.js';
import type { RoundRecord } from '../sim/simulate.js';
import { MemorySource } from './memory-source.js';
import type { RunInfo, RunPayload } from './protocol.js';
import { CSP, startDashboard, type DashboardServer } from './server.js';

const dir = mkdtempSync(join(tmpdir(), 'dashboard-server-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const assets = join(dir, 'page');

function page(): string {
  mkdirSync(assets, { recursive: true });
  writeFileSync(join(assets, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(assets, 'app.js'), 'console.log(1)');
  writeFileSync(join(assets, 'style.css'), 'body{}');
  writeFileSync(join(assets, 'client.html'), '<!doctype html><title>client</title>');
  writeFileSync(join(assets, 'client.js'), 'console.log(2)');
  writeFileSync(join(assets, 'client-worker.js'), 'console.log(3)');
  writeFileSync(join(assets, 'client-chunk-AB12CD34.js'), 'console.log(4)');
  writeFileSync(join(assets, 'client-chunk-AB12CD34.js.LEGAL.txt'), 'licences');
  writeFileSync(join(assets, 'tfjs-backend-wasm-simd.wasm'), new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  return assets;
}

function record(round: number): RoundRecord {
  return {
    round,
    localSteps: round === 0 ? 0 : 10,
    trainLoss: 1 / (round + 1),
    testMetric: 0.5,
    nnz: 4,
    sumHNorm: 0.1,
    hNormSum: 1,
    uplinkFloats: 40 * round,
    uplinkBytes: 400 * round,
    downlinkFloats: 40 * round,
    downlinkBytes: 400 * round,
    seconds: round * 0.5,
  };
}

const RUN: RunInfo = {
  id: 'r1',
  group: 'g1',
  label: 'sparse-proxskip',
  method: 'sparse-proxskip',
  algorithm: 'sparse-proxskip',
  status: 'running',
  rounds: 10,
  roundsDone: 2,
  metricName: 'accuracy',
  where: 'runs/x',
};

function source(): MemorySource {
  const s = new MemorySource();
  s.setGroups([{ id: 'g1', title: 'x', kind: 'runs', where: 'runs' }]);
  s.putRun(RUN);
  s.appendRounds('r1', [record(0), record(1), record(2)]);
  return s;
}

async function withServer<T>(opts: Partial<Parameters<typeof startDashboard>[0]>, fn: (s: DashboardServer, src: MemorySource) => Promise<T>): Promise<T> {
  const src = source();
  const server = await startDashboard({ source: src, port: 0, assetsDir: page(), ...opts });
  try {
    return await fn(server, src);
  } finally {
    await server.close();
  }
}

describe('the dashboard server', () => {
  it('serves the page with a policy that allows nothing from other origins, and the API', async () => {
    await withServer({}, async (s) => {
      expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const home = await fetch(s.url);
      expect(home.status).toBe(200);
      expect(home.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(home.headers.get('content-security-policy')).toBe(CSP);
      expect(CSP).toContain("default-src 'none'");
      expect(CSP).not.toMatch(/'unsafe-|\*|https?:/); // ('wasm-unsafe-eval' allows WebAssembly only)
      expect(home.headers.get('x-content-type-options')).toBe('nosniff');
      // cross-origin isolation, for the browser client's shared WebAssembly memory
      expect([home.headers.get('cross-origin-opener-policy'), home.headers.get('cross-origin-embedder-policy')]).toEqual(['same-origin', 'require-corp']);
      expect((await fetch(`${s.url}app.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      const state = await (await fetch(`${s.url}api/state`)).json();
      expect(state).toEqual({ groups: [{ id: 'g1', title: 'x', kind: 'runs', where: 'runs' }], runs: [RUN] });
      const run = (await (await fetch(`${s.url}api/runs/r1`)).json()) as RunPayload;
      expect(run.records.map((r: RoundRecord) => r.round)).toEqual([0, 1, 2]);
      expect(run.clients).toEqual([]);
      for (const path of ['api/runs/r9', 'api/runs/..%2F..%2Fetc', 'api/experiments/g1', 'nope.js', '../package.json']) {
        expect((await fetch(`${s.url}${path}`)).status, path).toBe(404);
      }
    });
  });

  it('is read-only and answers only its own Host names on loopback', async () => {
    await withServer({}, async (s) => {
      const post = await fetch(`${s.url}api/state`, { method: 'POST', body: '{}' });
      expect(post.status).toBe(405);
      expect(post.headers.get('allow')).toBe('GET, HEAD');
      const head = await fetch(s.url, { method: 'HEAD' });
      expect(head.status).toBe(200);
      // a page of another site that resolved its own name to 127.0.0.1 (DNS rebinding)
      const port = new URL(s.url).port;
      const rebound = await rawGet(Number(port), '/api/state', { Host: `evil.example:${port}` });
      expect(rebound.status).toBe(403);
      expect((await rawGet(Number(port), '/api/state', { Host: `localhost:${port}` })).status).toBe(200);
    });
  });

  it('gzips large JSON for clients that take it', async () => {
    await withServer({}, async (s, src) => {
      src.appendRounds('r1', Array.from({ length: 200 }, (_, i) => record(i + 3)));
      const r = await rawGet(Number(new URL(s.url).port), '/api/runs/r1', { 'Accept-Encoding': 'gzip' });
      expect(r.headers['content-encoding']).toBe('gzip');
    });
  });

  it('streams every change as a Server-Sent Event', async () => {
    await withServer({}, async (s, src) => {
      const ctrl = new AbortController();
      const res = await fetch(`${s.url}api/events`, { signal: ctrl.signal });
      expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      const reader = res.body!.getReader();
      const seen: string[] = [];
      src.appendRounds('r1', [record(3)]);
      src.putRun({ ...RUN, roundsDone: 3 });
      const deadline = Date.now() + 5000;
      while (!seen.join('').includes('event: run') && Date.now() < deadline) seen.push(new TextDecoder().decode((await reader.read()).value));
      ctrl.abort();
      const text = seen.join('');
      expect(text).toMatch(/^retry: 1000\n\n/);
      const rounds = /event: rounds\ndata: (.*)\n\n/.exec(text)!;
      expect(JSON.parse(rounds[1]!)).toEqual({ type: 'rounds', runId: 'r1', from: 3, records: [record(3)] });
      expect(text).toContain('"roundsDone":3');
    });
  });

  it('with a token: refuses requests without it, trades ?token= for an HttpOnly cookie, takes the cookie or a bearer header', async () => {
    const token = 'a-token-of-sixteen-chars';
    await withServer({ token }, async (s) => {
      const port = Number(new URL(s.url).port);
      expect((await rawGet(port, '/api/state')).status).toBe(401);
      expect((await rawGet(port, '/api/state?token=wrong-token-of-sixteen')).status).toBe(401);
      const login = await rawGet(port, `/?token=${token}&x=1`);
      expect(login.status).toBe(303);
      expect(login.headers.location).toBe('/?x=1'); // the token leaves the address
      const cookie = String(login.headers['set-cookie']).split(';')[0]!;
      expect(String(login.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict/);
      expect((await rawGet(port, '/api/state', { Cookie: cookie })).status).toBe(200);
      expect((await rawGet(port, '/api/state', { Authorization: `Bearer ${token}` })).status).toBe(200);
      expect((await rawGet(port, '/', { Cookie: cookie })).body).not.toContain(token); // no secret on the page
      // the browser client's files need no dashboard token (a client shows its own token in its WebSocket hello)
      for (const path of ['/client?id=0', '/client.js', '/client-worker.js', '/client-chunk-AB12CD34.js', '/tfjs-backend-wasm-simd.wasm', '/style.css']) expect((await rawGet(port, path)).status, path).toBe(200);
      // compiled as it streams in (WebAssembly.instantiateStreaming wants this type)
      expect((await rawGet(port, '/tfjs-backend-wasm-simd.wasm')).headers['content-type']).toBe('application/wasm');
      expect((await rawGet(port, '/app.js')).status).toBe(401);
      expect((await rawGet(port, '/client-chunk-AB12CD34.js.LEGAL.txt')).status).toBe(401);
      expect((await rawGet(port, '/client.html')).status).toBe(401); // only as /client
    });
  });

  it('refuses to bind another address without TLS and a token, and a missing page, each in one line', async () => {
    await expect(startDashboard({ source: source(), host: '0.0.0.0', port: 0, assetsDir: page() })).rejects.toThrow(
      /^view: binding 0\.0\.0\.0 \(not loopback\) needs TLS \(--tls-cert and --tls-key\) and a dashboard token \(--token-file\)$/,
    );
    await expect(startDashboard({ source: source(), host: '192.0.2.1', port: 0, token: 'x'.repeat(16), assetsDir: page() })).rejects.toThrow(/needs TLS/);
    await expect(startDashboard({ source: source(), port: 0, assetsDir: join(dir, 'none') })).rejects.toThrow(/the dashboard page is not built .*npm run build/);
  });

  it('serves HTTPS with the given certificate, with a Secure cookie', async () => {
    const certs = join(dir, 'certs');
    makeCerts({ out: certs, clients: 1, hosts: [], days: 1 });
    const tls = { cert: readFileSync(join(certs, 'server.pem')), key: readFileSync(join(certs, 'server.key')) };
    await withServer({ tls, token: 'b-token-of-sixteen-chars' }, async (s) => {
      expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
      const r = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
        const req = httpsRequest(`${s.url}?token=b-token-of-sixteen-chars`, { ca: readFileSync(join(certs, 'ca.pem')) }, (res) => {
          res.resume();
          resolve({ status: res.statusCode!, cookie: String(res.headers['set-cookie']) });
        });
        req.on('error', reject);
        req.end();
      });
      expect(r.status).toBe(303);
      expect(r.cookie).toMatch(/; Secure$/);
    });
  });
});

/** A GET with exactly these headers (fetch would not send a foreign Host). */
async function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { Host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
