import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Ledger } from '../core/ledger.js';
import { DataError } from '../data/errors.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import type { RoundRecord, SimState } from './simulate.js';
import { writeStateFile } from './state-file.js';

const dir = mkdtempSync(join(tmpdir(), 'checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const record = (round: number): RoundRecord => ({
  round, localSteps: 1, trainLoss: 1, testMetric: null, nnz: 2, sumHNorm: 0, hNormSum: 0,
  uplinkFloats: 0, uplinkBytes: 0, downlinkFloats: 0, downlinkBytes: 0, seconds: null,
});
const state = (): SimState => ({
  round: 1,
  current: new Float32Array([1, 2]),
  average: new Float32Array([3, 4]),
  evalModel: new Float32Array([5, 6]),
  h: [new Float32Array([7, 8]), null],
  ledger: new Ledger(2),
  records: [record(0), record(1)],
  seconds: 2.5,
});

describe('checkpoint files', () => {
  it('round-trips a state, and is no checkpoint for another configuration', () => {
    const path = join(dir, 'ok.bin');
    writeCheckpoint(path, 'run a', state());
    const back = readCheckpoint(path, 'run a')!;
    expect(back.h).toEqual([new Float32Array([7, 8]), null]);
    expect([back.current, back.average, back.evalModel]).toEqual([new Float32Array([1, 2]), new Float32Array([3, 4]), new Float32Array([5, 6])]);
    expect(back.records).toEqual(state().records);
    expect(back.ledger.toJSON()).toEqual(new Ledger(2).toJSON());
    expect(readCheckpoint(path, 'run b')).toBeNull();
    expect(readCheckpoint(join(dir, 'absent.bin'), 'run a')).toBeNull();
  });

  it('refuses a state file whose sections or records do not make a state, naming the file', () => {
    const path = join(dir, 'bad.bin');
    const header = { version: 1, config: 'run a', round: 1, seconds: 0, hasVector: [true, false], ledger: new Ledger(2).toJSON(), records: [record(0), record(1)] };
    const v = (n: number) => new Uint8Array(new Float32Array(n).buffer);
    writeStateFile(path, header, [v(2), v(2), v(2)]); // h_0 missing
    expect(() => readCheckpoint(path, 'run a')).toThrow(/bad\.bin: not a checkpoint of this run \(wrong number of sections\)/);
    writeStateFile(path, header, [v(2), v(3), v(2), v(2)]);
    expect(() => readCheckpoint(path, 'run a')).toThrow(/vectors of different lengths/);
    writeStateFile(path, { ...header, records: [record(0)] }, [v(2), v(2), v(2), v(2)]);
    expect(() => readCheckpoint(path, 'run a')).toThrow(/its records end at round 0, its state is after round 1/);
    writeStateFile(path, { ...header, ledger: { nClients: 0 } }, [v(2), v(2), v(2), v(2)]);
    expect(() => readCheckpoint(path, 'run a')).toThrow(DataError);
  });

  it('never accepts arbitrary bytes or a damaged checkpoint as a state (property)', () => {
    const path = join(dir, 'fuzz.bin');
    writeCheckpoint(path, 'run a', state());
    const good = readFileSync(path);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.uint8Array({ maxLength: 64 }), (at, flip, junk) => {
        const damaged = Buffer.from(good);
        damaged[at]! ^= flip;
        for (const bytes of [damaged, Buffer.from(junk)]) {
          writeFileSync(path, bytes);
          let out: unknown;
          try {
            out = readCheckpoint(path, 'run a');
          } catch (e) {
            expect(e).toBeInstanceOf(DataError);
            continue;
          }
          // a flipped byte the checks cannot see (one inside the JSON that keeps it valid) still gives a whole state, or none
          if (out !== null) expect((out as SimState).current).toHaveLength(2);
        }
      }),
      { numRuns: 200 },
    );
  });
});
