import type { Client } from '@connectrpc/connect';
import { type HostService, type VfAttachment, VfState } from '../../contract/gen/dpu/v1/host_pb.ts';
import { isIfname, isSandboxId } from '../../contract/names.ts';
import { CNI_ERR } from '../../contract/cni.ts';
import { type AppliedInterface, type CniEnv, formatResult, type NetConf } from './cni.ts';
import { CniError } from './errors.ts';
import { mapAgentError } from './agent.ts';
import type { NetOps } from './netdev.ts';
import { fallbackHostName, loadState, pruneState, removeState, saveState } from './state.ts';
import { Vfio } from './vfio.ts';

// CNI commands (spec 1.1 §"CNI operations"). Each returns the JSON to print on
// stdout (undefined = print nothing) or throws a CniError.

export interface Deps {
  readonly env: CniEnv;
  readonly conf: NetConf;
  readonly client: Client<typeof HostService>;
  readonly net: NetOps;
  /** Diagnostics to stderr (the runtime logs it); never stdout. */
  readonly warn: (msg: string) => void;
  /** vfio mode; default: real sysfs under conf.sysfsRoot. */
  readonly vfio?: Vfio;
}

const vfioOf = (d: Deps): Vfio => d.vfio ?? new Vfio(d.conf.sysfsRoot);

/** vfio mode ADD: bind the leased VF to vfio-pci; the DPU side is the same as for a netdev. */
async function addVfio(d: Deps, key: ReturnType<typeof attachment>, vf: VfAttachment): Promise<Record<string, unknown>> {
  const { env, conf, client } = d;
  const vfio = vfioOf(d);
  let pciId: string | undefined;
  try {
    pciId = await vfio.pciAddress(conf.pf, vf.vfIndex);
    const driver = await vfio.driver(pciId);
    await saveState(conf.stateDir, {
      containerId: env.containerId,
      ifname: env.ifname,
      vfIndex: vf.vfIndex,
      hostName: '',
      netns: env.netns,
      pciId,
      ...(driver && driver !== 'vfio-pci' ? { originalDriver: driver } : {}),
    });
    await vfio.bind(pciId);
  } catch (err) {
    d.warn(`ADD (vfio) failed after the VF was leased; undoing: ${(err as Error).message}`);
    if (pciId) await vfio.unbind(pciId).catch((e: unknown) => d.warn(`undo: unbind failed: ${(e as Error).message}`));
    await client.releaseVf({ attachment: key }, { timeoutMs: conf.timeouts.delMs }).catch((e: unknown) => d.warn(`undo: release failed: ${(e as Error).message}`));
    await removeState(conf.stateDir, env.containerId, env.ifname).catch(() => undefined);
    throw err instanceof CniError ? err : new CniError(CNI_ERR.NETDEV_CONFIG_FAILED, 'binding the VF to vfio-pci failed', (err as Error).message);
  }
  return formatResult(conf.cniVersion, { ...applied(env, vf), pciId });
}

function attachment(env: CniEnv) {
  if (!env.pod) throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_ARGS must carry K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID');
  return { pod: { ...env.pod }, sandboxId: env.containerId, ifname: env.ifname };
}

function applied(env: CniEnv, vf: VfAttachment): AppliedInterface {
  return {
    ifname: env.ifname,
    mac: vf.mac.toLowerCase(),
    mtu: vf.mtu,
    netns: env.netns,
    ips: vf.ips.map((i) => ({ address: i.address, gateway: i.gateway })),
    routes: vf.routes.map((r) => ({ dst: r.dst, gateway: r.gateway })),
  };
}

/**
 * ADD: lease a VF, move its netdev into the pod, configure it from the reply.
 * Idempotent (a retry finds the interface already in the pod), and self-undoing:
 * a failure after the lease gives the netdev back and releases the VF.
 */
