// Binding rules as ovn-controller applies them on our chassis: a port plugged
// before its LSP exists comes up once the LSP appears; a port whose LSP asks for
// another chassis never comes up here.
import t from 'tap';
import { sbDb } from '../../scripts/labkit/central.ts';
import { repName } from '../../scripts/labkit/plan.ts';
import { ovnInstalled, waitOvnInstalled } from '../../scripts/labkit/plug.ts';
import { addPod, createLsp, dpuOf } from '../../scripts/labkit/pods.ts';
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
}
