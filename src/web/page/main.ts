/**
 * The dashboard page: a list of groups (runs drawn together, experiments) on the left, the selected one
 * on the right with its table, its figures and, for networked runs, the clients and the event log. It
 * loads from the read-only API and follows the server's events (SSE), redrawing at most every
 * RENDER_DELAY_MS. The figures are the project's own (report/figures.ts, experiment/figures.ts) in the
 * palette's colours; a method's checkbox hides it in every figure.
 */
import { formatStat, type Stat } from '../../experiment/aggregate.js';
import { experimentFigures } from '../../experiment/figures.js';
import { metricLabel, runFigures, type LabelledRun } from '../../report/figures.js';
import { methodStyle } from '../../report/palette.js';
import { formatNumber } from '../../report/table.js';
import type { PlotSpec } from '../../report/vegalite.js';
import type { RoundRecord } from '../../sim/simulate.js';
import type { ClientRow, DashboardEvent, DashboardState, ExperimentData, GroupInfo, LogEntry, RunInfo, RunPayload } from '../protocol.js';
import { createChart, drawnLines, type Chart } from './chart.js';
import { el } from './dom.js';

const RENDER_DELAY_MS = 150;

interface Figure {
  id: string;
  plot: PlotSpec;
}

const app = {
  groups: [] as GroupInfo[],
  runs: new Map<string, RunInfo>(),
  records: new Map<string, RoundRecord[]>(),
  clients: new Map<string, ClientRow[]>(),
  logs: new Map<string, LogEntry[]>(),
  experiments: new Map<string, ExperimentData>(),
  selected: null as string | null,
  hidden: new Set<string>(),
  charts: new Map<string, Chart>(),
  renders: 0,
};

const nav = document.getElementById('groups')!;
const main = document.getElementById('main')!;
const connection = document.getElementById('connection')!;

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${(await res.text()).trim()}`);
  return (await res.json()) as T;
}

// ---- loading ----

async function loadState(): Promise<void> {
  const state = await getJson<DashboardState>('/api/state');
  app.groups = state.groups;
  app.runs = new Map(state.runs.map((r) => [r.id, r]));
  app.records.clear();
  app.experiments.clear();
  renderNav();
}

function runsOf(group: string): RunInfo[] {
  return [...app.runs.values()].filter((r) => r.group === group);
}

/** Fetches what the selected group needs and is not loaded yet. */
async function loadSelected(): Promise<void> {
  const g = app.groups.find((x) => x.id === app.selected);
  if (!g) return;
  if (g.kind === 'experiment') {
    if (!app.experiments.has(g.id)) {
      try {
        app.experiments.set(g.id, await getJson<ExperimentData>(`/api/experiments/${g.id}`));
      } catch {
        // not computed yet: its 'experiment' event will come
      }
    }
    return;
  }
  await Promise.all(
    runsOf(g.id)
      .filter((r) => !app.records.has(r.id))
      .map(async (r) => {
        const p = await getJson<RunPayload>(`/api/runs/${r.id}`);
        app.runs.set(r.id, p.run);
        app.records.set(r.id, p.records);
        app.clients.set(r.id, p.clients);
        app.logs.set(r.id, p.log);
      }),
  );
}

// ---- events ----

function onEvent(e: DashboardEvent): void {
  switch (e.type) {
    case 'groups':
      app.groups = e.groups;
      renderNav();
      if (app.selected === null || !app.groups.some((g) => g.id === app.selected)) select(app.groups[0]?.id ?? null);
      else schedule();
      return;
    case 'run':
      app.runs.set(e.run.id, e.run);
      if (e.run.group === app.selected) schedule();
      return;
    case 'rounds': {
      const list = app.records.get(e.runId);
      if (list === undefined) return; // not loaded: fetched whole when its group is shown
      if (e.from === 0) app.records.set(e.runId, [...e.records]);
      else if (e.from === list.length) list.push(...e.records);
      else app.records.delete(e.runId); // out of step: fetched again
      if (app.runs.get(e.runId)?.group === app.selected) schedule();
      return;
    }
    case 'experiment':
      app.experiments.delete(e.group);
      if (e.group === app.selected) schedule();
      return;
    case 'clients':
      app.clients.set(e.runId, e.clients);
      if (app.runs.get(e.runId)?.group === app.selected) schedule();
      return;
    case 'log':
      app.logs.set(e.runId, [...(app.logs.get(e.runId) ?? []), ...e.entries].slice(-1000));
      if (app.runs.get(e.runId)?.group === app.selected) schedule();
      return;
  }
}

function connect(): void {
  const source = new EventSource('/api/events');
  let lost = false;
  source.onopen = () => {
    connection.textContent = 'live';
    connection.className = 'connection live';
    // after a lost connection, events were missed: start again from the state
    if (lost) void loadState().then(() => schedule());
    lost = false;
  };
  source.onerror = () => {
    lost = true;
    connection.textContent = 'reconnecting…';
    connection.className = 'connection lost';
  };
  for (const type of ['groups', 'run', 'rounds', 'experiment', 'clients', 'log']) {
    source.addEventListener(type, (m) => onEvent(JSON.parse((m as MessageEvent<string>).data) as DashboardEvent));
  }
}

// ---- rendering ----

let timer: ReturnType<typeof setTimeout> | null = null;
let rendering: Promise<void> = Promise.resolve();

function schedule(): void {
  if (timer !== null) return;
  timer = setTimeout(() => {
    timer = null;
    rendering = rendering.then(render).catch((e: unknown) => showError(e));
  }, RENDER_DELAY_MS);
}

function select(id: string | null): void {
  if (id === app.selected) return;
  app.selected = id;
  if (id !== null && location.hash !== `#${id}`) history.replaceState(null, '', `#${id}`);
  for (const c of app.charts.values()) c.destroy();
  app.charts.clear();
  app.hidden.clear();
  main.replaceChildren();
  renderNav();
  schedule();
}

