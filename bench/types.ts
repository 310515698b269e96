/** One measured figure, printed by `npm run bench` and written into docs/benchmarks.md. */
export interface BenchResult {
  /** what was measured, e.g. "TopK 11.17M floats, 10% kept" */
  name: string;
  value: number;
  unit: string;
  /** the same work done by a reference implementation in the same run, when there is one */
  reference?: { name: string; value: number; unit: string };
  /** the target the issue sets, in words, e.g. "<= 1x numpy" */
  target?: string;
  /** whether the target holds; undefined when there is no target */
  pass?: boolean;
  note?: string;
}
