/**
 * The config parsers (experiment files, serve configs) under generated hostile input: as objects
 * (fields replaced by wrong types, huge numbers, deep nesting, removed or unknown fields) and as file
 * text (edits, truncations, random bytes). A checked config or a clean one-line error, in bounded time.
 */
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadExperiment, MAX_CELLS, parseExperiment } from '../../src/experiment/spec.js';
import { loadServeConfig, parseServeConfig } from '../../src/net/config.js';
import { RUN_OPTION_TYPES } from '../../src/sim/schema.js';
import { clean, hostileObject, hostileText, params } from './hostile.js';

const dir = mkdtempSync(join(tmpdir(), 'fuzz-configs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const EXPERIMENTS = join(import.meta.dirname, '../../experiments');

const experiment = {
  name: 'fuzz',
  description: 'a small grid',
  base: { dataset: 'lsq', clients: 4, rounds: 3, gamma: 'auto', pruneMode: null, maxSamples: null, maxLineBytes: 1000 },
  methods: ['proxskip', { algorithm: 'sparse-proxskip', name: 'sps', label: 'SPS', config: { sparsity: 0.8, intercept: true } }],
  seeds: [0, 1],
  settings: [{ name: 'a', label: 'A', config: { p: 0.2 } }],
  report: { uplink: 'MB', uplinkScale: 'log', plots: ['loss-vs-uplink'] },
};

const serve = {
  algorithm: 'sparse-proxskip',
  dataset: 'synthetic',
  clients: 30,
  rounds: 50,
  intercept: false,
  gamma: 0.1,
  host: '127.0.0.1',
  port: 50051,
  out: 'runs/net',
  tokens: 'tokens.json',
  allowPartial: false,
  roundTimeout: 30,
  tls: { cert: 's.pem', key: 's.key', ca: 'ca.pem', requireClientCert: true },
};

/** Each run option has its declared JSON type in a checked config. */
function typesHold(run: Record<string, unknown>): boolean {
  return Object.entries(RUN_OPTION_TYPES).every(([k, t]) => t.test(run[k]));
}

describe('experiment files', () => {
  it('objects: a spec whose cells are valid runs, at most MAX_CELLS, or a clean error', async () => {
    await fc.assert(
      fc.asyncProperty(hostileObject(experiment), async (json) => {
        const spec = await clean(() => parseExperiment(json, 'fuzz.json'));
        if (spec) expect(spec.settings.length * spec.seeds.length * spec.methods.length).toBeLessThanOrEqual(MAX_CELLS);
      }),
      params(1000),
    );
  });

  it('file text: edits of experiments/synthetic.json', async () => {
    const sample = readFileSync(join(EXPERIMENTS, 'synthetic.json'), 'utf8');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(hostileText(sample), async (text) => {
        const path = join(dir, `e${n++}.json`);
        writeFileSync(path, text);
        await clean(() => loadExperiment(path));
        rmSync(path);
      }),
      params(300),
    );
  });
});

describe('serve configs', () => {
  it('objects: every option of its type (mutual TLS a real boolean), or a clean error', async () => {
    await fc.assert(
      fc.asyncProperty(hostileObject(serve), async (json) => {
        const c = await clean(() => parseServeConfig(json, '/base', {}, 'fuzz.json'));
        if (c) {
          expect(typesHold(c.run as unknown as Record<string, unknown>)).toBe(true);
          expect(Number.isInteger(c.server.port) && typeof c.server.allowPartial === 'boolean' && c.server.roundTimeout > 0).toBe(true);
          if (c.server.tls) expect(typeof c.server.tls.requireClientCert).toBe('boolean');
        }
      }),
      params(1000),
    );
  });

  it('file text: edits of a valid config', async () => {
    const sample = JSON.stringify(serve, null, 2);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(hostileText(sample), async (text) => {
        const path = join(dir, `s${n++}.json`);
        writeFileSync(path, text);
        await clean(() => loadServeConfig(path));
        rmSync(path);
      }),
      params(300),
    );
  });
});
