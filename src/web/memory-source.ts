/**
 * A DashboardSource kept in memory and changed by calling its methods; every change is announced to the
 * subscribers. The directory source fills one from files; a networked server can fill one from its round
 * loop (`serve --http`): putRun when the run starts, appendRounds after each round, setClients and
 * addLog as clients join, leave or are refused.
 */
import type { RoundRecord } from '../sim/simulate.js';
import type { ClientRow, DashboardEvent, DashboardSource, DashboardState, ExperimentData, GroupInfo, LogEntry, RunInfo } from './protocol.js';

/** The most log entries kept per run (the oldest are dropped): bounded memory for long runs. */
export const LOG_LIMIT = 1000;

export class MemorySource implements DashboardSource {
  private groups: GroupInfo[] = [];
  private readonly runs = new Map<string, RunInfo>();
  private readonly rounds = new Map<string, RoundRecord[]>();
  private readonly experiments = new Map<string, ExperimentData>();
  private readonly clientRows = new Map<string, ClientRow[]>();
  private readonly logs = new Map<string, LogEntry[]>();
  private readonly listeners = new Set<(e: DashboardEvent) => void>();

  state(): DashboardState {
    return { groups: this.groups, runs: [...this.runs.values()] };
  }

  records(runId: string): RoundRecord[] | undefined {
    return this.rounds.get(runId);
  }

  experiment(group: string): ExperimentData | undefined {
    return this.experiments.get(group);
  }

  clients(runId: string): ClientRow[] {
    return this.clientRows.get(runId) ?? [];
  }

  log(runId: string): LogEntry[] {
    return this.logs.get(runId) ?? [];
  }

  subscribe(listener: (e: DashboardEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.listeners.clear();
  }

  setGroups(groups: GroupInfo[]): void {
    if (JSON.stringify(groups) === JSON.stringify(this.groups)) return;
    this.groups = groups;
    this.emit({ type: 'groups', groups });
  }

  /** Adds or updates a run (announced only when something changed). */
  putRun(run: RunInfo): void {
    const old = this.runs.get(run.id);
    if (old && JSON.stringify(old) === JSON.stringify(run)) return;
    this.runs.set(run.id, run);
    if (!this.rounds.has(run.id)) this.rounds.set(run.id, []);
    this.emit({ type: 'run', run });
  }

  removeRun(runId: string): void {
    this.runs.delete(runId);
    this.rounds.delete(runId);
    this.clientRows.delete(runId);
    this.logs.delete(runId);
  }

  /** Appends records to a run's rounds; `reset` replaces them (a run rewritten from the start). */
  appendRounds(runId: string, records: RoundRecord[], reset = false): void {
    const list = reset ? [] : (this.rounds.get(runId) ?? []);
    const from = list.length;
    list.push(...records);
    this.rounds.set(runId, list);
    if (records.length > 0 || reset) this.emit({ type: 'rounds', runId, from, records });
  }

  setExperiment(data: ExperimentData): void {
    this.experiments.set(data.group, data);
    this.emit({ type: 'experiment', group: data.group });
  }

  setClients(runId: string, clients: ClientRow[]): void {
    this.clientRows.set(runId, clients);
    this.emit({ type: 'clients', runId, clients });
  }

  addLog(runId: string, entries: LogEntry[]): void {
    const list = [...this.log(runId), ...entries].slice(-LOG_LIMIT);
    this.logs.set(runId, list);
    this.emit({ type: 'log', runId, entries });
  }

  private emit(e: DashboardEvent): void {
    for (const l of this.listeners) l(e);
  }
}

/**
 * One live run in a MemorySource, for a round loop to report to (the hook for `serve --http`): a
 * group of its own, the run, then a call per round, per change of the clients and per event.
 */
export function trackRun(source: MemorySource, run: Omit<RunInfo, 'group' | 'roundsDone' | 'status'> & { title: string }) {
  const { title, ...rest } = run;
  let info: RunInfo = { ...rest, group: run.id, status: 'running', roundsDone: 0 };
  source.setGroups([...source.state().groups.filter((g) => g.id !== run.id), { id: run.id, title, kind: 'runs', where: run.where }]);
  source.putRun(info);
  return {
    round(record: RoundRecord): void {
      source.appendRounds(info.id, [record]);
      info = { ...info, roundsDone: record.round };
      source.putRun(info);
    },
    clients(rows: ClientRow[]): void {
      source.setClients(info.id, rows);
    },
    event(kind: LogEntry['kind'], message: string, time = new Date()): void {
      source.addLog(info.id, [{ time: time.toISOString(), kind, message }]);
    },
    /** what becomes known later (the test metric's name once the model is built) */
    set(patch: Partial<Pick<RunInfo, 'metricName' | 'rounds'>>): void {
      info = { ...info, ...patch };
      source.putRun(info);
    },
    finish(status: Exclude<RunInfo['status'], 'running'>, error?: string): void {
      info = { ...info, status, ...(error !== undefined && { error }) };
      source.putRun(info);
    },
  };
}
