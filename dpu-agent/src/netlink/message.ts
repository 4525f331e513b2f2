// Netlink message framing: nlmsghdr, flags, control message types, one datagram
// split into its messages. Pure: bytes in, values out (and back).
// Layouts: include/uapi/linux/netlink.h.
import { NetlinkMalformedError } from '../errors.ts';
import { align4, readU16, readU32, writeU16, writeU32 } from './bytes.ts';

export const NLMSG_HDRLEN = 16;

// nlmsg_type values below 0x10 are control messages.
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

// nlmsg_flags
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ECHO = 0x8;
export const NLM_F_DUMP_INTR = 0x10;
const NLM_F_ROOT = 0x100;
const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
// Flags on an NLMSG_ERROR reply: payload trimmed to the request header (NETLINK_CAP_ACK),
// extack TLVs follow the echoed request.
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

export interface NlMsgHeader {
  len: number;
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

export interface NlMessage {
  hdr: NlMsgHeader;
  /** Everything after the 16-byte header, up to nlmsg_len. */
  body: Buffer;
}

/** A whole netlink message: 16-byte header + body (already 4-aligned pieces). */
export function encodeMessage(
  hdr: { type: number; flags: number; seq: number; pid?: number },
  body: Uint8Array,
): Buffer {
  const len = NLMSG_HDRLEN + body.length;
  const out = Buffer.alloc(len);
  writeU32(out, 0, len);
  writeU16(out, 4, hdr.type);
  writeU16(out, 6, hdr.flags);
  writeU32(out, 8, hdr.seq);
  writeU32(out, 12, hdr.pid ?? 0);
  out.set(body, NLMSG_HDRLEN);
  return out;
}

/** Splits one datagram into its messages (a dump packs many per recv). */
export function parseMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = readU32(buf, off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      throw new NetlinkMalformedError(`nlmsg length ${len} at ${off} overruns datagram of ${buf.length}`);
    }
    out.push({ hdr: parseHeader(buf, off), body: buf.subarray(off + NLMSG_HDRLEN, off + len) });
    off += align4(len);
  }
  return out;
}

export function parseHeader(buf: Buffer, off = 0): NlMsgHeader {
  if (buf.length < off + NLMSG_HDRLEN) throw new NetlinkMalformedError(`short nlmsghdr (${buf.length - off} B)`);
  return {
    len: readU32(buf, off),
    type: readU16(buf, off + 4),
    flags: readU16(buf, off + 6),
    seq: readU32(buf, off + 8),
    pid: readU32(buf, off + 12),
  };
}
