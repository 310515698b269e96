/**
 * The library examples in the README run as written: every ```ts block that imports from
 * 'sparse-proxskip' is run against src/index.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { format } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as lib from './index.js';

const root = join(import.meta.dirname, '..');

/** The TypeScript blocks of a markdown file that use the package. */
function examples(file: string): string[] {
  const path = join(root, file);
  if (!existsSync(path)) return [];
  const blocks = [...readFileSync(path, 'utf8').matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  return blocks.filter((b) => b.includes("from 'sparse-proxskip'"));
}

/**
 * Runs an example with its imports from 'sparse-proxskip' bound to this package's exports; returns
 * what it logged. Types are stripped by the TypeScript compiler, as a user's build would.
 */
async function runExample(code: string): Promise<string[]> {
  const js = ts.transpileModule(code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: true } }).outputText;
  const body = js.replace(/^import \{([^}]*)\} from 'sparse-proxskip';$/gm, (_m, names: string) => `const {${names.replaceAll(' as ', ': ')}} = lib;`);
  expect(body, 'an example imports only from sparse-proxskip').not.toMatch(/^import /m);
  for (const m of body.matchAll(/const \{([^}]*)\} = lib;/g)) {
    for (const used of m[1]!.split(',').map((s) => s.split(':')[0]!.trim())) {
      expect(lib, `'${used}' is exported by the package`).toHaveProperty(used);
    }
  }
  const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (...values: unknown[]) => Promise<void>;
  const logs: string[] = [];
  await new AsyncFunction('lib', 'console', body)(lib, { log: (...a: unknown[]) => logs.push(format(...a)) });
  return logs;
}

describe('library examples in README.md', () => {
  const blocks = examples('README.md');
  it('README.md has one', () => expect(blocks.length).toBeGreaterThan(0));
  it.each(blocks.map((b, i) => [i + 1, b] as const))('example %i runs and logs finite results', async (_i, block) => {
    const logs = await runExample(block);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.join('\n')).not.toMatch(/NaN|Infinity|undefined/);
  });
  it('the first prints what its comment says', async () => {
    const logs = await runExample(blocks[0]!);
    expect(logs[0]).toMatch(/^round 50: train loss \d.*, nnz 5\/50$/);
    expect(logs[1]).toMatch(/^uplink 2500 floats \(\d+ bytes\)/);
  });
});
