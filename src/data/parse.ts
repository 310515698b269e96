/** A plain decimal number ('1', '-0.5', '.5', '2e-3'); no hex, Infinity or NaN. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The finite value of a plain decimal, or null. */
export function parseDecimal(text: string): number | null {
  if (!DECIMAL.test(text)) return null;
  const v = Number(text);
  return Number.isFinite(v) ? v : null;
}
