/**
 * The fuzz harness: generated hostile inputs (random bytes, truncations, mutations of valid files,
 * huge numbers, deep JSON, long lines, control characters) and the one property every parser must
 * have: it returns a result, or throws a clean error (DataError or UsageError, one line, short), in
 * bounded time. `npm test` runs few cases with a fixed seed; `npm run fuzz` many with a fresh seed.
 */
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';

/** FUZZ_RUNS overrides every property's case count (the soak); FUZZ_SEED replays a failure fast-check reported. */
const RUNS = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : null;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : RUNS !== null ? Date.now() % 2 ** 31 : 10;

/** fast-check parameters: `runs` cases in `npm test`, FUZZ_RUNS in the soak. */
export function params(runs: number): fc.Parameters<unknown> {
  return { numRuns: RUNS ?? runs, seed: SEED, endOnFailure: true };
}

/** No parser call may take longer than this (the cases are kilobytes: this catches hangs and blow-ups, not speed). */
const CASE_MS = 5000;
/** A message quotes user text cut short (excerpt), so it stays short too. */
const MAX_MESSAGE = 2000;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Runs one parser call: its result, or null after a clean error; anything else fails the property. */
export async function clean<T>(call: () => T | Promise<T>): Promise<T | null> {
  const t0 = performance.now();
  let result: T | null = null;
  try {
    result = await call();
  } catch (e) {
    const err = e as Error;
    if (!(err instanceof Error) || !['DataError', 'UsageError'].includes(err.name)) {
      throw new Error(`not a clean error: ${String(err?.name)}: ${String(err?.message).slice(0, 500)}`, { cause: e });
    }
    if (CONTROL.test(err.message)) throw new Error(`a control character in the message: ${JSON.stringify(err.message.slice(0, 500))}`);
    if (err.message.length > MAX_MESSAGE) throw new Error(`a message of ${err.message.length} characters: ${err.message.slice(0, 300)}...`);
  }
  const ms = performance.now() - t0;
  if (ms > CASE_MS) throw new Error(`the call took ${Math.round(ms)} ms`);
  return result;
}

/** Tokens that break parsers: separators, control characters, numbers past every range, JSON structure. */
const NASTY = [
  '', ' ', '\t', '\n', '\r', '\r\n', '\0', '\u001b[2J', '\u2028', '\uFEFF', '\uFFFD', '\uD800', 'é', ',', ':', ';', '#', '"', "'", '\\',
  '-', '+', '.', 'e', 'E', '0', '-0', '1', '-1', '00', '1e999', '-1e999', '1e-400', 'NaN', 'Infinity', '0x10', '1_0',
  '2147483647', '2147483648', '4294967297', '9007199254740993', '99999999999999999999999999', '1'.repeat(400), '1:1', '0:1', 'qid:1',
  '[', ']', '{', '}', '[[[[[[[[[[[[[[[[[[[[', 'null', 'true', 'false', '"false"', '__proto__', 'constructor', 'x'.repeat(300),
];

export const nasty = fc.constantFrom(...NASTY);

type Edit = { at: number; kind: 'insert' | 'delete' | 'replace' | 'duplicate'; text: string };

const edit: fc.Arbitrary<Edit> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('insert', 'delete', 'replace', 'duplicate'),
  text: fc.oneof(nasty, fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 })),
});

function applyEdits(text: string, edits: Edit[]): string {
  let s = text;
  for (const e of edits) {
    const at = s.length === 0 ? 0 : e.at % (s.length + 1);
    const len = 1 + (e.at % 7);
    if (e.kind === 'insert') s = s.slice(0, at) + e.text + s.slice(at);
    else if (e.kind === 'delete') s = s.slice(0, at) + s.slice(at + len);
    else if (e.kind === 'replace') s = s.slice(0, at) + e.text + s.slice(at + len);
    else s = s.slice(0, at) + s.slice(at, at + len * 3) + s.slice(at);
  }
  return s;
}

/**
 * Text near a valid `sample`: the sample with a few edits, cut short, with a long line appended, or
 * unrelated random text.
 */
