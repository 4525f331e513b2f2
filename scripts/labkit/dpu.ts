// A DPU and its host: `dpuK` runs ovsdb-server, ovs-vswitchd (userspace datapath),
// ovn-controller and dpu-agent; `hostK` holds the VF ends of the VF pool.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { UNDERLAY_BRIDGE } from './central.ts';
import { addVeth, ipn, linkShow, linkUp } from './netns.ts';
import {
  API_LINK_BITS, API_LINK_DPU_DEV, API_LINK_HOST_DEV, API_PORT, apiDpuIp, apiHostIp, dpuName, dpuNs, hostNs, METRICS_PORT, NB_PORT,
  POD_UID_KEY, repName, tunnelIp, UNDERLAY_CIDR_BITS, vfName,
} from './plan.ts';
import { caPath, crlPath, pemPair } from './pki.ts';
import { startOvsDaemon, stopProc, type ProcRecord } from './procs.ts';
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
  await upApiLink(run, d);

  // OVS for this DPU: own DB (kept across a DPU restart, as on a real DPU's disk).
  await sh(['ovsdb-tool', 'create', `${d.dir}/conf.db`, VSWITCH_SCHEMA]);
  await startDpuDaemons(run, d);
  return d;
}

const ovsEnv = (d: DpuState) => ({ OVS_RUNDIR: d.dir, OVN_RUNDIR: d.dir, OVS_DBDIR: d.dir });

/** argv of each DPU daemon (pidfile, log and --detach are added by startOvsDaemon). */
function daemonArgv(d: DpuState, which: DpuDaemon): string[] {
  if (which === 'ovsdb-server') return ['ovsdb-server', `${d.dir}/conf.db`, `--remote=punix:${d.dir}/db.sock`];
  if (which === 'ovs-vswitchd') return ['ovs-vswitchd', `unix:${d.dir}/db.sock`, '--disable-system'];
  return ['ovn-controller', `unix:${d.dir}/db.sock`];
}

export type DpuDaemon = 'ovsdb-server' | 'ovs-vswitchd' | 'ovn-controller';

function startDaemon(run: LabRun, d: DpuState, which: DpuDaemon): Promise<ProcRecord> {
  return startOvsDaemon({ name: `${d.name}/${which}`, ns: d.ns, dir: d.dir, stem: which, env: ovsEnv(d), argv: daemonArgv(d, which) }, run.recordProc);
}

/**
 * Starts dpuK's OVS/OVN daemons on its existing conf.db and (re)makes the underlay
 * side: `up` after creating the DB, `restartDpu` after a reboot. vswitchd and
 * ovn-controller share OVS_RUNDIR: ovn-controller finds br-int.mgmt there (DESIGN §6).
 */
export async function startDpuDaemons(run: LabRun, d: DpuState): Promise<void> {
  await startDaemon(run, d, 'ovsdb-server');
  await vsctl(d, '--no-wait', 'init');
  await startDaemon(run, d, 'ovs-vswitchd');

  // The underlay (not the chassis): br-phy holds p0 and carries the tunnel IP. br-phy is
  // ovs-vswitchd's tap, so after a restart the address is set again (replace: idempotent).
  // same as: ovs-vsctl add-br br-phy -- set Bridge br-phy datapath_type=netdev -- add-port br-phy p0
  await vsctl(d, '--may-exist', 'add-br', 'br-phy', '--', 'set', 'Bridge', 'br-phy', 'datapath_type=netdev', '--', '--may-exist', 'add-port', 'br-phy', 'p0');
  await ipn(d.ns, 'addr', 'replace', `${d.tunnelIp}/${UNDERLAY_CIDR_BITS}`, 'dev', 'br-phy');
  await linkUp(d.ns, 'br-phy');
  // The kernel leaves TCP checksums to "hardware" on the tap; the userspace datapath
  // forwards the frame as is, so the peer would drop it: checksum in software.
  await sh(inNs(d.ns, ['ethtool', '-K', 'br-phy', 'tx', 'off']));

  await startDaemon(run, d, 'ovn-controller');
}

