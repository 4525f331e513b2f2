import { NamedUuid, type Row, Uuid } from '../ovsdb/atoms.ts';
import type { InterfaceRow } from '../ovsdb/model/vswitch.ts';
import { type Condition, type Mutation, type Operation, eq, op } from '../ovsdb/ops.ts';
import { type VfCounters, formatCounters, parseCounters } from '../hw/link-stats.ts';
import type { AttachmentKey } from './types.ts';

// A lease lives in the representor's Interface row on br-int (DESIGN §3): the
// plug and the lease are one OVSDB transaction, and after a restart the agent
// rebuilds every lease from OVSDB alone. Pure: rows in, ops out.

export const EXT = {
  ifaceId: 'iface-id',
  attachedMac: 'attached-mac',
  ovnInstalled: 'ovn-installed',
  /** ovn-controller stamps it (wall-clock ms) each time it sets ovn-installed. */
  ovnInstalledTs: 'ovn-installed-ts',
  /**
   * OVN 23.03 controller/binding.c ovs_iface_matches_lport_iface_id_ver (called from
   * consider_vif_lport): when the Port_Binding has options:iface-id-ver (copied from
   * the LSP's; ovn-kubernetes sets it to the pod UID on every pod LSP), ovn-controller
   * binds the LSP only to an Interface whose external_ids:iface-id-ver is present and
   * equal (strcmp); otherwise it logs "Mismatch iface-id-ver for lport …" and releases
   * the binding. The plug copies the LSP's value (from OVN, never from the host); the
   * re-assertion never touches it.
   */
  ifaceIdVer: 'iface-id-ver',
  /**
   * Selects the chassis Encap a Port_Binding is bound to (binding.c sbrec_get_port_encap
   * → Port_Binding.encap; remote chassis then pick the tunnel by that IP, falling back
   * to the chassis' only one, physical.c get_port_binding_tun). Set to this chassis'
   * own (only) encap IP it changes no forwarding and not claimability; a change of it
   * makes ovn-controller reconsider the interface. Only the re-assertion writes it.
   */
  encapIp: 'encap-ip',
  podNamespace: 'dpu-agent/pod-namespace',
  podName: 'dpu-agent/pod-name',
  podUid: 'dpu-agent/pod-uid',
  sandbox: 'dpu-agent/sandbox',
  ifname: 'dpu-agent/ifname',
  vf: 'dpu-agent/vf',
  pf: 'dpu-agent/pf',
  peer: 'dpu-agent/peer',
  leaseTime: 'dpu-agent/lease-time',
  /** The representor's counters at lease time: what a tenant's counters are re-based on. */
  countersBase: 'dpu-agent/counters-base',
} as const;

export interface Lease {
  readonly key: AttachmentKey;
  readonly lsp: string;
  readonly representor: string;
  readonly pf: number;
  readonly vf: number;
  readonly mac: string;
  readonly peer: string;
  readonly leaseTime: string;
  readonly ovnInstalled: boolean;
  readonly interfaceUuid: string;
  readonly countersBase?: VfCounters;
  /** external_ids:iface-id-ver as plugged: the LSP's options:iface-id-ver then (absent if it had none). */
  readonly ifaceIdVer?: string;
}

/** The Interface columns a lease is read from (a monitor selecting them, ovsdb/model). */
export type LeaseRow = Pick<InterfaceRow, '_uuid' | 'name' | 'external_ids'>;

/** Decode a lease from an Interface row; undefined if the row carries none (e.g. br-int's own port, a patch port). */
export function leaseFromInterface(r: LeaseRow): Lease | undefined {
  const ext = r.external_ids;
  const ns = ext.get(EXT.podNamespace);
  const name = ext.get(EXT.podName);
  const uid = ext.get(EXT.podUid);
  const sandboxId = ext.get(EXT.sandbox);
  const ifname = ext.get(EXT.ifname);
  const vf = Number(ext.get(EXT.vf));
  const pf = Number(ext.get(EXT.pf) ?? '0');
  const lsp = ext.get(EXT.ifaceId);
  if (!ns || !name || !uid || !sandboxId || !ifname || !lsp || !Number.isInteger(vf) || !Number.isInteger(pf)) return undefined;
  return {
    key: { pod: { namespace: ns, name, uid }, sandboxId, ifname },
    lsp,
    representor: r.name,
    pf,
    vf,
    mac: ext.get(EXT.attachedMac) ?? '',
    peer: ext.get(EXT.peer) ?? '',
    leaseTime: ext.get(EXT.leaseTime) ?? '',
    ovnInstalled: ext.get(EXT.ovnInstalled) === 'true',
    interfaceUuid: r._uuid.value,
    ...optional('countersBase', parseCounters(ext.get(EXT.countersBase))),
    ...optional('ifaceIdVer', ext.get(EXT.ifaceIdVer)),
  };
}

export interface PlugSpec {
  readonly bridge: string;
  readonly representor: string;
  readonly pf: number;
  readonly vf: number;
  readonly lsp: string;
  readonly mac: string;
  readonly key: AttachmentKey;
  readonly peer: string;
  readonly leaseTime: string;
  readonly countersBase?: VfCounters;
  /** The LSP's options:iface-id-ver (OVN's, never the host's): written as external_ids:iface-id-ver. */
  readonly ifaceIdVer?: string;
}

function optional<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}

