/**
 * The stop rule of converged runs: the train loss changed by at most `tol` (relative) over the last
 * 10% of rounds. Shared by the simulator (to stop) and the reports (to say whether a run converged).
 */

/** No run is judged converged before this round: a window of 10% of fewer rounds is noise. */
export const MIN_ROUNDS = 20;

interface Evaluated {
  round: number;
  trainLoss: number | null;
}

/**
 * Whether the loss at round r (the last record) is within tol of the loss at round r − ⌈r/10⌉ (or
 * the last evaluated round before it), relative to the loss at r. Records are in round order.
 */
export function hasConverged(records: readonly Evaluated[], tol: number): boolean {
  const last = records.at(-1);
  if (last === undefined || last.trainLoss === null || last.round < MIN_ROUNDS || !(tol > 0)) return false;
  const from = last.round - Math.ceil(last.round / 10);
  let start: Evaluated | undefined;
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    if (r.round <= from && r.trainLoss !== null) {
      start = r;
      break;
    }
  }
  if (start === undefined) return false;
  return Math.abs(start.trainLoss! - last.trainLoss) <= tol * Math.abs(last.trainLoss);
}
