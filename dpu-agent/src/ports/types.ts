// Shapes shared by the VF pool and the host API (see CONTRACT.md). Plain data.
import type { VfCounters } from '../hw/link-stats.ts';

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** One attachment = one VF: a pod can hold several, one per interface name. */
export interface AttachmentKey {
  readonly pod: PodRef;
  readonly sandboxId: string;
  readonly ifname: string;
}

export interface IpConfig {
  /** CIDR, e.g. "10.244.1.5/24". */
  readonly address: string;
  readonly gateway?: string;
}

export interface RouteConfig {
  readonly dst: string;
  readonly gateway?: string;
}

export interface Attachment {
  readonly key: AttachmentKey;
  readonly vfIndex: number;
  readonly pf: number;
  /** DPU-side name; never sent to the host. */
  readonly representor: string;
  readonly mac: string;
  readonly ips: readonly IpConfig[];
  readonly routes: readonly RouteConfig[];
  readonly mtu: number;
  /** Host identity (client certificate CN) that owns the lease. */
  readonly peer: string;
  readonly leaseTime: string;
  readonly state: 'ready' | 'broken';
  /** The representor's counters when the lease began (pod view); never sent to the host. */
  readonly countersBase?: VfCounters;
}

export interface PoolStatus {
  /** Representors present now. */
  readonly total: number;
  /** Present, not leased, not being plugged. */
  readonly free: number;
  /** Leases in OVSDB, broken ones included. */
  readonly leased: number;
  /** Leases whose VF vanished (GetVf reports them broken); they hold no present representor. */
  readonly broken: number;
  readonly ovsdbConnected: boolean;
  readonly ovnConnected: boolean;
  readonly ready: boolean;
  readonly chassis: string;
}

export interface VfPoolApi {
  allocate(key: AttachmentKey, peer: string, opts?: { signal?: AbortSignal }): Promise<Attachment>;
  release(key: AttachmentKey, peer: string): Promise<{ released: boolean }>;
  get(key: AttachmentKey, peer: string): Attachment | undefined;
  list(peer: string): Attachment[];
  gc(peer: string, keep: readonly AttachmentKey[]): Promise<{ released: number }>;
  status(): PoolStatus;
  /**
   * Traffic of each attachment since its lease began (keyString → counters); an
   * attachment whose VF has no counters (vanished, or no reader) is left out.
   */
  counters(attachments: readonly Attachment[]): Promise<ReadonlyMap<string, VfCounters>>;
}

/** The pod's primary interface: its OVN port is named exactly as ovn-kubernetes names it. */
export const PRIMARY_IFNAME = 'eth0';

/**
 * OVN logical switch port for an attachment: `NS_NAME` for the primary
 * interface (ovn-kubernetes' name), `NS_NAME_IFNAME` for every further one, so
 * each attachment is authorised, addressed and policed on its own port.
 */
export function lspName(pod: Pick<PodRef, 'namespace' | 'name'>, ifname: string = PRIMARY_IFNAME): string {
  return ifname === PRIMARY_IFNAME ? `${pod.namespace}_${pod.name}` : `${pod.namespace}_${pod.name}_${ifname}`;
}

export function keyString(k: AttachmentKey): string {
  return `${k.pod.namespace}/${k.pod.name}/${k.sandboxId}/${k.ifname}`;
}
