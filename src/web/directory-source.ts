/**
 * The dashboard's source for `sparse-proxskip view PATH...`: every run and experiment found below the
 * PATHs, kept up to date by polling (portable, unlike fs.watch, and bounded: one stat per run per poll).
 *
 * - A run is a directory with rounds.jsonl (or rounds.jsonl.gz). Its rounds are read as they are
 *   appended: only the new bytes, whole lines only, so a line being written is picked up next time. A
 *   file that shrank or was replaced (a new run in the same directory) is read again from the start.
 *   Runs are grouped by the directory above them (a `compare` output is one group; a PATH that is a run
 *   is a group of its own).
 * - An experiment is a directory with experiment.json and cells/ (its statistics are recomputed from the
 *   cells when they change, at most every `experimentMs`) or results.json (read as it is).
 *
 * Nothing is written; directories named node_modules or starting with '.' are skipped.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { collectResults, readReferences } from '../experiment/report.js';
import { readResults } from '../experiment/results-file.js';
import { cellDir } from '../experiment/run.js';
import { expandCells, parseExperiment, type Cell, type ExperimentSpec } from '../experiment/spec.js';
import { algorithmOf } from '../report/palette.js';
import type { RunFailure, RunSummary } from '../sim/run.js';
import type { RoundRecord } from '../sim/simulate.js';
import { MemorySource } from './memory-source.js';
import type { GroupInfo, RunInfo, RunStatus } from './protocol.js';

export interface DirectorySourceOptions {
  /** how often runs are polled for new rounds (ms) */
  pollMs?: number;
  /** how often the PATHs are scanned for new runs and experiments (ms) */
  scanMs?: number;
  /** least time between two recomputations of one experiment's statistics (ms) */
  experimentMs?: number;
  /** the most directories one scan visits */
  maxDirs?: number;
  /** a run without summary.json whose rounds.jsonl changed within this time is 'running' (ms) */
  liveMs?: number;
}

const DEFAULTS: Required<DirectorySourceOptions> = { pollMs: 500, scanMs: 2000, experimentMs: 2000, maxDirs: 20_000, liveMs: 60_000 };
const ROUNDS = 'rounds.jsonl';
const ROUNDS_GZ = 'rounds.jsonl.gz';

interface Tail {
  id: string;
  dir: string;
  group: string;
  label: string;
  where: string;
  /** bytes of rounds.jsonl consumed (up to the last newline) */
  offset: number;
  ino: number;
  /** signature of the files read last time: rounds size/mtime, summary and failed mtimes */
  seen: string;
}

interface ExperimentTrack {
  group: string;
  dir: string;
  /** experiment.json's mtime when spec was read */
  specAt: number;
  spec: ExperimentSpec | null;
  cells: Cell[];
  /** sizes and mtimes of the files the statistics were computed from */
  signature: string;
  computedAt: number;
}

export class DirectorySource extends MemorySource {
  private readonly opts: Required<DirectorySourceOptions>;
  private readonly roots: string[];
  private readonly tails = new Map<string, Tail>();
  private readonly experimentsByDir = new Map<string, ExperimentTrack>();
  private readonly ids = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private scanned: GroupInfo[] = [];
  private readonly groupErrors = new Map<string, string>();
  /** warnings for the user (e.g. a scan cut short), each once */
  readonly warnings: string[] = [];

  constructor(paths: string[], opts: DirectorySourceOptions = {}) {
    super();
    this.opts = { ...DEFAULTS, ...opts };
    this.roots = paths.map((p) => resolve(p));
    this.scan();
    this.poll();
    this.timers.push(setInterval(() => this.poll(), this.opts.pollMs), setInterval(() => this.scan(), this.opts.scanMs));
    for (const t of this.timers) t.unref();
  }

  override close(): void {
    for (const t of this.timers) clearInterval(t);
    super.close();
  }

  /** A short id per path, stable for the life of the source. */
  private idOf(prefix: string, path: string): string {
    let id = this.ids.get(path);
    if (id === undefined) {
      id = `${prefix}${this.ids.size + 1}`;
      this.ids.set(path, id);
    }
    return id;
  }

  private where(path: string): string {
    const root = this.roots.find((r) => path === r || path.startsWith(`${r}/`)) ?? dirname(path);
    const rel = relative(dirname(root), path);
    return rel === '' ? basename(path) : rel;
  }

