import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JsonlWriter, readJsonl, toCsv, truncateJsonl, writeFileAtomic, writeJsonAtomic } from './io.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'report-io-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('creates parent directories and replaces the target, leaving no temp file', () => {
    const path = join(dir, 'a', 'b', 'out.txt');
    writeFileAtomic(path, 'first');
    writeFileAtomic(path, new Uint8Array([104, 105]));
    expect(readFileSync(path, 'utf8')).toBe('hi');
    expect(readdirSync(join(dir, 'a', 'b'))).toEqual(['out.txt']);
  });

  it('removes the temp file when the rename fails', () => {
    const target = join(dir, 'taken');
    writeFileSync(join(dir, 'x'), '');
    // Renaming a file over a non-empty directory fails.
    writeFileAtomic(join(target, 'inner'), 'x');
    expect(() => writeFileAtomic(target, 'data')).toThrow();
    expect(readdirSync(dir).sort()).toEqual(['taken', 'x']);
  });
});

describe('writeJsonAtomic', () => {
  it('writes pretty JSON with a trailing newline', () => {
    const path = join(dir, 'v.json');
    writeJsonAtomic(path, { a: 1, b: [2] });
    expect(readFileSync(path, 'utf8')).toBe('{\n  "a": 1,\n  "b": [\n    2\n  ]\n}\n');
  });
});

describe('JsonlWriter and readJsonl', () => {
  it('round-trips records', () => {
    const path = join(dir, 'log.jsonl');
    const w = new JsonlWriter(path, { fsync: true });
    w.write({ round: 0, loss: 0.5 });
    w.write({ round: 1, loss: 0.25 });
    w.close();
    expect(readJsonl(path)).toEqual({
      records: [
        { round: 0, loss: 0.5 },
        { round: 1, loss: 0.25 },
      ],
      truncatedTail: false,
    });
  });

  it('starts an empty file unless appending', () => {
    const path = join(dir, 'log.jsonl');
    writeFileSync(path, '{"old":true}\n');
    new JsonlWriter(path).close();
    expect(readFileSync(path, 'utf8')).toBe('');

    writeFileSync(path, '{"old":true}\n');
    const w = new JsonlWriter(path, { append: true });
    w.write({ new: true });
    w.close();
    expect(readJsonl(path).records).toEqual([{ old: true }, { new: true }]);
  });

  it('appends on a fresh line when the file lacks a final newline', () => {
    const path = join(dir, 'log.jsonl');
    writeFileSync(path, '{"a":1}');
    const w = new JsonlWriter(path, { append: true });
    w.write({ b: 2 });
    w.close();
    expect(readJsonl(path).records).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('refuses writes after close', () => {
    const w = new JsonlWriter(join(dir, 'log.jsonl'));
    w.close();
    expect(() => w.write({})).toThrow(/closed/);
  });

  it('drops and reports a truncated last line', () => {
    const path = join(dir, 'log.jsonl');
    writeFileSync(path, '{"a":1}\n{"b":2}\n{"c":');
    expect(readJsonl(path)).toEqual({ records: [{ a: 1 }, { b: 2 }], truncatedTail: true });
  });

  it('treats a corrupt last line followed by a newline as a truncated tail', () => {
    const path = join(dir, 'log.jsonl');
    writeFileSync(path, '{"a":1}\n{"b"\n\n');
    expect(readJsonl(path)).toEqual({ records: [{ a: 1 }], truncatedTail: true });
  });

  it('throws naming file and line for a corrupt line before the end', () => {
    const path = join(dir, 'log.jsonl');
    writeFileSync(path, '{"a":1}\nnot json\n{"c":3}\n');
    expect(() => readJsonl(path)).toThrow(`${path}:2:`);
  });

  it('reads an empty file as no records', () => {
    const path = join(dir, 'log.jsonl');
    writeFileSync(path, '');
    expect(readJsonl(path)).toEqual({ records: [], truncatedTail: false });
  });
});

describe('readJsonl of committed results', () => {
  it('reads PATH.gz when PATH is absent (rounds kept gzipped under docs/results)', () => {
    const path = join(dir, 'rounds.jsonl');
    writeFileSync(`${path}.gz`, gzipSync('{"round":0}\n{"round":1}\n'));
    expect(readJsonl(path).records).toEqual([{ round: 0 }, { round: 1 }]);
  });
});

describe('truncateJsonl', () => {
  it('keeps the first complete records and drops a damaged tail', () => {
    const path = join(dir, 'log.jsonl');
    writeFileSync(path, '{"r":0}\n{"r":1}\n{"r":2}\n');
    appendFileSync(path, '{"r":3');
    truncateJsonl(path, 2);
    expect(readFileSync(path, 'utf8')).toBe('{"r":0}\n{"r":1}\n');
    truncateJsonl(path, 5);
    expect(readJsonl(path).records).toEqual([{ r: 0 }, { r: 1 }]);
    truncateJsonl(path, 0);
    expect(readFileSync(path, 'utf8')).toBe('');
  });
});

describe('toCsv', () => {
  it('quotes per RFC 4180 and keeps full number precision', () => {
    const csv = toCsv([
      { name: 'plain', value: 0.1 + 0.2 },
      { name: 'a,b', value: 1e-300 },
      { name: 'say "hi"', value: -0 },
      { name: 'two\nlines', value: Number.NaN },
    ]);
    expect(csv).toBe(
      'name,value\r\nplain,0.30000000000000004\r\n"a,b",1e-300\r\n"say ""hi""",0\r\n"two\nlines",NaN\r\n',
    );
  });

  it('takes the union of keys in first-seen order, leaving missing fields empty', () => {
    const csv = toCsv([{ a: 1, b: 2 }, { c: 3, a: 4 }, { b: null }]);
    expect(csv).toBe('a,b,c\r\n1,2,\r\n4,,3\r\n,,\r\n');
  });

  it('uses the given columns and writes objects as JSON', () => {
    expect(toCsv([{ a: 1, b: { k: [1, 2] }, c: true }], ['c', 'b'])).toBe('c,b\r\ntrue,"{""k"":[1,2]}"\r\n');
  });
});
