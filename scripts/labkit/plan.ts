// Pure naming and addressing for one lab run: every name a run creates derives
// from its prefix, so `down` (and a test) can find all of it. No I/O here.

/** Lab underlay: only ever configured inside the lab's own netns. */
export const UNDERLAY_PREFIX = '100.64.0';
export const UNDERLAY_CIDR_BITS = 24;
/** Pod overlay subnet (one shared logical switch); RFC 2544 benchmarking range, lab netns only. */
export const POD_PREFIX = '198.18';
export const POD_CIDR_BITS = 16;
export const POD_GATEWAY = '198.18.0.1';
export const POD_ROUTER_MAC = '0a:58:c6:12:00:01';
/**
 * Pod MTU. The underlay is 1500; Geneve over IPv4 adds 14 (inner Ethernet) + 8 (Geneve)
 * + 8 (OVN's 4-byte-option TLV header + option) + 8 (UDP) + 20 (IPv4) = 58 bytes, so
 * anything up to 1442 would fit; 1400 keeps a round margin (as ovn-kubernetes does).
 */
export const POD_MTU = 1400;
export const DEFAULT_VFS = 8;
/** Most VFs per DPU `lab up --vfs` accepts (the attach bench uses 100+ on one DPU). */
export const MAX_VFS = 256;
export const RUN_ROOT = '/run/dpu-lab';

export const NB_PORT = 6641;
/** SB member i (0-based) serves clients on SB_PORT + 10*i and Raft on SB_RAFT_PORT + 10*i. */
export const SB_PORT = 6642;
export const SB_RAFT_PORT = 6644;

const PREFIX_RE = /^[a-z][a-z0-9]{1,11}$/;

export function validatePrefix(p: string): string {
  if (!PREFIX_RE.test(p)) throw new Error(`prefix ${JSON.stringify(p)}: want ${PREFIX_RE} (no dashes: '<prefix>-' must be unambiguous)`);
  return p;
}

export function randomPrefix(rand: () => number = Math.random): string {
  let s = 'dpl';
  for (let i = 0; i < 4; i++) s += Math.floor(rand() * 36).toString(36);
  return s;
}

export const runDir = (prefix: string): string => `${RUN_ROOT}/${prefix}`;
export const centralNs = (prefix: string): string => `${prefix}-central`;
export const dpuNs = (prefix: string, k: number): string => `${prefix}-dpu${k}`;
export const hostNs = (prefix: string, k: number): string => `${prefix}-host${k}`;
export const dpuName = (k: number): string => `dpu${k}`;
export const centralIp = (): string => `${UNDERLAY_PREFIX}.1`;
export const tunnelIp = (k: number): string => `${UNDERLAY_PREFIX}.${10 + k}`;
export const vfName = (j: number): string => `vf${j}`;

/**
 * Host ⇄ DPU API link (the PCIe/management channel of a real BlueField): one veth
 * pair per host with a /30 from 100.65.K.0 (RFC 6598 space, like the underlay, and
 * only ever configured inside the run's netns). The DPU end carries the host API;
 * nothing else on the DPU listens on it.
 */
export const API_LINK_PREFIX = '100.65';
export const API_LINK_BITS = 30;
export const API_PORT = 50051;
/** The agent's management listener (/metrics, /healthz, /readyz) on the DPU's loopback. */
export const METRICS_PORT = 9110;
export const API_LINK_HOST_DEV = 'dpu-api';
export const API_LINK_DPU_DEV = 'host-api';
export const apiDpuIp = (k: number): string => `${API_LINK_PREFIX}.${k}.1`;
export const apiHostIp = (k: number): string => `${API_LINK_PREFIX}.${k}.2`;
export const apiUrl = (k: number): string => `https://${apiDpuIp(k)}:${API_PORT}`;
/** external_ids key where the lab's control plane records the pod UID (agent: ovn.podUidKey). */
export const POD_UID_KEY = 'pod-uid';
export const repName = (j: number): string => `pf0vf${j}`;

export function sbClientPort(i: number): number {
  return SB_PORT + 10 * i;
}
export function sbRaftPort(i: number): number {
  return SB_RAFT_PORT + 10 * i;
}
/** What ovn-controller's ovn-remote holds: one TCP remote per SB member. */
export function sbRemotes(members: number): string[] {
  return Array.from({ length: members }, (_, i) => `tcp:${centralIp()}:${sbClientPort(i)}`);
}

export interface PodRef {
  namespace: string;
  name: string;
}

const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

export function parsePodRef(s: string): PodRef {
  const m = /^([^/]+)\/([^/]+)$/.exec(s);
  if (!m || !K8S_NAME.test(m[1]!) || !K8S_NAME.test(m[2]!)) throw new Error(`pod ${JSON.stringify(s)}: want NAMESPACE/NAME (DNS-1123 labels)`);
  return { namespace: m[1]!, name: m[2]! };
}

export const podKey = (p: PodRef): string => `${p.namespace}/${p.name}`;
/** The OVN logical switch port name, as ovn-kubernetes names it. */
export const lspName = (p: PodRef): string => `${p.namespace}_${p.name}`;
/** Pod netns name; long names are truncated with a hash so they stay unique. */
export function podNs(prefix: string, p: PodRef): string {
  const base = `${prefix}-pod-${p.namespace}-${p.name}`.replace(/\./g, '-');
  return base.length <= 64 ? base : `${base.slice(0, 55)}-${hash8(base)}`;
}
/** OVN port group names must be identifiers: letters, digits, underscore. */
export function pgName(kind: string, key: string): string {
  const base = `${kind}_${key.replace(/[^A-Za-z0-9]/g, '_')}`;
  return base.length <= 60 ? base : `${base.slice(0, 50)}_${hash8(base)}`;
}

function hash8(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** Pod IP n (0-based, per node k) on node k: 198.18.k.(10+n). */
export function podIp(k: number, n: number): string {
  if (k < 1 || k > 254 || n < 0 || n > 240) throw new Error(`no pod address for node ${k} index ${n}`);
  return `${POD_PREFIX}.${k}.${10 + n}`;
}

/** ovn-kubernetes style MAC: 0a:58 followed by the IPv4 address bytes. */
export function macForIp(ip: string): string {
  const parts = ip.split('.').map((x) => Number(x));
  if (parts.length !== 4 || parts.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`bad IPv4 ${ip}`);
  return ['0a', '58', ...parts.map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

export function isIpv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((x) => /^\d{1,3}$/.test(x) && Number(x) <= 255);
}
