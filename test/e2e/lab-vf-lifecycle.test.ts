// VF lifecycle on the lab (issue #8), end to end through host-shim and the real
// agent: a whole-DPU reboot with live pods (leases restored from OVSDB, no CNI
// call), VFs hot-added and hot-removed while pods come and go (RTNLGRP_LINK),
// two attachments per pod (eth0 on NS_NAME, net1 on NS_NAME_net1), and a seeded
// random walk of pod add/del and agent/DPU restarts with the invariants checked
// along the way. One lab for all of it; only pids this lab recorded are signalled.
// Figures (time to traffic after the reboot) are logged, never asserted.
import t from 'tap';
import fc from 'fast-check';
import { scrubMac } from '../../dpu-agent/src/hw/representor.ts';
import { EXT } from '../../dpu-agent/src/ports/lease.ts';
import { restartAgent } from '../../scripts/labkit/chassis.ts';
import { cniError, runCni } from '../../scripts/labkit/cni.ts';
import { checkConsistency, dpuHttpGet, dpuLeaseView, metricValue } from '../../scripts/labkit/consistency.ts';
import { addVfs, presentVfs, removeVfs } from '../../scripts/labkit/dpu.ts';
import { HostSide } from '../../scripts/labkit/hostclient.ts';
import { linkShow } from '../../scripts/labkit/netns.ts';
import { podKey, repName, vfName } from '../../scripts/labkit/plan.ts';
import { addAttachment, addPod, cniPod, controlPlane, delAttachment, delPod, dpuOf } from '../../scripts/labkit/pods.ts';
import { ping, triesUntil } from '../../scripts/labkit/probe.ts';
import { firmwareMac, forgetEswitchState, restartDpu, startDpuMeasured, stopDpu } from '../../scripts/labkit/reboot.ts';
import { inNs, poll, sh } from '../../scripts/labkit/sh.ts';
import type { DpuState, PodState } from '../../scripts/labkit/state.ts';
import { keyOf } from '../helpers/attacks.ts';
import { down } from '../../scripts/labkit/topology.ts';
import { labFor, labSkipReason } from '../helpers/lab.ts';

t.setTimeout(400_000);
const STEPS = Number(process.env['DPU_VF_PROP_STEPS'] ?? 100);
const SEED = Number(process.env['DPU_VF_PROP_SEED'] ?? Date.now() % 1_000_000);

const isUp = (l: { flags?: string[] } | undefined) => (l?.flags ?? []).includes('UP');

/** Leased representor → iface-id on a DPU, from OVSDB. */
async function leaseMap(d: DpuState): Promise<Map<string, string>> {
  return new Map([...(await dpuLeaseView(d)).leases].map(([rep, ext]) => [rep, ext.get(EXT.ifaceId) ?? '']));
}

/** Representors of `js` that are not yet quarantined (up, or on a bridge) and not leased. */
async function unquarantined(d: DpuState, js: readonly number[]): Promise<string[]> {
  const [links, view] = await Promise.all([linkShow(d.ns), dpuLeaseView(d)]);
  const by = new Map(links.map((l) => [l.ifname, l]));
  return js
    .map(repName)
    .filter((r) => !view.leases.has(r) && (isUp(by.get(r)) || view.onAnyBridge.has(r)));
}

