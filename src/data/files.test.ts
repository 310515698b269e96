import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataError } from './errors.js';
import { LineSplitter } from './lines.js';

/** The non-empty lines of `text` with their 1-based numbers, as split('\n') gives them. */
function expected(text: string): [string, number][] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l, i): [string, number] => [l, i + 1]).filter(([l]) => l !== '');
}

/** The lines LineSplitter reports for `text` cut into chunks at `cuts`. */
function split(text: string, cuts: number[], max = 1e9): [string, number][] {
  const bytes = Buffer.from(text, 'latin1');
  const out: [string, number][] = [];
  const s = new LineSplitter<Buffer>('t', max, (buf, start, end, lineNo) => void out.push([buf.toString('latin1', start, end), lineNo]), (parts) => Buffer.concat(parts));
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    s.push(bytes.subarray(prev, c));
    prev = c;
  }
  s.end();
  return out;
}

const text = fc.string({ unit: fc.constantFrom('a', 'b', '\n', '\r', ' '), maxLength: 200 });

describe('LineSplitter', () => {
  it('gives the lines split("\\n") gives, numbered, wherever the chunks are cut', () => {
    expect(split('a\n\n\nbc\r\nd', [1, 2, 5])).toEqual([['a', 1], ['bc\r', 4], ['d', 5]]);
    fc.assert(
      fc.property(text, fc.array(fc.nat(), { maxLength: 10 }), (t, cuts) => {
        expect(split(t, cuts)).toEqual(expected(t));
      }),
      { numRuns: 500, seed: 1 },
    );
  });

  it('refuses exactly the lines longer than the limit, naming the line', () => {
    expect(split('abc\nabcd\n', [2], 4)).toEqual([['abc', 1], ['abcd', 2]]);
    expect(() => split('abc\nabcde\n', [6], 4)).toThrow(new DataError('t:2: line longer than 4 bytes, the limit (--max-line-bytes; is this a text file?)'));
    fc.assert(
      fc.property(text, fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 1, max: 20 }), (t, cuts, max) => {
        const longest = Math.max(0, ...t.split('\n').map((l) => l.length));
        if (longest > max) expect(() => split(t, cuts, max)).toThrow(DataError);
        else expect(split(t, cuts, max)).toEqual(expected(t));
      }),
      { numRuns: 500, seed: 2 },
    );
  });
});
