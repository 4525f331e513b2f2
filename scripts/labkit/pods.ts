// Pods: an LSP in OVN (the control plane's part: addresses, port security,
// requested-chassis, pod UID), a pod netns (the runtime's part), and the
// attachment through the real CNI path — host-shim exec'd in the host's netns
// asks the DPU agent, which authorises against OVN, sets the VF MAC, plugs the
// representor with its lease and waits for ovn-installed; the shim moves the VF
// into the pod as eth0. The lab never touches br-int for a pod.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nbDb } from './central.ts';
import { CniFailure, cniError, type CniPod, type CniRun, runCni, shimStateDir } from './cni.ts';
import { ControlPlane } from './controlplane.ts';
import { delNetns, ipn, linkExists } from './netns.ts';
import {
  dpuName, isIpv4, lspName, macForIp, POD_CIDR_BITS, POD_GATEWAY, POD_PREFIX, podIp, podKey, podNs, vfName,
  type PodRef,
} from './plan.ts';
import type { LabRun } from './run.ts';
import { inNs, sh } from './sh.ts';
import type { DpuState, PodState } from './state.ts';

export interface AddPodOptions {
  /** hostK / dpuK number. */
  node: number;
  ip?: string;
  /** Chassis named in the LSP's requested-chassis (default: this node's DPU). */
  requestedChassis?: string;
  /** Create the LSP (default true); false = ADD for a pod the control plane has not created yet. */
  createLsp?: boolean;
  /** Bound on the CNI ADD (the agent waits for ovn-installed before answering). */
  timeoutMs?: number;
}

export interface AddPodResult {
  pod: PodState;
  /** CNI ADD duration: the shim's whole run, ovn-installed included. */
  installedMs: number;
}

export function dpuOf(run: LabRun, node: number): DpuState {
  const d = run.state.dpus.find((x) => x.k === node);
  if (!d) throw new Error(`no node host${node}/dpu${node} in lab ${run.prefix}`);
  return d;
}

export function controlPlane(run: LabRun): ControlPlane {
  return new ControlPlane(nbDb(run));
}

/** The lab's IPAM (the control plane's job): the asked address, or the next free one of the node. */
function pickIp(run: LabRun, node: number, wantIp: string | undefined): string {
  const usedIp = new Set(Object.values(run.state.pods).flatMap((p) => [p.ip, ...Object.values(p.extra ?? {}).map((a) => a.ip)]));
  if (wantIp !== undefined) {
    if (!isIpv4(wantIp) || !wantIp.startsWith(`${POD_PREFIX}.`) || wantIp === POD_GATEWAY) throw new Error(`--ip ${wantIp}: want an address in ${POD_PREFIX}.0.0/${POD_CIDR_BITS} other than the gateway`);
    if (usedIp.has(wantIp)) throw new Error(`--ip ${wantIp} is in use`);
    return wantIp;
  }
  for (let n = 0; n <= 240; n++) {
    const ip = podIp(node, n);
    if (!usedIp.has(ip)) return ip;
  }
  throw new Error(`no free pod address on node ${node}`);
}

/**
 * Records a pod (UID, sandbox id, address) and creates its netns as a runtime would:
 * IPv6 off (the lab is IPv4-only), nothing else. No LSP, no CNI call yet.
 */