function renderNav(): void {
  const section = (title: string, groups: GroupInfo[]) =>
    groups.length === 0
      ? []
      : [
          el('h2', {}, title),
          ...groups.map((g) => {
            const b = el('button', { type: 'button', 'aria-current': String(g.id === app.selected), 'data-group': g.id }, g.title, el('small', {}, g.where));
            b.addEventListener('click', () => select(g.id));
            return b;
          }),
        ];
  nav.replaceChildren(
    ...section('Experiments', app.groups.filter((g) => g.kind === 'experiment')),
    ...section('Runs', app.groups.filter((g) => g.kind === 'runs')),
  );
  if (app.groups.length === 0) nav.append(el('p', { class: 'empty' }, '  no runs found (yet)'));
}

async function render(): Promise<void> {
  const g = app.groups.find((x) => x.id === app.selected);
  if (!g) {
    main.replaceChildren(el('p', { class: 'empty' }, 'No runs or experiments found below the given paths (yet).'));
    return;
  }
  await loadSelected();
  const head = [el('h2', {}, g.title), el('p', { class: 'where' }, g.where)];
  if (g.error) {
    main.replaceChildren(...head, el('p', { class: 'error' }, g.error));
    return;
  }
  const view = g.kind === 'experiment' ? experimentView(g) : runsView(g);
  const figures = view.sections.flatMap((s) => s.figures);
  dropChartsBut(new Set(figures.map((f) => f.id)));
  // rebuilt on every render; the charts' elements move into the new grids, drawn as they were
  main.replaceChildren(
    ...head,
    ...view.blocks,
    toggles(view.methods),
    ...view.sections.flatMap((s) => [...(s.title ? [el('h3', {}, s.title)] : []), ...s.blocks, el('div', { class: 'charts' }, ...s.figures.map((f) => chartFor(f.id).element))]),
  );
  const shown = (p: PlotSpec): PlotSpec => ({ ...p, series: p.series.filter((s) => !app.hidden.has(s.label)) });
  await Promise.all(figures.map((f) => chartFor(f.id).draw(shown(f.plot))));
  app.renders++;
}

interface ViewParts {
  blocks: Node[];
  methods: { label: string; method: string; algorithm?: string | undefined }[];
  /** a heading (or none), tables, then a grid of figures */
  sections: { title: string; blocks: Node[]; figures: Figure[] }[];
}

function runsView(g: GroupInfo): ViewParts {
  const runs = runsOf(g.id);
  const labelled: LabelledRun[] = runs.map((r) => ({ label: r.label, records: app.records.get(r.id) ?? [], method: r.method, ...(r.algorithm !== null ? { algorithm: r.algorithm } : {}) }));
  const metricName = runs.find((r) => r.metricName)?.metricName ?? null;
  const blocks: Node[] = [wrap(runTable(runs, metricName))];
  for (const r of runs) {
    const clients = app.clients.get(r.id) ?? [];
    const log = app.logs.get(r.id) ?? [];
    if (clients.length > 0) blocks.push(el('h3', {}, `${r.label}: clients`), wrap(clientTable(clients)));
    if (log.length > 0) blocks.push(el('h3', {}, `${r.label}: events`), el('div', { class: 'log' }, ...log.slice(-200).map((e) => el('div', {}, `${e.time}  ${e.kind.padEnd(8)} ${e.message}`))));
  }
  const figures = runFigures(labelled, metricName).map((f) => ({ id: f.id, plot: f.plot }));
  return { blocks, methods: runs.map((r) => ({ label: r.label, method: r.method, algorithm: r.algorithm ?? undefined })), sections: [{ title: '', blocks: [], figures }] };
}

