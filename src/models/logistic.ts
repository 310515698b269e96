/**
 * Binary logistic regression, labels in {−1, +1}: loss (1/m) Σ_r log(1 + exp(−y_r s_r)) + (l2/2)‖w‖²
 * with s_r = a_rᵀw + c, evaluated without overflow for any score.
 */
import type { Link } from './glm.js';

export const logisticLoss: Link = {
  // ℓ''(s) = σ(s)σ(−s) ≤ 1/4.
  curvature: 0.25,

  lossSum(S, y, rows, deriv) {
    let sum = 0;
    for (let i = 0; i < S.length; i++) {
      const label = binaryLabel(y, rows === undefined ? i : rows[i]!);
      const margin = label * S[i]!;
      sum += softplus(-margin);
      // ∂ℓ/∂s = −y·σ(−y s) = −y / (1 + e^{y s}); e^{ys} overflowing to ∞ correctly gives 0.
      if (deriv) S[i] = -label / (1 + Math.exp(margin));
    }
    return sum;
  },

  /** Accuracy of sign(s), a score of exactly 0 predicting +1. */
  metric(S, y) {
    let correct = 0;
    for (let i = 0; i < S.length; i++) if ((S[i]! >= 0 ? 1 : -1) === binaryLabel(y, i)) correct++;
    return { name: 'accuracy', value: correct / S.length };
  },
};

/** log(1 + e^z) without overflow: max(z, 0) + log1p(e^{−|z|}). */
function softplus(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

function binaryLabel(y: Float32Array, r: number): number {
  const label = y[r]!;
  if (label !== 1 && label !== -1) throw new RangeError(`logistic: label ${label} of row ${r} is not -1 or +1`);
  return label;
}
