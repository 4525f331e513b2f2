import t from 'tap';
import { BridgeAudit, type ForeignPort } from '../../dpu-agent/src/offload/bridge-audit.ts';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { plugOps } from '../../dpu-agent/src/ports/lease.ts';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { ovsVsctl } from '../helpers/ovsdb/cli.ts';
import { startOvsdbServer, type OvsdbServer } from '../helpers/ovsdb/server.ts';

async function setup(t: { teardown(fn: () => unknown): void }, repair: boolean): Promise<{ srv: OvsdbServer; audit: BridgeAudit; drift: ForeignPort[][] }> {
  const srv = await startOvsdbServer(t);
  const v = (...a: string[]) => ovsVsctl(srv.unixRemote, ...a);
  await v('add-br', 'br-int');
  // As ovn-controller makes it (encaps.c): the ovn-chassis-id tag is on the Port row, not the Interface.
  await v('add-port', 'br-int', 'ovn-dpu2-0', '--', 'set', 'Interface', 'ovn-dpu2-0', 'type=geneve', 'options:remote_ip=192.0.2.2', '--', 'set', 'Port', 'ovn-dpu2-0', 'external_ids:ovn-chassis-id=dpu2@192.0.2.2');
  await v('add-br', 'br-phy');
  await v('add-port', 'br-int', 'patch-to-phy', '--', 'set', 'Interface', 'patch-to-phy', 'type=patch', 'options:peer=patch-to-int', 'external_ids:ovn-localnet-port=ln');
  const c = new OvsdbClient({ remotes: srv.unixRemote, database: 'Open_vSwitch' });
  t.teardown(() => c.stop());
  await c.start();
  await c.transact(plugOps({ bridge: 'br-int', representor: 'pf0vf0', pf: 0, vf: 0, lsp: 'ns_pod', mac: '0a:58:00:00:00:01', key: { pod: { namespace: 'ns', name: 'pod', uid: 'u' }, sandboxId: 's', ifname: 'eth0' }, peer: 'host1', leaseTime: new Date().toISOString() }));
  const audit = new BridgeAudit({ client: c, bridge: 'br-int', repair, logger: silentLogger() });
  t.teardown(() => audit.stop());
  const drift: ForeignPort[][] = [];
  audit.on('drift', (_k, ports) => drift.push([...ports]));
  return { srv, audit, drift };
}

const ports = async (srv: OvsdbServer): Promise<string[]> => (await ovsVsctl(srv.unixRemote, 'list-ports', 'br-int')).split('\n').filter(Boolean).sort();

async function until(cond: () => boolean | Promise<boolean>, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition not met');
}

t.test('foreign ports on br-int are removed; OVN tunnels/patches and leases stay', async (t) => {
  const { srv, audit, drift } = await setup(t, true);
  await ovsVsctl(srv.unixRemote, 'add-port', 'br-int', 'evil', '--', 'set', 'Interface', 'evil', 'type=internal');
  await audit.start();
  t.same(await ports(srv), ['ovn-dpu2-0', 'patch-to-phy', 'pf0vf0'], 'foreign port present at start removed');
  // A representor plugged behind the agent's back (iface-id only, no lease): foreign too.
  await ovsVsctl(srv.unixRemote, 'add-port', 'br-int', 'pf0vf7', '--', 'set', 'Interface', 'pf0vf7', 'type=internal', 'external_ids:iface-id=ns_victim');
  await until(async () => !(await ports(srv)).includes('pf0vf7'));
  t.same(drift.map((d) => d.map((p) => p.name)), [['evil'], ['pf0vf7']]);
  t.equal(drift[1]?.[0]?.interfaces[0]?.ifaceId, 'ns_victim', 'the log/event says what it claimed to be');
});

t.test('alert-only: reported once, left in place', async (t) => {
  const { srv, audit, drift } = await setup(t, false);
  await audit.start();
  await ovsVsctl(srv.unixRemote, 'add-port', 'br-int', 'evil', '--', 'set', 'Interface', 'evil', 'type=internal');
  await until(() => drift.length === 1);
  await ovsVsctl(srv.unixRemote, 'set', 'Bridge', 'br-int', 'external_ids:poke=1');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(drift.length, 1, 'a standing foreign port is counted once');
  t.ok((await ports(srv)).includes('evil'));
});
