// Netlink framing: nlmsghdr, nlattr TLVs (4-byte aligned, nested), nlmsgerr with
// extended-ack TLVs, NLMSG_DONE. Pure: bytes in, values out (and back).
// Layouts: include/uapi/linux/netlink.h; attribute rules: include/net/netlink.h.
// Host-order fields follow this machine's endianness (netlink is host order;
// only values the uapi marks __be16/__be32 are network order).
import { endianness } from 'node:os';
import { constants as osConstants } from 'node:os';
import { NetlinkError, NetlinkMalformedError } from '../errors.ts';

export const HOST_LE = endianness() === 'LE';

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const NLA_ALIGNTO = 4;
export const align4 = (n: number): number => (n + 3) & ~3;

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
export const NLM_F_DUMP_FILTERED = 0x20;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
// Flags on an NLMSG_ERROR reply: payload trimmed to the request header (NETLINK_CAP_ACK),
// extack TLVs follow the echoed request.
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// nla_type high bits (include/uapi/linux/netlink.h): strip them to get the attribute id.
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

// enum nlmsgerr_attrs
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;
export const NLMSGERR_ATTR_COOKIE = 3;
export const NLMSGERR_ATTR_POLICY = 4;
export const NLMSGERR_ATTR_MISS_TYPE = 5;
export const NLMSGERR_ATTR_MISS_NEST = 6;

export interface NlMsgHeader {
  len: number;
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

/** One attribute as it came off the wire: `type` masked, the two high flag bits kept apart. */
export interface NlAttr {
  type: number;
  /** NLA_F_NESTED / NLA_F_NET_BYTEORDER bits as sent. */
  flags: number;
  readonly data: Buffer;
  /**
   * Decoded attributes also say where their payload sits in the received buffer
   * (`buf[off, off+len)`), so the getters and nested parses read it in place: a
   * Buffer view per attribute was most of a dump's decode time (GC). `data` is
   * then made on first use only.
   */
  readonly buf?: Buffer;
  readonly off?: number;
  readonly len?: number;
}

/** An attribute of a parsed message: payload by offset, `data` view made lazily. */
class WireAttr implements NlAttr {
  private view: Buffer | undefined;
  constructor(
    readonly type: number,
    readonly flags: number,
    readonly buf: Buffer,
    readonly off: number,
    readonly len: number,
  ) {}
  get data(): Buffer {
    return (this.view ??= this.buf.subarray(this.off, this.off + this.len));
  }
}

/** Payload length of an attribute (no view made). */
export const attrLen = (a: NlAttr): number => (a.buf !== undefined ? (a.len as number) : a.data.length);
/** The buffer holding an attribute's payload, and where in it the payload starts (no view made). */
export const attrBuf = (a: NlAttr): Buffer => a.buf ?? a.data;
export const attrOff = (a: NlAttr): number => (a.buf !== undefined ? (a.off as number) : 0);

/** An attribute the decoder does not know (newer kernel): kept verbatim and re-emitted on encode. */
export interface RawAttr {
  type: number;
  flags?: number;
  data: Uint8Array;
}

// ---------------------------------------------------------------------------
// Encoding

/** Appends attributes into one growing buffer; nests patch their length on close. */
export class AttrWriter {
  private buf: Buffer;
  private len = 0;

  constructor(initial = 256) {
    this.buf = Buffer.alloc(initial);
  }

