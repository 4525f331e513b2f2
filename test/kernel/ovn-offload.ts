// OVN on OVS's KERNEL datapath with TC offload, end to end in the kernel lane (issue 18,
// DESIGN §7): what a BlueField's eSwitch would carry for OVN traffic, in software.
//   central: NB/SB ovsdb-servers + ovn-northd and the underlay bridge br-ul (labkit/central.ts)
//   chK (K=1,2): ovsdb-server, ovs-vswitchd (datapath_type=system, hw-offload=true,
//        tc-policy=none: the default NVIDIA's OVS-kernel offload setup keeps, rules in both
//        paths; skip_sw would refuse every flow on a veth), ovn-controller; uplink p0 on br-ul
//        carries the Geneve tunnel (the guest's geneve module: genev_sys_6081)
//   pods: eth0 in their own netns ⇄ representor pf0vfJ in chK's br-int (VF/representor = veth)
// Logical: one switch, pod1 + pod3 on ch1, pod2 on ch2; port group with a stateful allow ACL
// (tcp 5201: allow-related, so conntrack), a deny ACL (tcp 6000: drop) and ICMP allowed
// stateless (no conntrack). OVS puts conntrack flows into TC only when the kernel shares
// recirc ids with TC (CONFIG_NET_TC_SKB_EXT, off in Debian's 6.1): on this kernel only the
// stateless flows are offloaded, and the coverage metric must say so.
// Traffic: ping and TCP pod1 ⇄ pod2 (Geneve both ways), TCP to 6000 refused by the ACL.
// Then per chassis test/helpers/ovn-probe.ts (in chK's netns: netlink is per netns) checks our
// dump, decode, collector, metrics (offload coverage), TC audit and, on ch1, the quarantine
// of pod3's freed representor. The agent's components run there, not the whole agent: its
// host API, PKI and NB client add nothing to what the kernel datapath does with OVN's flows.
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { nbDb, upCentral, UNDERLAY_BRIDGE } from '../../scripts/labkit/central.ts';
import { addVeth, delNetns, ipn, linkUp } from '../../scripts/labkit/netns.ts';
import { centralIp, macForIp, POD_CIDR_BITS, podIp, sbClientPort, tunnelIp, UNDERLAY_CIDR_BITS } from '../../scripts/labkit/plan.ts';
import { startOvsDaemon, stopProc } from '../../scripts/labkit/procs.ts';
import { LabRun } from '../../scripts/labkit/run.ts';
import { inNs, poll, run, sh } from '../../scripts/labkit/sh.ts';
import { newState } from '../../scripts/labkit/state.ts';
import { ChassisReconciler } from '../../dpu-agent/src/chassis/reconciler.ts';
import type { ChassisConfig } from '../../dpu-agent/src/config.ts';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { check, kernelTest, requireModules } from '../helpers/kernel.ts';

const VSWITCH_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
const PROBE = fileURLToPath(new URL('../helpers/ovn-probe.ts', import.meta.url));
const TCP_OK = 5201;
const TCP_DENIED = 6000;

/** The chassis as the agent's config would have it: kernel datapath, hw-offload, tc-policy none (BlueField's OVS-kernel default). */
const chassisConfig = (name: string, encapIp: string): ChassisConfig => ({
  systemId: name,
  hostname: name,
  ovnRemote: `tcp:${centralIp()}:${sbClientPort(0)}`,
  encapType: 'geneve',
  encapIp,
  bridge: 'br-int',
  datapathType: 'system',
  transportZones: [],
  hwOffload: true,
  tcPolicy: 'none',
});

interface Pod {
  name: string;
  chassis: 1 | 2;
  rep: string;
  ip: string;
  mac: string;
  ns: string;
}

