import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import {
  type AttachmentKey as WireKey,
  type AttachmentRef as WireRef,
  VfAttachmentSchema,
  VfState,
} from '../../../contract/gen/dpu/v1/host_pb.ts';
import { ErrorInfoSchema } from '../../../contract/gen/google/rpc/error_details_pb.ts';
import { isIfname, isPodName, isPodNamespace, isPodUid, isSandboxId } from '../../../contract/names.ts';
import {
  ERROR_DOMAIN,
  type HostApiReason,
  isWireReason,
  type PortsReason,
  REASON_HEADER,
  WIRE_CODES,
  type WireReason,
} from '../../../contract/reasons.ts';
import { HostApiError, PortsError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { VfCounters } from '../hw/link-stats.ts';
import type { Attachment, AttachmentKey } from '../ports/types.ts';

// The wire boundary of the host API (STYLE.md 4): protobuf in → validated plain
// values for ports/; Attachment → protobuf out; any error → one ConnectError
// with the code and google.rpc.ErrorInfo reason of contract/reasons.ts. Messages
// sent to the host are fixed strings from this file: never the host's input
// echoed back, never OVSDB/OVN/kernel text (that goes to the log with the cause).

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

/** What the host reads for each pool reason it may see (ports/CONTRACT.md). */
const POOL_MESSAGES: { readonly [R in PortsReason & WireReason]: string } = {
  'pod-not-found': 'no OVN logical switch port for this pod',
  'pod-not-on-this-chassis': 'the pod is not scheduled on this DPU',
  'pod-uid-mismatch': 'the pod uid does not match the control plane',
  'not-owner': 'the lease belongs to another host or sandbox',
  'vf-pool-empty': 'no free VF on this DPU',
  'host-lease-cap': 'this host holds its maximum number of VFs',
  'sandbox-conflict': 'the interface is attached to another sandbox of this pod',
  'ovn-not-installed': 'OVN did not install the port in time',
  'not-ready': 'the DPU agent is not ready',
};

function wireError(code: Code, message: string, reason: WireReason, metadata: Record<string, string> = {}): ConnectError {
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
    return wireError(WIRE_CODES[err.reason], err.message, err.reason, err.field ? { field: err.field } : {});
  }
  if (err instanceof PortsError && isWireReason(err.reason)) {
    log.info({ ...context, reason: err.reason, err }, 'request refused by the VF pool');
    return wireError(WIRE_CODES[err.reason], POOL_MESSAGES[err.reason], err.reason);
  }
  // connect's own cancellation (client went away / its deadline passed): keep the code, drop the text.
  if (err instanceof ConnectError && (err.code === Code.Canceled || err.code === Code.DeadlineExceeded)) {
    return wireError(err.code, err.code === Code.Canceled ? 'cancelled' : 'deadline exceeded', 'deadline-exceeded');
  }
  log.error({ ...context, err }, 'host API request failed');
  return wireError(Code.Internal, 'internal error', 'internal');
}
