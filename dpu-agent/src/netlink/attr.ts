// Netlink attributes (nlattr TLVs, 4-byte aligned, nested) as objects: parseAttrs()
// and the getters. The range decoders of the tc codec walk the same TLVs without
// objects (attr-range.ts). Attribute rules: include/net/netlink.h.
import { NetlinkMalformedError } from '../errors.ts';
import { align4, readU16, readU32 } from './bytes.ts';

export const NLA_HDRLEN = 4;

// nla_type high bits (include/uapi/linux/netlink.h): strip them to get the attribute id.
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** One attribute as it came off the wire: `type` masked, the two high flag bits kept apart. */
export interface NlAttr {
  type: number;
  /** NLA_F_NESTED / NLA_F_NET_BYTEORDER bits as sent. */
  flags: number;
  readonly data: Buffer;
  /**
   * Decoded attributes also say where their payload sits in the received buffer
   * (`buf[off, off+len)`), so the getters and nested parses read it in place: a
   * Buffer view per attribute would be most of a dump's decode time (GC). `data` is
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

/** An attribute the decoder does not know (newer kernel): kept verbatim and re-emitted on encode. */
export interface RawAttr {
  type: number;
  flags?: number;
  data: Uint8Array;
}

/** Payload length of an attribute (no view made). */
export const attrLen = (a: NlAttr): number => (a.buf !== undefined ? (a.len as number) : a.data.length);
/** The buffer holding an attribute's payload, and where in it the payload starts (no view made). */
export const attrBuf = (a: NlAttr): Buffer => a.buf ?? a.data;
export const attrOff = (a: NlAttr): number => (a.buf !== undefined ? (a.off as number) : 0);

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

// Fixed-size reads straight from the received buffer (no view per attribute).
export function getU32(a: NlAttr): number {
  const n = attrLen(a);
  if (n < 4) throw new NetlinkMalformedError(`u32 (type ${a.type}) has ${n} B, need 4`);
  return readU32(attrBuf(a), attrOff(a));
}
/** Reads `read(buf, offset)` at byte `i` of the payload, in place. */
export function readAt<T>(a: NlAttr, i: number, read: (b: Buffer, off: number) => T): T {
  return read(attrBuf(a), attrOff(a) + i);
}
/** String up to the first NUL (the kernel's NLA_STRING may or may not carry one). */
export function getString(a: NlAttr): string {
  const b = attrBuf(a);
  const start = attrOff(a);
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
