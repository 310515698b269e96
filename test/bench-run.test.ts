/** The benchmark runner's bookkeeping (bench/run.ts), without running any benchmark. */
import { describe, expect, it } from 'vitest';
import { BENCHES, combineRepeats, renderMarkdown, type Section } from '../bench/run.js';
import type { BenchResult } from '../bench/types.js';

const timed = (value: number, ref: number): BenchResult => ({
  name: 'op',
  value,
  unit: 'ms',
  reference: { name: 'numpy', value: ref, unit: 'ms' },
  target: '<= numpy',
  pass: value <= ref,
});

const section = (results: BenchResult[]): Section => ({
  date: '2026-01-01T00:00:00.000Z',
  machine: { cpu: 'Test CPU', cores: 2, memoryGiB: 4, os: 'Linux', node: 'v20.0.0', numpy: '2.0.0' },
  load: [0.1, 0.2],
  repeats: 1,
  results,
});

describe('combineRepeats', () => {
  it('takes medians of figures and references, and passes when most repeats did', () => {
    const [r] = combineRepeats([[timed(10, 20)], [timed(30, 20)], [timed(12, 25)]]);
    expect(r!.value).toBe(12);
    expect(r!.reference!.value).toBe(20);
    expect(r!.pass).toBe(true);
    expect(r!.note).toBe('target held in 2/3 repeats');
  });

  it('returns a single run as it is', () => {
    const run = [timed(1, 2)];
    expect(combineRepeats([run])).toBe(run);
  });
});

describe('renderMarkdown', () => {
  it('puts each figure beside its reference, ratio, target and verdict, with the machine', () => {
    const md = renderMarkdown({ benches: { topk: section([{ ...timed(50, 200), name: 'sort of |v|' }]) } });
    expect(md).toContain('## topk: ');
    expect(md).toContain('on Test CPU, 2 cores, 4 GiB, Linux; node v20.0.0, numpy 2.0.0');
    expect(md).toContain('| sort of \\|v\\| | 50.0 ms | 200 ms: numpy | 0.25x | <= numpy | pass |  |');
  });

  it('keeps sections of benchmarks the registry does not know, after the known ones', () => {
    const md = renderMarkdown({ benches: { network: section([timed(1, 1)]), round: section([timed(1, 1)]) } });
    expect(md.indexOf('## round')).toBeGreaterThan(0);
    expect(md.indexOf('## network: network')).toBeGreaterThan(md.indexOf('## round'));
  });

  it('has a unique name per registered benchmark', () => {
    expect(new Set(BENCHES.map((b) => b.name)).size).toBe(BENCHES.length);
  });
});