await kernelTest('ovn-offload', async (defer) => {
  requireModules('openvswitch', 'cls_flower', 'sch_ingress', 'act_mirred', 'act_gact', 'act_tunnel_key', 'act_ct', 'geneve', 'udp_tunnel', 'ip6_udp_tunnel', 'nf_conntrack', 'veth', 'bridge');
  const t0 = performance.now();
  const prefix = `kov${randomBytes(2).toString('hex')}`;
  const lab = new LabRun(newState(prefix, { dpus: 2, sbCluster: 1, vfs: 0 })); // its dir: /run/dpu-lab/<prefix>
  defer(() => rmSync(lab.state.dir, { recursive: true, force: true }));
  defer(async () => {
    for (const p of [...lab.state.procs].reverse()) await stopProc(p);
    for (const ns of [...lab.state.netns].reverse()) await delNetns(ns); // also each netns's ovs-system datapath
  });

  await upCentral(lab);
  const nbctl = (...a: string[]) => sh(['ovn-nbctl', `--db=${nbDb(lab)}`, '--timeout=60', ...a], { timeoutMs: 70_000 });
  const pods: Pod[] = [
    { name: 'pod1', chassis: 1, rep: 'pf0vf0', ip: podIp(1, 0), mac: macForIp(podIp(1, 0)), ns: `${prefix}-pod1` },
    { name: 'pod2', chassis: 2, rep: 'pf0vf0', ip: podIp(2, 0), mac: macForIp(podIp(2, 0)), ns: `${prefix}-pod2` },
    { name: 'pod3', chassis: 1, rep: 'pf0vf1', ip: podIp(1, 1), mac: macForIp(podIp(1, 1)), ns: `${prefix}-pod3` },
  ];
  const [pod1, pod2, pod3] = pods as [Pod, Pod, Pod];

  const chassis = [1, 2].map((k) => ({ k, name: `ch${k}`, ns: `${prefix}-ch${k}`, dir: lab.mkdir(`ch${k}`) }));
  const vsctl = (c: (typeof chassis)[number], ...a: string[]) => sh(['ovs-vsctl', `--db=unix:${c.dir}/db.sock`, '--timeout=60', ...a], { timeoutMs: 70_000 });
  const reconcilers: ChassisReconciler[] = [];
  for (const c of chassis) {
    await lab.addNetns(c.ns);
    await sh(inNs(c.ns, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']));
    await addVeth(lab.state.central!.ns, `ul${c.k}`, c.ns, 'p0');
    await ipn(lab.state.central!.ns, 'link', 'set', `ul${c.k}`, 'master', UNDERLAY_BRIDGE, 'up');
    await ipn(c.ns, 'addr', 'add', `${tunnelIp(c.k)}/${UNDERLAY_CIDR_BITS}`, 'dev', 'p0');
    await linkUp(c.ns, 'p0');
    const env = { OVS_RUNDIR: c.dir, OVN_RUNDIR: c.dir, OVS_DBDIR: c.dir };
    await sh(['ovsdb-tool', 'create', `${c.dir}/conf.db`, VSWITCH_SCHEMA]);
    await startOvsDaemon({ name: `${c.name}/ovsdb-server`, ns: c.ns, dir: c.dir, stem: 'ovsdb-server', env, argv: ['ovsdb-server', `${c.dir}/conf.db`, `--remote=punix:${c.dir}/db.sock`] }, lab.recordProc);
    // A test knob, not the agent's: max-idle 10 min keeps the datapath flows alive across
    // the probes' start under TCG (default 10 s idle).
    await vsctl(c, '--no-wait', 'init', '--', 'set', 'Open_vSwitch', '.', 'other_config:max-idle=600000');
    // The agent's chassis reconciler owns the chassis identity, hw-offload/tc-policy and
    // br-int (dpu-agent/src/chassis), through its own OVSDB client; it keeps running (drift
    // repair) until the end. hw-offload and tc-policy are read once at ovs-vswitchd start-up.
    const client = new OvsdbClient({ remotes: `unix:${c.dir}/db.sock`, database: 'Open_vSwitch' });
    await client.start();
    defer(() => client.stop());
    const reconciler = new ChassisReconciler({ client, config: chassisConfig(c.name, tunnelIp(c.k)), logger: silentLogger(), repairDrift: true });
    await reconciler.start();
    defer(() => reconciler.stop());
    reconcilers.push(reconciler);
    await startOvsDaemon({ name: `${c.name}/ovs-vswitchd`, ns: c.ns, dir: c.dir, stem: 'ovs-vswitchd', env, argv: ['ovs-vswitchd', `unix:${c.dir}/db.sock`] }, lab.recordProc);
    await startOvsDaemon({ name: `${c.name}/ovn-controller`, ns: c.ns, dir: c.dir, stem: 'ovn-controller', env, argv: ['ovn-controller', `unix:${c.dir}/db.sock`] }, lab.recordProc);
  }
  console.log(`ovn-offload: central + 2 chassis up (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  await nbctl('ls-add', 'ls');
  for (const p of pods) {
    const c = chassis[p.chassis - 1]!;
    await nbctl('lsp-add', 'ls', p.name, '--', 'lsp-set-addresses', p.name, `${p.mac} ${p.ip}`, '--', 'lsp-set-port-security', p.name, `${p.mac} ${p.ip}`,
      '--', 'set', 'Logical_Switch_Port', p.name, `options:requested-chassis=${c.name}`);
    await lab.addNetns(p.ns);
    await sh(inNs(p.ns, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']));
    await addVeth(p.ns, 'eth0', c.ns, p.rep, 1400);
    await ipn(p.ns, 'link', 'set', 'eth0', 'address', p.mac);
    await ipn(p.ns, 'addr', 'add', `${p.ip}/${POD_CIDR_BITS}`, 'dev', 'eth0');
    await linkUp(p.ns, 'eth0');
    await linkUp(c.ns, p.rep);
    await vsctl(c, 'add-port', 'br-int', p.rep, '--', 'set', 'Interface', p.rep, `external_ids:iface-id=${p.name}`);
  }
  await nbctl('pg-add', 'pg_pods', ...pods.map((p) => p.name));
  // ICMP stateless both ways: no conntrack, so OVS can put its flows into TC on this kernel.
  await nbctl('--type=port-group', 'acl-add', 'pg_pods', 'from-lport', '1002', 'inport == @pg_pods && ip4 && icmp4', 'allow-stateless');
  await nbctl('--type=port-group', 'acl-add', 'pg_pods', 'to-lport', '1002', 'outport == @pg_pods && ip4 && icmp4', 'allow-stateless');
  await nbctl('--type=port-group', 'acl-add', 'pg_pods', 'to-lport', '1001', `outport == @pg_pods && ip4 && tcp.dst == ${TCP_OK}`, 'allow-related');
  await nbctl('--type=port-group', 'acl-add', 'pg_pods', 'to-lport', '1000', `outport == @pg_pods && ip4 && tcp.dst == ${TCP_DENIED}`, 'drop');
  await nbctl('--wait=hv', 'sync');
  for (const p of pods) {
    const c = chassis[p.chassis - 1]!;
    await poll(`${p.name}: ovn-installed`, async () => ((await vsctl(c, 'get', 'Interface', p.rep, 'external_ids')).includes('ovn-installed') ? true : undefined), { tries: 120, intervalMs: 500 });
  }
  console.log(`ovn-offload: NB set up, ports installed (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  // The first overlay packets are lost until the tunnel next hop resolves (DESIGN §6).
  await sh(inNs(chassis[0]!.ns, ['ping', '-c', '2', '-W', '2', tunnelIp(2)]));
  await poll('pod1 -> pod2 ping over Geneve', async () => ((await run(inNs(pod1.ns, ['ping', '-c', '1', '-W', '3', pod2.ip]))).code === 0 ? true : undefined), { tries: 20, intervalMs: 500 });
  const ping = await run(inNs(pod1.ns, ['ping', '-c', '10', '-i', '0.2', '-W', '3', pod2.ip]), { timeoutMs: 60_000 });
  check(ping.code === 0, `ping pod1 -> pod2 failed: ${ping.stdout}${ping.stderr}`);
  const ping3 = await run(inNs(pod3.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '3', pod2.ip]), { timeoutMs: 60_000 });
  check(ping3.code === 0, `ping pod3 -> pod2 failed: ${ping3.stdout}${ping3.stderr}`);

  // TCP allowed by the stateful ACL: busybox nc, one connection, 200 kB.
  const server = run(inNs(pod2.ns, ['busybox', 'nc', '-l', '-p', String(TCP_OK)]), { timeoutMs: 90_000 });
  await new Promise((r) => setTimeout(r, 1500));
  const sent = await run(['sh', '-c', `head -c 200000 /dev/zero | ip netns exec ${pod1.ns} busybox nc -w 5 ${pod2.ip} ${TCP_OK}`], { timeoutMs: 60_000 });
  const got = await server;
  check(sent.code === 0 && got.code === 0 && got.stdout.length === 200000, `TCP ${TCP_OK} pod1 -> pod2: client ${sent.code} ${sent.stderr}, server ${got.code} received ${got.stdout.length} bytes`);
  // TCP to the denied port: the SYN is dropped, so the connect times out.
  const denied = await run(inNs(pod1.ns, ['busybox', 'nc', '-w', '3', pod2.ip, String(TCP_DENIED)]), { input: '', timeoutMs: 30_000 });
  check(denied.code !== 0, `TCP ${TCP_DENIED} pod1 -> pod2 passed the deny ACL`);
  console.log(`ovn-offload: ping, TCP ${TCP_OK} (200000 B) pass, TCP ${TCP_DENIED} dropped (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  // pod3 is deleted (LSP gone, its representor freed from br-int): ch1's probe quarantines it.
  await nbctl('lsp-del', pod3.name);
  await vsctl(chassis[0]!, 'del-port', 'br-int', pod3.rep);

  for (const c of chassis) {
    const reps = pods.filter((p) => p.chassis === c.k && p !== pod3).map((p) => p.rep);
    const probe = await run(inNs(c.ns, [process.execPath, '--jitless', '--import', 'tsx', PROBE]), {
      env: {
        ...process.env,
        PROBE_CHASSIS: c.name,
        PROBE_RUNDIR: c.dir,
        PROBE_DEVICES: [...reps, 'genev_sys_6081', 'p0'].join(','),
        PROBE_PING: c.k === 1 ? `${pod1.ns} ${pod2.ip} 5` : `${pod2.ns} ${pod1.ip} 5`,
        ...(c.k === 1 ? { PROBE_QUARANTINE: `${pod3.rep} ${pod3.ns} ${pod2.ip} ${pod2.mac}` } : {}),
      },
      timeoutMs: 240_000,
    });
    process.stdout.write(probe.stdout);
    check(probe.code === 0, `${c.name}: probe failed (exit ${probe.code}): ${probe.stdout.split('\n').filter((l) => l.startsWith('not ok')).join(' ')}${probe.stderr}`);
  }
  // ovn-controller shares the DB with the agent: it must not have changed what the agent owns.
  const drift = reconcilers.map((r) => [...r.drift]).flat();
  check(drift.length === 0, `the chassis reconciler saw drift: ${JSON.stringify(drift)}`);
  console.log(`ovn-offload: both chassis checked, the agent's chassis reconciler saw no drift (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
});
