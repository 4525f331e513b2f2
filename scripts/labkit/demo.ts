// ./scripts/demo: a 2-DPU lab, a pod on each host, and the checks that show the
// trust split working: overlay traffic over Geneve, a policy enforced, a forged
// MAC dropped. Prints a summary table and tears the lab down (unless --keep).
import { parseArgs } from 'node:util';
import { dpuHttpGet, metricValue } from './consistency.ts';
import { linkShow } from './netns.ts';
import { randomPrefix, validatePrefix } from './plan.ts';
import { addPod, dpuOf } from './pods.ts';
import { allowPolicy, denyPolicy } from './policy.ts';
import { ping, spoof, tcpTransfer, triesUntil } from './probe.ts';
import type { LabRun } from './run.ts';
import { sh } from './sh.ts';
import { down, up } from './topology.ts';

interface Row {
  check: string;
  ok: boolean;
  ms: number;
  detail: string;
}

const out = (s: string) => process.stdout.write(`${s}\n`);

async function step(rows: Row[], check: string, fn: () => Promise<{ ok: boolean; detail: string }>): Promise<boolean> {
  const t0 = performance.now();
  let r: { ok: boolean; detail: string };
  try {
    r = await fn();
  } catch (err) {
    r = { ok: false, detail: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
  const row = { check, ok: r.ok, ms: Math.round(performance.now() - t0), detail: r.detail };
  rows.push(row);
  out(`${row.ok ? 'ok  ' : 'FAIL'} ${check} — ${row.detail} (${row.ms} ms)`);
  return r.ok;
}

/** Frames dpuK's uplink p0 has sent (the kernel's counter on the veth). */
async function uplinkTx(run: LabRun, k: number): Promise<number> {
  const [l] = await linkShow(dpuOf(run, k).ns, 'p0', true);
  return l?.stats64?.tx?.packets ?? 0;
}

/** Datapath flows of dpuK that push a Geneve header (same as: ovs-appctl dpctl/dump-flows | grep tnl_push). */
async function genevePushFlows(run: LabRun, k: number): Promise<number> {
  const d = dpuOf(run, k);
  const flows = await sh(['ovs-appctl', '-t', run.proc(`${d.name}/ovs-vswitchd`).ctl ?? '', 'dpctl/dump-flows']);
  return flows.split('\n').filter((l) => l.includes('tnl_push') && l.includes('geneve')).length;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { keep: { type: 'boolean' }, prefix: { type: 'string' } } });
  const prefix = values.prefix ? validatePrefix(values.prefix) : randomPrefix();
  const rows: Row[] = [];
  const t0 = performance.now();
  let run: LabRun | undefined;
  try {
    out(`dpu-agent demo — lab ${prefix}: 2 DPUs, OVN over Geneve, userspace OVS, all in netns`);
    await step(rows, 'lab up (2 DPUs, agents configure chassis)', async () => {
      run = await up({ prefix, dpus: 2, sbCluster: 1, vfs: 8 });
      return { ok: true, detail: `central + 2×(ovsdb-server, ovs-vswitchd, ovn-controller, dpu-agent)` };
    });
    if (!run) return finish(rows, t0, undefined, values.keep);
    const lab = run;
    const web = { namespace: 'demo', name: 'web' };
    const db = { namespace: 'demo', name: 'db' };
    let a = lab.state.pods['demo/web'];
    let b = lab.state.pods['demo/db'];
    await step(rows, 'pods attached via host-shim (CNI ADD → mTLS → agent)', async () => {
      const [ra, rb] = await Promise.all([addPod(lab, web, { node: 1 }), addPod(lab, db, { node: 2 })]);
      a = ra.pod;
      b = rb.pod;
      return { ok: true, detail: `web ${a.ip} vf${a.vf} on host1, db ${b.ip} vf${b.vf} on host2; CNI ADD incl. ovn-installed ${ra.installedMs}/${rb.installedMs} ms` };
    });
    if (!a || !b) return finish(rows, t0, lab, values.keep);
    const pa = a;
    const pb = b;
    await step(rows, 'cross-node ping over Geneve', async () => {
      const tx0 = await uplinkTx(lab, 1);
      const ab = await ping(pa, pb.ip, { count: 3 });
      const ba = await ping(pb, pa.ip, { count: 3 });
      const tx = (await uplinkTx(lab, 1)) - tx0;
      const push = await genevePushFlows(lab, 1);
      return {
        ok: ab.received === 3 && ba.received === 3 && tx >= 6 && push > 0,
        detail: `web→db ${ab.received}/3, db→web ${ba.received}/3; dpu1 p0 sent ${tx} frames, ${push} datapath flow(s) with tnl_push(geneve)`,
      };
    });
    await step(rows, 'TCP over the overlay', async () => {
      const r = await tcpTransfer(pa, pb, 16 * 1024 * 1024);
      return { ok: r.echoed === r.bytes, detail: `16 MiB web→db at ${r.mbit} Mbit/s` };
    });
    await step(rows, 'deny policy enforced (db ← *)', async () => {
      await denyPolicy(lab, db);
      const n = await triesUntil(pa, pb.ip, 'unreachable', 5);
      return { ok: n !== undefined, detail: n ? `web→db dropped from probe ${n} on` : 'still reachable after 5 probes' };
    });
    await step(rows, 'allow again', async () => {
      await allowPolicy(lab, db);
      const n = await triesUntil(pa, pb.ip, 'reachable', 5);
      return { ok: n !== undefined, detail: n ? `web→db reachable at probe ${n}` : 'still unreachable after 5 probes' };
    });
    await step(rows, 'MAC-spoofed frames dropped', async () => {
      const r = await spoof(pa, pb, 'mac');
      return { ok: r.delivered === 0 && r.controlBefore > 0 && r.controlAfter > 0, detail: `${r.sent} forged-MAC echoes sent, ${r.delivered} reached db (unforged control: ${r.controlBefore} before, ${r.controlAfter} after)` };
    });
    await step(rows, 'IP-spoofed packets dropped', async () => {
      const r = await spoof(pa, pb, 'ip');
      return { ok: r.delivered === 0 && r.controlAfter > 0, detail: `${r.sent} forged-IP echoes sent, ${r.delivered} reached db` };
    });
    await step(rows, 'agent metrics (mgmt listener, DPU side only)', async () => {
      const { status, body } = await dpuHttpGet(dpuOf(lab, 1), '/metrics');
      const v = (name: string, labels: Record<string, string> = {}): number => metricValue(body, name, labels) ?? 0;
      const meanMs = (phase: string): string => {
        const n = v('dpu_vf_attach_seconds_count', { phase });
        return n > 0 ? ((v('dpu_vf_attach_seconds_sum', { phase }) / n) * 1000).toFixed(1) : '-';
      };
      const leased = v('dpu_vf_pool', { state: 'leased' });
      const ok = status === 200 && leased >= 1 && v('dpu_vf_allocations_total', { result: 'ok' }) >= 1;
      return {
        ok,
        detail:
          `dpu1: VFs ${leased} leased / ${v('dpu_vf_pool', { state: 'free' })} free, attach mean agent ${meanMs('agent')} ms + ovn-installed ${meanMs('ovn_installed')} ms, ` +
          `host API ok ${v('dpu_host_api_requests_total', { method: 'AllocateVf', code: 'ok' })}, ovn-controller connected ${v('dpu_ovn_controller_connected')}, ` +
          `TC flows in_hw ${v('dpu_tc_flows', { state: 'in_hw' })} / not_in_hw ${v('dpu_tc_flows', { state: 'not_in_hw' })} (userspace datapath here: no TC; the kernel lane shows OVS flower offload)`,
      };
    });
    return finish(rows, t0, lab, values.keep);
  } catch (err) {
    out(`demo: ${err instanceof Error ? err.message : String(err)}`);
    return finish(rows, t0, run, values.keep, prefix, false);
  }
}