export async function cmdAdd(d: Deps): Promise<Record<string, unknown>> {
  const { env, conf, client, net } = d;
  const key = attachment(env);
  if (!(await net.netnsExists(env.netns))) throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, 'the pod network namespace does not exist', env.netns);
  let vf: VfAttachment | undefined;
  try {
    vf = (await client.allocateVf({ attachment: key }, { timeoutMs: conf.timeouts.addMs })).vf;
  } catch (err) {
    throw mapAgentError(err, 'allocating a VF');
  }
  if (!vf) throw new CniError(CNI_ERR.AGENT_INTERNAL, 'allocating a VF: empty reply');
  if (conf.deviceMode === 'vfio') return addVfio(d, key, vf);
  const cfg = applied(env, vf);
  let moved = false;
  let hostName = '';
  try {
    const inPod = await net.inspect(env.netns, env.ifname);
    if (!inPod || inPod.mac !== cfg.mac) {
      const dev = await net.vfNetdev(conf.sysfsRoot, conf.pf, vf.vfIndex);
      if (!dev) {
        throw new CniError(CNI_ERR.VF_NETDEV_NOT_FOUND, `no netdev for VF ${vf.vfIndex} of ${conf.pf}`, `${conf.sysfsRoot}/class/net/${conf.pf}/device/virtfn${vf.vfIndex}/net/ is empty or missing`);
      }
      hostName = dev;
      await saveState(conf.stateDir, { containerId: env.containerId, ifname: env.ifname, vfIndex: vf.vfIndex, hostName: dev, netns: env.netns });
      await net.moveIn(dev, env.netns, env.ifname);
      moved = true;
    }
    await net.configure(env.netns, cfg);
  } catch (err) {
    d.warn(`ADD failed after the VF was leased; undoing: ${(err as Error).message}`);
    if (moved) await net.restore(env.netns, env.ifname, hostName).catch((e: unknown) => d.warn(`undo: restore failed: ${(e as Error).message}`));
    await client.releaseVf({ attachment: key }, { timeoutMs: conf.timeouts.delMs }).catch((e: unknown) => d.warn(`undo: release failed: ${(e as Error).message}`));
    await removeState(conf.stateDir, env.containerId, env.ifname).catch(() => undefined);
    throw err instanceof CniError ? err : new CniError(CNI_ERR.NETDEV_CONFIG_FAILED, 'configuring the pod interface failed', (err as Error).message);
  }
  return formatResult(conf.cniVersion, cfg);
}

/**
 * DEL: give the netdev back to the host, then release the lease. Never fails
 * for a pod, netns, interface or lease that is already gone (spec: DEL must
 * tolerate missing resources); fails (11) only if the agent cannot be asked.
 */
export async function cmdDel(d: Deps): Promise<undefined> {
  const { env, conf, client, net } = d;
  const st = await loadState(conf.stateDir, env.containerId, env.ifname);
  const netns = env.netns || st?.netns || '';
  if (st?.pciId) {
    // vfio mode: hand the device back to the host driver; nothing to move out of the netns.
    await vfioOf(d).unbind(st.pciId).catch((err: unknown) => d.warn(`DEL: could not unbind ${st.pciId}: ${(err as Error).message}`));
  } else if (netns !== '') {
    const hostName = st?.hostName ?? fallbackHostName(env.containerId, env.ifname);
    await net.restore(netns, env.ifname, hostName).catch((err: unknown) => {
      // The pod may be tearing down under us; the kernel returns a physical VF
      // to the host netns when the namespace goes away anyway.
      d.warn(`DEL: could not move ${env.ifname} out of ${netns}: ${(err as Error).message}`);
    });
  }
  if (!env.pod) {
    d.warn('DEL without K8S_POD_* args: lease left to GC');
  } else {
    try {
      await client.releaseVf({ attachment: attachment(env) }, { timeoutMs: conf.timeouts.delMs });
    } catch (err) {
      const ce = mapAgentError(err, 'releasing the VF');
      const gone: number[] = [CNI_ERR.POD_NOT_FOUND, CNI_ERR.LEASE_NOT_FOUND, CNI_ERR.PERMISSION_DENIED, CNI_ERR.SANDBOX_CONFLICT];
      if (!gone.includes(ce.code)) throw ce;
      d.warn(`DEL: nothing of ours to release (${ce.details})`);
    }
  }
  await removeState(conf.stateDir, env.containerId, env.ifname);
  return undefined;
}

