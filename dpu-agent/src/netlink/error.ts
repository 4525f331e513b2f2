// The kernel's answer to a request: nlmsgerr (errno or ACK) with extended-ack TLVs,
// the status of NLMSG_DONE, and their NetlinkError. Pure.
// Layouts: include/uapi/linux/netlink.h; when the TLVs are sent: af_netlink.c netlink_ack.
import { constants as osConstants } from 'node:os';
import { NetlinkError, NetlinkMalformedError } from '../errors.ts';
import { getBytes, getString, getU32, parseAttrs } from './attr.ts';
import { align4, readS32 } from './bytes.ts';
import { NLMSG_HDRLEN, NLM_F_ACK_TLVS, NLM_F_CAPPED, type NlMessage, type NlMsgHeader, parseHeader } from './message.ts';

// enum nlmsgerr_attrs (POLICY and newer ones are not needed to report a failure).
const NLMSGERR_ATTR_MSG = 1;
const NLMSGERR_ATTR_OFFS = 2;
const NLMSGERR_ATTR_COOKIE = 3;
const NLMSGERR_ATTR_MISS_TYPE = 5;
const NLMSGERR_ATTR_MISS_NEST = 6;

export interface ExtAck {
  msg?: string;
  /** Byte offset into the request of the attribute the kernel blames. */
  offset?: number;
  cookie?: Uint8Array;
  missType?: number;
  missNest?: number;
}

export interface NlErr {
  /** 0 for an ACK, else the positive errno. */
  errno: number;
  /** The request header the kernel echoed back. */
  request: NlMsgHeader;
  extack: ExtAck;
}

/**
 * nlmsgerr: s32 error (−errno, 0 = ACK) + the request's nlmsghdr, then — unless
 * NLM_F_CAPPED — the request's payload; then, when NLM_F_ACK_TLVS, extack TLVs
 * (af_netlink.c netlink_ack). The same TLVs can follow the s32 in NLMSG_DONE.
 */
export function parseError(msg: NlMessage): NlErr {
  const b = msg.body;
  if (b.length < 4 + NLMSG_HDRLEN) throw new NetlinkMalformedError(`short nlmsgerr (${b.length} B)`);
  const error = readS32(b, 0);
  const request = parseHeader(b, 4);
  let tlvStart = 4 + NLMSG_HDRLEN;
  if (!(msg.hdr.flags & NLM_F_CAPPED)) tlvStart = 4 + align4(request.len);
  const extack = msg.hdr.flags & NLM_F_ACK_TLVS && tlvStart < b.length ? parseExtAck(b, tlvStart) : {};
  return { errno: -error, request, extack };
}

/** NLMSG_DONE: s32 status (0, or −errno when the dump failed midway), optional extack TLVs. */
export function parseDone(msg: NlMessage): { errno: number; extack: ExtAck } {
  const b = msg.body;
  if (b.length < 4) return { errno: 0, extack: {} };
  const extack = msg.hdr.flags & NLM_F_ACK_TLVS && b.length > 4 ? parseExtAck(b, 4) : {};
  return { errno: -readS32(b, 0), extack };
}

function parseExtAck(b: Buffer, start: number): ExtAck {
  const out: ExtAck = {};
  for (const a of parseAttrs(b, start)) {
    switch (a.type) {
      case NLMSGERR_ATTR_MSG:
        out.msg = getString(a);
        break;
      case NLMSGERR_ATTR_OFFS:
        out.offset = getU32(a);
        break;
      case NLMSGERR_ATTR_COOKIE:
        out.cookie = getBytes(a);
        break;
      case NLMSGERR_ATTR_MISS_TYPE:
        out.missType = getU32(a);
        break;
      case NLMSGERR_ATTR_MISS_NEST:
        out.missNest = getU32(a);
        break;
      default:
        break;
    }
  }
  return out;
}

const ERRNO_NAMES = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.errno)) if (!ERRNO_NAMES.has(num)) ERRNO_NAMES.set(num, name);
// Linux aliases: os.constants lists both ENOTSUP and EOPNOTSUPP (95) — prefer the one tc prints.
ERRNO_NAMES.set(95, 'EOPNOTSUPP');

/** `95` → `EOPNOTSUPP` (from Node's os.constants.errno; `E<n>` when unknown). */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

/** An NLMSG_ERROR or NLMSG_DONE failure as the typed error callers see. */
export function netlinkError(e: { errno: number; extack: ExtAck }): NetlinkError {
  return new NetlinkError(e.errno, errnoName(e.errno), e.extack.msg, e.extack.offset);
}
