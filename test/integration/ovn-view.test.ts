import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { OvnView, type PodPort } from '../../dpu-agent/src/ports/ovn.ts';
import { startOvsdbServer } from '../helpers/ovsdb/server.ts';

// OvnView against a real OVN NB ovsdb-server: a pod's prefix and gateway come from the
// switch its port is on, and follow the port when the control plane moves or drops it.

const run = promisify(execFile);

t.test('prefix and gateway follow the switch a port is on', async (t) => {
  const nb = await startOvsdbServer(t, { schema: 'ovn-nb' });
  const nbctl = (...args: string[]) => run('ovn-nbctl', [`--db=${nb.unixRemote}`, ...args]);
  // node1: routed (gateway from the router port); node2: subnet only, no router.
  await nbctl('ls-add', 'node1', '--', 'lr-add', 'r', '--', 'lrp-add', 'r', 'rtos-node1', '0a:58:0a:f4:01:01', '10.244.1.1/24');
  await nbctl('lsp-add', 'node1', 'stor-node1', '--', 'lsp-set-type', 'stor-node1', 'router', '--', 'lsp-set-options', 'stor-node1', 'router-port=rtos-node1', '--', 'lsp-set-addresses', 'stor-node1', 'router');
  await nbctl('ls-add', 'node2', '--', 'set', 'Logical_Switch', 'node2', 'other_config:subnet=10.244.0.0/16');
  for (let i = 0; i < 50; i++) await nbctl('lsp-add', 'node2', `filler${i}`, '--', 'lsp-set-addresses', `filler${i}`, `0a:58:0a:f4:02:${(i + 16).toString(16)} 10.244.2.${i + 10}`);
  await nbctl('lsp-add', 'node1', 'ns_a', '--', 'lsp-set-addresses', 'ns_a', '0a:58:0a:f4:01:0a 10.244.1.10', '--', 'lsp-set-options', 'ns_a', 'requested-chassis=dpu1');

  const client = new OvsdbClient({ remotes: nb.unixRemote, database: 'OVN_Northbound' });
  const view = new OvnView({ client, logger: silentLogger(), podUidKey: 'pod-uid' });
  t.teardown(async () => {
    view.stop();
    await client.stop();
  });
  await view.start();
  const until = async (what: string, cond: (p: PodPort | undefined) => boolean): Promise<PodPort | undefined> => {
    for (let i = 0; i < 250; i++) {
      await view.sync();
      const p = view.lookup('ns_a');
      if (cond(p)) return p;
      await new Promise((r) => setTimeout(r, 20));
    }
    t.fail(`${what}: not seen; last ${JSON.stringify(view.lookup('ns_a'))}`);
    return undefined;
  };

  const a = view.lookup('ns_a');
  t.same([a?.ips, a?.gateways, a?.requestedChassis], [['10.244.1.10/24'], ['10.244.1.1'], ['dpu1']], 'on node1: /24 and the router port as gateway');

  // Moved in one transaction (what a re-scheduling control plane does): no router on node2.
  await nbctl('lsp-del', 'ns_a', '--', 'lsp-add', 'node2', 'ns_a', '--', 'lsp-set-addresses', 'ns_a', '0a:58:0a:f4:01:0a 10.244.1.10');
  const b = await until('moved to node2', (p) => p?.ips[0] === '10.244.1.10/16');
  t.same(b?.gateways, [], 'on node2: /16 from other_config:subnet, no gateway');

  // A port re-added to node1 under the same name, then node2 (its old switch) deleted.
  await nbctl('lsp-del', 'ns_a', '--', 'lsp-add', 'node1', 'ns_a', '--', 'lsp-set-addresses', 'ns_a', '0a:58:0a:f4:01:0a 10.244.1.10');
  await nbctl('ls-del', 'node2');
  const c = await until('back on node1', (p) => p?.ips[0] === '10.244.1.10/24');
  t.same(c?.gateways, ['10.244.1.1'], 'back on node1 with its gateway; deleting its former switch does not unlink it');

  // Its own switch deleted: the port goes too (LSPs are not root rows), and the lookup says so.
  await nbctl('ls-del', 'node1');
  t.equal(await until('node1 deleted', (p) => p === undefined), undefined, 'the port went with its switch (ovsdb garbage-collects it)');
});
