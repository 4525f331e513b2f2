// Encoding netlink attributes: one growing buffer, nla_len patched on nest close.
// Attribute rules: include/net/netlink.h (NLA_ALIGN: 4, nla_len excludes padding).
import { NetlinkMalformedError } from '../errors.ts';
import { NLA_F_NESTED, NLA_HDRLEN, type RawAttr } from './attr.ts';
import { HOST_LE, align4, writeU64 } from './bytes.ts';

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
