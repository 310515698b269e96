import { afterEach, describe, expect, it, vi } from 'vitest';
import { createProgress, statusText } from './progress.js';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('createProgress', () => {
  it('is a no-op when disabled', () => {
    const write = vi.spyOn(process.stderr, 'write');
    const p = createProgress({ total: 10, label: 'run', enabled: false });
    p.update(3, { loss: 0.5 });
    p.increment();
    p.stop();
    expect(write).not.toHaveBeenCalled();
    write.mockRestore();
  });

  it('is off by default under CI', () => {
    vi.stubEnv('CI', 'true');
    const write = vi.spyOn(process.stderr, 'write');
    const p = createProgress({ total: 10, label: 'run' });
    p.increment(2);
    p.stop();
    expect(write).not.toHaveBeenCalled();
    write.mockRestore();
  });

  it('does not throw when forced on without a terminal', () => {
    const p = createProgress({ total: 5, label: 'run', enabled: true });
    expect(() => {
      p.update(1, { phase: 'train' });
      p.increment(2, { loss: 0.25 });
      p.increment();
      p.stop();
    }).not.toThrow();
  });
});

describe('statusText', () => {
  it('formats numbers compactly and cuts long text', () => {
    expect(statusText({ loss: 0.012345678, phase: 'eval' })).toBe('loss=0.01235 phase=eval');
    const long = statusText({ note: 'x'.repeat(100) });
    expect(long).toHaveLength(60);
    expect(long.endsWith('…')).toBe(true);
  });
});
