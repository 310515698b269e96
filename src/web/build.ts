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
import { build } from 'esbuild';

/** The repository root, from src/web or dist/web alike. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGE = join(ROOT, 'src/web/page');
export const STATIC_FILES = ['index.html', 'style.css'];

export interface BuiltPage {
  dir: string;
  /** bytes of app.js, minified */
  scriptBytes: number;
}

export async function buildPage(outDir: string): Promise<BuiltPage> {
  mkdirSync(outDir, { recursive: true });
  const script = join(outDir, 'app.js');
  await build({
    entryPoints: [join(PAGE, 'main.ts')],
    outfile: script,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    // the licences of the bundled libraries, in a file beside the script
    legalComments: 'linked',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  for (const f of STATIC_FILES) copyFileSync(join(PAGE, f), join(outDir, f));
  return { dir: outDir, scriptBytes: statSync(script).size };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? join(ROOT, 'dist/web/page');
  const { scriptBytes } = await buildPage(out);
  console.log(`dashboard page: ${join(out, 'app.js')} (${(scriptBytes / 1024).toFixed(0)} KiB)`);
}
