import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../models/io.js';
import { resolveConfig } from '../sim/config.js';
import { prepareRun, runToDir } from '../sim/run.js';
import { runClients } from './client.js';
import { parseServeConfig, SERVER_DEFAULTS } from './config.js';
import { FederationServer } from './server.js';

const dir = mkdtempSync(join(tmpdir(), 'spx-net-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bits = (v: Float32Array): number[] => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

describe('serve: the model out and back in', () => {
  it('with init: the same rounds.jsonl as `run` from the same model, and the same model file out', { timeout: 30_000 }, async () => {
    await runToDir(await prepareRun(resolveConfig({ algorithm: 'fedavg', clients: 4, rounds: 2, timing: false })), join(dir, 'start'));
    const config = resolveConfig({ algorithm: 'sparse-proxskip', clients: 4, rounds: 3, timing: false, init: join(dir, 'start', 'model.safetensors') });
    await runToDir(await prepareRun(config), join(dir, 'sim'));
    const out = join(dir, 'net');
    const srv = await FederationServer.start({ config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out, roundTimeout: 20 } }, log: () => {} });
    const client = { server: `127.0.0.1:${srv.port}`, data: null, stateDir: null, tls: null, tokens: null, maxMessageBytes: SERVER_DEFAULTS.maxMessageBytes, connectTimeout: 10, log: () => {} };
    await Promise.all([srv.done, runClients({ ...client, ids: [0, 1, 2, 3] })]);
    expect(readFileSync(join(out, 'rounds.jsonl'), 'utf8')).toBe(readFileSync(join(dir, 'sim', 'rounds.jsonl'), 'utf8'));
    const [net, sim] = [out, join(dir, 'sim')].map((d) => loadModel(join(d, 'model.safetensors')));
    expect(bits(net!.params)).toEqual(bits(sim!.params));
    expect(net!.metadata).toMatchObject({ algorithm: 'sparse-proxskip', round: '3', K: sim!.metadata.K });
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { model: Record<string, unknown> };
    expect(summary.model).toMatchObject({ file: 'model.safetensors', encodedFile: 'model.wire', tfjs: null });
  });

  it("a config's init path is relative to the config file", () => {
    expect(parseServeConfig({ algorithm: 'fedavg', init: 'runs/a/model.safetensors' }, '/base').run.init).toBe('/base/runs/a/model.safetensors');
  });
});
