import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { HostApiError, type HostApiReason, PortsError, type PortsReason } from '../errors.ts';
import {
  type AttachmentKey as WireKey,
  type AttachmentRef as WireRef,
  VfAttachmentSchema,
  VfState,
} from '../gen/dpu/v1/host_pb.ts';
import { ErrorInfoSchema } from '../gen/google/rpc/error_details_pb.ts';
import type { Logger } from '../log.ts';
import type { VfCounters } from '../hw/link-stats.ts';
import type { Attachment, AttachmentKey } from '../ports/types.ts';
import { isIfname, isPodName, isPodNamespace, isPodUid, isSandboxId } from './names.ts';

// The wire boundary of the host API (STYLE.md 4): protobuf in → validated plain
// values for ports/; Attachment → protobuf out; any error → one ConnectError
// with a closed code and a google.rpc.ErrorInfo reason. Messages sent to the
// host are fixed strings from this file: never the host's input echoed back,
// never OVSDB/OVN/kernel text (that goes to the log with the cause).

export const ERROR_DOMAIN = 'dpu.v1';
/** Response header/trailer carrying the reason, for clients that do not decode details. */
export const REASON_HEADER = 'dpu-error-reason';

/** A (sandbox, ifname) pair of a CNI GC request. */
export interface AttachmentRefValue {
  readonly sandboxId: string;
  readonly ifname: string;
}

function invalid(reason: HostApiReason, field: string, rule: string): HostApiError {
  return new HostApiError(reason, `${field}: ${rule}`, field);
}

/** Validates every field of a wire AttachmentKey; throws HostApiError naming the first bad field. */
export function attachmentKeyFromWire(k: WireKey | undefined, field = 'attachment'): AttachmentKey {
  if (!k) throw invalid('invalid-attachment', field, 'required');
  const pod = k.pod;
  if (!pod) throw invalid('invalid-attachment', `${field}.pod`, 'required');
  if (!isPodNamespace(pod.namespace)) {
    throw invalid('invalid-pod-namespace', `${field}.pod.namespace`, 'must be a DNS-1123 label (at most 63 characters)');
  }
  if (!isPodName(pod.name)) {
    throw invalid('invalid-pod-name', `${field}.pod.name`, 'must be a DNS-1123 subdomain (at most 253 characters)');
  }
  if (!isPodUid(pod.uid)) throw invalid('invalid-pod-uid', `${field}.pod.uid`, 'must be a UUID');
  const ref = attachmentRefFromWire(k, field);
  return { pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid }, ...ref };
}

export function attachmentRefFromWire(r: Pick<WireRef, 'sandboxId' | 'ifname'>, field: string): AttachmentRefValue {
  if (!isSandboxId(r.sandboxId)) {
    throw invalid('invalid-sandbox-id', `${field}.sandbox_id`, 'must be 1..128 characters of [A-Za-z0-9_.-]');
  }
  if (!isIfname(r.ifname)) {
    throw invalid('invalid-ifname', `${field}.ifname`, "must be 1..15 bytes without '/', ':' or whitespace, not '.' or '..'");
  }
  return { sandboxId: r.sandboxId, ifname: r.ifname };
}

/** The host's view of a lease: no representor, PF or peer (DPU-side facts). */
export function attachmentToWire(a: Attachment, counters?: VfCounters): MessageInitShape<typeof VfAttachmentSchema> {
  const leased = new Date(a.leaseTime);
  return {
    attachment: {
      pod: { namespace: a.key.pod.namespace, name: a.key.pod.name, uid: a.key.pod.uid },
      sandboxId: a.key.sandboxId,
      ifname: a.key.ifname,
    },
    vfIndex: a.vfIndex,
    mac: a.mac,
    ips: a.ips.map((ip) => ({ address: ip.address, gateway: ip.gateway ?? '' })),
    routes: a.routes.map((r) => ({ dst: r.dst, gateway: r.gateway ?? '' })),
    mtu: a.mtu,
    ...(Number.isNaN(leased.getTime()) ? {} : { leaseTime: timestampFromDate(leased) }),
    state: a.state === 'ready' ? VfState.READY : VfState.BROKEN,
    ...(counters
      ? {
          counters: {
            rxPackets: BigInt(counters.rxPackets),
            rxBytes: BigInt(counters.rxBytes),
            txPackets: BigInt(counters.txPackets),
            txBytes: BigInt(counters.txBytes),
            rxDropped: BigInt(counters.rxDropped),
            txDropped: BigInt(counters.txDropped),
          },
        }
      : {}),
  };
}