export function hostileText(sample: string): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.array(edit, { minLength: 1, maxLength: 6 }).map((edits) => applyEdits(sample, edits)) },
    { weight: 1, arbitrary: fc.nat(sample.length).map((n) => sample.slice(0, n)) },
    { weight: 1, arbitrary: fc.tuple(fc.nat(sample.length), fc.integer({ min: 100, max: 5000 })).map(([n, k]) => sample.slice(0, n) + '7'.repeat(k)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 300 }) },
  );
}

/** Bytes near a valid `sample`: byte edits, truncations, random bytes. */
export function hostileBytes(sample: Uint8Array): fc.Arbitrary<Uint8Array> {
  const flips = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }).map((changes) => {
    const b = Uint8Array.from(sample);
    for (const [at, v] of changes) if (b.length > 0) b[at % b.length] = v;
    return b;
  });
  return fc.oneof(
    { weight: 3, arbitrary: flips },
    { weight: 2, arbitrary: fc.nat(sample.length).map((n) => sample.slice(0, n)) },
    { weight: 1, arbitrary: fc.tuple(fc.nat(sample.length), fc.uint8Array({ maxLength: 64 })).map(([n, extra]) => concat(sample.slice(0, n), extra, sample.slice(n))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 4000 }) },
  );
}

/** How a file's bytes are stored: plain, gzip, gzip cut short, gzip with a flipped byte, or a gzip bomb (many members). */
export const storage = fc.oneof(
  fc.constant((b: Uint8Array): Uint8Array => b),
  fc.constant((b: Uint8Array): Uint8Array => gzipSync(b)),
  fc.nat().map((n) => (b: Uint8Array): Uint8Array => {
    const gz = gzipSync(b);
    return gz.subarray(0, n % gz.length);
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, v]) => (b: Uint8Array): Uint8Array => {
    const gz = Uint8Array.from(gzipSync(b));
    gz[at % gz.length] = v;
    return gz;
  }),
  fc.integer({ min: 2, max: 40 }).map((copies) => (b: Uint8Array): Uint8Array => {
    const member = gzipSync(concat(b, new Uint8Array(64 << 10)));
    return concat(...Array.from({ length: copies }, () => member));
  }),
);

/** JSON values that hurt: huge and non-finite numbers, strings that look like other types, deep nesting, long strings. */
export const nastyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    'false', 'true', '1', '', ' ', '\r', 'auto', 'null', 2147483648, 2 ** 53 + 2, 1e308, -1e308, Infinity, -Infinity, NaN, -0, 0, -1, 0.5,
    1e-320, null, true, false, [], {}, [1], { a: 1 }, 'x'.repeat(5000), '\u001b[2J\r',
  ),
  fc.integer({ min: 1, max: 20_000 }).map((depth) => JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown),
  fc.jsonValue({ maxDepth: 3 }),
);

/**
 * A JSON object near `sample`: some of its fields (at any depth) replaced by nasty values or
 * removed, or unknown fields added.
 */
export function hostileObject(sample: Record<string, unknown>): fc.Arbitrary<unknown> {
  const paths = fieldPaths(sample);
  const change = fc.record({ path: fc.constantFrom(...paths), value: nastyJson, kind: fc.constantFrom('set', 'delete', 'add') });
  return fc.oneof(
    { weight: 6, arbitrary: fc.array(change, { minLength: 1, maxLength: 3 }).map((changes) => {
      const copy = structuredClone(sample);
      for (const c of changes) mutate(copy, c.path, c.kind, c.value);
      return copy;
    }) },
    { weight: 1, arbitrary: nastyJson },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) },
  );
}

function fieldPaths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof v !== 'object' || v === null) return [prefix];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return [prefix, ...keys.flatMap((k) => fieldPaths((v as Record<string, unknown>)[k], [...prefix, k]))];
}

function mutate(root: unknown, path: (string | number)[], kind: string, value: unknown): void {
  if (path.length === 0) return;
  let node = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) {
    node = node[k] as Record<string | number, unknown>;
    if (typeof node !== 'object' || node === null) return; // an earlier change replaced a parent
  }
  const last = path[path.length - 1]!;
  // arrays change as JSON arrays can (no holes)
  if (kind === 'set') node[last] = value;
  else if (Array.isArray(node)) node.splice(Number(last), kind === 'delete' ? 1 : 0, ...(kind === 'delete' ? [] : [value]));
  else if (kind === 'delete') delete node[last];
  else node[`${String(last)}x`] = value;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}
