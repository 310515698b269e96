/**
 * DIR/references.json: the reference optima of each setting of an experiment (src/sim/reference.ts),
 * computed once and kept, keyed by setting name. An entry is reused while the setting's problem (data,
 * model, sparsity, TopK scope) is the same.
 */
import { join } from 'node:path';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { initialParams, loadModel, MODEL_FILE, saveModel } from '../models/io.js';
import { createModel } from '../models/index.js';
import { writeJsonAtomic } from '../report/io.js';
import type { RunConfig } from '../sim/config.js';
import { prepareRun } from '../sim/run.js';
import { referenceOptima, type DenseOptimum, type Reference } from '../sim/reference.js';
import { cellDir, cellState } from './run.js';
import { expandCells, type Cell, type ExperimentSpec } from './spec.js';

export const REFERENCES_FILE = 'references.json';
/** DIR/references/SETTING-dense.safetensors and SETTING-ksparse.safetensors: the reference points */
export const REFERENCES_DIR = 'references';

/** One setting's entry: fStar (and fSparseRef) always; how they were found when `experiment` computed them. */
export type SettingReference = Pick<Reference, 'fStar'> & Partial<Omit<Reference, 'fStar'>> & {
  /** the problem it was computed for */
  key?: string;
};

export type References = Record<string, SettingReference>;

/** The fields of a run's config that define its optimisation problem. */
function problemKey(c: RunConfig): string {
  const { dataset, test, clients, partition, model, intercept, l2, sparsity, topkScope, maxSamples, seed } = c;
  return JSON.stringify({ dataset, test, clients, partition, model, intercept, l2, sparsity, topkScope, maxSamples, seed });
}

/** The dense problem: the same but for the sparsity and the TopK scope, so f* and x* are shared. */
function denseKey(c: RunConfig): string {
  const { sparsity: _s, topkScope: _t, ...rest } = JSON.parse(problemKey(c)) as Record<string, unknown>;
  return JSON.stringify(rest);
}

/** The final models of a setting's finished runs, as starts of the K-sparse search. */
function runEndpoints(cells: Cell[], out: string, spec: Parameters<typeof initialParams>[1]): { name: string; x: Float32Array }[] {
  return cells.flatMap((c) => {
    const path = join(cellDir(out, c), MODEL_FILE);
    if (cellState(out, c).kind !== 'done' || !existsSync(path)) return [];
    return [{ name: `TopK(final model of ${c.method.name}, seed ${c.seed})`, x: initialParams(loadModel(path), spec, path) }];
  });
}

/** The whole of DIR/references.json as `experiment` wrote it (absent or unreadable: none); report.ts's readReferences checks the plotted values. */
export function readReferenceFile(out: string): References {
  try {
    return JSON.parse(readFileSync(join(out, REFERENCES_FILE), 'utf8')) as References;
  } catch {
    return {};
  }
}

/**
 * Computes the missing references of every setting (the problem of its first cell; seeds change
 * nothing for the deterministic convex settings this is meant for) and writes them as they finish.
 * The K-sparse search also starts from the final models of the setting's finished runs.
 */
export async function ensureReferences(spec: ExperimentSpec, out: string, extra: Partial<RunConfig> = {}, log: (line: string) => void = () => {}): Promise<References> {
  const refs = readReferenceFile(out);
  const cells = expandCells(spec, extra);
  const denseOptima = new Map<string, DenseOptimum>();
  for (const setting of spec.settings) {
    const cell = cells.find((c) => c.setting === setting);
    if (!cell) continue;
    const key = problemKey(cell.config);
    if (refs[setting.name]?.key === key) continue;
    const prepared = await prepareRun({ ...cell.config, lambda: 0 });
    const model = createModel(prepared.modelSpec);
    log(`reference optima for ${setting.name}:`);
    const known = denseOptima.get(denseKey(cell.config));
    const { reference: r, points, dense } = referenceOptima(model, prepared.dataset.clients, {
      sparsity: cell.config.sparsity,
      topkScope: cell.config.topkScope,
      L: prepared.L,
      extraStarts: runEndpoints(cells.filter((c) => c.setting === setting), out, prepared.modelSpec),
      ...(known && { dense: known }),
      log: (l) => log(`  ${l}`),
    });
    denseOptima.set(denseKey(cell.config), dense);
    // the points as model files: `evaluate` scores them, `--init` starts a run from them (e.g. from the K-sparse reference)
    const meta = { dataset: cell.config.dataset, sparsity: String(cell.config.sparsity), k: String(r.sparse.k) };
    mkdirSync(join(out, REFERENCES_DIR), { recursive: true });
    saveModel(join(out, REFERENCES_DIR, `${setting.name}-dense.safetensors`), { spec: prepared.modelSpec, params: points.xStar, metadata: { ...meta, point: 'dense optimum x*' } });
    saveModel(join(out, REFERENCES_DIR, `${setting.name}-ksparse.safetensors`), { spec: prepared.modelSpec, params: points.xSparse, metadata: { ...meta, point: 'K-sparse reference' } });
    refs[setting.name] = { key, ...r };
    writeJsonAtomic(join(out, REFERENCES_FILE), refs);
  }
  return refs;
}
