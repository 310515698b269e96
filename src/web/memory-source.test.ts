import { describe, expect, it } from 'vitest';
import { LOG_LIMIT, MemorySource, trackRun } from './memory-source.js';
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

describe('trackRun', () => {
  it('puts a live run in a group of its own and reports its rounds, clients and events', () => {
    const s = new MemorySource();
    const events: DashboardEvent[] = [];
    s.subscribe((e) => events.push(e));
    const live = trackRun(s, { id: 'net', title: 'femnist over gRPC', label: 'sparse-proxskip', method: 'sparse-proxskip', algorithm: 'sparse-proxskip', rounds: 3, metricName: 'accuracy', where: '0.0.0.0:50051' });
    const r = { round: 1, localSteps: 10, trainLoss: 1, testMetric: 0.5, nnz: 3, sumHNorm: 0, hNormSum: 0, uplinkFloats: 9, uplinkBytes: 90, downlinkFloats: 9, downlinkBytes: 90, seconds: 1 };
    live.round(r);
    live.clients([{ id: 0, connected: true, address: '127.0.0.1:1', lastRound: 1, uplinkBytes: 90, downlinkBytes: 90, refusals: [], lastRoundTrip: 0.1 }]);
    live.event('join', 'client 0 joined', new Date(0));
    live.finish('done');
    expect(s.state().groups).toEqual([{ id: 'net', title: 'femnist over gRPC', kind: 'runs', where: '0.0.0.0:50051' }]);
    expect(s.state().runs[0]).toMatchObject({ status: 'done', roundsDone: 1, group: 'net' });
    expect(s.records('net')).toEqual([r]);
    expect(s.log('net')).toEqual([{ time: '1970-01-01T00:00:00.000Z', kind: 'join', message: 'client 0 joined' }]);
    expect(events.map((e) => e.type)).toEqual(['groups', 'run', 'rounds', 'run', 'clients', 'log', 'run']);
  });
});