/** CHECK: the lease exists and the interface in the pod matches it (name, MAC, MTU, addresses, up). */
export async function cmdCheck(d: Deps): Promise<undefined> {
  const { env, conf, client, net } = d;
  let vf: VfAttachment | undefined;
  try {
    vf = (await client.getVf({ attachment: attachment(env) }, { timeoutMs: conf.timeouts.checkMs })).vf;
  } catch (err) {
    throw mapAgentError(err, 'reading the VF lease');
  }
  if (!vf) throw new CniError(CNI_ERR.AGENT_INTERNAL, 'reading the VF lease: empty reply');
  // The DPU knows what the pod cannot see: a lease whose VF vanished or whose OVN port is
  // gone is broken even when the interface in the pod still looks right.
  if (vf.state === VfState.BROKEN) throw new CniError(CNI_ERR.CHECK_FAILED, 'the DPU reports the VF lease broken', `VF ${vf.vfIndex}`);
  if (conf.deviceMode === 'vfio') {
    const vfio = vfioOf(d);
    const pci = await vfio.pciAddress(conf.pf, vf.vfIndex);
    const driver = await vfio.driver(pci);
    if (driver !== 'vfio-pci') throw new CniError(CNI_ERR.CHECK_FAILED, 'the VF is not bound to vfio-pci', `${pci} driver: ${driver ?? 'none'}`);
    return undefined;
  }
  if (!(await net.netnsExists(env.netns))) throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, 'the pod network namespace does not exist', env.netns);
  const link = await net.inspect(env.netns, env.ifname);
  const want = applied(env, vf);
  const problems: string[] = [];
  if (!link) {
    problems.push(`no interface ${env.ifname} in the pod`);
  } else {
    if (link.mac !== want.mac) problems.push(`MAC is ${link.mac}, lease says ${want.mac}`);
    if (want.mtu > 0 && link.mtu !== want.mtu) problems.push(`MTU is ${link.mtu}, lease says ${want.mtu}`);
    if (!link.up) problems.push('interface is down');
    for (const ip of want.ips) if (!link.addresses.includes(ip.address)) problems.push(`address ${ip.address} missing`);
  }
  if (problems.length > 0) throw new CniError(CNI_ERR.CHECK_FAILED, 'the pod interface does not match its VF lease', problems.join('; '));
  return undefined;
}

/** STATUS: fast readiness probe. 50 when the agent is unreachable or not ready. */
export async function cmdStatus(d: Deps): Promise<undefined> {
  let st;
  try {
    st = await d.client.status({}, { timeoutMs: d.conf.timeouts.statusMs });
  } catch (err) {
    const ce = mapAgentError(err, 'STATUS');
    throw new CniError(CNI_ERR.NOT_AVAILABLE, 'DPU agent unreachable', ce.details, { cause: err });
  }
  if (!st.ready) throw new CniError(CNI_ERR.NOT_AVAILABLE, 'DPU agent not ready', st.notReadyReasons.join(', '));
  return undefined;
}

/** GC: the agent releases this host's leases not in `cni.dev/valid-attachments`; stale local state goes too. */
export async function cmdGc(d: Deps): Promise<undefined> {
  const { conf, client } = d;
  const valid = conf.validAttachments.filter((a) => {
    const ok = isSandboxId(a.containerId) && isIfname(a.ifname);
    if (!ok) d.warn(`GC: ignoring malformed valid attachment ${JSON.stringify(a)}`);
    return ok;
  });
  try {
    const r = await client.listVfs(
      { collectGarbage: true, validAttachments: valid.map((a) => ({ sandboxId: a.containerId, ifname: a.ifname })) },
      { timeoutMs: conf.timeouts.gcMs },
    );
    if (r.released > 0) d.warn(`GC: the agent released ${r.released} stale VF lease(s)`);
    if (r.gcDeferred) d.warn('GC: deferred by the agent (this host came back recently); no lease released, the next GC will run it');
  } catch (err) {
    throw mapAgentError(err, 'GC');
  }
  await pruneState(conf.stateDir, valid);
  return undefined;
}