  get length(): number {
    return this.len;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** Raw bytes, padded to 4 with zeros (used for fixed headers such as tcmsg). */
  raw(bytes: Uint8Array): this {
    const padded = align4(bytes.length);
    this.reserve(padded);
    this.buf.set(bytes, this.len);
    this.buf.fill(0, this.len + bytes.length, this.len + padded);
    this.len += padded;
    return this;
  }

  /** Attribute with an arbitrary payload; nla_len excludes the padding (netlink.h: NLA_ALIGN). */
  attr(type: number, payload: Uint8Array): this {
    const total = NLA_HDRLEN + payload.length;
    if (total > 0xffff) throw new NetlinkMalformedError(`attribute ${type} too long (${payload.length} B)`);
    const padded = align4(total);
    this.reserve(padded);
    this.writeHdr(this.len, total, type);
    this.buf.set(payload, this.len + NLA_HDRLEN);
    this.buf.fill(0, this.len + total, this.len + padded);
    this.len += padded;
    return this;
  }

  private writeHdr(at: number, len: number, type: number): void {
    if (HOST_LE) {
      this.buf.writeUInt16LE(len, at);
      this.buf.writeUInt16LE(type, at + 2);
    } else {
      this.buf.writeUInt16BE(len, at);
      this.buf.writeUInt16BE(type, at + 2);
    }
  }

  private fixed(type: number, size: number, put: (b: Buffer, at: number) => void): this {
    const padded = align4(NLA_HDRLEN + size);
    this.reserve(padded);
    this.writeHdr(this.len, NLA_HDRLEN + size, type);
    this.buf.fill(0, this.len + NLA_HDRLEN, this.len + padded);
    put(this.buf, this.len + NLA_HDRLEN);
    this.len += padded;
    return this;
  }

  flag(type: number): this {
    return this.fixed(type, 0, () => {});
  }
  u8(type: number, v: number): this {
    return this.fixed(type, 1, (b, at) => b.writeUInt8(v, at));
  }
  u16(type: number, v: number): this {
    return this.fixed(type, 2, (b, at) => (HOST_LE ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at)));
  }
  u32(type: number, v: number): this {
    return this.fixed(type, 4, (b, at) => (HOST_LE ? b.writeUInt32LE(v >>> 0, at) : b.writeUInt32BE(v >>> 0, at)));
  }
  /** u64 from a JS number (exact up to 2^53−1). */
  u64(type: number, v: number): this {
    return this.fixed(type, 8, (b, at) => writeU64(b, at, v));
  }
  be16(type: number, v: number): this {
    return this.fixed(type, 2, (b, at) => b.writeUInt16BE(v, at));
  }
  be32(type: number, v: number): this {
    return this.fixed(type, 4, (b, at) => b.writeUInt32BE(v >>> 0, at));
  }
  /** NUL-terminated string (NLA_NUL_STRING / NLA_STRING as the kernel's tc attrs expect). */
  string(type: number, s: string): this {
    const bytes = Buffer.from(s + '\0', 'utf8');
    return this.attr(type, bytes);
  }
  bytes(type: number, v: Uint8Array): this {
    return this.attr(type, v);
  }

  /**
   * A nested attribute. tc does not require NLA_F_NESTED on requests and
   * iproute2/OVS do not set it (reference B1), so neither do we unless asked.
   */
  nest(type: number, fill: (w: this) => void, nestedFlag = false): this {
    const start = this.len;
    this.reserve(NLA_HDRLEN);
    this.len += NLA_HDRLEN;
    fill(this);
    this.writeHdr(start, this.len - start, nestedFlag ? type | NLA_F_NESTED : type);
    return this;
  }

  rawAttrs(attrs: readonly RawAttr[] | undefined): this {
    if (attrs) for (const a of attrs) this.attr(a.type | (a.flags ?? 0), a.data);
    return this;
  }

