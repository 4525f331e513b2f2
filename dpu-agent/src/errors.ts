// Every error the agent raises is a DpuError with a stable `code`. Codes are
// never reused or renamed: logs, metrics labels and (through the API boundary's
// mapping) gRPC reasons depend on them. Same idea as undici's UND_ERR_* and
// fastify's lib/errors.js: one place, one class per failure family.

export type ErrorCode =
  // config
  | 'DPU_ERR_CONFIG'
  // host API edge (validation, identity, limits)
  | 'DPU_ERR_HOST_API'
  // JSON-RPC / transport
  | 'DPU_ERR_REMOTE_SYNTAX'
  | 'DPU_ERR_CONNECT'
  | 'DPU_ERR_CONNECTION_CLOSED'
  | 'DPU_ERR_PROTOCOL'
  | 'DPU_ERR_MESSAGE_TOO_LARGE'
  | 'DPU_ERR_TIMEOUT'
  | 'DPU_ERR_RPC'
  // OVSDB
  | 'DPU_ERR_OVSDB'
  | 'DPU_ERR_OVSDB_SCHEMA'
  | 'DPU_ERR_OVSDB_NOT_LEADER'
  // unixctl
  | 'DPU_ERR_UNIXCTL'
  // chassis
  | 'DPU_ERR_CHASSIS'
  // VF pool / leases
  | 'DPU_ERR_PORTS'
  // hw (representors, VF functions)
  | 'DPU_ERR_HW'
  // netlink / tc (flower offload)
  | 'DPU_ERR_NETLINK'
  | 'DPU_ERR_NETLINK_MALFORMED'
  | 'DPU_ERR_NETLINK_SOCKET'
  | 'DPU_ERR_TC'
  | 'DPU_ERR_TC_INVALID'
  // devlink (generic netlink: eSwitch port functions)
  | 'DPU_ERR_DEVLINK';

export class DpuError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A config key is missing or invalid. `key` is the dotted path (e.g. `ovn.encapIp`). */
export class ConfigError extends DpuError {
  constructor(readonly key: string, message: string) {
    super('DPU_ERR_CONFIG', `config ${key}: ${message}`);
  }
}

/** An OVS remote string (`unix:`, `tcp:`, `ssl:`) does not parse. */
export class RemoteSyntaxError extends DpuError {
  constructor(readonly remote: string, message: string) {
    super('DPU_ERR_REMOTE_SYNTAX', `remote ${JSON.stringify(remote)}: ${message}`);
  }
}

/** Could not open a connection to any remote. */
export class ConnectError extends DpuError {
  constructor(readonly remote: string, options?: { cause?: unknown }) {
    super('DPU_ERR_CONNECT', `cannot connect to ${remote}`, options);
  }
}

/** The connection went away while a request was outstanding (or before it was sent). */
export class ConnectionClosedError extends DpuError {
  constructor(message = 'connection closed', options?: { cause?: unknown }) {
    super('DPU_ERR_CONNECTION_CLOSED', message, options);
  }
}

/** The peer sent something that is not valid JSON-RPC 1.0 (bad JSON, bad shape). */
export class ProtocolError extends DpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DPU_ERR_PROTOCOL', message, options);
  }
}

/** A single JSON message exceeded the configured maximum. */
export class MessageTooLargeError extends DpuError {
  constructor(readonly limitBytes: number) {
    super('DPU_ERR_MESSAGE_TOO_LARGE', `message exceeds ${limitBytes} bytes`);
  }
}

/** A request got no reply in time. */
export class TimeoutError extends DpuError {
  constructor(readonly what: string, readonly timeoutMs: number) {
    super('DPU_ERR_TIMEOUT', `${what} timed out after ${timeoutMs} ms`);
  }
}

/** The peer answered a JSON-RPC request with a non-null `error`. */
export class RpcError extends DpuError {
  constructor(readonly method: string, readonly error: unknown) {
    super('DPU_ERR_RPC', `${method}: ${typeof error === 'string' ? error : JSON.stringify(error)}`);
  }
}

/**
 * An OVSDB operation or commit failed. `error` is the server's short error
 * string ("constraint violation", "timed out", "not owner", "referential
 * integrity violation", …); `details` its free text. `opIndex` is the failing
 * op (or ops.length for a commit-time error, RFC 7047 §4.1.3).
 */
export class OvsdbError extends DpuError {
  constructor(
    readonly error: string,
    readonly details: string | undefined,
    readonly opIndex: number | undefined,
    readonly op?: string,
  ) {
    super(
      'DPU_ERR_OVSDB',
      `ovsdb: ${error}${details ? `: ${details}` : ''}${opIndex !== undefined ? ` (op ${opIndex}${op ? ` ${op}` : ''})` : ''}`,
    );
  }
}

/** A table/column is not in the server's schema, or a value does not fit its type. */
export class OvsdbSchemaError extends DpuError {
  constructor(message: string) {
    super('DPU_ERR_OVSDB_SCHEMA', message);
  }
}

/** The server we reached is not the Raft leader (or has no quorum / stale data) and we asked for leader-only. */
export class NotLeaderError extends DpuError {
  constructor(readonly remote: string, readonly reason: string) {
    super('DPU_ERR_OVSDB_NOT_LEADER', `${remote}: ${reason}`);
  }
}

