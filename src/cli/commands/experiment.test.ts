import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../testing.js';

const dir = mkdtempSync(join(tmpdir(), 'experiment-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('sparse-proxskip experiment', () => {
  const file = join(dir, 'tiny.json');
  writeFileSync(
    file,
    JSON.stringify({
      description: 'two methods, two seeds',
      base: { dataset: 'lsq', clients: 2, rounds: 2, timing: false },
      methods: ['proxskip', 'sparse-proxskip'],
      seeds: 2,
      report: { plots: ['loss-vs-uplink'] },
    }),
  );
  const out = join(dir, 'out');

  it('runs the grid, writes the report and says where', async () => {
    const r = await cli('experiment', file, '--out', out, '--workers', '1');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`experiment experiment: 4 cells, 0 finished or not selected, 4 to run -> ${out}`);
    expect(r.stdout).toBe(`report: ${join(out, 'report.md')}; tables: ${join(out, 'final.csv')}; plots: ${join(out, 'plots')}/\n`);
    expect(existsSync(join(out, 'plots/default/loss-vs-uplink.png'))).toBe(true);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('two methods, two seeds');
  });

  it('resumes with nothing to do, and --report-only runs nothing', async () => {
    const again = await cli('experiment', file, '--out', out);
    expect(again.stderr).toContain('4 cells, 4 finished or not selected, 0 to run');
    const report = await cli('experiment', file, '--out', out, '--report-only');
    expect(report.code).toBe(0);
    expect(report.stderr).toBe('');
  });

  it('--report-only after the experiment file changed rewrites experiment.json with the report', async () => {
    const edited = join(dir, 'edited.json');
    const spec = JSON.parse(readFileSync(file, 'utf8')) as { description: string };
    writeFileSync(edited, JSON.stringify({ ...spec, name: 'experiment', description: 'two methods, two seeds; cost measured' }));
    expect((await cli('experiment', edited, '--out', out, '--report-only')).code).toBe(0);
    expect((JSON.parse(readFileSync(join(out, 'experiment.json'), 'utf8')) as { description: string }).description).toBe('two methods, two seeds; cost measured');
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('two seeds; cost measured');
  });

  it('computes reference optima after the cells, but not with --report-only (it runs nothing)', async () => {
    const withRefs = join(dir, 'refs.json');
    writeFileSync(withRefs, JSON.stringify({ base: { dataset: 'lsq', clients: 2, rounds: 2, sparsity: 0.5, timing: false }, methods: ['sparse-proxskip'], reference: true }));
    const refsOut = join(dir, 'refs-out');
    expect((await cli('experiment', withRefs, '--out', refsOut)).code).toBe(0);
    const refs = JSON.parse(readFileSync(join(refsOut, 'references.json'), 'utf8')) as Record<string, { sparse: { starts: { name: string }[] } }>;
    // the K-sparse search also starts from the run's final model
    expect(Object.values(refs)[0]!.sparse.starts[0]!.name).toMatch(/^TopK\(final model of sparse-proxskip, seed 0\)/);
    rmSync(join(refsOut, 'references.json'));
    const report = await cli('experiment', withRefs, '--out', refsOut, '--report-only');
    expect(report.code).toBe(0);
    expect(report.stderr).toBe('');
    expect(existsSync(join(refsOut, 'references.json'))).toBe(false);
  });

  it('reports a bad file in one line with exit code 2', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ methods: ['proxskip'], seeds: [1, 1] }));
    const r = await cli('experiment', bad, '--out', join(dir, 'never'));
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`sparse-proxskip: error: ${bad}: seeds: seed 1 is listed twice\n`);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });
});
