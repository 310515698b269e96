import { keepCount, topk, topkIndices, TopkHint } from './topk.js';
import type { ParamLayout, Segment } from '../models/types.js';

/**
 * 'global': one K over all prunable parameters (the spec's default).
 * 'layer': each prunable segment keeps its own share, K_s = keepCount(size_s, sparsity).
 */
export type TopkScope = 'global' | 'layer';

/**
 * TopK restricted to the prunable segments of a layout; other entries pass through unchanged. A
 * pruner keeps the last threshold of each selection as a TopkHint: successive calls (every local
 * step) prune vectors that changed little, and the hint never changes a result.
 */
export interface Pruner {
  /** kept prunable entries (sum over segments for 'layer') */
  readonly k: number;
  /** prunable entries in the layout */
  readonly prunable: number;
  /** out = TopK(v) on the prunable part, v elsewhere. `out` may be `v`. */
  apply(v: Float32Array, out?: Float32Array): Float32Array;
  /**
   * Applies `f` to the prunable entries only (used for soft-thresholding): one call per prunable
   * segment, in ascending offset order, with the segment's view of v and its offset in v.
   */
  mapPrunable(v: Float32Array, f: (block: Float32Array, offset: number) => void): void;
}

export function makePruner(layout: ParamLayout, sparsity: number, scope: TopkScope = 'global'): Pruner {
  const prunableSegs = layout.segments.filter((s) => s.prunable);
  const prunable = prunableSegs.reduce((n, s) => n + s.size, 0);
  const mapPrunable = (v: Float32Array, f: (block: Float32Array, offset: number) => void): void => {
    for (const s of prunableSegs) f(v.subarray(s.offset, s.offset + s.size), s.offset);
  };
  if (prunable === 0) {
    return { k: 0, prunable, apply: (v, out = new Float32Array(v.length)) => copyInto(v, out), mapPrunable };
  }
  if (scope === 'layer') {
    const ks = prunableSegs.map((s) => keepCount(s.size, sparsity));
    const hints = prunableSegs.map(() => new TopkHint());
    return {
      k: ks.reduce((a, b) => a + b, 0),
      prunable,
      apply(v, out = new Float32Array(v.length)) {
        copyInto(v, out);
        prunableSegs.forEach((s, j) => {
          const seg = out.subarray(s.offset, s.offset + s.size);
          topk(seg, ks[j]!, seg, hints[j]);
        });
        return out;
      },
      mapPrunable,
    };
  }
  const k = keepCount(prunable, sparsity);
  const hint = new TopkHint();
  if (prunableSegs.length === 1) {
    const s = prunableSegs[0]!;
    return {
      k,
      prunable,
      apply(v, out = new Float32Array(v.length)) {
        copyInto(v, out);
        const seg = out.subarray(s.offset, s.offset + s.size);
        topk(seg, k, seg, hint);
        return out;
      },
      mapPrunable,
    };
  }
  // Several prunable segments share one K: gather them, select, scatter back.
  const scratch = new Float32Array(prunable);
  return {
    k,
    prunable,
    apply(v, out = new Float32Array(v.length)) {
      gather(v, prunableSegs, scratch);
      const keep = topkIndices(scratch, k, hint);
      copyInto(v, out);
      for (const s of prunableSegs) out.fill(0, s.offset, s.offset + s.size);
      scatterKept(scratch, keep, prunableSegs, out);
      return out;
    },
    mapPrunable,
  };
}

function copyInto(v: Float32Array, out: Float32Array): Float32Array {
  if (out !== v) out.set(v);
  return out;
}

function gather(v: Float32Array, segs: Segment[], into: Float32Array): void {
  let o = 0;
  for (const s of segs) {
    into.set(v.subarray(s.offset, s.offset + s.size), o);
    o += s.size;
  }
}

/** Writes scratch[keep] back to their positions in `out` (keep is ascending, so segments are walked once). */
function scatterKept(scratch: Float32Array, keep: Uint32Array, segs: Segment[], out: Float32Array): void {
  let seg = 0;
  let base = 0;
  for (let j = 0; j < keep.length; j++) {
    const g = keep[j]!;
    while (g >= base + segs[seg]!.size) base += segs[seg++]!.size;
    out[segs[seg]!.offset + g - base] = scratch[g]!;
  }
}
