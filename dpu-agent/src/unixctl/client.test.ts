// Against a real ovsdb-server: the unixctl server is lib/unixctl.c, the same
// code every OVS/OVN daemon uses, so this is the protocol as shipped.

import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectError, ConnectionClosedError, TimeoutError, UnixctlError } from '../errors.ts';
import { UnixctlClient } from './client.ts';
import { unixctlPath } from './path.ts';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

const OVSDB_SERVER = '/usr/sbin/ovsdb-server';
const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
  t.fail('unhandled rejection', { reason });
};
process.on('unhandledRejection', onUnhandled);
t.teardown(() => {
  process.off('unhandledRejection', onUnhandled);
});

async function waitFor(what: string, cond: () => boolean, child: ChildProcess, log: string): Promise<void> {
  // Bounded by the tap timeout; fail fast if the daemon died instead.
  while (!cond()) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = existsSync(log) ? readFileSync(log, 'utf8') : '(no log)';
      throw new Error(`ovsdb-server exited (${child.exitCode ?? child.signalCode}) before ${what}:\n${text}`);
    }
    await sleep(20);
  }
}

interface Daemon {
  dir: string;
  ctl: string;
  pid: number;
}

/**
 * Starts ovsdb-server in a fresh directory. `ctlArg` false leaves --unixctl
 * unset so the daemon picks its default <rundir>/ovsdb-server.<pid>.ctl.
 */
async function startOvsdbServer(t: Tap, ctlArg = true): Promise<Daemon> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'unixctl-'));
  execFileSync('ovsdb-tool', ['create', path.join(dir, 'db.db'), SCHEMA]);
  const log = path.join(dir, 'ovsdb-server.log');
  const args = [
    path.join(dir, 'db.db'),
    `--remote=punix:${path.join(dir, 'db.sock')}`,
    `--pidfile=${path.join(dir, 'ovsdb-server.pid')}`,
    '--no-chdir',
    `--log-file=${log}`,
  ];
  if (ctlArg) args.push(`--unixctl=${path.join(dir, 'ovsdb-server.ctl')}`);
  const child = spawn(OVSDB_SERVER, args, {
    stdio: 'ignore',
    // OVS_RUNDIR is where the default ctl socket (and relative paths) go.
    env: { ...process.env, OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir },
  });
  const exited = once(child, 'exit');
  child.on('error', () => {});
  t.teardown(async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const pid = child.pid!;
  const ctl = ctlArg ? path.join(dir, 'ovsdb-server.ctl') : path.join(dir, `ovsdb-server.${pid}.ctl`);
  await waitFor('the control socket appeared', () => existsSync(ctl), child, log);
  return { dir, ctl, pid };
}

async function connect(t: Tap, ctl: string, opts: { timeoutMs?: number } = {}): Promise<UnixctlClient> {
  const client = await UnixctlClient.connect(ctl, opts);
  t.teardown(() => client.close());
  return client;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

t.test('real ovsdb-server', async (t) => {
  const d = await startOvsdbServer(t);
  const client = await connect(t, d.ctl, { timeoutMs: 10_000 });

  t.test('version', async (t) => {
    const out = await client.call('version');
    t.match(out, /^ovsdb-server \(Open vSwitch\) \d+\.\d+/);
    const cli = execFileSync(OVSDB_SERVER, ['--version'], { encoding: 'utf8' });
    t.equal(out.split('\n')[0], cli.split('\n')[0], 'same as ovsdb-server --version');
  });

  t.test('list-commands', async (t) => {
    const out = await client.call('list-commands');
    t.match(out, /available commands/i);
    t.match(out, /ovsdb-server\/list-dbs/);
    t.match(out, /\bexit\b/);
  });

  t.test('ovsdb-server/list-dbs', async (t) => {
    const out = await client.call('ovsdb-server/list-dbs');
    t.strictSame(out.trim().split('\n').sort(), ['Open_vSwitch', '_Server']);
  });

  t.test('commands with arguments', async (t) => {
    const out = await client.call('vlog/list-pattern', []);
    t.type(out, 'string');
    await client.call('vlog/set', ['jsonrpc:file:dbg']);
    t.match(await client.call('vlog/list'), /jsonrpc\s+\S+\s+\S+\s+DBG/);
  });

  t.test('unknown command → UnixctlError with the daemon’s text', async (t) => {
    const err = await rejection(client.call('no-such/command', ['x']));
    t.type(err, UnixctlError);
    t.equal((err as UnixctlError).command, 'no-such/command');
    t.match((err as UnixctlError).error, /not a valid command/);
    t.equal((err as UnixctlError).code, 'DPU_ERR_UNIXCTL');
  });

  t.test('wrong argument count → UnixctlError', async (t) => {
    const err = await rejection(client.call('version', ['extra']));
    t.type(err, UnixctlError);
    t.match((err as UnixctlError).error, /argument/);
  });

  t.test('the connection survives errors: concurrent calls still work', async (t) => {
    const outs = await Promise.all([client.call('version'), client.call('ovsdb-server/list-dbs'), client.call('version')]);
    t.equal(outs[0], outs[2]);
    t.match(outs[1], /Open_vSwitch/);
    t.notOk(client.closed);
  });
});

t.test('daemon exit mid-session: calls reject ConnectionClosedError', async (t) => {
  const d = await startOvsdbServer(t);
  const client = await connect(t, d.ctl);
  // "exit" replies and then the daemon goes away; the next call finds the
  // connection closed (or, if it races the close, rejects as closed).
  await client.call('exit');
  const err = await rejection(client.call('version', [], { timeoutMs: 10_000 }));
  t.type(err, ConnectionClosedError);
  t.ok(client.closed);
});

t.test('unixctlPath finds the default ctl socket of a running daemon', async (t) => {
  const d = await startOvsdbServer(t, false);
  const ctl = await unixctlPath(d.dir, 'ovsdb-server');
  t.equal(ctl, path.join(d.dir, `ovsdb-server.${d.pid}.ctl`));
  const client = await connect(t, ctl);
  t.match(await client.call('version'), /ovsdb-server/);
});

t.test('connect to a missing socket → ConnectError', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'unixctl-missing-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.type(await rejection(UnixctlClient.connect(path.join(dir, 'x.ctl'))), ConnectError);
});

t.test('a daemon that never answers → TimeoutError', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'unixctl-mute-'));
  const sock = path.join(dir, 'mute.ctl');
  const server = net.createServer((s) => s.on('error', () => {}));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => sockets.add(s));
  server.listen(sock);
  await once(server, 'listening');
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  const client = await connect(t, sock, { timeoutMs: 50 });
  const err = await rejection(client.call('version'));
  t.type(err, TimeoutError);
  t.type(await rejection(client.call('version', [], { timeoutMs: 20 })), TimeoutError, 'per-call override');
});

t.test('no unhandled rejections happened', async (t) => {
  await new Promise((r) => setImmediate(r));
  t.strictSame(unhandled, []);
});
