// Range decoders' helpers: the tc codec (filter/flower/actions/stats/encopts.ts) and
// devlink/codec.ts walk the TLVs of a received buffer in place with the plain byte
// reads of bytes.ts (hu16 …) — no object per attribute, no Buffer view, no
// bounds-checked Buffer method calls. A 10,000-filter dump has ~500,000 attributes,
// so this is most of a dump's decode. These keep the error texts of attr.ts.
import { NetlinkMalformedError } from '../errors.ts';
import { NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HDRLEN, NLA_TYPE_MASK, type RawAttr } from './attr.ts';
import { hu16 } from './bytes.ts';

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