function experimentView(g: GroupInfo): ViewParts {
  const data = app.experiments.get(g.id);
  if (!data) return { blocks: [el('p', { class: 'empty' }, 'Reading the experiment…')], methods: [], sections: [] };
  const { results } = data;
  const figures = experimentFigures(data.spec, results, data.references).flatMap((f) => {
    const id = (base: string) => base.replace(/^plots\//, '').replaceAll('/', '--');
    return [{ id: id(f.base), plot: f.plot, setting: f.setting }, ...(f.variant ? [{ id: id(`${f.base}${f.variant.suffix}`), plot: f.variant.plot, setting: f.setting }] : [])];
  });
  const sweep = figures.filter((f) => f.setting === '');
  return {
    blocks: [el('p', {}, `${data.finished} of ${data.cells} cells finished${results.failed.length > 0 ? `, ${results.failed.length} diverged` : ''}; mean ± standard error over the seeds.`)],
    methods: data.spec.methods.map((m) => ({ label: m.label, method: m.name, algorithm: m.algorithm })),
    sections: [
      ...(sweep.length > 0 ? [{ title: `Sweep over ${results.sweepField}`, blocks: [], figures: sweep }] : []),
      ...results.settings.map((s) => ({ title: s.label, blocks: [wrap(finalTable(s))], figures: figures.filter((f) => f.setting === s.name) })),
    ],
  };
}

/** A table in a box that scrolls sideways when the table is wider than the page. */
function wrap(table: HTMLElement): HTMLElement {
  return el('div', { class: 'table-wrap' }, table);
}

function swatch(method: string, algorithm?: string): HTMLElement {
  const s = el('span', { class: 'swatch' });
  const style = methodStyle(method, algorithm);
  s.style.borderTopColor = style.color;
  s.style.borderTopStyle = style.dash[1] === 0 ? 'solid' : 'dashed';
  return s;
}

function toggles(methods: ViewParts['methods']): Node {
  return el(
    'div',
    { class: 'toggles', role: 'group', 'aria-label': 'methods shown' },
    ...methods.map((m) => {
      const box = el('input', { type: 'checkbox', 'data-method': m.label });
      box.checked = !app.hidden.has(m.label);
      box.addEventListener('change', () => {
        if (box.checked) app.hidden.delete(m.label);
        else app.hidden.add(m.label);
        schedule();
      });
      return el('label', {}, box, ' ', swatch(m.method, m.algorithm), m.label);
    }),
  );
}

function chartFor(id: string): Chart {
  let c = app.charts.get(id);
  if (!c) {
    c = createChart(id);
    app.charts.set(id, c);
  }
  return c;
}

function dropChartsBut(keep: Set<string>): void {
  for (const [id, c] of app.charts) {
    if (keep.has(id)) continue;
    c.destroy();
    app.charts.delete(id);
  }
}

// ---- tables ----

const fmt = (x: number) => formatNumber(x);

function table(headers: string[], rows: (Node | string)[][]): HTMLElement {
  return el(
    'table',
    { class: 'data' },
    el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))),
  );
}

function runTable(runs: RunInfo[], metricName: 'r2' | 'accuracy' | null): HTMLElement {
  return table(
    ['run', 'status', 'round', 'ETA', 'train loss', metricName ? metricLabel(metricName) : 'test metric', 'nnz', 'uplink MB', '‖Σh‖'],
    runs.map((r) => {
      const recs = app.records.get(r.id) ?? [];
      const last = recs.at(-1);
      const evaluated = recs.findLast((x) => x.trainLoss !== null);
      const bar = el('span', { class: 'progress' }, el('span'));
      if (r.rounds) (bar.firstChild as HTMLElement).style.width = `${Math.min(100, (100 * r.roundsDone) / r.rounds)}%`;
      return [
        el('span', {}, swatch(r.method, r.algorithm ?? undefined), r.label),
        el('span', { class: `status-${r.status}`, title: r.error ?? '' }, r.status),
        el('span', {}, r.rounds ? bar : '', r.rounds ? `${r.roundsDone} of ${r.rounds}` : String(r.roundsDone)),
        eta(r, last),
        evaluated?.trainLoss != null ? fmt(evaluated.trainLoss) : '—',
        evaluated?.testMetric != null ? fmt(evaluated.testMetric) : '—',
        last ? String(last.nnz) : '—',
        last ? fmt(last.uplinkBytes / 1e6) : '—',
        last ? fmt(last.sumHNorm) : '—',
      ];
    }),
  );
}

