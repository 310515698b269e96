import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toCsv } from './csv.js';

describe('toCsv', () => {
  it('writes one row per point, quoting what needs it', () => {
    const csv = toCsv({
      title: 't',
      xLabel: 'uplink, floats',
      yLabel: 'loss',
      series: [
        { label: 'a "b"', points: [{ x: 1, y: 2, lo: 1.5, hi: 2.5 }] },
        { label: 'c', points: [{ x: 3, y: 4 }] },
      ],
    });
    expect(csv).toBe('series,"uplink, floats",loss,lo,hi\n"a ""b""",1,2,1.5,2.5\nc,3,4,,\n');
  });

  it('keeps every label intact through a CSV reader (property)', () => {
    fc.assert(
      fc.property(fc.string(), (label) => {
        const row = toCsv({ title: '', xLabel: 'x', yLabel: 'y', series: [{ label, points: [{ x: 0, y: 0 }] }] }).slice('series,x,y,lo,hi\n'.length, -1);
        expect(parseFirstField(row)).toBe(label);
      }),
    );
  });
});

/** The first field of a CSV row (RFC 4180 quoting). */
function parseFirstField(row: string): string {
  if (!row.startsWith('"')) return row.slice(0, row.indexOf(','));
  let out = '';
  for (let i = 1; i < row.length; i++) {
    if (row[i] === '"' && row[i + 1] === '"') {
      out += '"';
      i++;
    } else if (row[i] === '"') return out;
    else out += row[i];
  }
  throw new Error('unterminated');
}
