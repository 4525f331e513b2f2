// Pods: an LSP in OVN (the control plane's part), a VF from the pool with its MAC
// set by the eSwitch role (hw/emulated.ts), the VF netdev moved into the pod's
// netns as eth0, and the representor plugged into br-int (plug.ts).
import { EmulatedHw } from '../../dpu-agent/src/hw/emulated.ts';
import { nbDb } from './central.ts';
import { ControlPlane } from './controlplane.ts';
import { addNetns, delNetns, ipn, linkExists } from './netns.ts';
import {
  dpuName, isIpv4, lspName, macForIp, POD_CIDR_BITS, POD_GATEWAY, POD_MTU, POD_PREFIX, podIp, podKey, podNs, repName, vfName,
  type PodRef,
} from './plan.ts';
import { plugRepresentor, unplugRepresentor, waitOvnInstalled } from './plug.ts';
import type { LabRun } from './run.ts';
import { inNs, sh } from './sh.ts';
import type { DpuState, PodState } from './state.ts';

export interface AddPodOptions {
  /** hostK / dpuK number. */
  node: number;
  ip?: string;
  /** Chassis named in the LSP's requested-chassis (default: this node's DPU). */
  requestedChassis?: string;
  /** Create the LSP (default true); false = plug a port whose LSP does not exist yet. */
  createLsp?: boolean;
  /** Wait for ovn-installed (default true). */
  wait?: boolean;
  waitTimeoutS?: number;
}

export interface AddPodResult {
  pod: PodState;
  /** Plug → ovn-installed, when waited for. */
  installedMs?: number;
}

export function dpuOf(run: LabRun, node: number): DpuState {
  const d = run.state.dpus.find((x) => x.k === node);
  if (!d) throw new Error(`no node host${node}/dpu${node} in lab ${run.prefix}`);
  return d;
}

export function controlPlane(run: LabRun): ControlPlane {
  return new ControlPlane(nbDb(run));
}

export function hwFor(d: DpuState): EmulatedHw {
  return new EmulatedHw({ hostNs: d.hostNs, dpuNs: d.ns });
}

function allocate(run: LabRun, node: number, wantIp: string | undefined): { vf: number; ip: string } {
  const d = dpuOf(run, node);
  const pods = Object.values(run.state.pods);
  const usedVf = new Set(pods.filter((p) => p.node === node).map((p) => p.vf));
  const vf = Array.from({ length: d.vfs }, (_, j) => j).find((j) => !usedVf.has(j));
  if (vf === undefined) throw new Error(`VF pool of host${node} is empty (${d.vfs} VFs)`);
  const usedIp = new Set(pods.map((p) => p.ip));
  if (wantIp !== undefined) {
    if (!isIpv4(wantIp) || !wantIp.startsWith(`${POD_PREFIX}.`) || wantIp === POD_GATEWAY) throw new Error(`--ip ${wantIp}: want an address in ${POD_PREFIX}.0.0/${POD_CIDR_BITS} other than the gateway`);
    if (usedIp.has(wantIp)) throw new Error(`--ip ${wantIp} is in use`);
    return { vf, ip: wantIp };
  }
  for (let n = 0; n <= 240; n++) {
    const ip = podIp(node, n);
    if (!usedIp.has(ip)) return { vf, ip };
  }
  throw new Error(`no free pod address on node ${node}`);
}

/**
 * Creates a pod end to end; idempotent for a pod that already exists on the same
 * node. A failed add (including not ovn-installed in time) undoes itself.
 */
