// Binding rules through the real attach path (host-shim in the host netns → mTLS
// host API → dpu-agent): the agent hands out a VF only for a pod whose LSP exists
// and is requested on its chassis. A refused ADD leaves nothing behind: no lease,
// no port on br-int, the VF back in the host with its scrubbed MAC, representor down.
import t from 'tap';
import { sbDb } from '../../scripts/labkit/central.ts';
import { HostSide } from '../../scripts/labkit/hostclient.ts';
import type { PodState } from '../../scripts/labkit/state.ts';
import { CniFailure, cniError } from '../../scripts/labkit/cni.ts';
import { checkConsistency, dpuLeaseView } from '../../scripts/labkit/consistency.ts';
import { linkExists } from '../../scripts/labkit/netns.ts';
import { repName, vfName } from '../../scripts/labkit/plan.ts';
import { addPod, controlPlane, createLsp, delPod, dpuOf, preparePod, shimAdd } from '../../scripts/labkit/pods.ts';
import { ping } from '../../scripts/labkit/probe.ts';
import { sh } from '../../scripts/labkit/sh.ts';
import { labFor, labSkipReason } from '../helpers/lab.ts';

const skip = await labSkipReason();
if (skip) {
  t.plan(0, skip);
} else {
  const run = await labFor(t, 'dplb', { dpus: 2 });
  const { pod: peer } = await addPod(run, { namespace: 'ns1', name: 'peer' }, { node: 2 });

  t.test('ADD before the LSP exists fails with pod-not-found (nothing leaked), succeeds once the LSP appears', async (t) => {
    const pod = await preparePod(run, { namespace: 'ns1', name: 'early' }, { node: 1 });
    const first = await shimAdd(run, pod);
    t.match(cniError(first), { code: 100, details: /reason pod-not-found/ }, 'CNI error 100, pod-not-found');
    const d = dpuOf(run, 1);
    t.equal((await dpuLeaseView(d)).leases.size, 0, 'no lease, nothing plugged on dpu1');
    t.notOk(await linkExists(pod.netns, 'eth0'), 'no interface in the pod');
    t.same((await checkConsistency(run)).problems.filter((p) => !p.includes('ns1/early')), [], 'the lab is consistent');

    await createLsp(run, pod);
    const retry = await shimAdd(run, pod);
    t.equal(retry.exit, 0, `the runtime's retry (same sandbox) succeeds: ${retry.stderr}`);
    t.ok(pod.vf >= 0, `got vf${pod.vf}`);
    const lease = [...(await dpuLeaseView(d)).leases.values()].find((e) => e.get('iface-id') === pod.lsp);
    t.equal(lease?.get('iface-id-ver'), pod.uid, "the lease carries the LSP's options:iface-id-ver (the pod UID, as ovn-kubernetes sets it), which ovn-controller requires to bind it");
    t.equal((await ping(pod, peer.ip, { count: 3 })).received, 3, 'and it reaches a pod on the other host');
  });

  t.test('requested-chassis is respected: ADD on host1 for a pod requested on dpu2 is refused (101), nothing plugged', async (t) => {
    const pod = await preparePod(run, { namespace: 'ns1', name: 'wrong' }, { node: 1 });
    await createLsp(run, pod, 'dpu2');
    const r = await shimAdd(run, pod);
    t.match(cniError(r), { code: 101, details: /PermissionDenied, reason pod-not-on-this-chassis/ }, 'CNI 101 pod-not-on-this-chassis');
    const view = await dpuLeaseView(dpuOf(run, 1));
    t.notOk([...view.leases.values()].some((e) => e.get('iface-id') === pod.lsp), 'no lease for it on dpu1');
    const chassis = await sh(['ovn-sbctl', `--db=${sbDb(run)}`, '--bare', '--columns=chassis', 'find', 'Port_Binding', `logical_port=${pod.lsp}`]);
    t.equal(chassis, '', 'the SB binds it to no chassis');
    t.notOk(await linkExists(pod.netns, 'eth0'), 'no interface in the pod');
    t.ok(await delPod(run, { namespace: 'ns1', name: 'wrong' }), 'cleaned up (DEL of a refused ADD succeeds)');
  });

  t.test('pod del gives the VF back (quarantined, scrubbed) and is idempotent; the VF is reused', async (t) => {
    const ref = { namespace: 'ns1', name: 'gone' };
    const { pod } = await addPod(run, ref, { node: 2 });
    const d = dpuOf(run, 2);
    t.ok(await delPod(run, ref), 'deleted');
    t.notOk(await delPod(run, ref), 'deleting again is a no-op');
    t.notOk(await delPod(run, { namespace: 'ns1', name: 'never' }), 'deleting a pod never added is a no-op');
    t.ok(await linkExists(d.hostNs, vfName(pod.vf)), 'the VF netdev is back in the host');
    t.notOk((await dpuLeaseView(d)).ports.includes(repName(pod.vf)), 'the representor is out of br-int');
    t.notOk(await controlPlane(run).lspExists(pod.lsp), 'the LSP is gone');
    t.same((await checkConsistency(run)).problems, [], 'scrubbed MAC, representor down, counts agree');
    const { pod: again, installedMs } = await addPod(run, { namespace: 'ns1', name: 'again' }, { node: 2 });
    t.equal(again.vf, pod.vf, 'the freed VF is handed out again');
    t.ok(installedMs > 0, 'and comes up');
  });

  t.test("a VF's next tenant sees none of the previous tenant's MAC, datapath flows or counters", async (t) => {
    const d = dpuOf(run, 1);
    const dpctl = (cmd: string): Promise<string> => sh(['ip', 'netns', 'exec', d.ns, 'env', `OVS_RUNDIR=${d.dir}`, 'ovs-appctl', cmd]);
    const rawCounters = async (vf: number): Promise<{ rx: number; tx: number }> => {
      const [l] = JSON.parse(await sh(['ip', '-s', '-j', '-n', d.ns, 'link', 'show', 'dev', repName(vf)])) as { stats64: { rx: { packets: number }; tx: { packets: number } } }[];
      return { rx: l?.stats64.rx.packets ?? 0, tx: l?.stats64.tx.packets ?? 0 };
    };
    const hs = await HostSide.start(run, d);
    t.teardown(() => hs.close());
    const getVf = async (p: PodState) => {
      const r = await hs.call('getVf', { attachment: { pod: { namespace: p.namespace, name: p.name, uid: p.uid }, sandboxId: p.sandbox, ifname: 'eth0' } });
      t.ok(r.ok, `GetVf ${p.name}: ${r.message ?? ''}`);
      const vf = (r.res?.['vf'] ?? {}) as { mac?: string; counters?: Record<string, string> };
      const c = vf.counters ?? {};
      return { mac: vf.mac, rx: Number(c['rxPackets'] ?? 0), tx: Number(c['txPackets'] ?? 0) };
    };

    const first = (await addPod(run, { namespace: 'ns1', name: 'tenant-a' }, { node: 1 })).pod;
    t.equal((await ping(first, peer.ip, { count: 10 })).received, 10, 'tenant A talks to a pod on the other host');
    const a = await getVf(first);
    t.ok(a.tx >= 10 && a.rx >= 10, `GetVf counts A's traffic (rx ${a.rx}, tx ${a.tx})`);
    const port = new RegExp(`port (\\d+): ${repName(first.vf)}\\b`).exec(await dpctl('dpctl/show'))?.[1];
    t.ok(port, `the representor is datapath port ${port}`);
    t.match(await dpctl('dpctl/dump-flows'), new RegExp(`in_port\\(${port}\\)`), "A's flows are in the datapath");

    t.ok(await delPod(run, { namespace: 'ns1', name: 'tenant-a' }), 'tenant A deleted');
    t.notMatch(await dpctl('dpctl/show'), new RegExp(`: ${repName(first.vf)}\\b`), 'the representor left the datapath');
    t.notMatch(await dpctl('dpctl/dump-flows'), new RegExp(`in_port\\(${port}\\)`), "none of A's flows is left");

    // Another address (so another MAC): the lab's IPAM would hand A's free address out again.
    const second = (await addPod(run, { namespace: 'ns1', name: 'tenant-b' }, { node: 1, ip: first.ip.replace(/\.\d+$/, '.222') })).pod;
    t.equal(second.vf, first.vf, 'tenant B gets the same VF');
    const b = await getVf(second);
    const raw = await rawCounters(second.vf);
    t.ok(raw.rx >= 10 && raw.tx >= 10, `the representor itself still carries A's packets (rx ${raw.rx}, tx ${raw.tx})`);
    t.ok(b.rx < 10 && b.tx < 10, `B's counters start from its own lease (rx ${b.rx}, tx ${b.tx}), not from A's ${a.rx}/${a.tx}`);
    t.not(b.mac, a.mac, "B's VF MAC is B's, not A's");
    const [vfLink] = JSON.parse(await sh(['ip', '-j', '-n', second.netns, 'link', 'show', 'dev', 'eth0'])) as { address: string }[];
    t.equal(vfLink?.address, b.mac, 'and that is what the pod sees');
    t.ok(await delPod(run, { namespace: 'ns1', name: 'tenant-b' }));
  });

  t.test('a failed add undoes itself', async (t) => {
    const ref = { namespace: 'ns1', name: 'fails' };
    const err = await addPod(run, ref, { node: 1, requestedChassis: 'dpu2' }).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof CniFailure && err.code === 101, `CniFailure 101 (${String(err)})`);
    t.equal(run.state.pods['ns1/fails'], undefined, 'no pod recorded');
    t.notOk(await controlPlane(run).lspExists('ns1_fails'), 'no LSP left');
    t.same((await checkConsistency(run)).problems, [], 'no lease, no port, no MAC left');
  });
}
