import { describe, expect, it } from 'vitest';
import { LOG_LIMIT, MemorySource } from './memory-source.js';
import type { DashboardEvent, RunInfo } from './protocol.js';

const run: RunInfo = { id: 'r1', group: 'g', label: 'a', method: 'a', algorithm: null, status: 'running', rounds: null, roundsDone: 0, metricName: null, where: 'x' };

describe('MemorySource', () => {
  it('announces changes only, and keeps the newest LOG_LIMIT log entries', () => {
    const s = new MemorySource();
    const events: DashboardEvent[] = [];
    const off = s.subscribe((e) => events.push(e));
    s.putRun(run);
    s.putRun({ ...run });
    s.setGroups([]);
    expect(events.map((e) => e.type)).toEqual(['run']);
    s.addLog('r1', Array.from({ length: LOG_LIMIT + 5 }, (_, i) => ({ time: 't', kind: 'info' as const, message: String(i) })));
    expect(s.log('r1')).toHaveLength(LOG_LIMIT);
    expect(s.log('r1')[0]!.message).toBe('5');
    off();
    s.putRun({ ...run, roundsDone: 1 });
    expect(events).toHaveLength(2);
    expect(s.state().runs[0]!.roundsDone).toBe(1);
  });
});
