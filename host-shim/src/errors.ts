// CNI errors (spec 1.1 §"Error"): {cniVersion, code, msg, details} on stdout and
// a non-zero exit. Codes 1-99 are the spec's; ≥ 100 are ours, stable, never reused.

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

export class CniError extends Error {
  constructor(
    readonly code: CniErrorCode,
    message: string,
    readonly details = '',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CniError';
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}