const skip = await labSkipReason();
if (skip) {
  t.plan(0, skip);
} else {
  const run = await labFor(t, 'dpvl', { dpus: 2, vfs: 8 });
  const d1 = dpuOf(run, 1);
  const d2 = dpuOf(run, 2);
  // A failure here would end the file before tap runs the teardown: take the lab down first.
  const peer = await addPod(run, { namespace: 'vl', name: 'peer' }, { node: 2 }).then(
    (r) => r.pod,
    async (err: unknown) => {
      await down(run.prefix);
      throw err;
    },
  );

  t.test('DPU reboot with 8 live pods: traffic resumes with no host action, leases restored as they were, an orphan released', async (t) => {
    // A VF more for the pod whose LSP goes while the DPU is down; a short orphan grace so its release is seen soon.
    await addVfs(run, d1, [8]);
    d1.agentPorts = { orphanGraceMs: 1000, gcIntervalMs: 500 };
    run.save();
    await restartAgent(run, d1); // takes the config above
    const refs = Array.from({ length: 8 }, (_, i) => ({ namespace: 'vl', name: `r${i}` }));
    const pods = (await Promise.all(refs.map((r) => addPod(run, r, { node: 1 })))).map((x) => x.pod);
    const { pod: orphan } = await addPod(run, { namespace: 'vl', name: 'orphan' }, { node: 1 });
    for (const p of pods) t.equal((await ping(p, peer.ip, { count: 1 })).received, 1, `${p.name} talks to the peer before`);
    const before = await leaseMap(d1);
    t.equal(before.size, 9, '9 leases before');

    await stopDpu(run, d1); // SIGKILL: power cut
    await controlPlane(run).delLsp(orphan.lsp); // the pod went away while its DPU was down
    await forgetEswitchState(run, d1);
    const [eth0] = await linkShow(pods[0]!.netns, 'eth0');
    t.equal(eth0?.address, firmwareMac(pods[0]!.vf), 'the eSwitch forgot the VF MACs (pod sees the firmware default)');
    t.equal((await ping(pods[0]!, peer.ip, { count: 1, waitS: 0.3 })).received, 0, 'no traffic while the DPU is down');

    const fig = await startDpuMeasured(run, d1, pods, peer.ip);
    t.ok(fig.perPod.every((x) => x !== undefined), `every pod's traffic resumed without any CNI call (${JSON.stringify(fig.perPod)})`);
    t.comment(JSON.stringify({ figure: 'time to traffic after a DPU restart (8 pods)', p50_ms: fig.p50Ms, max_ms: fig.maxMs, per_pod_ms: fig.perPod, daemons_ms: Math.round(fig.timings.daemonsMs), agent_ready_ms: Math.round(fig.timings.agentReadyMs) }));

    const after = await leaseMap(d1);
    for (const p of pods) {
      const rep = repName(p.vf);
      t.equal(after.get(rep), p.lsp, `${p.name}: same lease, same representor and iface-id`);
      const [pe] = await linkShow(p.netns, 'eth0');
      t.equal(pe?.address, p.mac, `${p.name}: VF MAC restored from the lease`);
      t.ok(isUp((await linkShow(d1.ns, rep))[0]), `${p.name}: ${rep} quarantine lifted`);
    }
    await poll('the orphan lease released', async () => ((await leaseMap(d1)).has(repName(orphan.vf)) ? undefined : true), { tries: 60, intervalMs: 250 });
    t.pass('the lease whose LSP was deleted while the DPU was down is released after the restart');
    t.notOk(isUp((await linkShow(d1.ns, repName(orphan.vf)))[0]), 'and its representor is quarantined again');
    t.ok(await delPod(run, { namespace: 'vl', name: 'orphan' }), 'the runtime DEL for it still succeeds');
    t.same((await checkConsistency(run)).problems, [], 'consistent: nothing leaked, free VFs quarantined and scrubbed');
    await Promise.all(refs.map((r) => delPod(run, r)));
    await removeVfs(run, d1, [8]);
  });

  t.test('two attachments per pod: eth0 (NS_NAME) and net1 (NS_NAME_net1) both carry traffic; DEL of one leaves the other', async (t) => {
    const { pod } = await addPod(run, { namespace: 'vl', name: 'multi' }, { node: 1 });
    const net1 = await addAttachment(run, pod, 'net1');
    const leases = await leaseMap(d1);
    t.equal(leases.get(repName(pod.vf)), 'vl_multi', 'eth0 on LSP vl_multi');
    t.equal(leases.get(repName(net1.vf)), 'vl_multi_net1', 'net1 on its own LSP vl_multi_net1');
    t.not(net1.vf, pod.vf, 'on another VF');
    const [n1] = await linkShow(pod.netns, 'net1');
    t.equal(n1?.address, net1.mac, 'net1 carries its own LSP MAC');
    const defaultRoute = () => sh(inNs(pod.netns, ['ip', '-4', 'route', 'show', 'default']));
    t.match(await defaultRoute(), /dev eth0/, 'the default route stays on eth0 (net1 adds none)');

    const txOf = async (j: number) => (await linkShow(d1.ns, repName(j), true))[0]?.stats64?.rx?.packets ?? 0;
    const [e0, e1] = [await txOf(pod.vf), await txOf(net1.vf)];
    t.equal((await ping(pod, peer.ip, { count: 3, src: 'eth0' })).received, 3, 'ping -I eth0 reaches the pod on dpu2');
    t.equal((await ping(pod, peer.ip, { count: 3, src: 'net1' })).received, 3, 'ping -I net1 reaches the pod on dpu2');
    t.ok((await txOf(pod.vf)) - e0 >= 3 && (await txOf(net1.vf)) - e1 >= 3, 'each through its own representor');
    t.same((await checkConsistency(run)).problems, [], 'one lease per attachment, consistent');

    t.ok(await delAttachment(run, pod, 'net1'), 'CNI DEL net1');
    t.notOk((await leaseMap(d1)).has(repName(net1.vf)), 'net1 lease released');
    t.equal((await ping(pod, peer.ip, { count: 3, src: 'eth0' })).received, 3, 'eth0 still works');
    t.match(await defaultRoute(), /via 198\.18\.0\.1 dev eth0/, 'and keeps its default route');
    const check = await runCni(run, d1, 'CHECK', cniPod(pod));
    t.equal(check.exit, 0, `CNI CHECK eth0 passes: ${JSON.stringify(check.out)}`);
    t.same((await checkConsistency(run)).problems, [], 'consistent after the DEL of net1');

    await addAttachment(run, pod, 'net1');
    t.ok(await delPod(run, { namespace: 'vl', name: 'multi' }), 'pod DEL with both attachments');
    t.same((await checkConsistency(run)).problems, [], 'both released');
  });

  t.test('hot pool change while allocating: grow 8 → 16 under a stream of add/del, shrink back; a removed leased VF is a broken lease', async (t) => {
    const added = Array.from({ length: 8 }, (_, i) => 8 + i);
    const live: PodState[] = [];
    const failures: string[] = [];
    let n = 0;
    const addOne = async () => {
      const ref = { namespace: 'vl', name: `h${n++}` };
      try {
        live.push((await addPod(run, ref, { node: 2 })).pod);
      } catch (err) {
        failures.push(String(err)); // only vf-pool-empty is acceptable before the growth
      }
    };
    let quarantinedAfterTries = -1;
    const grow = (async () => {
      await addVfs(run, d2, added);
      // Created up (a new representor is the agent's to quarantine): bounded wait for it.
      quarantinedAfterTries = await poll('new representors quarantined', async () => ((await unquarantined(d2, added)).length === 0 ? 1 : undefined), { tries: 100, intervalMs: 20 }).then(() => 1, () => -1);
    })();
    // The stream: 12 adds two at a time, 2 deletes after every other wave; the growth lands in the middle.
    for (let w = 0; w < 6; w++) {
      await Promise.all([addOne(), addOne()]);
      if (w % 2 === 1) await Promise.all(live.splice(0, 1).map((p) => delPod(run, p)));
    }
    await grow;
    t.equal(quarantinedAfterTries, 1, 'the 8 new representors were quarantined (down, on no bridge) right after they appeared');
    t.ok(failures.every((f) => /vf-pool-empty/.test(f)), `failures only for an empty pool: ${JSON.stringify(failures)}`);
    t.ok(live.some((p) => p.vf >= 8), `allocations used the new VFs (${live.map((p) => p.vf).join(',')})`);
    const view = await dpuLeaseView(d2);
    t.same(view.foreign, [], 'no dangling br-int port');
    t.same((await checkConsistency(run)).problems, [], 'consistent at 16');

    // Shrink: pods on the added VFs go, then those VFs, with more adds/dels on the low VFs meanwhile.
    await Promise.all(live.filter((p) => p.vf >= 8).map((p) => delPod(run, p)));
    for (let i = live.length - 1; i >= 0; i--) if (live[i]!.vf >= 8) live.splice(i, 1);
    while (live.length > 3) await delPod(run, live.pop()!);
    await Promise.all([removeVfs(run, d2, added), addOne(), addOne()]);
    t.same(await presentVfs(d2), [0, 1, 2, 3, 4, 5, 6, 7], 'back to 8 VFs');
    await poll('the agent sees 8', async () => (metricValue((await dpuHttpGet(d2, '/metrics')).body, 'dpu_vf_pool', { state: 'total' }) === 8 ? true : undefined), { tries: 40, intervalMs: 100 });
    t.same((await checkConsistency(run)).problems, [], 'consistent at 8, no dangling port for the removed representors');

    // A leased VF vanishes (VF reset / host lowered sriov_numvfs): the lease is broken, not silently dropped.
    const victim = live[0]!;
    const j = victim.vf;
    await removeVfs(run, d2, [j]);
    const hs = await HostSide.start(run, d2);
    t.teardown(() => hs.close());
    const state = await poll('GetVf to report BROKEN', async () => {
      const r = await hs.call('getVf', { attachment: keyOf(victim) }, { as: 'host2' });
      const s = (r.res?.['vf'] as { state?: string } | undefined)?.state;
      return s === 'VF_STATE_BROKEN' ? s : undefined;
    }, { tries: 40, intervalMs: 100 });
    t.equal(state, 'VF_STATE_BROKEN', 'GetVf reports the lease broken');
    const check = await runCni(run, d2, 'CHECK', cniPod(victim));
    t.equal(cniError(check)?.code, 104, `CNI CHECK fails for it (${cniError(check)?.code} ${cniError(check)?.msg}: ${cniError(check)?.details})`);
    const m = (await dpuHttpGet(d2, '/metrics')).body;
    t.equal(metricValue(m, 'dpu_vf_pool', { state: 'broken' }), 1, 'dpu_vf_pool{state="broken"} 1');
    t.equal(metricValue(m, 'dpu_vf_pool', { state: 'free' }), 7 - (live.length - 1) - 1, 'and the broken lease takes none of the 7 present VFs');
    t.ok(await delPod(run, victim), 'the runtime DEL releases the broken lease');
    live.splice(0, 1);
    t.notOk((await dpuLeaseView(d2)).ports.includes(repName(j)), 'its port is off br-int');
    await addVfs(run, d2, [j]);
    await poll(`${repName(j)} back and quarantined`, async () => ((await unquarantined(d2, [j])).length === 0 ? true : undefined), { tries: 50, intervalMs: 50 });
    const [vf] = await linkShow(d2.hostNs, vfName(j));
    await poll(`${vfName(j)} scrubbed`, async () => ((await linkShow(d2.hostNs, vfName(j)))[0]?.address === scrubMac(0, j) ? true : undefined), { tries: 50, intervalMs: 50 });
    t.ok(vf, 'the re-added VF is in the host');
    await Promise.all(live.map((p) => delPod(run, p)));
    t.same((await checkConsistency(run)).problems, [], 'consistent at the end');
  });

  t.test(`property: ${STEPS} random steps of pod add/del and agent/DPU restarts keep the invariants (seed ${SEED})`, async (t) => {
    type Step = { kind: 'add'; node: 1 | 2 } | { kind: 'del'; pick: number } | { kind: 'restart-agent'; node: 1 | 2 } | { kind: 'restart-dpu'; node: 1 | 2 };
    const node = fc.constantFrom<1 | 2>(1, 2);
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 9, arbitrary: node.map((n) => ({ kind: 'add' as const, node: n })) },
      { weight: 7, arbitrary: fc.nat(1000).map((pick) => ({ kind: 'del' as const, pick })) },
      { weight: 1, arbitrary: node.map((n) => ({ kind: 'restart-agent' as const, node: n })) },
      { weight: 1, arbitrary: node.map((n) => ({ kind: 'restart-dpu' as const, node: n })) },
    );
    const [steps] = fc.sample(fc.array(step, { minLength: STEPS, maxLength: STEPS }), { seed: SEED, numRuns: 1 });
    // At most two whole-DPU restarts (the rest become deletes): they cost the most.
    let dpuRestarts = 0;
    const plan = (steps ?? []).map((s, i): Step => (s.kind === 'restart-dpu' && ++dpuRestarts > 2 ? { kind: 'del', pick: i } : s));
    const counts: Record<string, number> = {};
    const problems: string[] = [];
    let n = 0;
    let fullChecks = 0;
    const t0 = performance.now();
    for (const [i, s] of plan.entries()) {
      const pods = Object.values(run.state.pods).filter((p) => p.namespace === 'prop');
      let did: string = s.kind;
      if (s.kind === 'add') {
        const free = (await presentVfs(dpuOf(run, s.node))).length - Object.values(run.state.pods).filter((p) => p.node === s.node).length;
        if (free > 0) {
          await addPod(run, { namespace: 'prop', name: `p${n++}` }, { node: s.node });
        } else if (pods.length > 0) {
          did = 'del(full)';
          await delPod(run, pods[0]!);
        }
      } else if (s.kind === 'del') {
        if (pods.length > 0) await delPod(run, pods[s.pick % pods.length]!);
        else did = 'noop';
      } else if (s.kind === 'restart-agent') {
        await restartAgent(run, dpuOf(run, s.node), i % 2 === 0 ? 'SIGKILL' : 'SIGTERM');
      } else {
        await restartDpu(run, dpuOf(run, s.node));
      }
      counts[did] = (counts[did] ?? 0) + 1;
      const restarted = s.kind === 'restart-agent' || s.kind === 'restart-dpu' ? s.node : undefined;
      if (restarted !== undefined) {
        // Traffic after a restart, bounded: one pod of that node to a pod on the other.
        const onNode = Object.values(run.state.pods).filter((p) => p.node === restarted && p.name !== 'peer');
        const target = restarted === 2 ? Object.values(run.state.pods).find((p) => p.node === 1) : peer;
        if (onNode[0] && target && (await triesUntil(onNode[0], target.ip, 'reachable', 30)) === undefined) problems.push(`step ${i} ${s.kind}: ${podKey(onNode[0])} has no traffic`);
      }
      // The full check (OVSDB, links of every VF, the agent's /healthz and /metrics) after each whole-DPU
      // restart and every 25 steps; the cheap one (leases ↔ live attachments, from OVSDB) after every other step.
      if (s.kind === 'restart-dpu' || i % 25 === 24 || i === plan.length - 1) {
        fullChecks++;
        for (const p of (await checkConsistency(run)).problems) problems.push(`step ${i} (${did}): ${p}`);
      } else {
        // Cheap after every step: one lease per live attachment, none for anything else.
        for (const d of [d1, d2]) {
          const leased = [...(await leaseMap(d)).values()];
          const want = Object.values(run.state.pods).filter((p) => p.node === d.k).map((p) => p.lsp);
          if (leased.length !== want.length || !want.every((l) => leased.filter((x) => x === l).length === 1)) problems.push(`step ${i} (${did}): ${d.name} leases ${JSON.stringify(leased.sort())} ≠ pods ${JSON.stringify(want.sort())}`);
        }
      }
      if (problems.length > 0) break;
    }
    t.same(problems, [], `${plan.length} steps (${JSON.stringify(counts)}), ${fullChecks} full consistency checks`);
    t.comment(JSON.stringify({ property: 'vf lifecycle random walk', seed: SEED, steps: plan.length, counts, full_checks: fullChecks, problems: problems.length, ms: Math.round(performance.now() - t0) }));
    await Promise.all(Object.values(run.state.pods).filter((x) => x.namespace === 'prop').map((p) => delPod(run, p)));
    t.same((await checkConsistency(run)).problems, [], 'consistent after removing every pod');
  });
}
