/**
 * The safetensors format (huggingface/safetensors), float32 only: an 8-byte little-endian header length
 * N, N bytes of JSON, then the raw little-endian tensor data. The JSON maps each tensor name to
 * {dtype, shape, data_offsets: [begin, end]} (offsets into the data, which the tensors tile exactly) and
 * may hold "__metadata__", a map of strings. The header is padded with spaces so the data starts on an
 * 8-byte boundary, as the Python writer does.
 *
 * Reading treats the bytes as hostile: the header length is checked against a bound and the file size
 * before anything is read or allocated, every field is type-checked, and the tensors must tile the data
 * with no gap or overlap, so no read goes outside the file. Errors are DataErrors of one line.
 * No `node:` imports: the codec also runs in a browser.
 */
import { DataError } from '../data/errors.js';

/** The largest header read (a model's header is a few KB: one entry per tensor, plus the metadata). */
export const MAX_HEADER_BYTES = 4 * 1024 * 1024;
const PREFIX_BYTES = 8;
const METADATA_KEY = '__metadata__';
const ENTRY_KEYS = ['dtype', 'shape', 'data_offsets'];

export interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** One tensor as the header describes it; begin/end are byte offsets into the data section. */
export interface TensorEntry {
  name: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** in data order */
  tensors: TensorEntry[];
  metadata: Record<string, string>;
  /** byte offset of the data section in the file: 8 + header length */
  dataStart: number;
}

/** The file's bytes for these tensors (data in the order given) and metadata. */
export function encodeSafetensors(tensors: Tensor[], metadata: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === METADATA_KEY || Object.hasOwn(header, t.name)) throw new RangeError(`tensor name '${t.name}' is reserved or used twice`);
    if (product(t.shape) !== t.data.length) throw new RangeError(`tensor '${t.name}' has ${t.data.length} values, its shape [${t.shape.join(', ')}] needs ${product(t.shape)}`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.data.length] };
    offset += 4 * t.data.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw new RangeError(`the safetensors header would be ${padded} bytes, over the limit of ${MAX_HEADER_BYTES}`);
  if (padded > json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(PREFIX_BYTES + json.length + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length, true);
  view.setUint32(4, 0, true);
  out.set(json, PREFIX_BYTES);
  let at = PREFIX_BYTES + json.length;
  for (const t of tensors) {
    out.set(littleEndianBytes(t.data), at);
    at += 4 * t.data.length;
  }
  return out;
}

/** The header length from the first 8 bytes, checked against MAX_HEADER_BYTES and the file size. */
export function headerLength(prefix: Uint8Array, fileBytes: number): number {
  if (fileBytes < PREFIX_BYTES || prefix.length < PREFIX_BYTES) throw new DataError(`${fileBytes} bytes is too short for a safetensors file (8-byte header length first)`);
  const view = new DataView(prefix.buffer, prefix.byteOffset, PREFIX_BYTES);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const n = high * 2 ** 32 + low;
  if (high !== 0 || n > MAX_HEADER_BYTES) throw new DataError(`safetensors header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes (not a model file, or a corrupt one)`);
  if (n < 2) throw new DataError(`safetensors header length ${n} is too short for a JSON object`);
  if (PREFIX_BYTES + n > fileBytes) throw new DataError(`safetensors header length ${n} runs past the end of the file (${fileBytes} bytes)`);
  return n;
}

/**
 * Parses and checks the header (the N bytes after the prefix) of a file of `fileBytes` bytes: F32
 * tensors with non-negative integer shapes, whose byte ranges tile the data section exactly.
 */
export function parseHeader(headerBytes: Uint8Array, fileBytes: number): SafetensorsHeader {
  const dataStart = PREFIX_BYTES + headerBytes.length;
  const dataBytes = fileBytes - dataStart;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new DataError('safetensors header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw new DataError("safetensors header does not start with '{' (not a safetensors file)");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DataError(`safetensors header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new DataError('safetensors header is not a JSON object');
  let metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DataError('safetensors __metadata__ must be an object of strings');
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') throw new DataError(`safetensors __metadata__ ${quoted(k)} must be a string, got ${typeof s}`);
      }
      metadata = Object.fromEntries(Object.entries(v as Record<string, string>)); // own keys only, even '__proto__'
      continue;
    }
    tensors.push(tensorEntry(name, v, dataBytes));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const t of tensors) {
    if (t.begin !== at) throw new DataError(`tensor ${quoted(t.name)} starts at data byte ${t.begin}, expected ${at} (tensors must tile the data with no gap or overlap)`);
    at = t.end;
  }
  if (at !== dataBytes) throw new DataError(`the tensors cover ${at} data bytes, the file has ${dataBytes} after the header`);
  return { tensors, metadata, dataStart };
}

function tensorEntry(name: string, v: unknown, dataBytes: number): TensorEntry {
  const where = `tensor ${quoted(name)}`;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DataError(`${where}: expected {dtype, shape, data_offsets}`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!ENTRY_KEYS.includes(k)) throw new DataError(`${where}: unknown field ${quoted(k)}`);
  if (o.dtype !== 'F32') throw new DataError(`${where}: dtype ${shown(o.dtype)}, only F32 is supported`);
  const shape = o.shape;
  if (!Array.isArray(shape) || shape.length > 8 || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
    throw new DataError(`${where}: shape must be a list of at most 8 non-negative integers, got ${shown(shape)}`);
  }
  const off = o.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0)) {
    throw new DataError(`${where}: data_offsets must be [begin, end] of non-negative integers, got ${shown(off)}`);
  }
  const [begin, end] = off as [number, number];
  if (end < begin || end > dataBytes) throw new DataError(`${where}: data_offsets [${begin}, ${end}] are outside the ${dataBytes} data bytes`);
  const values = product(shape as number[]);
  if (end - begin !== 4 * values) throw new DataError(`${where}: data_offsets span ${end - begin} bytes, shape [${shape.join(', ')}] needs ${4 * values}`);
  return { name, shape: shape as number[], begin, end };
}

/** Parses a whole file held in memory: its header and every tensor (copied, so it owns its buffer). */
export function decodeSafetensors(bytes: Uint8Array): { header: SafetensorsHeader; tensors: Map<string, Tensor> } {
  const n = headerLength(bytes.subarray(0, PREFIX_BYTES), bytes.length);
  const header = parseHeader(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + n), bytes.length);
  const tensors = new Map<string, Tensor>();
  for (const t of header.tensors) {
    tensors.set(t.name, { name: t.name, shape: t.shape, data: fromLittleEndian(bytes.subarray(header.dataStart + t.begin, header.dataStart + t.end)) });
  }
  return { header, tensors };
}

/** Float32 values from little-endian bytes, bit for bit (NaN payloads included). */
export function fromLittleEndian(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return LITTLE_ENDIAN ? out : swapped(out);
}

function littleEndianBytes(v: Float32Array): Uint8Array {
  const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return LITTLE_ENDIAN ? bytes : new Uint8Array(swapped(v).buffer);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A copy with each value's 4 bytes reversed (big-endian hosts). */
function swapped(v: Float32Array): Float32Array {
  const src = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i += 4) for (let b = 0; b < 4; b++) out[i + b] = src[i + 3 - b]!;
  return new Float32Array(out.buffer);
}

/** A value from a file, for a one-line message: as JSON (control characters escaped), cut at 60 characters. */
export function shown(v: unknown): string {
  return cut(JSON.stringify(v) ?? String(v));
}

/** A name from a file in quotes, escaped and cut like `shown`. */
export function quoted(name: string): string {
  return `'${cut(JSON.stringify(name).slice(1, -1))}'`;
}

function cut(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
