// Binding rules as ovn-controller applies them on our chassis: a port plugged
// before its LSP exists comes up once the LSP appears; a port whose LSP asks for
// another chassis never comes up here.
import t from 'tap';
import { sbDb } from '../../scripts/labkit/central.ts';
import { repName, vfName } from '../../scripts/labkit/plan.ts';
import { ovnInstalled, waitOvnInstalled } from '../../scripts/labkit/plug.ts';
import { vsctl } from '../../scripts/labkit/dpu.ts';
import { linkExists } from '../../scripts/labkit/netns.ts';
import { addPod, controlPlane, createLsp, delPod, dpuOf } from '../../scripts/labkit/pods.ts';
import { ping } from '../../scripts/labkit/probe.ts';
import { sh, sleep } from '../../scripts/labkit/sh.ts';
import { labFor, labSkipReason } from '../helpers/lab.ts';

/** Samples ovn-installed `n` times, `ms` apart; true if it was ever set. */
async function everInstalled(d: Parameters<typeof ovnInstalled>[0], rep: string, n: number, ms: number): Promise<boolean> {
  for (let i = 0; i < n; i++) {
    if (await ovnInstalled(d, rep)) return true;
    await sleep(ms);
  }
  return false;
}

const skip = await labSkipReason();
if (skip) {
  t.plan(0, skip);
} else {
  const run = await labFor(t, 'dplb', { dpus: 2 });
  const { pod: peer } = await addPod(run, { namespace: 'ns1', name: 'peer' }, { node: 2 });

  t.test('a port plugged before its LSP exists comes up when the LSP appears', async (t) => {
    const { pod } = await addPod(run, { namespace: 'ns1', name: 'early' }, { node: 1, createLsp: false, wait: false });
    const d = dpuOf(run, 1);
    t.notOk(await everInstalled(d, repName(pod.vf), 10, 100), 'not installed while there is no LSP');
    t.equal((await ping(pod, peer.ip, { count: 1 })).received, 0, 'and it carries nothing');
    await createLsp(run, pod);
    t.ok(await waitOvnInstalled(d, repName(pod.vf), 10), 'ovn-installed once the LSP exists');
    t.equal((await ping(pod, peer.ip, { count: 3 })).received, 3, 'and it reaches a pod on the other host');
  });

  t.test('requested-chassis is respected: a dpu2 pod plugged on dpu1 does not come up', async (t) => {
    const { pod } = await addPod(run, { namespace: 'ns1', name: 'wrong' }, { node: 1, requestedChassis: 'dpu2', wait: false });
    const d = dpuOf(run, 1);
    t.notOk(await everInstalled(d, repName(pod.vf), 20, 100), 'never ovn-installed on dpu1');
    const chassis = await sh(['ovn-sbctl', `--db=${sbDb(run)}`, '--bare', '--columns=chassis', 'find', 'Port_Binding', `logical_port=${pod.lsp}`]);
    t.equal(chassis, '', 'the SB binds it to no chassis');
    t.equal((await ping(pod, peer.ip, { count: 2 })).received, 0, 'and it carries nothing');
  });

  t.test('pod del gives the VF back and is idempotent; the VF is reused', async (t) => {
    const ref = { namespace: 'ns1', name: 'gone' };
    const { pod } = await addPod(run, ref, { node: 2 });
    const d = dpuOf(run, 2);
    t.ok(await delPod(run, ref), 'deleted');
    t.notOk(await delPod(run, ref), 'deleting again is a no-op');
    t.notOk(await delPod(run, { namespace: 'ns1', name: 'never' }), 'deleting a pod never added is a no-op');
    t.ok(await linkExists(d.hostNs, vfName(pod.vf)), 'the VF netdev is back in the host');
    const ports = (await vsctl(d, 'list-ports', 'br-int')).split('\n');
    t.notOk(ports.includes(repName(pod.vf)), 'the representor is out of br-int');
    t.notOk(await controlPlane(run).lspExists(pod.lsp), 'the LSP is gone');
    const { pod: again, installedMs } = await addPod(run, { namespace: 'ns1', name: 'again' }, { node: 2 });
    t.equal(again.vf, pod.vf, 'the freed VF is handed out again');
    t.ok(installedMs !== undefined, 'and comes up');
  });

  t.test('a failed add undoes itself', async (t) => {
    const ref = { namespace: 'ns1', name: 'fails' };
    const free = dpuOf(run, 1);
    await t.rejects(addPod(run, ref, { node: 1, requestedChassis: 'dpu2', waitTimeoutS: 1 }), /not ovn-installed within 1 s/);
    t.equal(run.state.pods['ns1/fails'], undefined, 'no pod recorded');
    t.notOk(await controlPlane(run).lspExists('ns1_fails'), 'no LSP left');
    const ports = (await vsctl(free, 'list-ports', 'br-int')).split('\n').filter((x) => /^pf\d+vf\d+$/.test(x));
    const used = Object.values(run.state.pods).filter((p) => p.node === 1).map((p) => repName(p.vf));
    t.same(ports.filter((x) => !used.includes(x)), [], `no representor left in br-int (have ${ports}, pods ${used})`);
  });
}
