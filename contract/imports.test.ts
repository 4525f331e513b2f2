import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Trust boundary in the import graph: the untrusted host side (host-shim and the
// lab's stand-in for a host) runs no agent code. It may import npm packages, the
// contract and its own files; the contract imports only npm packages. Followed
// transitively, so a host-side file cannot reach the agent through a helper.

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const IMPORT = /^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;

function localImports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3] ?? '';
    if (spec.startsWith('.')) out.push(resolve(dirname(file), spec));
  }
  return out;
}

/** Every repo file reachable from `entries` by relative imports (repo-relative paths). */
function closure(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = entries.map((e) => join(ROOT, e));
  for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
    const rel = relative(ROOT, f);
    if (seen.has(rel)) continue;
    seen.add(rel);
    todo.push(...localImports(f));
  }
  return seen;
}

const tsFiles = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));

t.test('the host side reaches nothing under dpu-agent/', async (t) => {
  const hostSide = [...tsFiles('host-shim'), 'scripts/labkit/hostside.ts', 'scripts/labkit/hostclient.ts'];
  const reached = [...closure(hostSide)];
  t.ok(reached.includes('contract/reasons.ts'), 'the walk follows imports');
  t.strictSame(reached.filter((f) => f.startsWith('dpu-agent/')), []);
});

t.test('the contract imports nothing outside itself but npm packages', async (t) => {
  const reached = [...closure(tsFiles('contract'))];
  t.strictSame(reached.filter((f) => !f.startsWith('contract/')), []);
});