/**
 * N veth pairs: VF end `vfJ` in hostK, representor `pf0vfJ` in dpuK (up, in no
 * bridge until plugged). The host side also gets an emulated sysfs tree,
 * `<run>/hostK/sys/class/net/pf0/device/virtfnJ/net/vfJ`, as host-shim will read it.
 */
async function upVfPool(run: LabRun, d: DpuState): Promise<void> {
  const n = d.vfs;
  d.vfs = 0;
  await addVfs(run, d, Array.from({ length: n }, (_, j) => j));
}

const sysfsDevice = (run: LabRun, d: DpuState): string => `${run.state.dir}/host${d.k}/sys/class/net/pf0/device`;

/** VF indexes present now: the representors in dpuK (the host may have moved VF ends into pods). */
export async function presentVfs(d: DpuState): Promise<number[]> {
  return (await linkShow(d.ns))
    .map((l) => /^pf0vf(\d+)$/.exec(l.ifname)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * Hot-adds VFs `indexes` (the host raising sriov_numvfs on a real DPU): the veth pair
 * (representor `pf0vfJ` in dpuK, created up — a new representor is the agent's to
 * quarantine), then the host's emulated sysfs entry. Used by `up` and at run time.
 */
export async function addVfs(run: LabRun, d: DpuState, indexes: readonly number[]): Promise<void> {
  const sys = sysfsDevice(run, d);
  for (const j of indexes) {
    await addVeth(d.hostNs, vfName(j), d.ns, repName(j));
    await linkUp(d.ns, repName(j));
    mkdirSync(`${sys}/virtfn${j}/net/${vfName(j)}`, { recursive: true });
  }
  if (indexes.length > 0) run.recordLink(`${d.hostNs}/vf{${indexes.join(',')}}<->${d.ns}/pf0vf{${indexes.join(',')}}`);
  d.vfs += indexes.length;
  writeFileSync(`${sys}/sriov_numvfs`, `${d.vfs}\n`);
  run.save();
}

/**
 * Hot-removes VFs (the host lowering sriov_numvfs, or a VF failing): deletes the
 * representor, which takes its veth peer with it wherever that is (host or pod netns),
 * and the sysfs entry. same as: ip -n dpuK link del pf0vfJ
 */
export async function removeVfs(run: LabRun, d: DpuState, indexes: readonly number[]): Promise<void> {
  const sys = sysfsDevice(run, d);
  for (const j of indexes) {
    await ipn(d.ns, 'link', 'del', 'dev', repName(j));
    rmSync(`${sys}/virtfn${j}`, { recursive: true, force: true });
    d.vfs -= 1;
  }
  writeFileSync(`${sys}/sriov_numvfs`, `${d.vfs}\n`);
  run.save();
}

/**
 * The host ⇄ DPU API link: `dpu-api` in hostK (100.65.K.2/30) ⇄ `host-api` in dpuK
 * (100.65.K.1/30). No route beyond the /30 on either side, and the DPU netns does not
 * forward (ip_forward=0, set explicitly): the host reaches the DPU's API address and
 * nothing behind it.
 */
async function upApiLink(run: LabRun, d: DpuState): Promise<void> {
  await addVeth(d.hostNs, API_LINK_HOST_DEV, d.ns, API_LINK_DPU_DEV);
  run.recordLink(`${d.hostNs}/${API_LINK_HOST_DEV}<->${d.ns}/${API_LINK_DPU_DEV}`);
  await ipn(d.hostNs, 'addr', 'add', `${apiHostIp(d.k)}/${API_LINK_BITS}`, 'dev', API_LINK_HOST_DEV);
  await ipn(d.ns, 'addr', 'add', `${apiDpuIp(d.k)}/${API_LINK_BITS}`, 'dev', API_LINK_DPU_DEV);
  await linkUp(d.hostNs, API_LINK_HOST_DEV);
  await linkUp(d.ns, API_LINK_DPU_DEV);
  await sh(inNs(d.ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0', 'net.ipv6.conf.all.forwarding=0']));
  await hardenApiLink(d.ns, API_LINK_DPU_DEV);
}

/**
 * The API link answers ARP only for the API address: arp_ignore=1 (reply only for
 * an address configured on the interface the request came in on) and
 * arp_announce=2 (use the interface's own address as the ARP source). Linux's
 * default answers for any local address, so the host could resolve the tunnel IP
 * on br-phy through this link. IPv6 ND is per interface already. On a real DPU the
 * image sets the same in sysctl.d for its host-facing interface (README "API link").
 */
export async function hardenApiLink(ns: string, dev: string): Promise<void> {
  const keys = ['arp_ignore=1', 'arp_announce=2'];
  await sh(inNs(ns, ['sysctl', '-q', '-w', ...keys.map((k) => `net.ipv4.conf.all.${k}`), ...keys.map((k) => `net.ipv4.conf.${dev}.${k}`)]));
}

/**
 * Host API limits in the lab: the defaults are per production host (20 calls/s, 8
 * connections); the lab's benches and attack tests drive one host much harder (100
 * concurrent CNI ADDs = 100 shim processes = 100 connections), so they are raised here.
 */
export const LAB_API_LIMITS = {
  ratePerSecond: 2000,
  rateBurst: 4000,
  maxConcurrentPerPeer: 256,
  maxConnectionsPerPeer: 256,
  maxConnections: 1024,
  maxConcurrentStreams: 256,
  // Dead and GOAWAY'd sessions closed within 2 s × 2 instead of 10 s × 2, so the security tests wait seconds.
  keepalivePingMs: 2_000,
} as const;

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
    // Pods attach through host-shim and the agent only: anything else on br-int is foreign.
    reconcile: { auditBridge: true },
    // ovn-controller shares the DPU's run dir (DESIGN §6): the agent probes its SB connection there.
    // The NB is reached over the underlay (TCP on central's lab address), as a real DPU would.
    ovn: { controllerRundir: d.dir, nbRemote: `tcp:${c.ip}:${NB_PORT}`, podUidKey: POD_UID_KEY },
    // The host API on the API link only; the management listener on the DPU's own loopback.
    api: {
      listenAddress: apiDpuIp(d.k),
      port: API_PORT,
      tls: { ...pemPair(run, `${d.name}-server`), clientCa: caPath(run), crl: crlPath(run), reloadPollMs: 1000 },
      // Lab hosts are named hostK and chassis dpuK; on a real node both are the node name (the default).
      peer: { identity: `host${d.k}` },
      limits: LAB_API_LIMITS,
    },
    metrics: { listenAddress: '127.0.0.1', port: METRICS_PORT },
    // The agent plays the eSwitch on veth pairs: representors here, VF ends in hostK.
    hw: { backend: 'emulated', hostNetns: d.hostNs },
    // With --sb-cluster 3 and the SB leader killed, binding a new port takes 6-14 s (README).
    ports: { ovnInstalledTimeoutMs: 25_000, ...d.agentPorts },
    log: { level: 'info' },
  };
}

/**
 * Restarts one of dpuK's OVS/OVN daemons (fault tests): SIGTERM to the recorded pid
 * (bounded, then SIGKILL), start it again with the same arguments, record the new pid.
 * The DB file survives, so ovsdb-server comes back with every lease.
 */
export async function restartDaemon(run: LabRun, d: DpuState, which: 'ovsdb-server' | 'ovn-controller'): Promise<void> {
  const old = run.proc(`${d.name}/${which}`);
  if (!(await stopProc(old))) throw new Error(`${d.name}/${which} pid ${old.pid} did not stop`);
  await startDaemon(run, d, which);
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
