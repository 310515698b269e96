/**
 * Experiment files (experiments/*.json): a grid of methods × seeds × settings over a base RunConfig,
 * and what the report shows. Parsed and checked here; every error names the file and the field.
 * docs/experiments.md describes the format.
 */
import { excerpt, UsageError } from '../errors.js';
import { isAlgorithm, ALGORITHMS, type AlgorithmName } from '../algorithms/methods.js';
import { DEFAULTS, resolveConfig, type RunConfig } from '../sim/config.js';
import { parseDatasetSpec } from '../data/index.js';
import { describeValue as describe } from '../data/parse.js';
import { checkFields, object, readJsonFile, RUN_OPTION_TYPES, string, unknownKeys, type Fail } from '../sim/schema.js';

/** RunConfig fields an experiment may set (the algorithm and the seed come from methods and seeds). */
export type ConfigOverrides = Partial<Omit<RunConfig, 'algorithm' | 'seed'>>;

export interface MethodEntry {
  /** directory name and key in results */
  name: string;
  /** legend and table text */
  label: string;
  algorithm: AlgorithmName;
  config: ConfigOverrides;
  /** the settings this method runs in (null: all), e.g. a λ path whose training does not depend on the sparsity swept */
  settings: string[] | null;
}

export interface SettingEntry {
  name: string;
  label: string;
  config: ConfigOverrides;
}

export const PLOTS = ['loss-vs-uplink', 'metric-vs-uplink', 'sum-h-vs-rounds', 'sweep'] as const;
export type PlotKind = (typeof PLOTS)[number];

export interface ExperimentSpec {
  name: string;
  description: string;
  base: ConfigOverrides;
  methods: MethodEntry[];
  seeds: number[];
  settings: SettingEntry[];
  /** the numeric config field the settings vary (from `sweep`), plotted on the x-axis of the sweep plots */
  sweepField: keyof ConfigOverrides | null;
  /** uplinkScale 'log' spreads out methods whose uplink differs a hundredfold (the x = 0 start is then not drawn) */
  report: { uplink: 'floats' | 'MB'; uplinkScale: 'linear' | 'log'; plots: PlotKind[] };
  /** compute each setting's dense optimum f* and K-sparse reference (convex models; DIR/references.json) */
  reference: boolean;
}

/** One run of the grid. */
export interface Cell {
  /** SETTING/METHOD/seed-N, also its directory under DIR/cells */
  id: string;
  setting: SettingEntry;
  method: MethodEntry;
  seed: number;
  config: RunConfig;
}

