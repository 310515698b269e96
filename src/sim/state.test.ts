import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../data/errors.js';
import { cli } from '../cli/testing.js';
import { directoryStateStore, memoryStateStore, readStateFile } from './state.js';

const dir = mkdtempSync(join(tmpdir(), 'state-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Values whose bits must survive: −0, a subnormal, NaN, ±Infinity, extremes. */
const awkward = Float32Array.from([-0, 1.401298464324817e-45, NaN, Infinity, -Infinity, 3.4028234663852886e38, -1.5, 0.1]);
const bits = (v: Float32Array): number[] => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

describe('memoryStateStore', () => {
  it('reads zeros until put, keeps what was put, forgets on delete', () => {
    const s = memoryStateStore(3, 2);
    expect([s.n, s.d, s.location]).toEqual([3, 2, 'memory']);
    expect(s.has(1)).toBe(false);
    expect(Array.from(s.get(1))).toEqual([0, 0]);
    const v = Float32Array.from([1, 2]);
    s.put(1, v);
    expect(s.has(1)).toBe(true);
    expect(s.get(1)).toBe(v); // no copy in memory
    s.delete(1);
    expect(s.has(1)).toBe(false);
    expect(() => s.put(3, v)).toThrow('client 3 out of range [0, 3)');
    expect(() => s.put(0, new Float32Array(3))).toThrow('state vector has 3 values, expected 2');
  });
});

describe('directoryStateStore', () => {
  it('round-trips every bit through one file per client, in a private folder it removes on close', () => {
    const s = directoryStateStore(join(dir, 'a'), 4, awkward.length);
    const t = directoryStateStore(join(dir, 'a'), 4, awkward.length); // a second run in the same folder
    expect(s.location).not.toBe(t.location);
    expect(s.location.startsWith(join(dir, 'a'))).toBe(true);
    expect(s.has(2)).toBe(false);
    expect(bits(s.get(2))).toEqual(new Array(awkward.length).fill(0));
    s.put(2, awkward);
    t.put(2, new Float32Array(awkward.length));
    const back = s.get(2);
    expect(back).not.toBe(awkward);
    expect(bits(back)).toEqual(bits(awkward));
    expect(readdirSync(s.location)).toEqual(['client-2.f32']); // no temp file left behind
    expect(readFileSync(join(s.location, 'client-2.f32')).length).toBe(16 + 4 * awkward.length);
    back[0] = 7; // changing a read copy changes nothing stored
    expect(bits(s.get(2))).toEqual(bits(awkward));
    s.delete(2);
    expect(s.has(2)).toBe(false);
    expect(readdirSync(s.location)).toEqual([]);
    s.close();
    t.close();
    expect(existsSync(s.location)).toBe(false);
    expect(readdirSync(join(dir, 'a'))).toEqual([]);
  });

  it('reports a truncated, altered or foreign state file in one line naming it', () => {
    const s = directoryStateStore(join(dir, 'b'), 1, 4);
    s.put(0, Float32Array.from([1, 2, 3, 4]));
    const path = join(s.location, 'client-0.f32');
    const good = readFileSync(path);
    truncateSync(path, good.length - 3);
    expect(() => s.get(0)).toThrow(DataError);
    expect(() => s.get(0)).toThrow(`client state ${path} is corrupt: 29 bytes, expected 32 (truncated?)`);
    const flipped = Buffer.from(good);
    flipped[20]! ^= 1;
    writeFileSync(path, flipped);
    expect(() => s.get(0)).toThrow(`client state ${path} is corrupt: checksum mismatch`);
    writeFileSync(path, 'hello, world: not a state file');
    expect(() => s.get(0)).toThrow('is corrupt: not a state file (bad header)');
    writeFileSync(path, good);
    expect(() => readStateFile(path, 5)).toThrow('is corrupt: holds 4 values, expected 5');
    rmSync(path);
    expect(() => s.get(0)).toThrow(`cannot read client state ${path}: ENOENT`);
    s.close();
  });

  it('says when the folder cannot be made', () => {
    const file = join(dir, 'plain-file');
    writeFileSync(file, '');
    expect(() => directoryStateStore(join(file, 'sub'), 1, 1)).toThrow(`cannot create a state directory in ${join(file, 'sub')}`);
  });
});


describe('--state-dir', () => {
  const common = ['--dataset', 'synthetic', '--clients', '6', '--rounds', '4', '--local-steps', '3', '--batch-size', '8', '--no-timing'];
  // worker threads are slow to start under vitest: two workers for two cases only
  it.each([
    ['proxskip', [], true], // shifted uplinks wait in the state files
    ['sparse-proxskip', ['--participation', '0.5'], true], // sparse uplinks in memory, h on disk, some clients idle
    ['fedavg', [], false], // no control variates: dense uplinks wait in the files
    ['randprox-l1', ['--h-reference', 'recentre'], false],
  ])('%s %j: the same rounds.jsonl as in memory (2 workers: %s), and no files left', async (algorithm, extra, twoWorkers) => {
    const out = (name: string) => join(dir, `${algorithm}-${extra.length}-${name}`);
    const state = join(dir, `state-${algorithm}-${extra.length}`);
    expect((await cli('run', '--algorithm', algorithm, ...common, ...extra, '--out', out('memory'))).code).toBe(0);
    expect((await cli('run', '--algorithm', algorithm, ...common, ...extra, '--out', out('disk'), '--state-dir', state)).code).toBe(0);
    const memory = readFileSync(join(out('memory'), 'rounds.jsonl'), 'utf8');
    expect(memory.trim().split('\n')).toHaveLength(5);
    expect(readFileSync(join(out('disk'), 'rounds.jsonl'), 'utf8')).toBe(memory);
    if (twoWorkers) {
      const args2 = ['--out', out('disk2'), '--state-dir', state, '--workers', '2'];
      expect((await cli('run', '--algorithm', algorithm, ...common, ...extra, ...args2)).code).toBe(0);
      expect(readFileSync(join(out('disk2'), 'rounds.jsonl'), 'utf8')).toBe(memory);
    }
    expect(readdirSync(state)).toEqual([]);
    const summary = JSON.parse(readFileSync(join(out('disk'), 'summary.json'), 'utf8'));
    expect(summary.config.stateDir).toBe(state);
  });

  it('is a one-line user error when it cannot be made', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    const r = await cli('run', '--algorithm', 'proxskip', ...common, '--out', join(dir, 'x'), '--state-dir', join(file, 'sub'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sparse-proxskip: error: cannot create a state directory in .*not-a-dir\/sub: /);
  });
});
