// A DPU and its host: `dpuK` runs ovsdb-server, ovs-vswitchd (userspace datapath),
// ovn-controller and dpu-agent; `hostK` holds the VF ends of the VF pool.
import { mkdirSync, writeFileSync } from 'node:fs';
import { UNDERLAY_BRIDGE } from './central.ts';
import { addVeth, ipn, linkUp } from './netns.ts';
import { dpuName, dpuNs, hostNs, repName, tunnelIp, UNDERLAY_CIDR_BITS, vfName } from './plan.ts';
import { startOvsDaemon } from './procs.ts';
import type { LabRun } from './run.ts';
import { inNs, sh } from './sh.ts';
import type { DpuState } from './state.ts';

const VSWITCH_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

/** argv of ovs-vsctl against this DPU's DB, bounded by `timeoutS`. */
export function vsctlArgv(d: DpuState, args: readonly string[], timeoutS = 10): string[] {
  return ['ovs-vsctl', `--db=unix:${d.dir}/db.sock`, `--timeout=${timeoutS}`, ...args];
}

/** ovs-vsctl against this DPU's DB; a non-zero exit throws. */
export function vsctl(d: DpuState, ...args: string[]): Promise<string> {
  return sh(vsctlArgv(d, args), { timeoutMs: 15_000 });
}

/** Creates netns, uplink, VF pool and the DPU's OVS daemons; the chassis is left to the agent. */
export async function upDpu(run: LabRun, k: number): Promise<DpuState> {
  const c = run.state.central;
  if (!c) throw new Error('central must be up first');
  const d: DpuState = {
    k,
    name: dpuName(k),
    ns: dpuNs(run.prefix, k),
    hostNs: hostNs(run.prefix, k),
    dir: run.mkdir(dpuName(k)),
    tunnelIp: tunnelIp(k),
    vfs: run.state.options.vfs,
  };
  run.state.dpus = run.state.dpus.filter((x) => x.k !== k);
  run.state.dpus.push(d);
  run.save();
  await run.addNetns(d.ns);
  await run.addNetns(d.hostNs);

  // Uplink: p0 in dpuK ⇄ ulK on the underlay bridge in central.
  await addVeth(c.ns, `ul${k}`, d.ns, 'p0');
  run.recordLink(`${c.ns}/ul${k}<->${d.ns}/p0`);
  await ipn(c.ns, 'link', 'set', `ul${k}`, 'master', UNDERLAY_BRIDGE, 'up');
  await linkUp(d.ns, 'p0');

  await upVfPool(run, d);

  // OVS for this DPU: own DB, vswitchd with the userspace datapath. vswitchd and
  // ovn-controller share OVS_RUNDIR: ovn-controller finds br-int.mgmt there (DESIGN §6).
  const env = { OVS_RUNDIR: d.dir, OVN_RUNDIR: d.dir, OVS_DBDIR: d.dir };
  await sh(['ovsdb-tool', 'create', `${d.dir}/conf.db`, VSWITCH_SCHEMA]);
  await startOvsDaemon(
    { name: `${d.name}/ovsdb-server`, ns: d.ns, dir: d.dir, stem: 'ovsdb-server', env, argv: ['ovsdb-server', `${d.dir}/conf.db`, `--remote=punix:${d.dir}/db.sock`] },
    run.recordProc,
  );
  await vsctl(d, '--no-wait', 'init');
  await startOvsDaemon(
    { name: `${d.name}/ovs-vswitchd`, ns: d.ns, dir: d.dir, stem: 'ovs-vswitchd', env, argv: ['ovs-vswitchd', `unix:${d.dir}/db.sock`, '--disable-system'] },
    run.recordProc,
  );

  // The underlay (not the chassis): br-phy holds p0 and carries the tunnel IP.
  // same as: ovs-vsctl add-br br-phy -- set Bridge br-phy datapath_type=netdev -- add-port br-phy p0
  await vsctl(d, '--may-exist', 'add-br', 'br-phy', '--', 'set', 'Bridge', 'br-phy', 'datapath_type=netdev', '--', '--may-exist', 'add-port', 'br-phy', 'p0');
  await ipn(d.ns, 'addr', 'add', `${d.tunnelIp}/${UNDERLAY_CIDR_BITS}`, 'dev', 'br-phy');
  await linkUp(d.ns, 'br-phy');
  // The kernel leaves TCP checksums to "hardware" on the tap; the userspace datapath
  // forwards the frame as is, so the peer would drop it: checksum in software.
  await sh(inNs(d.ns, ['ethtool', '-K', 'br-phy', 'tx', 'off']));

  await startOvsDaemon(
    { name: `${d.name}/ovn-controller`, ns: d.ns, dir: d.dir, stem: 'ovn-controller', env, argv: ['ovn-controller', `unix:${d.dir}/db.sock`] },
    run.recordProc,
  );
  return d;
}

/**
 * N veth pairs: VF end `vfJ` in hostK, representor `pf0vfJ` in dpuK (up, in no
 * bridge until plugged). The host side also gets an emulated sysfs tree,
 * `<run>/hostK/sys/class/net/pf0/device/virtfnJ/net/vfJ`, as host-shim will read it.
 */
async function upVfPool(run: LabRun, d: DpuState): Promise<void> {
  const sys = `${run.state.dir}/host${d.k}/sys/class/net/pf0/device`;
  for (let j = 0; j < d.vfs; j++) {
    await addVeth(d.hostNs, vfName(j), d.ns, repName(j));
    await linkUp(d.ns, repName(j));
    mkdirSync(`${sys}/virtfn${j}/net/${vfName(j)}`, { recursive: true });
  }
  run.recordLink(`${d.hostNs}/vf0..${d.vfs - 1}<->${d.ns}/pf0vf0..${d.vfs - 1}`);
  writeFileSync(`${sys}/sriov_numvfs`, `${d.vfs}\n`);
}

/** The agent's JSON config for this DPU (dpu-agent/src/config.ts). */
export function agentConfig(run: LabRun, d: DpuState): object {
  const c = run.state.central;
  if (!c) throw new Error('central is not up');
  return {
    ovsdb: { remote: `unix:${d.dir}/db.sock` },
    chassis: {
      systemId: d.name,
      hostname: d.name,
      ovnRemote: c.sbRemotes.join(','),
      encapType: 'geneve',
      encapIp: d.tunnelIp,
      bridge: 'br-int',
      datapathType: 'netdev',
      transportZones: [],
      hwOffload: false,
      tcPolicy: 'none',
    },
    // The lab still plugs pods with ovs-vsctl (plug.ts) until it attaches through host-shim;
    // the bridge audit would rightly remove those ports, so it stays off here until then.
    reconcile: { auditBridge: false },
    // ovn-controller shares the DPU's run dir (DESIGN §6): the agent probes its SB connection there.
    ovn: { controllerRundir: d.dir },
    // Each DPU netns has its own loopback, so the default management port never collides.
    log: { level: 'info' },
  };
}

/** Pings every other DPU's tunnel IP once so the userspace datapath has resolved its next hops (DESIGN §6). */
export async function warmUnderlay(dpus: readonly DpuState[]): Promise<void> {
  await Promise.all(
    dpus.flatMap((a) =>
      dpus
        .filter((b) => b !== a)
        .map((b) => sh(inNs(a.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', '-q', b.tunnelIp])).catch(() => undefined)),
    ),
  );
}