const TOP_KEYS = ['name', 'description', 'base', 'methods', 'seeds', 'settings', 'sweep', 'report', 'reference'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
/** Cells (settings × seeds × methods) an experiment may have: each is a full run, so more is a mistake, and the count is checked before any list is built. */
export const MAX_CELLS = 10_000;

/** Reads and checks an experiment file. */
export function loadExperiment(path: string): ExperimentSpec {
  return parseExperiment(readJsonFile(path, 'experiment file'), path);
}

/** Checks a parsed experiment object; `source` prefixes every error message. */
export function parseExperiment(json: unknown, source = 'experiment'): ExperimentSpec {
  const fail = (field: string, msg: string): never => {
    throw new UsageError(`${source}: ${field ? `${field}: ` : ''}${msg}`);
  };
  const top = object(json, '(top level)', fail);
  unknownKeys(top, TOP_KEYS, '', fail);

  const name = top.name === undefined ? 'experiment' : string(top.name, 'name', fail);
  if (!NAME.test(name)) fail('name', `use letters, digits, '.', '_', '+' or '-', got '${excerpt(name)}'`);
  const description = top.description === undefined ? '' : string(top.description, 'description', fail);
  const base = overrides(top.base ?? {}, 'base', fail);

  if (!Array.isArray(top.methods) || top.methods.length === 0) fail('methods', 'must be a non-empty list of algorithm names or {algorithm, name?, label?, config?} objects');
  const methods = (top.methods as unknown[]).map((m, i) => method(m, `methods[${i}]`, fail));
  unique(methods.map((m) => m.name), 'methods', fail);

  const seeds = seedList(top.seeds, fail);

  if (top.settings !== undefined && top.sweep !== undefined) fail('sweep', "give either 'settings' or 'sweep', not both");
  let settings: SettingEntry[];
  let sweepField: ExperimentSpec['sweepField'] = null;
  if (top.sweep !== undefined) {
    const sw = sweep(top.sweep, fail);
    sweepField = sw.field;
    settings = sw.values.map((v, i) => ({ name: `${sw.field}-${v}`, label: `${sw.field} ${v}`, config: overrides({ [sw.field]: v }, `sweep.values[${i}]`, fail) }));
  } else if (top.settings !== undefined) {
    if (!Array.isArray(top.settings) || top.settings.length === 0) fail('settings', 'must be a non-empty list of {name, label?, config} objects');
    settings = (top.settings as unknown[]).map((s, i) => setting(s, `settings[${i}]`, fail));
  } else {
    settings = [{ name: 'default', label: 'default', config: {} }];
  }
  unique(settings.map((s) => s.name), 'settings', fail);
  methods.forEach((m, i) =>
    m.settings?.forEach((s, j) => {
      if (!settings.some((x) => x.name === s)) fail(`methods[${i}].settings[${j}]`, `no setting is named '${excerpt(s)}' (settings: ${settings.map((x) => x.name).join(', ')})`);
    }),
  );
  const cells = settings.length * seeds.length * methods.length;
  if (cells > MAX_CELLS) fail('', `${settings.length} settings × ${seeds.length} seeds × ${methods.length} methods = ${cells} cells, more than the ${MAX_CELLS} an experiment may have`);

  const report = reportOptions(top.report ?? {}, sweepField !== null, fail);
  if (top.reference !== undefined && typeof top.reference !== 'boolean') fail('reference', `must be true or false, got ${describe(top.reference)}`);
  const reference = top.reference === true;
  const spec: ExperimentSpec = { name, description, base, methods, seeds, settings, sweepField, report, reference };
  // Every cell must be a valid run: resolve them all now, so a typo fails before anything runs.
  expandCells(spec, {}, source);
  return spec;
}

/**
 * Every cell of the grid in the order settings × seeds × methods, each config the base, then the
 * setting's, then the method's fields, then `extra` (command-line options such as --workers).
 */
export function expandCells(spec: ExperimentSpec, extra: ConfigOverrides = {}, source = 'experiment'): Cell[] {
  const cells: Cell[] = [];
  for (const setting of spec.settings) {
    for (const seed of spec.seeds) {
      for (const method of spec.methods) {
        if (method.settings && !method.settings.includes(setting.name)) continue;
        const id = `${setting.name}/${method.name}/seed-${seed}`;
        let config: RunConfig;
        try {
          config = resolveConfig({ ...spec.base, ...setting.config, ...method.config, ...extra, algorithm: method.algorithm, seed });
          parseDatasetSpec(config.dataset);
        } catch (e) {
          throw new UsageError(`${source}: cell ${excerpt(id, 100)}: ${(e as Error).message}`);
        }
        cells.push({ id, setting, method, seed, config });
      }
    }
  }
  return cells;
}

function unique(names: string[], field: string, fail: Fail, twice = (n: string) => `name '${excerpt(n)}' is used twice (give each entry its own 'name')`): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) fail(field, twice(n));
    seen.add(n);
  }
}

function entryName(v: unknown, field: string, fail: Fail): string {
  const n = string(v, field, fail);
  if (!NAME.test(n)) fail(field, `use letters, digits, '.', '_', '+' or '-' (it names a directory), got '${excerpt(n)}'`);
  return n;
}

function method(v: unknown, field: string, fail: Fail): MethodEntry {
  if (typeof v === 'string') v = { algorithm: v };
  const o = object(v, field, fail);
  unknownKeys(o, ['algorithm', 'name', 'label', 'config', 'settings'], `${field}.`, fail);
  const algorithm = string(o.algorithm, `${field}.algorithm`, fail);
  if (!isAlgorithm(algorithm)) fail(`${field}.algorithm`, `unknown algorithm '${excerpt(algorithm)}' (choose from: ${ALGORITHMS.join(', ')})`);
  const name = o.name === undefined ? algorithm : entryName(o.name, `${field}.name`, fail);
  const label = o.label === undefined ? name : string(o.label, `${field}.label`, fail);
  let settings: string[] | null = null;
  if (o.settings !== undefined) {
    if (!Array.isArray(o.settings) || o.settings.length === 0) fail(`${field}.settings`, 'must be a non-empty list of setting names');
    settings = (o.settings as unknown[]).map((s, i) => string(s, `${field}.settings[${i}]`, fail));
  }
  return { name, label, algorithm: algorithm as AlgorithmName, config: overrides(o.config ?? {}, `${field}.config`, fail), settings };
}

function setting(v: unknown, field: string, fail: Fail): SettingEntry {
  const o = object(v, field, fail);
  unknownKeys(o, ['name', 'label', 'config'], `${field}.`, fail);
  const name = entryName(o.name, `${field}.name`, fail);
  const label = o.label === undefined ? name : string(o.label, `${field}.label`, fail);
  return { name, label, config: overrides(o.config ?? {}, `${field}.config`, fail) };
}