/**
 * One transaction: guard that the representor is not on any bridge yet, insert
 * Interface (with the lease) and Port, add the Port to br-int.
 * same as: ovs-vsctl add-port br-int pf0vf3 -- set Interface pf0vf3 external_ids:iface-id=NS_POD
 *            [external_ids:iface-id-ver=VER] …
 */
export function plugOps(s: PlugSpec): Operation[] {
  const ext = new Map<string, string>([
    [EXT.ifaceId, s.lsp],
    [EXT.attachedMac, s.mac],
    [EXT.podNamespace, s.key.pod.namespace],
    [EXT.podName, s.key.pod.name],
    [EXT.podUid, s.key.pod.uid],
    [EXT.sandbox, s.key.sandboxId],
    [EXT.ifname, s.key.ifname],
    [EXT.pf, String(s.pf)],
    [EXT.vf, String(s.vf)],
    [EXT.peer, s.peer],
    [EXT.leaseTime, s.leaseTime],
  ]);
  if (s.countersBase) ext.set(EXT.countersBase, formatCounters(s.countersBase));
  // Without it ovn-controller never claims an LSP that pins a version (see EXT.ifaceIdVer).
  if (s.ifaceIdVer !== undefined) ext.set(EXT.ifaceIdVer, s.ifaceIdVer);
  return [
    // If another writer plugged this representor since our read, fail ("timed out") rather than double-plug.
    op.wait('Port', [eq('name', s.representor)], ['name'], '==', [], 0),
    op.insert('Interface', { name: s.representor, type: '', external_ids: ext }, 'iface'),
    op.insert('Port', { name: s.representor, interfaces: new NamedUuid('iface') }, 'port'),
    op.mutate('Bridge', [eq('name', s.bridge)], [['ports', 'insert', [new NamedUuid('port')]]]),
    op.comment(`dpu-agent: plug ${s.representor} for ${s.lsp} sandbox ${s.key.sandboxId}`),
  ];
}

/** Index of the Interface insert in plugOps: its result carries the new row's uuid. */
export const PLUG_IFACE_OP = 1;

/**
 * Remove the representor's Port from the bridge; Port and Interface are
 * non-root rows and are garbage-collected with it.
 * same as: ovs-vsctl --if-exists del-port br-int pf0vf3
 */
export function unplugOps(bridge: string, portUuid: string, representor: string): Operation[] {
  return [
    op.mutate('Bridge', [eq('name', bridge)], [['ports', 'delete', [new Uuid(portUuid)]]]),
    op.comment(`dpu-agent: unplug ${representor}`),
  ];
}

/**
 * Re-present a lease to ovn-controller as a fresh claim (after a hijack of its
 * iface-id). ovn-controller only reconsiders an updated Interface for claiming
 * when its name, type, ofport or one of external_ids iface-id / iface-id-ver /
 * encap-ip changed (binding.c ovs_interface_change_need_handle). Of these only
 * encap-ip changes neither the binding nor claimability: iface-id-ver may be
 * pinned by the LSP (removing or changing it would make the interface unclaimable),
 * while encap-ip set to this chassis' own encap IP only binds the Port_Binding to
 * the Encap it would use anyway (see EXT.encapIp). Its presence is flipped (added
 * as `encapIp`, or removed). ovn-installed and its timestamp are dropped in the
 * same write, so ovn-controller marks the interface installed again (claim_lport)
 * once its flows are in: that mark is the proof of the re-claim. iface-id,
 * iface-id-ver and the dpu-agent/* keys are untouched, so the bridge audit never
 * sees the port as foreign. Guarded on the row still carrying this lease (same
 * iface-id and sandbox): count 0 means the lease changed meanwhile.
 * same as: ovs-vsctl set Interface pf0vf3 external_ids:encap-ip=ENCAP_IP
 *            -- remove Interface pf0vf3 external_ids ovn-installed ovn-installed-ts
 */
export function reassertOps(l: Lease, currentEncapIp: string | undefined, encapIp: string): Operation[] {
  const flip: Mutation =
    currentEncapIp === undefined
      ? ['external_ids', 'insert', new Map([[EXT.encapIp, encapIp]])]
      : ['external_ids', 'delete', [EXT.encapIp]];
  return [
    op.mutate('Interface', leaseGuard(l), [['external_ids', 'delete', [EXT.ovnInstalled, EXT.ovnInstalledTs]], flip]),
    op.comment(`dpu-agent: re-assert lease of ${l.representor} for ${l.lsp} sandbox ${l.key.sandboxId}`),
  ];
}

/** Put encap-ip back as it was before reassertOps (once ovn-controller has acted on the flip). */
export function reassertRestoreOps(l: Lease, originalEncapIp: string | undefined): Operation[] {
  const back: Mutation =
    originalEncapIp === undefined
      ? ['external_ids', 'delete', [EXT.encapIp]]
      : ['external_ids', 'insert', new Map([[EXT.encapIp, originalEncapIp]])];
  return [op.mutate('Interface', leaseGuard(l), [back]), op.comment(`dpu-agent: re-assert of ${l.representor} done`)];
}

function leaseGuard(l: Lease): Condition[] {
  return [
    eq('_uuid', new Uuid(l.interfaceUuid)),
    ['external_ids', 'includes', new Map([[EXT.ifaceId, l.lsp], [EXT.sandbox, l.key.sandboxId]])],
  ];
}
