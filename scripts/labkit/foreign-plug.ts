// Plugging behind the agent's back, the way ovn-kubernetes' CNI does it
// (`ovs-vsctl add-port br-int … external_ids:iface-id=…`). Pods never attach like
// this any more (they go through host-shim and the agent); this is kept only to
// simulate a misbehaving plugger in tests (the agent's bridge audit must remove such
// a port) and as the ovn-kubernetes-style baseline in `npm run bench -- attach`.
import { vsctl, vsctlArgv } from './dpu.ts';
import { run } from './sh.ts';
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

/** Idempotent. same as: ovs-vsctl --if-exists del-port br-int pf0vfJ */
export async function foreignUnplug(d: DpuState, rep: string): Promise<void> {
  await vsctl(d, '--no-wait', '--if-exists', 'del-port', 'br-int', rep);
}

/**
 * Waits until ovn-controller has installed the port's flows (bounded by timeoutS).
 * same as: ovs-vsctl --timeout=S wait-until Interface pf0vfJ external_ids:ovn-installed=true
 * Returns false on timeout.
 */
export async function waitOvnInstalled(d: DpuState, rep: string, timeoutS = 10): Promise<boolean> {
  const r = await run(vsctlArgv(d, ['wait-until', 'Interface', rep, 'external_ids:ovn-installed="true"'], timeoutS), { timeoutMs: (timeoutS + 5) * 1000 });
  return r.code === 0;
}

/** Whether ovn-controller has marked the port installed (one read, no wait). */
export async function ovnInstalled(d: DpuState, rep: string): Promise<boolean> {
  const v = await vsctl(d, '--if-exists', 'get', 'Interface', rep, 'external_ids:ovn-installed').catch(() => '');
  return v.replace(/"/g, '') === 'true';
}
