/**
 * One style per method, keyed by name, for every figure of the project: the static plots (compare,
 * experiment reports, data describe) and the web dashboard. A method keeps its colour, dash pattern and
 * marker whichever methods share the figure and in whatever order they come.
 *
 * Each algorithm has its own colour (Okabe–Ito's colour-blind-safe set, with two additions), its own
 * dash pattern and its own marker, so curves that coincide stay apart: the dashes of the one on top let
 * the other show through, and their markers differ. A named variant of an algorithm (an experiment method
 * such as `proxskip-topk`) keeps its algorithm's hue in a darker or lighter shade with another dash
 * pattern, both picked by a hash of its name, so it is recognisably related and still distinct; the
 * variants of a sweep (names ending in a number, `randprox-l1-lambda-0.25`) by the number's octave, so
 * the points of a λ path never share a style.
 *
 * Runs in the browser too: imports nothing from `node:`.
 */
import type { AlgorithmName } from '../algorithms/methods.js';

export interface MethodStyle {
  /** CSS colour, #rrggbb */
  color: string;
  /** SVG stroke-dasharray; [1, 0] is a solid line */
  dash: number[];
  /** a Vega point shape: a named symbol or an SVG path in a unit square around 0 */
  shape: string;
}

const SOLID = [1, 0];
/** Vega has no 'x' symbol (its 'cross' is a plus); this is one, as an outline that can be filled. */
const X_SHAPE = 'M-1,-0.6L-0.6,-1L0,-0.4L0.6,-1L1,-0.6L0.4,0L1,0.6L0.6,1L0,0.4L-0.6,1L-1,0.6L-0.4,0Z';

/** Proposed methods in warm colours, the pruning baselines in blues and greens, the rest apart. */
export const ALGORITHM_STYLES: Readonly<Record<AlgorithmName, MethodStyle>> = {
  'sparse-proxskip': { color: '#d55e00', dash: SOLID, shape: 'circle' },
  'sparse-proxskip-local': { color: '#cc79a7', dash: [6, 4], shape: X_SHAPE },
  'sparse-proxskip-prox': { color: '#e69f00', dash: [12, 4], shape: 'triangle-up' },
  proxskip: { color: '#0072b2', dash: [8, 4], shape: 'square' },
  'server-pruning': { color: '#56b4e9', dash: [4, 3], shape: 'triangle-down' },
  'accelerated-server-pruning': { color: '#009e73', dash: [10, 3, 2, 3], shape: 'diamond' },
  'server-pruning-modified': { color: '#8c564b', dash: [6, 3, 2, 3, 2, 3], shape: 'triangle-left' },
  'randprox-l1': { color: '#999933', dash: [3, 2], shape: 'triangle-right' },
  fedavg: { color: '#555555', dash: [2, 3], shape: 'cross' },
};

/** Anything that is no method (a histogram's bars, a name no algorithm prefixes). */
export const NEUTRAL_COLOR = '#6b7b8c';

/** Dash patterns for named variants; a variant never gets its algorithm's own pattern. */
const VARIANT_DASHES = [[2, 2], [14, 3, 3, 3], [5, 2, 1, 2], [9, 5], [3, 5]];
/** Shades for named variants: negative mixes towards black, positive towards white. */
const VARIANT_SHADES = [-0.4, 0.35, -0.6];

/**
 * The style of the method `name`. `algorithm` says which algorithm a named variant runs; without it, the
 * longest algorithm name that `name` is or starts with (`proxskip-topk` → proxskip), else a neutral grey.
 */
export function methodStyle(name: string, algorithm?: string): MethodStyle {
  const algo = algorithm !== undefined && isKnown(algorithm) ? algorithm : algorithmOf(name);
  if (algo === undefined) {
    const h = hash(name);
    return { color: shade(NEUTRAL_COLOR, VARIANT_SHADES[h % VARIANT_SHADES.length]!), dash: VARIANT_DASHES[h % VARIANT_DASHES.length]!, shape: 'circle' };
  }
  const base = ALGORITHM_STYLES[algo];
  if (name === algo) return base;
  const dashes = VARIANT_DASHES.filter((d) => !sameDash(d, base.dash));
  const value = sweepValue(name);
  if (value !== null) {
    // a sweep (λ path, γ grid): by the value's octave, so values up to 12 octaves apart never share a style
    const k = Math.round(Math.log2(value));
    return {
      color: shade(base.color, SWEEP_SHADES[mod(k, SWEEP_SHADES.length)]!),
      dash: dashes[mod(Math.floor(k / SWEEP_SHADES.length), dashes.length)]!,
      shape: base.shape,
    };
  }
  const h = hash(name);
  return {
    color: shade(base.color, VARIANT_SHADES[h % VARIANT_SHADES.length]!),
    dash: dashes[Math.floor(h / VARIANT_SHADES.length) % dashes.length]!,
    shape: base.shape,
  };
}

/** Shades for the variants of a sweep, one per octave of its value, in a cycle of six. */
const SWEEP_SHADES = [-0.6, -0.4, -0.2, 0.15, 0.3, 0.45];

/** The positive number a variant's name ends in (`randprox-l1-lambda-0.25`, `…-lambda-1e-05`), else null. */
function sweepValue(name: string): number | null {
  const m = /-(\d+(?:\.\d+)?(?:e-?\d+)?)$/.exec(name);
  const v = m ? Number(m[1]) : NaN;
  return v > 0 && Number.isFinite(v) ? v : null;
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

/** The algorithm `name` is, or is a variant of (the longest match), if any. */
export function algorithmOf(name: string): AlgorithmName | undefined {
  let best: AlgorithmName | undefined;
  for (const a of Object.keys(ALGORITHM_STYLES) as AlgorithmName[]) {
    if ((name === a || name.startsWith(`${a}-`) || name.startsWith(`${a}+`)) && a.length > (best?.length ?? 0)) best = a;
  }
  return best;
}

function isKnown(name: string): name is AlgorithmName {
  return Object.hasOwn(ALGORITHM_STYLES, name);
}

function sameDash(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** FNV-1a, 32 bits: a stable, well-spread hash of a short name. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** `color` mixed towards black (t < 0) or white (t > 0) by |t|. */
export function shade(color: string, t: number): string {
  const target = t < 0 ? 0 : 255;
  const w = Math.abs(t);
  const channels = [1, 3, 5].map((i) => Number.parseInt(color.slice(i, i + 2), 16));
  return `#${channels.map((c) => Math.round(c + (target - c) * w).toString(16).padStart(2, '0')).join('')}`;
}
