import type { WireReason } from './reasons.ts';

// CNI error codes (spec 1.1 §"Error"), reported by the host-side plugin in
// {cniVersion, code, msg, details}. Codes 1-99 are the spec's; ≥ 100 are ours,
// stable, never reused: runtimes and operators match on them.

export const CNI_ERR = {
  /** 1: incompatible CNI version. */
  INCOMPATIBLE_VERSION: 1,
  /** 2: unsupported field in the network configuration. */
  UNSUPPORTED_FIELD: 2,
  /** 3: container unknown or does not exist. */
  UNKNOWN_CONTAINER: 3,
  /** 4: invalid necessary environment variables (CNI_COMMAND, CNI_IFNAME, CNI_ARGS K8S_*, …). */
  INVALID_ENV: 4,
  /** 5: I/O failure. */
  IO_FAILURE: 5,
  /** 6: failed to decode content (stdin is not JSON). */
  DECODE_FAILURE: 6,
  /** 7: invalid network config. */
  INVALID_CONFIG: 7,
  /** 11: try again later (agent unreachable, busy, rate-limited, OVN slow). */
  TRY_AGAIN_LATER: 11,
  /** 50: STATUS: the plugin cannot serve ADD (agent unreachable or not ready). */
  NOT_AVAILABLE: 50,
  /** 51: STATUS: not available, and existing pods may have limited connectivity. */
  NOT_AVAILABLE_DEGRADED: 51,
  /** 100: the agent has no OVN logical switch port for the pod. */
  POD_NOT_FOUND: 100,
  /** 101: the agent refused: pod not on this chassis, uid mismatch, lease owned by another host, bad client cert. */
  PERMISSION_DENIED: 101,
  /** 102: no free VF on the DPU, or this host holds its maximum. */
  POOL_EXHAUSTED: 102,
  /** 103: the pod's interface is attached to another sandbox that was not released. */
  SANDBOX_CONFLICT: 103,
  /** 104: CHECK: the interface in the pod does not match the lease. */
  CHECK_FAILED: 104,
  /** 105: the VF's netdev is not where sysfs says (PF name, VF index, sysfs root). */
  VF_NETDEV_NOT_FOUND: 105,
  /** 106: configuring the interface failed (ip / nsenter). */
  NETDEV_CONFIG_FAILED: 106,
  /** 107: the agent failed internally (details only in the agent's log). */
  AGENT_INTERNAL: 107,
  /** 108: CHECK/DEL: the agent holds no lease for this attachment. */
  LEASE_NOT_FOUND: 108,
} as const;

export type CniErrorCode = (typeof CNI_ERR)[keyof typeof CNI_ERR];

/** The CNI error for each agent reason; a failure without one is mapped by its gRPC code. */
export const CNI_CODES: { readonly [R in WireReason]: CniErrorCode } = {
  'invalid-attachment': CNI_ERR.INVALID_ENV,
  'invalid-pod-namespace': CNI_ERR.INVALID_ENV,
  'invalid-pod-name': CNI_ERR.INVALID_ENV,
  'invalid-pod-uid': CNI_ERR.INVALID_ENV,
  'invalid-sandbox-id': CNI_ERR.INVALID_ENV,
  'invalid-ifname': CNI_ERR.INVALID_ENV,
  'too-many-attachments': CNI_ERR.INVALID_ENV,
  'lease-not-found': CNI_ERR.LEASE_NOT_FOUND,
  'rate-limited': CNI_ERR.TRY_AGAIN_LATER,
  'bad-peer-identity': CNI_ERR.PERMISSION_DENIED,
  'wrong-host': CNI_ERR.PERMISSION_DENIED,
  'deadline-exceeded': CNI_ERR.TRY_AGAIN_LATER,
  'pod-not-found': CNI_ERR.POD_NOT_FOUND,
  'pod-not-on-this-chassis': CNI_ERR.PERMISSION_DENIED,
  'pod-uid-mismatch': CNI_ERR.PERMISSION_DENIED,
  'not-owner': CNI_ERR.PERMISSION_DENIED,
  'vf-pool-empty': CNI_ERR.POOL_EXHAUSTED,
  'host-lease-cap': CNI_ERR.POOL_EXHAUSTED,
  'sandbox-conflict': CNI_ERR.SANDBOX_CONFLICT,
  'ovn-not-installed': CNI_ERR.TRY_AGAIN_LATER,
  'not-ready': CNI_ERR.TRY_AGAIN_LATER,
  internal: CNI_ERR.AGENT_INTERNAL,
};
