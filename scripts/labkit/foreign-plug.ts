// Plugging behind the agent's back, the way ovn-kubernetes' CNI does it
// (`ovs-vsctl add-port br-int … external_ids:iface-id=…`). Lab pods attach through
// host-shim and the agent; this only simulates a misbehaving plugger in tests (the
// agent's bridge audit must remove such a port) and is the ovn-kubernetes-style
// baseline in `npm run bench -- attach`.
import { vsctl } from './dpu.ts';
import type { DpuState } from './state.ts';

/**
 * `ifaceIdVer`: the pod UID, which ovn-kubernetes' CNI writes to match the LSP's
 * options:iface-id-ver (the lab's control plane sets it): without it ovn-controller
 * does not bind the LSP to this interface.
 * same as: ovs-vsctl add-port br-int pf0vfJ -- set Interface pf0vfJ
 *            external_ids:iface-id=NS_NAME external_ids:attached-mac=MAC [external_ids:iface-id-ver=UID]
 */
export async function foreignPlug(d: DpuState, rep: string, ifaceId: string, mac: string, ifaceIdVer?: string): Promise<void> {
  await vsctl(
    d,
    '--no-wait', '--may-exist', 'add-port', 'br-int', rep,
    '--', 'set', 'Interface', rep, `external_ids:iface-id=${ifaceId}`, `external_ids:attached-mac="${mac}"`,
    ...(ifaceIdVer ? [`external_ids:iface-id-ver="${ifaceIdVer}"`] : []),
  );
}

/** Whether ovn-controller has marked the port installed (one read, no wait). */
export async function ovnInstalled(d: DpuState, rep: string): Promise<boolean> {
  const v = await vsctl(d, '--if-exists', 'get', 'Interface', rep, 'external_ids:ovn-installed').catch(() => '');
  return v.replace(/"/g, '') === 'true';
}