export async function preparePod(run: LabRun, ref: PodRef, opts: { node: number; ip?: string }): Promise<PodState> {
  const key = podKey(ref);
  if (run.state.pods[key]) throw new Error(`pod ${key} exists`);
  dpuOf(run, opts.node);
  const ip = pickIp(run, opts.node, opts.ip);
  const pod: PodState = {
    namespace: ref.namespace,
    name: ref.name,
    uid: randomUUID(),
    sandbox: randomBytes(16).toString('hex'),
    lsp: lspName(ref),
    node: opts.node,
    vf: -1,
    mac: macForIp(ip),
    ip,
    netns: podNs(run.prefix, ref),
  };
  run.state.pods[key] = pod;
  run.save();
  await run.addNetns(pod.netns);
  await sh(inNs(pod.netns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']));
  return pod;
}

export function cniPod(pod: PodState): CniPod {
  return { namespace: pod.namespace, name: pod.name, uid: pod.uid, sandbox: pod.sandbox, netnsPath: `/run/netns/${pod.netns}` };
}

/** CNI ADD for a prepared pod; exits non-zero → returns the run as is (see cniError). */
export async function shimAdd(run: LabRun, pod: PodState, timeoutMs?: number): Promise<CniRun> {
  const r = await runCni(run, dpuOf(run, pod.node), 'ADD', cniPod(pod), timeoutMs ? { timeoutMs } : {});
  if (r.exit !== 0) return r;
  pod.vf = vfIndexFromShimState(run, pod) ?? -1;
  pod.plugged = true;
  run.save();
  // The lab's workaround, not the shim's job: TCP over the userspace datapath needs
  // software checksums on the pod side (DESIGN §6).
  await sh(inNs(pod.netns, ['ethtool', '-K', 'eth0', 'tx', 'off']));
  return r;
}

/** The VF index host-shim recorded for the pod's eth0 (its state file), if any. */
function vfIndexFromShimState(run: LabRun, pod: PodState, ifname = 'eth0'): number | undefined {
  try {
    const s = JSON.parse(readFileSync(join(shimStateDir(run, pod.node), `${pod.sandbox}_${ifname}.json`), 'utf8')) as { vfIndex?: number };
    return typeof s.vfIndex === 'number' ? s.vfIndex : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates a pod end to end; idempotent for a pod that already exists on the same
 * node. A failed add (the shim's CNI error, e.g. 100 pod-not-found, 101
 * pod-not-on-this-chassis) undoes the lab's part and throws CniFailure.
 */
export async function addPod(run: LabRun, ref: PodRef, opts: AddPodOptions): Promise<AddPodResult> {
  const key = podKey(ref);
  const existing = run.state.pods[key];
  if (existing?.plugged) {
    if (existing.node !== opts.node) throw new Error(`pod ${key} exists on host${existing.node}`);
    return { pod: existing, installedMs: 0 };
  }
  if (existing) await delPod(run, ref);
  const pod = await preparePod(run, ref, opts);
  try {
    if (opts.createLsp !== false) await createLsp(run, pod, opts.requestedChassis);
    const r = await shimAdd(run, pod, opts.timeoutMs);
    const e = cniError(r);
    if (e) throw new CniFailure('ADD', e.code, e.details, e.msg);
    return { pod, installedMs: Math.round(r.ms) };
  } catch (err) {
    await delPod(run, ref).catch(() => undefined);
    throw err;
  }
}

export async function createLsp(run: LabRun, pod: PodState, requestedChassis?: string): Promise<void> {
  await controlPlane(run).addLsp({ lsp: pod.lsp, mac: pod.mac, ip: pod.ip, chassis: requestedChassis ?? dpuName(pod.node), uid: pod.uid });
}

/**
 * Undoes addPod: CNI DEL (the shim gives the VF back to the host, the agent
 * releases the lease), then the LSP, the pod's policies and its netns. Idempotent
 * (a missing pod is success). Returns whether there was a pod. A DEL the agent
 * cannot answer throws (CNI 11) and leaves the pod recorded, so it can be retried.
 */
export async function delPod(run: LabRun, ref: PodRef): Promise<boolean> {
  const key = podKey(ref);
  const pod = run.state.pods[key];
  if (!pod) return false;
  const d = dpuOf(run, pod.node);
  for (const ifname of Object.keys(pod.extra ?? {})) await delAttachment(run, pod, ifname);
  const r = await runCni(run, d, 'DEL', cniPod(pod));
  const e = cniError(r);
  if (e) throw new CniFailure('DEL', e.code, e.details, e.msg);
  await controlPlane(run).delLsp(pod.lsp);
  for (const p of run.state.policies.filter((x) => x.target === key || x.from === key)) {
    await controlPlane(run).allow(p.pg);
  }
  run.state.policies = run.state.policies.filter((x) => x.target !== key && x.from !== key);
  // Safety net: a VF still in the pod must go back to the host before the netns goes
  // (deleting the netns would destroy the veth pair, i.e. the VF and its representor).
  if (pod.vf >= 0 && (await linkExists(pod.netns, 'eth0').catch(() => false))) {
    await ipn(pod.netns, 'link', 'set', 'dev', 'eth0', 'down');
    await ipn(pod.netns, 'link', 'set', 'dev', 'eth0', 'name', vfName(pod.vf));
    await ipn(pod.netns, 'link', 'set', 'dev', vfName(pod.vf), 'netns', d.hostNs);
  }
  await delNetns(pod.netns);
  run.state.netns = run.state.netns.filter((n) => n !== pod.netns);
  delete run.state.pods[key];
  run.save();
  return true;
}

/**
 * A further attachment of a live pod (multus-style, a second network): the control
 * plane creates its own LSP `NS_NAME_IFNAME` with its own address in the pods switch
 * (the agent's name for a non-primary interface), then CNI ADD runs with
 * CNI_IFNAME=ifname and the same sandbox. Undone on failure (throws CniFailure).
 */
export async function addAttachment(run: LabRun, pod: PodState, ifname: string, opts: { ip?: string } = {}): Promise<{ lsp: string; ip: string; mac: string; vf: number }> {
  if (ifname === 'eth0' || pod.extra?.[ifname]) throw new Error(`pod ${pod.namespace}/${pod.name} already has ${ifname}`);
  const ip = pickIp(run, pod.node, opts.ip);
  const a = { lsp: `${pod.lsp}_${ifname}`, ip, mac: macForIp(ip), vf: -1 };
  pod.extra = { ...pod.extra, [ifname]: a };
  run.save();
  try {
    await controlPlane(run).addLsp({ lsp: a.lsp, mac: a.mac, ip, chassis: dpuName(pod.node), uid: pod.uid });
    const r = await runCni(run, dpuOf(run, pod.node), 'ADD', cniPod(pod), { ifname });
    const e = cniError(r);
    if (e) throw new CniFailure('ADD', e.code, e.details, e.msg);
    a.vf = vfIndexFromShimState(run, pod, ifname) ?? -1;
    run.save();
    await sh(inNs(pod.netns, ['ethtool', '-K', ifname, 'tx', 'off']));
    return a;
  } catch (err) {
    await delAttachment(run, pod, ifname).catch(() => undefined);
    throw err;
  }
}

/** CNI DEL of one further attachment, then its LSP. Idempotent; eth0 and the pod stay. */
export async function delAttachment(run: LabRun, pod: PodState, ifname: string): Promise<boolean> {
  const a = pod.extra?.[ifname];
  if (!a) return false;
  const d = dpuOf(run, pod.node);
  const r = await runCni(run, d, 'DEL', cniPod(pod), { ifname });
  const e = cniError(r);
  if (e) throw new CniFailure('DEL', e.code, e.details, e.msg);
  await controlPlane(run).delLsp(a.lsp);
  // Safety net as in delPod: a VF still in the pod goes back to the host.
  if (a.vf >= 0 && (await linkExists(pod.netns, ifname).catch(() => false))) {
    await ipn(pod.netns, 'link', 'set', 'dev', ifname, 'down');
    await ipn(pod.netns, 'link', 'set', 'dev', ifname, 'name', vfName(a.vf));
    await ipn(pod.netns, 'link', 'set', 'dev', vfName(a.vf), 'netns', d.hostNs);
  }
  const { [ifname]: _gone, ...rest } = pod.extra ?? {};
  pod.extra = rest;
  run.save();
  return true;
}
