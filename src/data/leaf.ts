/**
 * LEAF's JSON layout (Caldas et al. 2018): DIR/train/*.json and DIR/test/*.json, each file
 * `{users: [...], num_samples: [...], user_data: {USER: {x: [[...]], y: [...]}}}`, as written by
 * LEAF's preprocess.sh (e.g. leaf/data/femnist/data). Each user's samples are read into flat
 * typed arrays as soon as a file is parsed, so only one file's JSON is in memory at a time.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { excerpt } from '../errors.js';
import { DataError } from './errors.js';
import { formatBytes, readMaybeGzip } from './files.js';
import type { DataLimits } from './limits.js';
import { describeValue, parseJson } from './parse.js';

export interface LeafShape {
  /** values per sample x */
  features: number;
  /** labels are integers in 0..classes-1 */
  classes: number;
  /** inclusive bounds of every x value */
  min: number;
  max: number;
}

export interface LeafUser {
  id: string;
  /** samples x features, row-major, the values as in the JSON */
  x: Float32Array;
  y: Float32Array;
}

export interface LeafSplit {
  /** by user id, in increasing id order */
  users: LeafUser[];
  files: string[];
}

/** Reads DIR/train and DIR/test. A user must not appear twice within a split. */
export async function readLeafDir(dir: string, shape: LeafShape, limits: DataLimits): Promise<{ train: LeafSplit; test: LeafSplit }> {
  return { train: await readLeafSplit(join(dir, 'train'), shape, limits), test: await readLeafSplit(join(dir, 'test'), shape, limits) };
}

export async function readLeafSplit(dir: string, shape: LeafShape, limits: DataLimits): Promise<LeafSplit> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch {
    names = [];
  }
  if (names.length === 0) {
    throw new DataError(`${dir}: no .json files (expected LEAF's layout, DIR/train/*.json and DIR/test/*.json, as in leaf/data/femnist/data)`);
  }
  const byId = new Map<string, LeafUser>();
  const files = names.map((n) => join(dir, n));
  for (const file of files) {
    for (const user of readLeafFile(file, shape, limits)) {
      if (byId.has(user.id)) throw new DataError(`${file}: user ${excerpt(user.id)} also appears in an earlier file of ${dir}`);
      byId.set(user.id, user);
    }
  }
  const users = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { users, files };
}

/** Longest text V8 makes one string of (2^29 - 24 characters), rounded down: a JSON file is parsed in one piece. */
const MAX_JSON_BYTES = 2 ** 29 - 2 ** 20;

/** One LEAF JSON file's users, in the file's order (plain or gzip, at most limits.maxDecompressedMb). */
export function readLeafFile(file: string, shape: LeafShape, limits: DataLimits): LeafUser[] {
  const bytes = readMaybeGzip(file, limits);
  if (bytes.length > MAX_JSON_BYTES) throw new DataError(`${file}: ${formatBytes(bytes.length)} of JSON, more than the ${formatBytes(MAX_JSON_BYTES)} parsed in one piece; split the file`);
  const doc = parseJson(bytes.toString('utf8'), file, (m) => new DataError(m));
  const fail = (message: string): never => {
    throw new DataError(`${file}: ${message}`);
  };
  if (!isObject(doc) || !Array.isArray(doc.users) || !isObject(doc.user_data)) {
    return fail(`not a LEAF data file (expected an object with 'users' and 'user_data')`);
  }
  const counts = doc.num_samples;
  if (counts !== undefined && !(Array.isArray(counts) && counts.length === doc.users.length)) {
    fail(`'num_samples' must be an array as long as 'users' (${doc.users.length})`);
  }
  return doc.users.map((id: unknown, u: number) => {
    if (typeof id !== 'string') return fail(`users[${u}] is not a string`);
    const userData = doc.user_data as Record<string, unknown>;
    const data = Object.hasOwn(userData, id) ? userData[id] : undefined;
    const user = `user ${excerpt(id)}`;
    if (!isObject(data) || !Array.isArray(data.x) || !Array.isArray(data.y)) return fail(`${user}: no user_data entry with arrays x and y`);
    const n = data.y.length;
    if (data.x.length !== n) fail(`${user}: ${data.x.length} x but ${n} y`);
    if (Array.isArray(counts) && counts[u] !== n) fail(`${user}: num_samples says ${String(counts[u])} but there are ${n} samples`);
    const x = new Float32Array(n * shape.features);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const row = data.x[i];
      if (!Array.isArray(row) || row.length !== shape.features) {
        fail(`${user}: sample ${i}: x has ${Array.isArray(row) ? row.length : 'no'} values, expected ${shape.features}`);
      }
      for (let j = 0; j < shape.features; j++) {
        const v = row[j];
        if (!(typeof v === 'number' && v >= shape.min && v <= shape.max)) {
          fail(`${user}: sample ${i}: x[${j}] = ${describeValue(v)} is not a number in [${shape.min}, ${shape.max}]`);
        }
        x[i * shape.features + j] = v;
      }
      const label = data.y[i];
      if (!(Number.isInteger(label) && label >= 0 && label < shape.classes)) {
        fail(`${user}: sample ${i}: label ${describeValue(label)} is not an integer in 0..${shape.classes - 1}`);
      }
      y[i] = label;
    }
    return { id, x, y };
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
