import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ovsVsctl } from '../helpers/ovsdb/cli.ts';
import { startOvsdbServer } from '../helpers/ovsdb/server.ts';

const run = promisify(execFile);
const repo = new URL('../../', import.meta.url).pathname;

t.test('release bundle: builds reproducibly, runs without tsx, configures a chassis', async (t) => {
  // Inside the repo: the native addons (netlink, koffi) stay outside the bundle and resolve from node_modules.
  await mkdir(join(repo, '.run'), { recursive: true });
  const dir = await mkdtemp(join(repo, '.run', 'bundle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  await run(process.execPath, ['--import', 'tsx', 'scripts/build.ts'], { cwd: repo, env: { ...process.env, DIST_DIR: a } });
  await run(process.execPath, ['--import', 'tsx', 'scripts/build.ts'], { cwd: repo, env: { ...process.env, DIST_DIR: b } });
  const bundle = join(a, 'dpu-agent.mjs');
  t.ok((await readFile(bundle)).equals(await readFile(join(b, 'dpu-agent.mjs'))), 'same inputs, same bytes');
  // One byte ≥ 0x80 anywhere (a comment's "→") and V8 holds the whole source as a two-byte string (2× heap).
  t.equal((await readFile(bundle)).findIndex((x) => x >= 0x80), -1, 'ASCII only');

  const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as { version: string };
  t.equal((await run(process.execPath, [bundle, '--version'])).stdout.trim(), pkg.version);

  const srv = await startOvsdbServer(t);
  const cfg = join(dir, 'agent.json');
  await writeFile(cfg, JSON.stringify({ ovsdb: { remote: srv.unixRemote }, chassis: { systemId: 'bundled', ovnRemote: 'tcp:127.0.0.1:6642', encapIp: '192.0.2.20' } }));
  const check = await run(process.execPath, [bundle, '--config', cfg, '--check']);
  t.match(JSON.parse(check.stdout), { chassis: { systemId: 'bundled' } });

  const child = spawn(process.execPath, [bundle, '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 400 && !out.includes('"agent ready"'); i++) await new Promise((r) => setTimeout(r, 25));
  t.equal((await ovsVsctl(srv.unixRemote, 'get', 'Open_vSwitch', '.', 'external_ids:system-id')).trim(), 'bundled');
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  t.comment(`bundled agent RSS ${(rssKiB / 1024).toFixed(1)} MiB`);
  t.ok(rssKiB > 0);
  const code = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  child.kill('SIGTERM');
  t.equal(await code, 0);
});
