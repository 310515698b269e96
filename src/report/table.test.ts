import { describe, expect, it } from 'vitest';
import { formatNumber, formatTable, markdownTable } from './table.js';

describe('formatNumber', () => {
  it.each([
    [0.8123456, '0.8123'],
    [1.23e-7, '1.23e-7'],
    [12345, '12345'],
    [12.3456, '12.35'],
    [2, '2'],
    [0.5, '0.5'],
    [-0.001234567, '-0.001235'],
    [1234567, '1.235e6'],
    [0, '0'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Inf'],
    [Number.NEGATIVE_INFINITY, '-Inf'],
    [undefined, '—'],
  ])('%s -> %s', (x, expected) => {
    expect(formatNumber(x)).toBe(expected);
  });

  it('honours the digit count', () => {
    expect(formatNumber(Math.PI, 2)).toBe('3.1');
    expect(formatNumber(1 / 3, 6)).toBe('0.333333');
  });
});

describe('formatTable', () => {
  it('pads columns, right-aligns numbers and underlines the header', () => {
    const out = formatTable(
      ['method', 'loss', 'rounds'],
      [
        ['ProxSkip', 0.123456, 100],
        ['Sparse-ProxSkip', 1.5e-8, 20],
      ],
    );
    expect(out).toBe(
      [
        'method             loss  rounds',
        '---------------  ------  ------',
        'ProxSkip         0.1235     100',
        'Sparse-ProxSkip  1.5e-8      20',
        '',
      ].join('\n'),
    );
  });

  it('accepts explicit alignment and shows missing cells as a dash', () => {
    const out = formatTable(['a', 'b'], [['x', undefined], ['yy']], { align: ['right', 'left'] });
    expect(out).toBe([' a  b', '--  -', ' x  —', 'yy  —', ''].join('\n'));
  });
});

describe('markdownTable', () => {
  it('marks numeric columns right-aligned and escapes pipes', () => {
    const out = markdownTable(['name', 'acc'], [['a|b', 0.9], ['c', 0.85]]);
    expect(out).toBe(
      ['| name |  acc |', '| ---- | ---: |', '| a\\|b |  0.9 |', '| c    | 0.85 |', ''].join('\n'),
    );
  });
});