/** Time left at the pace so far (`seconds` is cumulative), for a running run whose length is known. */
function eta(r: RunInfo, last: RoundRecord | undefined): string {
  if (r.status !== 'running' || !r.rounds || !last || last.seconds === null || last.round === 0) return '—';
  const left = ((r.rounds - last.round) * last.seconds) / last.round;
  return left < 90 ? `${Math.round(left)} s` : `${Math.round(left / 60)} min`;
}

function clientTable(clients: ClientRow[]): HTMLElement {
  return table(
    ['client', 'connected', 'address', 'last round', 'uplink bytes', 'downlink bytes', 'refusals', 'last round trip'],
    clients.map((c) => [
      String(c.id),
      c.connected ? 'yes' : 'no',
      c.address ?? '—',
      c.lastRound === null ? '—' : String(c.lastRound),
      String(c.uplinkBytes),
      String(c.downlinkBytes),
      c.refusals.map((x) => `${x.reason} ×${x.count}`).join(', ') || '—',
      c.lastRoundTrip === null ? '—' : `${fmt(c.lastRoundTrip)} s`,
    ]),
  );
}

function finalTable(s: ExperimentData['results']['settings'][number]): HTMLElement {
  const st = (x: Stat | null) => formatStat(x, fmt);
  return table(
    ['method', 'seeds', 'train loss', s.metricName ? metricLabel(s.metricName) : 'test metric', 'nnz / d', 'uplink floats', 'uplink MB', '‖Σh‖'],
    s.methods.map((m) => [
      el('span', {}, swatch(m.name, m.algorithm), m.label),
      `${m.seeds.length}${m.failed.length > 0 ? ` (${m.failed.length} diverged)` : ''}`,
      st(m.final.trainLoss),
      st(m.final.testMetric),
      m.final.nnz && m.d !== null ? `${st(m.final.nnz)} / ${m.d}` : '—',
      st(m.final.uplinkFloats),
      st(m.final.uplinkMB),
      st(m.final.sumHNorm),
    ]),
  );
}

function showError(e: unknown): void {
  main.append(el('p', { class: 'error' }, `error: ${(e as Error).message ?? String(e)}`));
}

// ---- start ----

/** For tests and the benchmark: what is drawn, and a way to wait until drawing is done. */
const testHooks = {
  selected: () => app.selected,
  renders: () => app.renders,
  charts: () => [...app.charts].map(([id, c]) => ({ id, ...(c.view() ? drawnLines(c.view()!) : { series: 0, points: 0 }) })),
  select: (id: string) => select(id),
  /** where the data point (x, y) of a chart is on the page, in CSS pixels */
  pixel: (id: string, x: number, y: number): { x: number; y: number } | null => {
    const c = app.charts.get(id);
    const view = c?.view();
    const canvas = c?.element.querySelector('canvas');
    if (!view || !canvas) return null;
    const box = canvas.getBoundingClientRect();
    const [ox, oy] = view.origin();
    return { x: box.left + ox + (view.scale('x') as (v: number) => number)(x), y: box.top + oy + (view.scale('y') as (v: number) => number)(y) };
  },
  /** the SVG of a chart, as its SVG button downloads it */
  svg: async (id: string): Promise<string | null> => (await app.charts.get(id)?.view()?.toSVG()) ?? null,
  /** resolves once nothing is scheduled or being drawn */
  idle: async (): Promise<void> => {
    for (;;) {
      const current = rendering;
      await current;
      if (timer === null && current === rendering) return;
      await new Promise((r) => setTimeout(r, RENDER_DELAY_MS));
    }
  },
};
(window as unknown as { __dashboard: typeof testHooks }).__dashboard = testHooks;

window.addEventListener('hashchange', () => select(location.hash.slice(1) || null));

async function start(): Promise<void> {
  try {
    await loadState();
  } catch (e) {
    main.replaceChildren(el('p', { class: 'error' }, `could not load the dashboard: ${(e as Error).message}`));
    return;
  }
  connect();
  const wanted = location.hash.slice(1);
  select(app.groups.some((g) => g.id === wanted) ? wanted : (app.groups[0]?.id ?? null));
  if (app.selected === null) schedule();
}

void start();
