/**
 * A minimal WebAssembly binary writer: just what the generated SIMD kernels use. The kernels are
 * emitted at run time (specialised to the class count) rather than shipped as a prebuilt binary,
 * so there is no toolchain to install and no artifact to keep in sync with its source.
 */

export const I32 = 0x7f;
export const F64 = 0x7c;
export const V128 = 0x7b;

/** Opcodes without immediates. */
export const Op = {
  select: 0x1b,
  i32LtU: 0x49,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Mul: 0x6c,
  f64Ne: 0x62,
  f64Add: 0xa0,
  f64Sub: 0xa1,
  f64Mul: 0xa2,
  f64Div: 0xa3,
  f64Max: 0xa5,
  f32DemoteF64: 0xb6,
  f64PromoteF32: 0xbb,
} as const;

/** SIMD opcodes (after the 0xfd prefix) without immediates. */
export const Simd = {
  f32x4Splat: 0x13,
  f64x2Splat: 0x14,
  f64x2Ne: 0x48,
  v128AnyTrue: 0x53,
  f32x4Add: 0xe4,
  f32x4Mul: 0xe6,
  f64x2Nearest: 0x94,
  i64x2ExtendLowI32x4S: 0xc7,
  i64x2Shl: 0xcb,
  i64x2Add: 0xce,
  f64x2Add: 0xf0,
  f64x2Sub: 0xf1,
  f64x2Mul: 0xf2,
  f64x2Max: 0xf5,
  i32x4TruncSatF64x2SZero: 0xfc,
} as const;

/** One function body under construction. Locals after the parameters are declared with `local`. */
export class FunctionBody {
  readonly bytes: number[] = [];
  private readonly localTypes: number[] = [];

  constructor(private readonly nParams: number) {}

  /** Declares a local of the given type and returns its index. */
  local(type: number): number {
    this.localTypes.push(type);
    return this.nParams + this.localTypes.length - 1;
  }

  op(...codes: number[]): this {
    this.bytes.push(...codes);
    return this;
  }

  simd(code: number): this {
    this.bytes.push(0xfd, ...uleb(code));
    return this;
  }

  get(index: number): this {
    return this.op(0x20, ...uleb(index));
  }

  set(index: number): this {
    return this.op(0x21, ...uleb(index));
  }

  i32(value: number): this {
    return this.op(0x41, ...sleb(value));
  }

  /** Loads or stores at the address on the stack plus a constant offset (natural alignment). */
  i32Load(offset = 0): this {
    return this.op(0x28, 2, ...uleb(offset));
  }

  f32Load(offset = 0): this {
    return this.op(0x2a, 2, ...uleb(offset));
  }

  i32Store(offset = 0): this {
    return this.op(0x36, 2, ...uleb(offset));
  }

  f32Store(offset = 0): this {
    return this.op(0x38, 2, ...uleb(offset));
  }

  f64Load(offset = 0): this {
    return this.op(0x2b, 3, ...uleb(offset));
  }

  f64Store(offset = 0): this {
    return this.op(0x39, 3, ...uleb(offset));
  }

  v128Load(offset = 0): this {
    return this.simd(0x00).op(4, ...uleb(offset));
  }

  v128Store(offset = 0): this {
    return this.simd(0x0b).op(4, ...uleb(offset));
  }

  v128Zero(): this {
    return this.simd(0x0c).op(...new Array<number>(16).fill(0));
  }

  /** v128.const holding `value` in both f64 lanes. */
  f64x2Const(value: number): this {
    return this.simd(0x0c).op(...new Uint8Array(new Float64Array([value, value]).buffer));
  }

  /** v128.const holding `value` in both i64 lanes. */
  i64x2Const(value: number): this {
    return this.simd(0x0c).op(...new Uint8Array(new BigInt64Array([BigInt(value), BigInt(value)]).buffer));
  }

  f64Const(value: number): this {
    return this.op(0x44, ...new Uint8Array(new Float64Array([value]).buffer));
  }

  /** f64x2.extract_lane */
  f64x2Lane(lane: number): this {
    return this.simd(0x21).op(lane);
  }

  call(funcIndex: number): this {
    return this.op(0x10, ...uleb(funcIndex));
  }

  /** local += step (i32) */
  increment(index: number, step: number): this {
    return this.get(index).i32(step).op(Op.i32Add).set(index);
  }

  /**
   * for (; counter < end; counter += step) body(): counter and end are i32 locals, compared unsigned.
   */
  loop(counter: number, end: number, step: number, body: () => void): this {
    this.op(0x02, 0x40); // block
    this.get(counter).get(end).op(Op.i32GeU, 0x0d, 0); // br_if 0: nothing to do
    this.op(0x03, 0x40); // loop
    body();
    this.increment(counter, step);
    this.get(counter).get(end).op(Op.i32LtU, 0x0d, 0, 0x0b, 0x0b); // br_if 0 (repeat); end; end
    return this;
  }

  /** if (condition on the stack) then() */
  when(then: () => void): this {
    this.op(0x04, 0x40);
    then();
    return this.op(0x0b);
  }

  /** condition on the stack ? then() : otherwise(), both leaving one value of type `result` */
  select(result: number, then: () => void, otherwise: () => void): this {
    this.op(0x04, result);
    then();
    this.op(0x05);
    otherwise();
    return this.op(0x0b);
  }

  encode(): number[] {
    const groups = this.localTypes.map((type) => [1, type]);
    const body = [...uleb(groups.length), ...groups.flat(), ...this.bytes, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

export interface ExportedFunction {
  name: string;
  params: number[];
  body: FunctionBody;
}

/** A module importing a shared env.memory (1 to maxPages pages) and exporting the given functions (no results). */
export function encodeModule(functions: ExportedFunction[], maxPages: number): Uint8Array {
  const types = vec(functions.map((f) => [0x60, ...vec(f.params.map((p) => [p])), 0]));
  const imports = vec([[...name('env'), ...name('memory'), 0x02, 0x03, ...uleb(1), ...uleb(maxPages)]]);
  const funcs = vec(functions.map((_, i) => uleb(i)));
  const exports = vec(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]));
  const code = vec(functions.map((f) => f.body.encode()));
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, types),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, code),
  ]);
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

export function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

export function sleb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}
