import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// STYLE.md 7: generated code is committed, and regenerating must not change it.
// Generates into a temp dir (buf --output) so the work tree is never touched,
// then compares byte for byte with contract/gen. Also runs `buf lint`.

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BIN = join(ROOT, 'node_modules/.bin');
const env = { ...process.env, PATH: `${BIN}:${process.env['PATH'] ?? ''}` };

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  }
  return out.sort();
}

t.test('npm run gen output equals the committed contract/gen', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'dpu-gen-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  await run('buf', ['generate', 'proto', '--template', 'proto/buf.gen.yaml', '--output', out], { cwd: ROOT, env });
  const fresh = join(out, 'contract/gen');
  const committed = join(ROOT, 'contract/gen');
  const names = await files(fresh);
  t.strictSame(await files(committed), names, 'same file list (run `npm run gen` and commit)');
  for (const n of names) {
    const a = await readFile(join(fresh, n));
    const b = await readFile(join(committed, n)).catch(() => Buffer.alloc(0));
    t.ok(a.equals(b), `${n} is up to date (run \`npm run gen\` and commit)`);
  }
});

t.test('buf lint passes', async (t) => {
  const { stdout, stderr } = await run('buf', ['lint', 'proto'], { cwd: ROOT, env });
  t.equal(stdout + stderr, '');
});