  /** Finds the runs and experiments below the PATHs (new ones are added; vanished ones stay as they were). */
  scan(): void {
    const runDirs: string[] = [];
    const experimentDirs: string[] = [];
    let visited = 0;
    const walk = (dir: string): void => {
      if (++visited > this.opts.maxDirs) return;
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return; // vanished or unreadable: skipped
      }
      const names = new Set(entries.map((e) => e.name));
      if (names.has('experiment.json') && (names.has('cells') || names.has('results.json'))) {
        experimentDirs.push(dir);
        return;
      }
      if (names.has(ROUNDS) || names.has(ROUNDS_GZ)) {
        runDirs.push(dir);
        return;
      }
      for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules') walk(join(dir, e.name));
    };
    for (const root of this.roots) walk(root);
    if (visited > this.opts.maxDirs && this.warnings.length === 0) {
      this.warnings.push(`view: stopped scanning after ${this.opts.maxDirs} directories; name a narrower PATH to see the rest`);
    }

    const groups: GroupInfo[] = [];
    for (const dir of experimentDirs) {
      const id = this.idOf('g', dir);
      groups.push({ id, title: basename(dir), kind: 'experiment', where: this.where(dir) });
      if (!this.experimentsByDir.has(dir)) this.experimentsByDir.set(dir, { group: id, dir, specAt: -1, spec: null, cells: [], signature: '', computedAt: -Infinity });
    }
    // a PATH that is a run is its own group; other runs are grouped by their parent directory
    const groupDir = (run: string) => (this.roots.includes(run) ? run : dirname(run));
    for (const gdir of [...new Set(runDirs.map(groupDir))]) {
      groups.push({ id: this.idOf('g', `${gdir}\0runs`), title: basename(gdir), kind: 'runs', where: this.where(gdir) });
    }
    for (const dir of runDirs) {
      if (this.tails.has(dir)) continue;
      const gdir = groupDir(dir);
      this.tails.set(dir, {
        id: this.idOf('r', dir),
        dir,
        group: this.idOf('g', `${gdir}\0runs`),
        label: gdir === dir ? basename(dir) : relative(gdir, dir),
        where: this.where(dir),
        offset: 0,
        ino: -1,
        seen: '',
      });
    }
    this.scanned = groups;
    this.publishGroups();
  }

  /** Reads what changed in every run and experiment since the last poll. */
  poll(): void {
    for (const tail of this.tails.values()) this.pollRun(tail);
    for (const exp of this.experimentsByDir.values()) this.pollExperiment(exp);
  }

  private pollRun(t: Tail): void {
    const plain = join(t.dir, ROUNDS);
    const gz = join(t.dir, ROUNDS_GZ);
    const st = statOrNull(plain) ?? statOrNull(gz);
    const summaryAt = statOrNull(join(t.dir, 'summary.json'))?.mtimeMs ?? 0;
    const failedAt = statOrNull(join(t.dir, 'failed.json'))?.mtimeMs ?? 0;
    const seen = `${st?.ino}:${st?.size}:${st?.mtimeMs}:${summaryAt}:${failedAt}`;
    if (seen === t.seen) {
      this.refreshStatus(t, st); // a quiet run turns from running to stopped with time alone
      return;
    }
    t.seen = seen;
    if (st && existsSync(plain)) this.readAppended(t, plain, st);
    else if (st) this.readWhole(t, gz);
    this.refreshStatus(t, st);
  }

  private readAppended(t: Tail, path: string, st: Stats): void {
    const reset = st.ino !== t.ino || st.size < t.offset;
    if (reset) {
      t.offset = 0;
      t.ino = st.ino;
    }
    if (st.size === t.offset) {
      if (reset) this.appendRounds(t.id, [], true);
      return;
    }
    const fd = openSync(path, 'r');
    let bytes: Buffer;
    try {
      bytes = Buffer.alloc(st.size - t.offset);
      const n = readSync(fd, bytes, 0, bytes.length, t.offset);
      bytes = bytes.subarray(0, n);
    } finally {
      closeSync(fd);
    }
    const end = bytes.lastIndexOf(0x0a) + 1; // whole lines only: a line being written waits for the next poll
    t.offset += end;
    this.appendRounds(t.id, parseLines(bytes.subarray(0, end).toString('utf8')), reset);
  }

  private readWhole(t: Tail, path: string): void {
    let text = '';
    try {
      text = gunzipSync(readFileSync(path)).toString('utf8');
    } catch {
      // a half-written or corrupt archive: shown with no rounds until it is readable
    }
    this.appendRounds(t.id, parseLines(text), true);
  }

  private refreshStatus(t: Tail, st: Stats | null): void {
    const summary = readJson<RunSummary>(join(t.dir, 'summary.json'));
    const failure = summary ? null : readJson<RunFailure>(join(t.dir, 'failed.json'));
    const records = this.records(t.id) ?? [];
    const live = st !== null && Date.now() - st.mtimeMs < this.opts.liveMs;
    const status: RunStatus = summary ? (summary.interrupted ? 'interrupted' : 'done') : failure ? 'failed' : live ? 'running' : 'stopped';
    const config = summary?.config ?? failure?.config;
    const name = basename(t.dir);
    const algorithm = config?.algorithm ?? algorithmOf(name) ?? null;
    const run: RunInfo = {
      id: t.id,
      group: t.group,
      label: t.label,
      method: name,
      algorithm,
      status,
      rounds: config?.rounds ?? null,
      roundsDone: records.at(-1)?.round ?? 0,
      metricName: summary?.testMetricName ?? null,
      where: t.where,
      ...(failure && { error: failure.error }),
    };
    this.putRun(run);
  }

  private pollExperiment(e: ExperimentTrack): void {
    const specPath = join(e.dir, 'experiment.json');
    const specAt = statOrNull(specPath)?.mtimeMs ?? 0;
    if (specAt !== e.specAt) {
      e.specAt = specAt;
      try {
        e.spec = readExperimentSpec(specPath);
        e.cells = expandCells(e.spec);
        this.setGroupError(e.group, null);
      } catch (err) {
        e.spec = null;
        e.cells = [];
        this.setGroupError(e.group, (err as Error).message);
      }
    }
    const spec = e.spec;
    if (!spec) return;
    const fromCells = existsSync(join(e.dir, 'cells'));
    const files = fromCells ? e.cells.flatMap((c) => ['summary.json', 'failed.json', ROUNDS].map((f) => join(cellDir(e.dir, c), f))) : [join(e.dir, 'results.json')];
    files.push(join(e.dir, 'references.json'));
    const signature = files.map((f) => {
      const st = statOrNull(f);
      return st ? `${st.size}:${st.mtimeMs}` : '-';
    }).join('|');
    // unchanged, or changed too recently after the last computation (then it is picked up by a later poll)
    if (signature === e.signature || Date.now() - e.computedAt < this.opts.experimentMs) return;
    e.signature = signature;
    e.computedAt = Date.now();
    try {
      const results = fromCells ? collectResults(spec, e.dir) : readResults(readFileSync(join(e.dir, 'results.json'), 'utf8'));
      this.setExperiment({
        group: e.group,
        spec: { name: spec.name, methods: spec.methods, report: spec.report },
        results,
        references: readReferences(spec, e.dir) ?? {},
        finished: e.cells.length - results.missing.length - results.failed.length,
        cells: e.cells.length,
      });
      this.setGroupError(e.group, null);
    } catch (err) {
      this.setGroupError(e.group, (err as Error).message);
    }
  }

  /** An experiment that cannot be read is shown with its error instead of figures. */
  private setGroupError(group: string, error: string | null): void {
    if ((this.groupErrors.get(group) ?? null) === error) return;
    if (error === null) this.groupErrors.delete(group);
    else this.groupErrors.set(group, error);
    this.publishGroups();
  }

  private publishGroups(): void {
    this.setGroups(this.scanned.map((g) => {
      const error = this.groupErrors.get(g.id);
      return error === undefined ? g : { ...g, error };
    }));
  }
}

/**
 * An experiment directory's experiment.json: the parsed experiment as `experiment` saved it (it has
 * `sweepField`), or an experiment file in the input format.
 */
export function readExperimentSpec(path: string): ExperimentSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  if (typeof raw === 'object' && raw !== null && 'sweepField' in raw) return raw as ExperimentSpec;
  return parseExperiment(raw, path);
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null; // absent, or being replaced (written atomically, so only absent in practice)
  }
}

/** The records of whole JSON lines; a line that does not parse is left out (the file is someone else's to fix). */
function parseLines(text: string): RoundRecord[] {
  const out: RoundRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as RoundRecord);
    } catch {
      // skipped
    }
  }
  return out;
}
