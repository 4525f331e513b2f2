import t from 'tap';
import { spawn } from 'node:child_process';
import { OvnControllerProbe } from '../../dpu-agent/src/chassis/ovn-controller.ts';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { ovsVsctl } from '../helpers/ovsdb/cli.ts';
import { startOvsdbServer } from '../helpers/ovsdb/server.ts';

async function until(cond: () => Promise<boolean>, tries = 150): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

t.test('reports whether the real ovn-controller is connected to the SB, over its control socket', async (t) => {
  const ovs = await startOvsdbServer(t);
  const sb = await startOvsdbServer(t, { schema: 'ovn-sb', tcp: true });
  await ovsVsctl(ovs.unixRemote, 'set', 'Open_vSwitch', '.', 'external_ids:system-id=probe1', `external_ids:ovn-remote=${sb.tcpRemote}`, 'external_ids:ovn-encap-type=geneve', 'external_ids:ovn-encap-ip=127.0.0.1');
  const probe = new OvnControllerProbe({ rundir: ovs.dir, intervalMs: 100, logger: silentLogger() });
  t.teardown(() => probe.stop());
  t.equal(await probe.probe(), false, 'no ovn-controller yet: not connected, no throw');

  const oc = spawn('ovn-controller', [ovs.unixRemote, `--pidfile=${ovs.dir}/ovn-controller.pid`, '--no-chdir', `--log-file=${ovs.dir}/ovn-controller.log`], {
    env: { ...process.env, OVN_RUNDIR: ovs.dir, OVS_RUNDIR: ovs.dir },
    stdio: 'ignore',
  });
  t.teardown(async () => {
    if (oc.exitCode === null) {
      oc.kill('SIGKILL');
      await new Promise((r) => oc.once('exit', r));
    }
  });
  t.ok(await until(() => probe.probe()), 'connected once ovn-controller reached the SB');
  const changes: boolean[] = [];
  probe.on('change', (c) => changes.push(c));
  probe.start();
  await sb.kill9();
  t.ok(await until(async () => !probe.connected), 'sees the SB go away');
  await sb.restart();
  t.ok(await until(async () => probe.connected), 'and come back');
  t.same(changes, [false, true]);
});