  /** A copy of what was written. */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

export function writeU64(b: Buffer, at: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  const lo = v >>> 0;
  if (HOST_LE) {
    b.writeUInt32LE(lo, at);
    b.writeUInt32LE(hi >>> 0, at + 4);
  } else {
    b.writeUInt32BE(hi >>> 0, at);
    b.writeUInt32BE(lo, at + 4);
  }
}

export function readU64(b: Buffer, at: number): number {
  return HOST_LE
    ? b.readUInt32LE(at + 4) * 0x1_0000_0000 + b.readUInt32LE(at)
    : b.readUInt32BE(at) * 0x1_0000_0000 + b.readUInt32BE(at + 4);
}

export const readU16 = (b: Buffer, at: number): number => (HOST_LE ? b.readUInt16LE(at) : b.readUInt16BE(at));
export const readU32 = (b: Buffer, at: number): number => (HOST_LE ? b.readUInt32LE(at) : b.readUInt32BE(at));
export const readS32 = (b: Buffer, at: number): number => (HOST_LE ? b.readInt32LE(at) : b.readInt32BE(at));
export function writeU16(b: Buffer, at: number, v: number): void {
  if (HOST_LE) b.writeUInt16LE(v, at);
  else b.writeUInt16BE(v, at);
}
export function writeU32(b: Buffer, at: number, v: number): void {
  if (HOST_LE) b.writeUInt32LE(v >>> 0, at);
  else b.writeUInt32BE(v >>> 0, at);
}
export function writeS32(b: Buffer, at: number, v: number): void {
  if (HOST_LE) b.writeInt32LE(v | 0, at);
  else b.writeInt32BE(v | 0, at);
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

// ---------------------------------------------------------------------------
// Decoding
//
// Two ways in: parseAttrs() gives NlAttr objects (simple; what most callers use),
// and the range decoders of the tc codec (filter/flower/actions/stats/encopts.ts)
// walk the TLVs of a received buffer in place with the plain byte reads below —
// no object per attribute, no Buffer view, no bounds-checked Buffer method calls.
// A 10,000-filter dump has ~500,000 attributes, so this is most of a dump's decode.

/** Host-order u16/u32/s32/u64 and big-endian u16/u32 at `o` (callers check the length first). */
export const hu16: (b: Uint8Array, o: number) => number = HOST_LE
  ? (b, o) => b[o]! | (b[o + 1]! << 8)
  : (b, o) => (b[o]! << 8) | b[o + 1]!;
export const hu32: (b: Uint8Array, o: number) => number = HOST_LE
  ? (b, o) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000
  : (b, o) => b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
export const hs32 = (b: Uint8Array, o: number): number => hu32(b, o) | 0;
export const hu64: (b: Uint8Array, o: number) => number = HOST_LE
  ? (b, o) => hu32(b, o + 4) * 0x1_0000_0000 + hu32(b, o)
  : (b, o) => hu32(b, o) * 0x1_0000_0000 + hu32(b, o + 4);
export const nbe16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
export const nbe32 = (b: Uint8Array, o: number): number => b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);

/** The NetlinkMalformedError of a TLV whose length overruns its container. */
export function overrun(rawType: number, len: number, off: number, end: number): NetlinkMalformedError {
  return new NetlinkMalformedError(`attribute type ${rawType & NLA_TYPE_MASK} length ${len} at ${off} overruns ${end}`);
}
/** Throws unless a fixed-size payload has at least `size` bytes (same text as the NlAttr getters). */
export function needLen(n: number, size: number, what: string, type: number): void {
  if (n < size) throw new NetlinkMalformedError(`${what} (type ${type}) has ${n} B, need ${size}`);
}
/** Throws unless a payload has exactly `size` bytes (same text as getBytes). */
export function exactLen(n: number, size: number, type: number): void {
  if (n !== size) throw new NetlinkMalformedError(`attribute type ${type} has ${n} B, need ${size}`);
}
/** RawAttr copy of the TLV whose header is at `o` (payload copied: it outlives the buffer). */
export function rawAttrAt(b: Buffer, o: number): RawAttr {
  const len = hu16(b, o);
  const rawType = hu16(b, o + 2);
  const r: RawAttr = { type: rawType & NLA_TYPE_MASK, data: new Uint8Array(b.subarray(o + NLA_HDRLEN, o + len)) };
  const flags = rawType & (NLA_F_NESTED | NLA_F_NET_BYTEORDER);
  if (flags) r.flags = flags;
  return r;
}
/** String in `b[o, o+n)` up to the first NUL. */
export function stringAt(b: Buffer, o: number, n: number): string {
  let e = o;
  const end = o + n;
  while (e < end && b[e] !== 0) e++;
  return b.toString('utf8', o, e);
}

/** Parses a TLV run. Throws NetlinkMalformedError on a length that overruns its container. */
export function parseAttrs(buf: Buffer, start = 0, end = buf.length): NlAttr[] {
  const out: NlAttr[] = [];
  let off = start;
  while (off + NLA_HDRLEN <= end) {
    const len = readU16(buf, off);
    const rawType = readU16(buf, off + 2);
    if (len < NLA_HDRLEN || off + len > end) {
      throw new NetlinkMalformedError(`attribute type ${rawType & NLA_TYPE_MASK} length ${len} at ${off} overruns ${end}`);
    }
    out.push(new WireAttr(rawType & NLA_TYPE_MASK, rawType & (NLA_F_NESTED | NLA_F_NET_BYTEORDER), buf, off + NLA_HDRLEN, len - NLA_HDRLEN));
    off += align4(len);
  }
  return out;
}

/** The children of a nested attribute, parsed in place. */
export const parseNested = (a: NlAttr): NlAttr[] =>
  a.buf !== undefined ? parseAttrs(a.buf, a.off as number, (a.off as number) + (a.len as number)) : parseAttrs(a.data);

/** RawAttr copy of a wire attribute (so it survives the receive buffer being reused). */
export function toRaw(a: NlAttr): RawAttr {
  const r: RawAttr = { type: a.type, data: new Uint8Array(a.data) };
  if (a.flags) r.flags = a.flags;
  return r;
}

function need(a: NlAttr, size: number, what: string): void {
  const n = attrLen(a);
  if (n < size) throw new NetlinkMalformedError(`${what} (type ${a.type}) has ${n} B, need ${size}`);
}
// Fixed-size reads straight from the received buffer (no view per attribute).
const src = (a: NlAttr): Buffer => a.buf ?? a.data;
const at = (a: NlAttr): number => (a.buf !== undefined ? (a.off as number) : 0);
export function getU8(a: NlAttr): number {
  need(a, 1, 'u8');
  return src(a)[at(a)]!;
}
export function getU16(a: NlAttr): number {
  need(a, 2, 'u16');
  return readU16(src(a), at(a));
}
export function getU32(a: NlAttr): number {
  need(a, 4, 'u32');
  return readU32(src(a), at(a));
}
export function getU64(a: NlAttr): number {
  need(a, 8, 'u64');
  return readU64(src(a), at(a));
}
export function getBe16(a: NlAttr): number {
  need(a, 2, 'be16');
  return src(a).readUInt16BE(at(a));
}
export function getBe32(a: NlAttr): number {
  need(a, 4, 'be32');
  return src(a).readUInt32BE(at(a));
}
/** Reads `read(buf, offset)` at byte `i` of the payload, in place. */
export function readAt<T>(a: NlAttr, i: number, read: (b: Buffer, off: number) => T): T {
  return read(src(a), at(a) + i);
}
/** String up to the first NUL (the kernel's NLA_STRING may or may not carry one). */
export function getString(a: NlAttr): string {
  const b = src(a);
  const start = at(a);
  const end = start + attrLen(a);
  const nul = b.indexOf(0, start);
  return b.toString('utf8', start, nul < 0 || nul > end ? end : nul);
}
export function getBytes(a: NlAttr, size?: number): Uint8Array {
  if (size !== undefined && a.data.length !== size) {
    throw new NetlinkMalformedError(`attribute type ${a.type} has ${a.data.length} B, need ${size}`);
  }
  return new Uint8Array(a.data);
}

export interface NlMessage {
  hdr: NlMsgHeader;
  /** Everything after the 16-byte header, up to nlmsg_len. */
  body: Buffer;
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
        break; // POLICY and newer: not needed to report the failure
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

export function netlinkError(e: NlErr): NetlinkError {
  return new NetlinkError(e.errno, errnoName(e.errno), e.extack.msg, e.extack.offset);
}
