/**
 * What the dashboard's server and page exchange, and the live data source behind the server.
 *
 * A DashboardSource holds the runs it knows (each with its rounds so far), the experiments, and for
 * networked runs the clients and an event log; it announces every change as a DashboardEvent. The
 * server answers the page's requests from source.state() and forwards the events over Server-Sent
 * Events. `view` feeds it from directories (directory-source.ts); a networked server (`serve --http`)
 * can feed one from its round loop (memory-source.ts: call its methods as things happen).
 *
 * Types only, and shared with the page: imports nothing from `node:`.
 */
import type { ExperimentResults } from '../experiment/report.js';
import type { FigureOptions } from '../experiment/figures.js';
import type { Reference } from '../report/figures.js';
import type { RoundRecord } from '../sim/simulate.js';

export type RunStatus = 'running' | 'done' | 'interrupted' | 'failed' | 'stopped';

export interface RunInfo {
  /** stable id within one server (used in URLs) */
  id: string;
  /** the group the run is shown in */
  group: string;
  /** legend text */
  label: string;
  /** the palette key: the algorithm (or the method name) when known, else the label */
  method: string;
  algorithm: string | null;
  status: RunStatus;
  /** rounds planned, when known */
  rounds: number | null;
  /** rounds recorded so far (round 0, the initial model, not counted) */
  roundsDone: number;
  metricName: 'r2' | 'accuracy' | null;
  /** where it comes from, for the page to show (a path relative to the served PATH, or an address) */
  where: string;
  /** why it failed, from failed.json */
  error?: string;
}

export interface GroupInfo {
  id: string;
  title: string;
  /** 'runs': the runs are drawn together; 'experiment': the report's figures of an experiment */
  kind: 'runs' | 'experiment';
  where: string;
  /** why it cannot be shown (an experiment.json that does not load, say) */
  error?: string;
}

/** An experiment's figures and tables: what its report is drawn from. */
export interface ExperimentData {
  group: string;
  spec: FigureOptions;
  results: ExperimentResults;
  references: Record<string, Reference>;
  /** how many cells have a finished run, and how many the grid has */
  finished: number;
  cells: number;
}

/** A client of a networked run, as the per-client table shows it. */
export interface ClientRow {
  id: number;
  connected: boolean;
  address: string | null;
  lastRound: number | null;
  uplinkBytes: number;
  downlinkBytes: number;
  refusals: { reason: string; count: number }[];
  /** seconds, of the last round trip */
  lastRoundTrip: number | null;
}

export interface LogEntry {
  /** ISO time */
  time: string;
  kind: 'join' | 'leave' | 'refusal' | 'timeout' | 'resume' | 'info';
  message: string;
}

export interface DashboardState {
  groups: GroupInfo[];
  runs: RunInfo[];
}

export type DashboardEvent =
  | { type: 'groups'; groups: GroupInfo[] }
  | { type: 'run'; run: RunInfo }
  /** records appended to a run: `from` is the index of the first one in the run's list */
  | { type: 'rounds'; runId: string; from: number; records: RoundRecord[] }
  | { type: 'experiment'; group: string }
  | { type: 'clients'; runId: string; clients: ClientRow[] }
  | { type: 'log'; runId: string; entries: LogEntry[] };

export interface DashboardSource {
  state(): DashboardState;
  records(runId: string): RoundRecord[] | undefined;
  experiment(group: string): ExperimentData | undefined;
  clients(runId: string): ClientRow[];
  log(runId: string): LogEntry[];
  /** calls `listener` on every change from now on; returns the unsubscribe function */
  subscribe(listener: (e: DashboardEvent) => void): () => void;
  close(): void;
}

/** GET /api/runs/ID */
export interface RunPayload {
  run: RunInfo;
  records: RoundRecord[];
  clients: ClientRow[];
  log: LogEntry[];
}
