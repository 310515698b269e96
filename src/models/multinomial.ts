/**
 * Multinomial logistic regression (softmax cross-entropy), labels in {0, ..., C−1}: loss
 * (1/m) Σ_r [logsumexp(s_r) − s_r[y_r]] + (l2/2)‖W‖² with s_r = Wᵀa_r + b, log-sum-exp shifted by the
 * row's largest score so no exponent overflows.
 */
import type { Link } from './glm.js';
import { softmaxLossSum } from './kernels/csr-simd.js';

export const softmaxCrossEntropy: Link = {
  // The Hessian of ℓ in the scores is diag(p) − ppᵀ ≼ ½·I (Böhning's bound is ½(I − 11ᵀ/C) ≼ ½·I),
  // hence the model's Hessian is ≼ ½·I ⊗ (1/m)ÃᵀÃ + l2·I.
  curvature: 0.5,

  // On the kernel threads in WebAssembly (kernels/softmax.ts): at FEMNIST size this loop costs
  // about a third of the products, and Math.exp cannot run off the calling thread.
  lossSum(S, y, rows, deriv, C) {
    const labels = new Int32Array(S.length / C);
    for (let i = 0; i < labels.length; i++) labels[i] = classLabel(y, rows === undefined ? i : rows[i]!, C);
    return softmaxLossSum(S, labels, C, deriv);
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
