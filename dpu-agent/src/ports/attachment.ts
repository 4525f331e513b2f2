// A lease (OVSDB) plus its OVN port (Northbound) as the host API's attachment:
// addresses, gateways and the MAC come from OVN, never from the host. Pure.
import type { Lease } from './lease.ts';
import type { PodPort } from './ovn.ts';
import { type Attachment, PRIMARY_IFNAME } from './types.ts';

export interface AttachmentContext {
  /** The pod interface MTU (config ports.mtu). */
  readonly mtu: number;
  /** The lease's VF vanished (the pool's broken set). */
  readonly broken: boolean;
}

/** `port`: the lease's LSP now, undefined when it is gone from OVN (the attachment is then broken). */
export function toAttachment(l: Lease, port: PodPort | undefined, ctx: AttachmentContext): Attachment {
  const gw4 = port?.gateways.find((g) => !g.includes(':'));
  const gw6 = port?.gateways.find((g) => g.includes(':'));
  const ips = (port?.ips ?? []).map((address) => {
    const gw = address.includes(':') ? gw6 : gw4;
    return gw ? { address, gateway: gw } : { address };
  });
  // Default routes for the primary interface only: the host applies routes with `ip route
  // replace`, so a further attachment's default route would replace eth0's, and its DEL
  // would leave the pod with none.
  const primary = l.key.ifname === PRIMARY_IFNAME;
  const routes = primary
    ? [...(gw4 ? [{ dst: '0.0.0.0/0', gateway: gw4 }] : []), ...(gw6 ? [{ dst: '::/0', gateway: gw6 }] : [])]
    : [];
  return {
    key: l.key,
    vfIndex: l.vf,
    pf: l.pf,
    representor: l.representor,
    mac: port?.mac ?? l.mac,
    ips,
    routes,
    mtu: ctx.mtu,
    peer: l.peer,
    leaseTime: l.leaseTime,
    state: port && !staleVersion(l, port) && l.ovnInstalled && !ctx.broken ? 'ready' : 'broken',
    ...(l.countersBase ? { countersBase: l.countersBase } : {}),
  };
}

/**
 * The LSP pins an iface-id-ver the lease's interface does not carry (binding.c
 * ovs_iface_matches_lport_iface_id_ver): ovn-controller will not bind it. An LSP
 * without one binds any version.
 */
export function staleVersion(l: Lease, port: PodPort): boolean {
  return port.ifaceIdVer !== undefined && port.ifaceIdVer !== l.ifaceIdVer;
}
