/**
 * Bundles the dashboard page (src/web/page) with esbuild into one script, app.js, beside index.html and
 * style.css (and the browser client's page, its worker and the wasm backend's binaries): everything the page needs (vega, vega-lite, vega-embed, the project's figure code) is in
 * it, so the page works offline and loads nothing from other origins. `npm run build` runs this after
 * tsc (`node dist/web/build.js`, into dist/web/page); tests call buildPage into a directory of their own.
 * esbuild is a devDependency: only building needs it.
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Plugin } from 'esbuild';

/** The repository root, from src/web or dist/web alike. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGE = join(ROOT, 'src/web/page');
export const STATIC_FILES = ['index.html', 'style.css', 'client.html'];

export interface BuiltPage {
  dir: string;
  /** bytes of app.js, minified */
  scriptBytes: number;
  /** the browser client's scripts for a convex model: client.js, client-worker.js and the chunks it imports at once (minified) */
  clientFiles: string[];
  /** what a network adds: the worker's chunks loaded for one (TensorFlow.js, the model) and the wasm backend's binary (SIMD) */
  networkFiles: string[];
}

/** Bytes of `files` in `dir`. */
export function bytesOf(dir: string, files: string[]): number {
  return files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

/** The TensorFlow.js wasm backend's binaries that `serve --http` serves to the browser client: with SIMD, and without for browsers that lack it. */
const WASM_FILES = ['tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm.wasm'];
/** The backend's dist folder (where its main module is), wherever npm put the package. */
const WASM_DIR = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));

/**
 * The kernels' helper threads (src/models/kernels/threads.ts) are Node's worker_threads; in the browser
 * client's Web Worker the kernels run on that worker's own thread (bit-identical for any thread count),
 * so its bundle gets these stand-ins for the two Node modules threads.ts imports (and for node:v8, below).
 */
const STANDINS: Record<string, string> = {
  'node:os': 'export const availableParallelism = () => 1;',
  'node:worker_threads':
    "export const isMainThread = false; export const MessageChannel = globalThis.MessageChannel; export class Worker { constructor() { throw new Error('no helper threads here'); } }",
  // the convolution kernels turn on relaxed SIMD in Node 20's V8 (src/models/nn/conv.ts); browsers that have it have it on
  'node:v8': 'export const setFlagsFromString = () => {};',
};
const NODE_STANDINS: Plugin = {
  name: 'node-standins',
  setup(b) {
    b.onResolve({ filter: /^node:(os|worker_threads|v8)$/ }, (a) => ({ path: a.path, namespace: 'standin' }));
    b.onLoad({ filter: /.*/, namespace: 'standin' }, (a) => ({ contents: STANDINS[a.path]!, loader: 'js' }));
  },
};

/**
 * backend.ts imports the union package `@tensorflow/tfjs` for the gradient functions its Node build
 * registers; in a browser tfjs-core's own modules register them, without the union package's layers,
 * converter and WebGL backend (over a megabyte the client never runs).
 */
const TFJS_STANDIN: Plugin = {
  name: 'tfjs-standin',
  setup(b) {
    b.onResolve({ filter: /^@tensorflow\/tfjs$/ }, (a) => ({ path: a.path, namespace: 'tfjs-standin' }));
    b.onLoad({ filter: /.*/, namespace: 'tfjs-standin' }, () => ({
      contents: "import '@tensorflow/tfjs-core/dist/register_all_gradients'; import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';",
      resolveDir: ROOT,
      loader: 'js',
    }));
  },
};

export async function buildPage(outDir: string): Promise<BuiltPage> {
  mkdirSync(outDir, { recursive: true });
  // chunks of an earlier build (named by their hash) would still be served
  for (const f of readdirSync(outDir)) if (f.startsWith('client-chunk-')) rmSync(join(outDir, f));
  const script = join(outDir, 'app.js');
  const common: BuildOptions = {
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    // the licences of the bundled libraries, in a file beside the script
    legalComments: 'linked',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  };
  const [, , worker] = await Promise.all([
    build({ ...common, entryPoints: [join(PAGE, 'main.ts')], outfile: script }),
    // the browser client: its page, and the Web Worker that trains
    build({ ...common, entryPoints: [join(PAGE, 'client.ts')], outfile: join(outDir, 'client.js') }),
    // split: the networks' code (TensorFlow.js) is a chunk of its own, loaded only by a run with a network
    build({ ...common, entryPoints: [join(PAGE, 'client-worker.ts')], outdir: outDir, splitting: true, chunkNames: 'client-chunk-[hash]', metafile: true, plugins: [NODE_STANDINS, TFJS_STANDIN] }),
  ]);
  for (const f of STATIC_FILES) copyFileSync(join(PAGE, f), join(outDir, f));
  for (const f of WASM_FILES) copyFileSync(join(WASM_DIR, f), join(outDir, f));
  // what the worker loads at once (its static imports), and what only a network loads
  const outputs = worker.metafile!.outputs;
  const eager = new Set<string>();
  const visit = (file: string): void => {
    if (eager.has(file)) return;
    eager.add(file);
    for (const i of outputs[file]!.imports) if (i.kind === 'import-statement') visit(i.path);
  };
  visit(Object.keys(outputs).find((f) => basename(f) === 'client-worker.js')!);
  const js = Object.keys(outputs).filter((f) => f.endsWith('.js'));
  return {
    dir: outDir,
    scriptBytes: statSync(script).size,
    clientFiles: ['client.js', ...[...eager].map((f) => basename(f))],
    networkFiles: [...js.filter((f) => !eager.has(f)).map((f) => basename(f)), WASM_FILES[0]!],
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? join(ROOT, 'dist/web/page');
  const { scriptBytes, clientFiles, networkFiles } = await buildPage(out);
  const kib = (files: string[]) => (bytesOf(out, files) / 1024).toFixed(0);
  console.log(`dashboard page: ${join(out, 'app.js')} (${(scriptBytes / 1024).toFixed(0)} KiB); browser client: ${kib(clientFiles)} KiB, ${kib(networkFiles)} KiB more for a network`);
}