/** ovs-appctl-style command failed (the daemon's error text, or no such command). */
export class UnixctlError extends DpuError {
  constructor(readonly command: string, readonly error: string) {
    super('DPU_ERR_UNIXCTL', `${command}: ${error.trim()}`);
  }
}

export class ChassisError extends DpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DPU_ERR_CHASSIS', message, options);
  }
}

/** A representor / VF operation failed (bad VF id or MAC, device missing, tool failed). */
export class HwError extends DpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DPU_ERR_HW', message, options);
  }
}

/** Stable reasons the VF pool refuses or fails a request; the host API maps them to gRPC codes (ports/CONTRACT.md). */
export type PortsReason =
  | 'pod-not-found'
  | 'pod-not-on-this-chassis'
  | 'pod-uid-mismatch'
  | 'not-owner'
  | 'vf-pool-empty'
  | 'host-lease-cap'
  | 'sandbox-conflict'
  | 'ovn-not-installed'
  | 'not-ready'
  | 'plug-failed';

export class PortsError extends DpuError {
  constructor(
    readonly reason: PortsReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('DPU_ERR_PORTS', message, options);
  }
}

/**
 * The kernel answered a netlink request with NLMSG_ERROR (errno ≠ 0). `errno` is
 * positive (EOPNOTSUPP = 95), `errnoName` its symbol, `extack` the kernel's
 * NLMSGERR_ATTR_MSG text when NETLINK_EXT_ACK is on (mlx5 puts the offload refusal
 * reason there). Kernel text is for logs only, never for the host API (STYLE.md §4).
 */
export class NetlinkError extends DpuError {
  constructor(
    readonly errno: number,
    readonly errnoName: string,
    readonly extack: string | undefined,
    readonly extackOffset?: number,
  ) {
    super('DPU_ERR_NETLINK', `netlink: ${errnoName}${extack ? `: ${extack}` : ''}`);
  }
}

/** A netlink reply does not parse (truncated header/attribute, wrong size for a known attribute). */
export class NetlinkMalformedError extends DpuError {
  constructor(message: string) {
    super('DPU_ERR_NETLINK_MALFORMED', `malformed netlink: ${message}`);
  }
}

/** The netlink socket could not be opened, a send failed, or replies were lost (ENOBUFS). */
export class NetlinkSocketError extends DpuError {
  constructor(message: string, readonly errnoName?: string, options?: { cause?: unknown }) {
    super('DPU_ERR_NETLINK_SOCKET', message, options);
  }
}

/**
 * A tc operation (qdisc/filter add, replace, delete, get, dump) failed in the
 * kernel. Same as `tc … ` printing "Error: <extack>" + "We have an error talking
 * to the kernel". `cause` is the NetlinkError.
 */
export class TcError extends DpuError {
  constructor(
    readonly op: string,
    readonly ifindex: number,
    readonly errno: number,
    readonly errnoName: string,
    readonly extack: string | undefined,
    options?: { cause?: unknown },
  ) {
    super('DPU_ERR_TC', `tc ${op} ifindex ${ifindex}: ${errnoName}${extack ? `: ${extack}` : ''}`, options);
  }
}

/** A filter/action value cannot be encoded (bad address text, too many actions, out-of-range field). */
export class TcInvalidError extends DpuError {
  constructor(message: string) {
    super('DPU_ERR_TC_INVALID', message);
  }
}

/**
 * A devlink request (family lookup, port get/dump, port function set) failed in the
 * kernel. Same as `devlink …` printing "Error: <extack>" + "kernel answers: <errno>".
 * `handle` is the port (`pci/0000:03:00.0/4097`) when the request named one;
 * `extackOffset` the byte offset in the request of the attribute the kernel blames.
 * `cause` is the NetlinkError.
 */
export class DevlinkError extends DpuError {
  constructor(
    readonly op: string,
    readonly handle: string | undefined,
    readonly errno: number,
    readonly errnoName: string,
    readonly extack: string | undefined,
    readonly extackOffset?: number,
    options?: { cause?: unknown },
  ) {
    super('DPU_ERR_DEVLINK', `devlink ${op}${handle ? ` ${handle}` : ''}: ${errnoName}${extack ? `: ${extack}` : ''}`, options);
  }
}

/** Why the host API edge refused a call (before or around the VF pool). Wire reasons, never renamed. */
export type HostApiReason =
  | 'invalid-attachment'
  | 'invalid-pod-namespace'
  | 'invalid-pod-name'
  | 'invalid-pod-uid'
  | 'invalid-sandbox-id'
  | 'invalid-ifname'
  | 'too-many-attachments'
  | 'lease-not-found'
  | 'rate-limited'
  | 'bad-peer-identity'
  | 'wrong-host'
  | 'deadline-exceeded';

/**
 * The host API refused a call at the edge. `field` names the offending request
 * field for validation errors (e.g. `attachment.pod.namespace`). The message is
 * ours and safe to send to the host; it never quotes the host's input back.
 */
export class HostApiError extends DpuError {
  constructor(
    readonly reason: HostApiReason,
    message: string,
    readonly field?: string,
  ) {
    super('DPU_ERR_HOST_API', message);
  }
}