interface WireError {
  readonly code: Code;
  /** Fixed text safe for the host. */
  readonly message: string;
}

/** ports/CONTRACT.md table. Reasons not listed here (e.g. `plug-failed`) are INTERNAL. */
export const PORTS_REASONS: { readonly [R in PortsReason]?: WireError } = {
  'pod-not-found': { code: Code.NotFound, message: 'no OVN logical switch port for this pod' },
  'pod-not-on-this-chassis': { code: Code.PermissionDenied, message: 'the pod is not scheduled on this DPU' },
  'pod-uid-mismatch': { code: Code.PermissionDenied, message: 'the pod uid does not match the control plane' },
  'not-owner': { code: Code.PermissionDenied, message: 'the lease belongs to another host or sandbox' },
  'vf-pool-empty': { code: Code.ResourceExhausted, message: 'no free VF on this DPU' },
  'host-lease-cap': { code: Code.ResourceExhausted, message: 'this host holds its maximum number of VFs' },
  'sandbox-conflict': { code: Code.FailedPrecondition, message: 'the interface is attached to another sandbox of this pod' },
  'ovn-not-installed': { code: Code.DeadlineExceeded, message: 'OVN did not install the port in time' },
  'not-ready': { code: Code.Unavailable, message: 'the DPU agent is not ready' },
};

export const HOST_API_CODES: { readonly [R in HostApiReason]: Code } = {
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
};

function wireError(code: Code, message: string, reason: string, metadata: Record<string, string> = {}): ConnectError {
  return new ConnectError(message, code, { [REASON_HEADER]: reason }, [
    { desc: ErrorInfoSchema, value: { reason, domain: ERROR_DOMAIN, metadata } },
  ]);
}

/**
 * The one place an error becomes a wire status. Known reasons keep their code;
 * anything else is INTERNAL with reason `internal`, and its text and cause are
 * logged here, never sent.
 */
export function toWireError(err: unknown, log: Logger, context: Record<string, unknown>): ConnectError {
  if (err instanceof HostApiError) {
    return wireError(HOST_API_CODES[err.reason], err.message, err.reason, err.field ? { field: err.field } : {});
  }
  if (err instanceof PortsError) {
    const known = PORTS_REASONS[err.reason];
    if (known) {
      log.info({ ...context, reason: err.reason, err }, 'request refused by the VF pool');
      return wireError(known.code, known.message, err.reason);
    }
  }
  // connect's own cancellation (client went away / its deadline passed): keep the code, drop the text.
  if (err instanceof ConnectError && (err.code === Code.Canceled || err.code === Code.DeadlineExceeded)) {
    return wireError(err.code, err.code === Code.Canceled ? 'cancelled' : 'deadline exceeded', 'deadline-exceeded');
  }
  log.error({ ...context, err }, 'host API request failed');
  return wireError(Code.Internal, 'internal error', 'internal');
}

/** Reads the ErrorInfo reason back from a ConnectError (client side: shim, tests). */
export function reasonOf(err: ConnectError): string | undefined {
  for (const d of err.findDetails(ErrorInfoSchema)) {
    if (d.domain === ERROR_DOMAIN) return d.reason;
  }
  return err.metadata.get(REASON_HEADER) ?? undefined;
}

