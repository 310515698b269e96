/**
 * Bundles the dashboard page (src/web/page) with esbuild into one script, app.js, beside index.html and
 * style.css: everything the page needs (vega, vega-lite, vega-embed, the project's figure code) is in
 * it, so the page works offline and loads nothing from other origins. `npm run build` runs this after
 * tsc (`node dist/web/build.js`, into dist/web/page); tests call buildPage into a directory of their own.
 * esbuild is a devDependency: only building needs it.
 */
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
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
  /** bytes of the browser client's scripts (client.js and client-worker.js), minified */
  clientBytes: number;
}

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

export async function buildPage(outDir: string): Promise<BuiltPage> {
  mkdirSync(outDir, { recursive: true });
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
  await Promise.all([
    build({ ...common, entryPoints: [join(PAGE, 'main.ts')], outfile: script }),
    // the browser client: its page, and the Web Worker that trains
    build({ ...common, entryPoints: [join(PAGE, 'client.ts')], outfile: join(outDir, 'client.js') }),
    build({ ...common, entryPoints: [join(PAGE, 'client-worker.ts')], outfile: join(outDir, 'client-worker.js'), plugins: [NODE_STANDINS] }),
  ]);
  for (const f of STATIC_FILES) copyFileSync(join(PAGE, f), join(outDir, f));
  return { dir: outDir, scriptBytes: statSync(script).size, clientBytes: statSync(join(outDir, 'client.js')).size + statSync(join(outDir, 'client-worker.js')).size };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? join(ROOT, 'dist/web/page');
  const { scriptBytes, clientBytes } = await buildPage(out);
  console.log(`dashboard page: ${join(out, 'app.js')} (${(scriptBytes / 1024).toFixed(0)} KiB); browser client: ${(clientBytes / 1024).toFixed(0)} KiB`);
}
