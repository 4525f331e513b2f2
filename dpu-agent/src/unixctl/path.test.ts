import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnixctlError } from '../errors.ts';
import { unixctlPath } from './path.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'unixctl-path-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

t.test('reads <rundir>/<program>.pid and names <program>.<pid>.ctl', async (t) => {
  writeFileSync(path.join(dir, 'ovn-controller.pid'), '4242\n');
  t.equal(await unixctlPath(dir, 'ovn-controller'), path.join(dir, 'ovn-controller.4242.ctl'));
  writeFileSync(path.join(dir, 'ovs-vswitchd.pid'), '17');
  t.equal(await unixctlPath(dir, 'ovs-vswitchd'), path.join(dir, 'ovs-vswitchd.17.ctl'), 'no trailing newline');
});

t.test('missing pidfile → UnixctlError naming the file', async (t) => {
  const err = await rejection(unixctlPath(dir, 'ovsdb-server'));
  t.type(err, UnixctlError);
  t.equal((err as UnixctlError).command, 'ovsdb-server');
  t.match((err as UnixctlError).message, path.join(dir, 'ovsdb-server.pid'));
  t.match((err as UnixctlError).message, /ENOENT/);
});

t.test('pidfile without a pid → UnixctlError', async (t) => {
  for (const [name, content] of [
    ['empty', ''],
    ['words', 'not-a-pid\n'],
    ['zero', '0\n'],
    ['negative', '-5\n'],
    ['mixed', '12ab\n'],
    ['huge', '99999999999999999999\n'],
  ] as const) {
    writeFileSync(path.join(dir, `${name}.pid`), content);
    t.type(await rejection(unixctlPath(dir, name)), UnixctlError, name);
  }
});

t.test('rundir that is not a directory → UnixctlError', async (t) => {
  const file = path.join(dir, 'plain-file');
  writeFileSync(file, 'x');
  t.type(await rejection(unixctlPath(file, 'ovsdb-server')), UnixctlError);
});