async function finish(rows: Row[], t0: number, run: LabRun | undefined, keep: boolean | undefined, prefix = run?.prefix, ok = true): Promise<number> {
  const allOk = ok && rows.length > 0 && rows.every((r) => r.ok);
  out('');
  const w = Math.max(...rows.map((r) => r.check.length), 5);
  out(`${'check'.padEnd(w)}  result  time`);
  out(`${'-'.repeat(w)}  ------  ------`);
  for (const r of rows) out(`${r.check.padEnd(w)}  ${(r.ok ? 'PASS' : 'FAIL').padEnd(6)}  ${String(r.ms).padStart(5)} ms`);
  out(`${'total'.padEnd(w)}  ${(allOk ? 'PASS' : 'FAIL').padEnd(6)}  ${String(Math.round(performance.now() - t0)).padStart(5)} ms`);
  out('');
  if (keep && prefix) {
    out(`lab ${prefix} left up. Look around:`);
    out(`  export DPU_LAB_PREFIX=${prefix}`);
    out('  scripts/lab status');
    out('  scripts/lab exec dpu1 -- ovs-vsctl show');
    out('  scripts/lab exec central -- ovn-nbctl show');
    out('  scripts/lab exec central -- ovn-sbctl show');
    out('  scripts/lab exec demo/web -- ping -c 3 198.18.2.10');
    out(`  less /run/dpu-lab/${prefix}/dpu1/dpu-agent.log`);
    out('  scripts/lab down');
  } else if (prefix) {
    const r = await down(prefix);
    out(`lab ${prefix} torn down (${r.killed.length} processes, ${r.netns.length} netns)${r.leftovers.length ? `; LEFT: ${r.leftovers.join(', ')}` : ''}`);
  }
  return allOk ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
