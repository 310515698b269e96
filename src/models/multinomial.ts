/**
 * Multinomial logistic regression (softmax cross-entropy), labels in {0, ..., C−1}: loss
 * (1/m) Σ_r [logsumexp(s_r) − s_r[y_r]] + (l2/2)‖W‖² with s_r = Wᵀa_r + b, log-sum-exp shifted by the
 * row's largest score so no exponent overflows.
 */
import type { Link } from './glm.js';

export const softmaxCrossEntropy: Link = {
  // The Hessian of ℓ in the scores is diag(p) − ppᵀ ≼ ½·I (Böhning's bound is ½(I − 11ᵀ/C) ≼ ½·I),
  // hence the model's Hessian is ≼ ½·I ⊗ (1/m)ÃᵀÃ + l2·I.
  curvature: 0.5,

  lossSum(S, y, rows, deriv, C) {
    let sum = 0;
    for (let i = 0, off = 0; off < S.length; i++, off += C) {
      const label = classLabel(y, rows === undefined ? i : rows[i]!, C);
      const labelScore = S[off + label]!;
      let max = -Infinity;
      for (let c = 0; c < C; c++) max = Math.max(max, S[off + c]!);
      let z = 0;
      for (let c = 0; c < C; c++) {
        const e = Math.exp(S[off + c]! - max);
        z += e;
        if (deriv) S[off + c] = e;
      }
      sum += max + Math.log(z) - labelScore;
      if (!deriv) continue;
      // ∂ℓ/∂s = softmax(s) − e_y
      for (let c = 0; c < C; c++) S[off + c]! /= z;
      S[off + label]! -= 1;
    }
    return sum;
  },

  /** Accuracy of the argmax class, ties going to the lower class. */
  metric(S, y, C) {
    let correct = 0;
    for (let i = 0, off = 0; off < S.length; i++, off += C) {
      let best = 0;
      for (let c = 1; c < C; c++) if (S[off + c]! > S[off + best]!) best = c;
      if (best === classLabel(y, i, C)) correct++;
    }
    return { name: 'accuracy', value: correct / y.length };
  },
};

function classLabel(y: Float32Array, r: number, C: number): number {
  const label = y[r]!;
  if (!(Number.isInteger(label) && label >= 0 && label < C)) {
    throw new RangeError(`multinomial: label ${label} of row ${r} is not an integer in [0, ${C - 1}]`);
  }
  return label;
}
