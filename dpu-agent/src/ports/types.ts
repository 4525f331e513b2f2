// Shapes shared by the VF pool and the host API (see CONTRACT.md). Plain data.

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
}

export interface PoolStatus {
  readonly total: number;
  readonly free: number;
  readonly leased: number;
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
}

/** OVN logical switch port name for a pod, as ovn-kubernetes names it. */
export function lspName(pod: Pick<PodRef, 'namespace' | 'name'>): string {
  return `${pod.namespace}_${pod.name}`;
}

export function keyString(k: AttachmentKey): string {
  return `${k.pod.namespace}/${k.pod.name}/${k.sandboxId}/${k.ifname}`;
}
