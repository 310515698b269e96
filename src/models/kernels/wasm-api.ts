/**
 * What the kernels' loaders need of WebAssembly: the global object, typed here (the project's TypeScript libs
 * do not declare it), and the bytes of a module that scripts/build-wasm.mjs generated (base64).
 */
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => {
    buffer: ArrayBuffer;
    grow(pages: number): number;
  };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

export const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** A generated module's bytes from its base64 text (atob: in Node and in browsers alike). */
export function moduleBytes(base64: string): Uint8Array {
  return Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
}
