import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from '../../dpu-agent/src/agent.ts';
import { parseConfig } from '../../dpu-agent/src/config.ts';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { ovsVsctl } from '../helpers/ovsdb/cli.ts';
import { startOvsdbServer, type OvsdbServer } from '../helpers/ovsdb/server.ts';

const repo = new URL('../../', import.meta.url).pathname;

function config(srv: OvsdbServer, extra: Record<string, unknown> = {}) {
  return parseConfig({
    ovsdb: { remote: srv.unixRemote },
    chassis: { systemId: 'dpu-test', hostname: 'dpu-test', ovnRemote: 'tcp:127.0.0.1:6642,tcp:127.0.0.2:6642', encapIp: '192.0.2.10', datapathType: 'netdev', transportZones: ['tz1'] },
    ...extra,
  });
}

async function until(what: string, cond: () => boolean | Promise<boolean>, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const get = async (srv: OvsdbServer, ...args: string[]): Promise<string> => (await ovsVsctl(srv.unixRemote, 'get', ...args)).trim();

t.test('applies the chassis to an empty database, then a restart writes nothing', async (t) => {
  const srv = await startOvsdbServer(t, { init: false });
  const a = await Agent.create(config(srv), silentLogger());
  await a.start();
  t.equal(a.chassis.writes, 1, 'one transaction for everything');
  t.equal(await get(srv, 'Open_vSwitch', '.', 'external_ids:system-id'), 'dpu-test');
  t.equal(await get(srv, 'Open_vSwitch', '.', 'external_ids:ovn-remote'), '"tcp:127.0.0.1:6642,tcp:127.0.0.2:6642"');
  t.equal(await get(srv, 'Open_vSwitch', '.', 'external_ids:ovn-encap-type'), 'geneve');
  t.equal(await get(srv, 'Open_vSwitch', '.', 'external_ids:ovn-encap-ip'), '"192.0.2.10"');
  t.equal(await get(srv, 'Open_vSwitch', '.', 'external_ids:ovn-bridge'), 'br-int');
  t.equal(await get(srv, 'Open_vSwitch', '.', 'external_ids:ovn-transport-zones'), 'tz1');
  t.equal(await get(srv, 'Open_vSwitch', '.', 'other_config:hw-offload'), '"true"');
  t.equal(await get(srv, 'Open_vSwitch', '.', 'other_config:tc-policy'), 'none');
  t.equal(await get(srv, 'Bridge', 'br-int', 'fail_mode'), 'secure');
  t.equal(await get(srv, 'Bridge', 'br-int', 'datapath_type'), 'netdev');
  t.equal(await get(srv, 'Bridge', 'br-int', 'other_config:disable-in-band'), '"true"');
  t.equal(await get(srv, 'Interface', 'br-int', 'type'), 'internal');
  await a.stop();

  const b = await Agent.create(config(srv), silentLogger());
  await b.start();
  t.equal(b.chassis.writes, 0, 'second start writes nothing');
  t.same([...b.chassis.drift], [], 'and sees no drift');
  await b.stop();
});

t.test('drift behind its back is restored, logged and counted; foreign keys are left alone', async (t) => {
  const srv = await startOvsdbServer(t);
  await ovsVsctl(srv.unixRemote, 'set', 'Open_vSwitch', '.', 'external_ids:foreign=keep-me');
  const a = await Agent.create(config(srv), silentLogger());
  const drifts: string[] = [];
  a.chassis.on('drift', (d) => drifts.push(...d.map((x) => x.key)));
  await a.start();
  t.teardown(() => a.stop());

  await ovsVsctl(srv.unixRemote, 'set', 'Open_vSwitch', '.', 'external_ids:ovn-encap-ip=203.0.113.9');
  await until('encap ip restored', async () => (await get(srv, 'Open_vSwitch', '.', 'external_ids:ovn-encap-ip')) === '"192.0.2.10"');
  await ovsVsctl(srv.unixRemote, 'remove', 'Open_vSwitch', '.', 'external_ids', 'system-id');
  await until('system-id restored', async () => (await get(srv, 'Open_vSwitch', '.', 'external_ids:system-id')) === 'dpu-test');
  await ovsVsctl(srv.unixRemote, 'set', 'Bridge', 'br-int', 'fail_mode=standalone');
  await until('fail_mode restored', async () => (await get(srv, 'Bridge', 'br-int', 'fail_mode')) === 'secure');
  await ovsVsctl(srv.unixRemote, 'del-br', 'br-int');
  await until('br-int recreated', async () => (await ovsVsctl(srv.unixRemote, 'list-br')).split('\n').includes('br-int'));

  t.equal(await get(srv, 'Open_vSwitch', '.', 'external_ids:foreign'), 'keep-me', 'keys the agent does not own are untouched');
  t.ok(drifts.includes('external_ids:ovn-encap-ip'));
  t.ok(drifts.includes('external_ids:system-id'));
  t.ok(drifts.includes('fail_mode'));
  t.ok(drifts.includes('br-int'));
  t.equal(a.chassis.drift.get('chassis-external-ids'), 2);
  t.equal(a.chassis.drift.get('bridge-config'), 1);
  t.equal(a.chassis.drift.get('bridge-missing'), 1);
  await until('converged', () => a.chassis.isConverged);
});

t.test('alert-only mode reports drift without repairing it', async (t) => {
  const srv = await startOvsdbServer(t);
  const a = await Agent.create(config(srv, { reconcile: { repairDrift: false } }), silentLogger());
  await a.start();
  t.teardown(() => a.stop());
  const seen = new Promise<boolean>((r) => a.chassis.once('drift', (_d, repaired) => r(repaired)));
  await ovsVsctl(srv.unixRemote, 'set', 'Open_vSwitch', '.', 'external_ids:ovn-remote=tcp:198.51.100.1:6642');
  t.equal(await seen, false, 'drift event says not repaired');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(await get(srv, 'Open_vSwitch', '.', 'external_ids:ovn-remote'), '"tcp:198.51.100.1:6642"', 'left as the operator set it');
  t.equal(a.chassis.drift.get('chassis-external-ids'), 1);
});

t.test('survives an ovsdb-server restart and re-checks the chassis', async (t) => {
  const srv = await startOvsdbServer(t);
  const a = await Agent.create(config(srv), silentLogger());
  await a.start();
  t.teardown(() => a.stop());
  await srv.kill9();
  await srv.restart();
  await until('reconnected', () => a.ovsdb.connected);
  await ovsVsctl(srv.unixRemote, 'set', 'Open_vSwitch', '.', 'external_ids:hostname=evil');
  await until('hostname restored', async () => (await get(srv, 'Open_vSwitch', '.', 'external_ids:hostname')) === 'dpu-test');
});

t.test('dpu-agent process: JSON logs, applies config, exits 0 on SIGTERM; bad config exits 2 naming the key', async (t) => {
  const srv = await startOvsdbServer(t);
  const cfgFile = join(srv.dir, 'agent.json');
  await writeFile(cfgFile, JSON.stringify({ ovsdb: { remote: srv.unixRemote }, chassis: { systemId: 'proc1', ovnRemote: 'tcp:127.0.0.1:6642', encapIp: '192.0.2.11' } }));
  const child = spawn(process.execPath, ['--import', 'tsx', 'dpu-agent/src/main.ts', '--config', cfgFile], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await until('agent ready', () => out.includes('"agent ready"'), 800);
  t.equal(await get(srv, 'Open_vSwitch', '.', 'external_ids:system-id'), 'proc1');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'clean exit on SIGTERM');
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(lines.filter((l) => typeof l['level'] !== 'string' || typeof l['component'] !== 'string'), [], 'every line is JSON with level and component');
  t.ok(lines.some((l) => l['msg'] === 'stopped'));

  await writeFile(cfgFile, JSON.stringify({ chassis: { systemId: 'x', ovnRemote: 'tcp:127.0.0.1:6642', encapIp: 'not-an-ip' } }));
  const bad = spawn(process.execPath, ['--import', 'tsx', 'dpu-agent/src/main.ts', '--config', cfgFile], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  bad.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => bad.on('exit', (c) => r(c)));
  t.equal(code, 2);
  t.match(err, /chassis\.encapIp/);
});