function seedList(v: unknown, fail: Fail): number[] {
  if (v === undefined) return [0, 1, 2];
  // a count n means seeds 0..n−1
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v > MAX_CELLS) fail('seeds', `${v} seeds make more than the ${MAX_CELLS} cells an experiment may have`);
    if (!Number.isInteger(v) || v < 1) fail('seeds', `must be a count >= 1 or a list of seeds, got ${describe(v)}`);
    return Array.from({ length: v }, (_, i) => i);
  }
  if (!Array.isArray(v) || v.length === 0) fail('seeds', `must be a count >= 1 or a non-empty list of seeds, got ${describe(v)}`);
  const seeds = (v as unknown[]).map((s, i) => {
    if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) fail(`seeds[${i}]`, `must be a non-negative integer, got ${describe(s)}`);
    return s as number;
  });
  unique(seeds.map(String), 'seeds', fail, (n) => `seed ${n} is listed twice`);
  return seeds;
}

function sweep(v: unknown, fail: Fail): { field: keyof ConfigOverrides; values: number[] } {
  const o = object(v, 'sweep', fail);
  unknownKeys(o, ['field', 'values'], 'sweep.', fail);
  const field = string(o.field, 'sweep.field', fail);
  // gamma and lambda default to 'auto' but take numbers
  if (!isOverrideKey(field) || (typeof DEFAULTS[field] !== 'number' && field !== 'gamma' && field !== 'lambda')) {
    fail('sweep.field', `must be a numeric run option (e.g. sparsity, p, rounds, gamma), got '${excerpt(field)}'`);
  }
  if (!Array.isArray(o.values) || o.values.length === 0) fail('sweep.values', 'must be a non-empty list of numbers');
  const values = (o.values as unknown[]).map((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x)) fail(`sweep.values[${i}]`, `must be a number, got ${describe(x)}`);
    return x as number;
  });
  unique(values.map(String), 'sweep.values', fail, (n) => `${n} is listed twice`);
  return { field: field as keyof ConfigOverrides, values };
}

function reportOptions(v: unknown, hasSweep: boolean, fail: Fail): ExperimentSpec['report'] {
  const o = object(v, 'report', fail);
  unknownKeys(o, ['uplink', 'uplinkScale', 'plots'], 'report.', fail);
  const uplink = o.uplink ?? 'floats';
  if (uplink !== 'floats' && uplink !== 'MB') fail('report.uplink', `must be 'floats' or 'MB', got ${describe(uplink)}`);
  const uplinkScale = o.uplinkScale ?? 'linear';
  if (uplinkScale !== 'linear' && uplinkScale !== 'log') fail('report.uplinkScale', `must be 'linear' or 'log', got ${describe(uplinkScale)}`);
  let plots: PlotKind[] = PLOTS.filter((p) => p !== 'sweep' || hasSweep);
  if (o.plots !== undefined) {
    if (!Array.isArray(o.plots)) fail('report.plots', `must be a list of: ${PLOTS.join(', ')}`);
    plots = (o.plots as unknown[]).map((p, i) => {
      if (typeof p !== 'string' || !(PLOTS as readonly string[]).includes(p)) fail(`report.plots[${i}]`, `must be one of ${PLOTS.join(', ')}, got ${describe(p)}`);
      if (p === 'sweep' && !hasSweep) fail(`report.plots[${i}]`, "'sweep' needs a top-level 'sweep'");
      return p as PlotKind;
    });
  }
  return { uplink: uplink as 'floats' | 'MB', uplinkScale: uplinkScale as 'linear' | 'log', plots };
}

function isOverrideKey(k: string): k is keyof ConfigOverrides {
  return Object.hasOwn(DEFAULTS, k) && k !== 'seed';
}

/** Run options: known names, and each value of its type (RUN_OPTION_TYPES; value ranges are checked by resolveConfig). */
function overrides(v: unknown, field: string, fail: Fail): ConfigOverrides {
  const o = object(v, field, fail);
  for (const k of Object.keys(o)) {
    const f = `${field}.${excerpt(k)}`;
    if (k === 'seed') fail(f, "set seeds with the top-level 'seeds' list");
    if (k === 'algorithm') fail(f, "set algorithms with the top-level 'methods' list");
    if (!isOverrideKey(k)) fail(f, `unknown run option (valid: ${Object.keys(DEFAULTS).filter((n) => n !== 'seed').join(', ')})`);
  }
  checkFields(o, RUN_OPTION_TYPES, `${field}.`, fail);
  return o as ConfigOverrides;
}
