import { Code, type ConnectError } from '@connectrpc/connect';
import { ErrorInfoSchema } from './gen/google/rpc/error_details_pb.ts';

// Why the agent refuses or fails a host API call, and how that reaches the host:
// a gRPC code plus one google.rpc.ErrorInfo {domain: dpu.v1, reason}, and the
// same reason in the `dpu-error-reason` header/trailer. Reasons are wire values:
// never renamed or reused (dpu-agent/src/ports/CONTRACT.md says when each is given).

export const ERROR_DOMAIN = 'dpu.v1';
/** Response header/trailer carrying the reason, for clients that do not decode details. */
export const REASON_HEADER = 'dpu-error-reason';

/** Why the VF pool refuses or fails a request (the agent's PortsError). */
export const PORTS_REASONS = [
  'pod-not-found',
  'pod-not-on-this-chassis',
  'pod-uid-mismatch',
  'not-owner',
  'vf-pool-empty',
  'host-lease-cap',
  'sandbox-conflict',
  'ovn-not-installed',
  'not-ready',
  'plug-failed',
] as const;
export type PortsReason = (typeof PORTS_REASONS)[number];

/** Why the host API edge refuses a call, before or around the VF pool (the agent's HostApiError). */
export const HOST_API_REASONS = [
  'invalid-attachment',
  'invalid-pod-namespace',
  'invalid-pod-name',
  'invalid-pod-uid',
  'invalid-sandbox-id',
  'invalid-ifname',
  'too-many-attachments',
  'lease-not-found',
  'rate-limited',
  'bad-peer-identity',
  'wrong-host',
  'deadline-exceeded',
] as const;
export type HostApiReason = (typeof HOST_API_REASONS)[number];

/**
 * Every reason the host can see. `plug-failed` is the DPU's own failure: it
 * leaves as `internal`, like any error that has no reason, its text only in the
 * agent's log.
 */
export type WireReason = HostApiReason | Exclude<PortsReason, 'plug-failed'> | 'internal';

/** The gRPC code sent with each reason. */
export const WIRE_CODES: { readonly [R in WireReason]: Code } = {
  'invalid-attachment': Code.InvalidArgument,
  'invalid-pod-namespace': Code.InvalidArgument,
  'invalid-pod-name': Code.InvalidArgument,
  'invalid-pod-uid': Code.InvalidArgument,
  'invalid-sandbox-id': Code.InvalidArgument,
  'invalid-ifname': Code.InvalidArgument,
  'too-many-attachments': Code.InvalidArgument,
  'lease-not-found': Code.NotFound,
  'rate-limited': Code.ResourceExhausted,
  'bad-peer-identity': Code.Unauthenticated,
  'wrong-host': Code.PermissionDenied,
  'deadline-exceeded': Code.DeadlineExceeded,
  'pod-not-found': Code.NotFound,
  'pod-not-on-this-chassis': Code.PermissionDenied,
  'pod-uid-mismatch': Code.PermissionDenied,
  'not-owner': Code.PermissionDenied,
  'vf-pool-empty': Code.ResourceExhausted,
  'host-lease-cap': Code.ResourceExhausted,
  'sandbox-conflict': Code.FailedPrecondition,
  'ovn-not-installed': Code.DeadlineExceeded,
  'not-ready': Code.Unavailable,
  internal: Code.Internal,
};

/** True for a reason of the table (own keys only: a wire string such as `constructor` is not one). */
export function isWireReason(s: string): s is WireReason {
  return Object.hasOwn(WIRE_CODES, s);
}

/** The reason of a failed call as a client reads it: the ErrorInfo in our domain, else the header. */
export function reasonOf(err: ConnectError): string | undefined {
  for (const d of err.findDetails(ErrorInfoSchema)) {
    if (d.domain === ERROR_DOMAIN) return d.reason;
  }
  return err.metadata.get(REASON_HEADER) ?? undefined;
}
