/** The serve config file's schema: every key has a type, checked like experiment files' (issue 10, item 10). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { loadServeConfig, parseHttpAddress, parseServeConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'serve-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function error(raw: unknown): string {
  try {
    parseServeConfig(raw, '/base', {}, 's.json');
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a UsageError');
}

const base = { algorithm: 'proxskip' };

describe('serve config types', () => {
  it('a string where a boolean, number or object belongs is an error naming the key and the type', () => {
    expect(error({ ...base, intercept: 'false' })).toBe('s.json: intercept: must be true or false, got "false"');
    expect(error({ ...base, tls: { cert: 'c', key: 'k', ca: 'ca', requireClientCert: 'true' } })).toBe(
      's.json: tls.requireClientCert: must be true or false, got "true"',
    );
    expect(error({ ...base, dataset: 1 })).toBe('s.json: dataset: must be a string, got 1');
    expect(error({ ...base, rounds: '10' })).toBe('s.json: rounds: must be a number, got "10"');
    expect(error({ ...base, gamma: 'big' })).toBe("s.json: gamma: must be a number or 'auto', got \"big\"");
    expect(error({ ...base, maxSamples: true })).toBe('s.json: maxSamples: must be a number or null, got true');
    expect(error({ ...base, allowPartial: 1 })).toBe('s.json: allowPartial: must be true or false, got 1');
    expect(error({ ...base, port: '50051' })).toBe('s.json: port: must be an integer in 0..65535, got "50051"');
    expect(error({ ...base, port: 70000 })).toBe('s.json: port: must be an integer in 0..65535, got 70000');
    expect(error({ ...base, roundTimeout: 0 })).toBe('s.json: roundTimeout: must be a positive number of seconds, got 0');
    expect(error({ ...base, tokens: 5 })).toBe('s.json: tokens: must be a file path or null, got 5');
    expect(error({ ...base, out: '' })).toBe('s.json: out: must be a file path, got ""');
    expect(error({ ...base, tls: 'tls.json' })).toBe('s.json: tls: must be an object or null, got "tls.json"');
    expect(error({ ...base, tls: { cert: 'c' } })).toBe('s.json: tls.key: is required (tls is {cert, key, ca?, requireClientCert?})');
    expect(error({ ...base, tls: { cert: 'c', key: 'k', pin: 1 } })).toMatch(/^s\.json: tls\.pin: unknown field \(valid: cert, key, ca, requireClientCert\)$/);
    expect(error({ ...base, maxDimension: 'big' })).toBe('s.json: maxDimension: must be a number, got "big"');
    expect(error({ algorithm: 7 })).toBe('s.json: algorithm: must be a string, got 7');
    expect(error([])).toBe('s.json: must be an object, got a list');
  });

  it('keeps the checks it had: unknown keys, a required algorithm, simulator-only options, ranges', () => {
    expect(error({ ...base, rouns: 7 })).toMatch(/^s\.json: unknown key 'rouns' \(run options: algorithm, dataset,/);
    expect(error({ rounds: 3 })).toBe("s.json: 'algorithm' is required");
    expect(error({ ...base, hReference: 'recentre' })).toMatch(/simulator only/);
    expect(error({ ...base, sparsity: 2 })).toBe('s.json: --sparsity must be in [0, 1), got 2');
    expect(error({ ...base, tls: { cert: 'a', key: 'b', requireClientCert: true } })).toMatch(/needs tls\.ca/);
  });

  it('accepts well-typed values, the data limits among the run options, paths relative to the file', () => {
    const c = parseServeConfig(
      { ...base, intercept: true, maxLineBytes: 4096, maxDecompressedMb: 0.5, tls: { cert: 'c', key: 'k', ca: 'ca', requireClientCert: true }, tokens: null },
      '/base',
    );
    expect(c.run).toMatchObject({ intercept: true, maxLineBytes: 4096, maxDecompressedMb: 0.5, maxDimension: 2 ** 24 });
    expect(c.server.tls).toEqual({ cert: '/base/c', key: '/base/k', ca: '/base/ca', requireClientCert: true });
    expect(c.server.tokens).toBeNull();
    expect(c.server.out).toBe('/base/runs/net-proxskip');
  });

  it('a config file: a JSON syntax error is one line with its line and column; non-files are refused', () => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, '{\n  "algorithm": "proxskip"\n  "rounds": 3\n}\n');
    expect(() => loadServeConfig(path)).toThrow(`${path}: not valid JSON: Expected ',' or '}' after property value (line 3, column 3)`);
    expect(() => loadServeConfig(dir)).toThrow(`serve config ${dir}: is a directory, not a regular file`);
    expect(() => loadServeConfig(join(dir, 'none.json'))).toThrow(`serve config ${join(dir, 'none.json')}: no such file`);
  });
});

describe('http: the live dashboard address, [HOST:]PORT', () => {
  it('reads a port alone (on 127.0.0.1), a host and a port, and a bracketed IPv6 address', () => {
    expect(parseHttpAddress('8787')).toEqual({ host: '127.0.0.1', port: 8787 });
    expect(parseHttpAddress('0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseHttpAddress('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseHttpAddress('localhost:65535')).toEqual({ host: 'localhost', port: 65535 });
    expect(parseHttpAddress('[::1]:8787')).toEqual({ host: '::1', port: 8787 });
    for (const bad of ['', ':80', 'host:', '65536', '080', '1.5', 'a:b', 'a b:1', '::1:80', 'http://h:1', '8787 ']) {
      expect(() => parseHttpAddress(bad), bad).toThrow(UsageError);
    }
    expect(() => parseHttpAddress('host:99999')).toThrow("http: 'host:99999' is not [HOST:]PORT (a port in 0..65535, e.g. 8787, 127.0.0.1:8787, [::1]:0)");
  });

  it('property: HOST:PORT reads back as written; any other text is a UsageError, never another error', () => {
    const host = fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{1,30}$/), fc.ipV4(), fc.ipV6().map((h) => `[${h}]`));
    fc.assert(
      fc.property(host, fc.integer({ min: 0, max: 65535 }), (h, port) => {
        expect(parseHttpAddress(`${h}:${port}`)).toEqual({ host: h.replace(/^\[(.*)\]$/, '$1'), port });
        expect(parseHttpAddress(String(port))).toEqual({ host: '127.0.0.1', port });
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        try {
          const { port } = parseHttpAddress(text);
          expect(Number.isInteger(port) && port >= 0 && port <= 65535).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(UsageError);
        }
      }),
    );
  });

  it('the config keys http and httpTokenFile: typed, the token file relative to the config file', () => {
    expect(error({ ...base, http: 8787 })).toBe("s.json: http: must be '[HOST:]PORT' (e.g. '8787' or '127.0.0.1:8787') or null, got 8787");
    expect(error({ ...base, http: 'x:y' })).toMatch(/^s\.json: http: must be '\[HOST:\]PORT'/);
    const c = parseServeConfig({ ...base, http: '0.0.0.0:8443', httpTokenFile: 'dash.token' }, '/base');
    expect(c.server).toMatchObject({ http: '0.0.0.0:8443', httpTokenFile: '/base/dash.token' });
    expect(parseServeConfig(base, '/base').server).toMatchObject({ http: null, httpTokenFile: null });
  });
});