export async function addPod(run: LabRun, ref: PodRef, opts: AddPodOptions): Promise<AddPodResult> {
  const key = podKey(ref);
  const existing = run.state.pods[key];
  if (existing) {
    if (existing.node !== opts.node) throw new Error(`pod ${key} exists on host${existing.node}`);
    return { pod: existing };
  }
  const d = dpuOf(run, opts.node);
  const { vf, ip } = allocate(run, opts.node, opts.ip);
  const pod: PodState = {
    namespace: ref.namespace,
    name: ref.name,
    lsp: lspName(ref),
    node: opts.node,
    vf,
    mac: macForIp(ip),
    ip,
    netns: podNs(run.prefix, ref),
  };
  run.state.pods[key] = pod;
  run.save();
  try {
    if (opts.createLsp !== false) await createLsp(run, pod, opts.requestedChassis);
    // The eSwitch role sets the VF's MAC from the DPU side before the VF is handed out.
    await hwFor(d).setVfMac({ pf: 0, vf }, pod.mac);
    await attachPodNetns(run, d, pod);
    const t0 = performance.now();
    await plugRepresentor(d, repName(vf), pod.lsp, pod.mac);
    pod.plugged = true;
    run.save();
    if (opts.wait === false) return { pod };
    if (!(await waitOvnInstalled(d, repName(vf), opts.waitTimeoutS ?? 10))) {
      throw new Error(`pod ${key}: ${repName(vf)} on ${d.name} not ovn-installed within ${opts.waitTimeoutS ?? 10} s`);
    }
    return { pod, installedMs: Math.round(performance.now() - t0) };
  } catch (err) {
    await delPod(run, ref).catch(() => undefined);
    throw err;
  }
}

export async function createLsp(run: LabRun, pod: PodState, requestedChassis?: string): Promise<void> {
  await controlPlane(run).addLsp({ lsp: pod.lsp, mac: pod.mac, ip: pod.ip, chassis: requestedChassis ?? dpuName(pod.node) });
}

/**
 * Moves the host's VF netdev into the pod netns as eth0 and configures it from the
 * LSP's data: MAC (already set by the eSwitch), IP, default route, MTU 1400
 * (plan.ts POD_MTU), checksum offload off (TCP over the userspace datapath, DESIGN §6).
 */
async function attachPodNetns(run: LabRun, d: DpuState, pod: PodState): Promise<void> {
  await run.addNetns(pod.netns);
  await ipn(d.hostNs, 'link', 'set', 'dev', vfName(pod.vf), 'netns', pod.netns);
  await ipn(pod.netns, 'link', 'set', 'dev', vfName(pod.vf), 'name', 'eth0', 'mtu', String(POD_MTU));
  await sh(inNs(pod.netns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']));
  await ipn(pod.netns, 'addr', 'add', `${pod.ip}/${POD_CIDR_BITS}`, 'dev', 'eth0');
  await ipn(pod.netns, 'link', 'set', 'dev', 'eth0', 'up');
  await ipn(pod.netns, 'route', 'add', 'default', 'via', POD_GATEWAY);
  await sh(inNs(pod.netns, ['ethtool', '-K', 'eth0', 'tx', 'off']));
}

/** Undoes addPod; idempotent (a missing pod is success). Returns whether there was a pod. */
export async function delPod(run: LabRun, ref: PodRef): Promise<boolean> {
  const key = podKey(ref);
  const pod = run.state.pods[key];
  if (!pod) return false;
  const d = dpuOf(run, pod.node);
  await unplugRepresentor(d, repName(pod.vf));
  await controlPlane(run).delLsp(pod.lsp);
  for (const p of run.state.policies.filter((x) => x.target === key || x.from === key)) {
    await controlPlane(run).allow(p.pg);
  }
  run.state.policies = run.state.policies.filter((x) => x.target !== key && x.from !== key);
  // Give the VF back to the host before the netns goes (deleting it would destroy the veth pair).
  if (await linkExists(pod.netns, 'eth0').catch(() => false)) {
    await ipn(pod.netns, 'link', 'set', 'dev', 'eth0', 'down');
    await ipn(pod.netns, 'link', 'set', 'dev', 'eth0', 'name', vfName(pod.vf));
    await ipn(pod.netns, 'link', 'set', 'dev', vfName(pod.vf), 'netns', d.hostNs);
    await ipn(d.hostNs, 'link', 'set', 'dev', vfName(pod.vf), 'mtu', '1500');
  }
  await delNetns(pod.netns);
  run.state.netns = run.state.netns.filter((n) => n !== pod.netns);
  delete run.state.pods[key];
  run.save();
  return true;
}
