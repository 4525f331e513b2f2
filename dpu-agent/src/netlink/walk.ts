// One table-driven attribute walk (the tc codecs build on it). Pure.
//
// A table maps attribute id → (field, codec). Decoding is one plain loop over the
// TLVs of the received buffer that looks each id up in dense arrays and stores the
// value: no object per attribute, no Buffer view, no closure per call (under tsx
// every closure made is also a __name() defineProperty call, a measurable part of
// a dump's decode). Encoding walks the same table in its order, which is the
// order the attributes go on the wire.
import { hexToBytes, ipv4At, ipv4ToBytes, ipv6At, ipv6ToBytes, macAt, macToBytes } from './addr.ts';
import { type AttrWriter, type RawAttr, NLA_TYPE_MASK, exactLen, hu16, hu32, hu64, nbe16, nbe32, needLen, overrun, rawAttrAt, stringAt } from './nl.ts';

/**
 * How a field's payload is read and written. `skip`: known and ignored on decode,
 * never written (PAD, attributes a caller handles itself). `flag`: zero-length,
 * present ⇒ true, written only when true. `bool8`: u8, non-zero ⇒ true.
 * `hex16`: exactly 16 bytes as hex; `hex`: any length as hex; `bytes`: a copy.
 */
export type Scalar =
  | 'skip'
  | 'mac'
  | 'ipv4'
  | 'ipv6'
  | 'hex16'
  | 'hex'
  | 'bytes'
  | 'be16'
  | 'be32'
  | 'u8'
  | 'u16'
  | 'u32'
  | 'u64'
  | 'string'
  | 'flag'
  | 'bool8';

/** Sentinel a custom reader returns to keep the attribute raw in `top.unknown`. */
export const KEEP_RAW: unique symbol = Symbol('keep raw');

/**
 * A codec for a structure or nest. `read` gets the payload `b[p, p+n)` and both
 * targets; it returns the field's value, `undefined` (it stored what it read
 * itself, or nothing) or KEEP_RAW. Module-level functions only: never a closure
 * made per call. `write` absent: the caller writes this attribute itself.
 */
export interface Custom {
  read(b: Buffer, p: number, n: number, type: number, out: Target, top: Target): unknown;
  write?(w: AttrWriter, type: number, v: never): void;
}

export type Codec = Scalar | Custom;
/** [field, attribute id, codec] or, with `true`, a field of the second target (`top`). */
export type FieldSpec = readonly [field: string, id: number, codec: Codec, top?: boolean];
export type Target = { unknown?: RawAttr[] } & Record<string, unknown>;

// Bound once: under tsx (CommonJS output) every read of an imported binding is a
// getter call (one per re-export hop), a measurable share of a hot decode loop.
const u16 = hu16;
const u32 = hu32;
const u64 = hu64;
const TYPE_MASK = NLA_TYPE_MASK;

const C_NONE = 0;
const C_SKIP = 1;
const C_CUSTOM = 2;
const C_MAC = 3, C_IPV4 = 4, C_IPV6 = 5, C_HEX16 = 6, C_HEX = 7, C_BYTES = 8, C_BE16 = 9, C_BE32 = 10;
const C_U8 = 11, C_U16 = 12, C_U32 = 13, C_U64 = 14, C_STRING = 15, C_FLAG = 16, C_BOOL8 = 17;
const TOP = 0x40;
const CODE: Record<Scalar, number> = {
  skip: C_SKIP,
  mac: C_MAC,
  ipv4: C_IPV4,
  ipv6: C_IPV6,
  hex16: C_HEX16,
  hex: C_HEX,
  bytes: C_BYTES,
  be16: C_BE16,
  be32: C_BE32,
  u8: C_U8,
  u16: C_U16,
  u32: C_U32,
  u64: C_U64,
  string: C_STRING,
  flag: C_FLAG,
  bool8: C_BOOL8,
};

export interface AttrTable {
  readonly spec: readonly FieldSpec[];
  /** By attribute id: codec number (| TOP), C_NONE when the id is not in the table. */
  readonly code: Uint8Array;
  readonly field: readonly string[];
  readonly custom: ReadonlyArray<Custom | undefined>;
  /** Unknown ids: kept in `top.unknown` (re-emitted on encode) or dropped. */
  readonly keepUnknown: boolean;
}

export function attrTable(spec: readonly FieldSpec[], o: { keepUnknown?: boolean } = {}): AttrTable {
  const size = Math.max(0, ...spec.map((s) => s[1])) + 1;
  const code = new Uint8Array(size);
  const field = new Array<string>(size).fill('');
  const custom = new Array<Custom | undefined>(size).fill(undefined);
  for (const [f, id, c, top] of spec) {
    if (code[id] !== C_NONE) throw new Error(`attribute ${id} twice in one table`);
    code[id] = (typeof c === 'string' ? CODE[c] : C_CUSTOM) | (top ? TOP : 0);
    field[id] = f;
    if (typeof c !== 'string') custom[id] = c;
  }
  return { spec, code, field, custom, keepUnknown: o.keepUnknown ?? true };
}

/**
 * The same table, reading only the fields in `keep` (a caller's subset, e.g. the
 * offload collector's): every other id of the table becomes `skip` — one length
 * jump, a nest included, nothing read inside it — and unknown ids are dropped.
 * `readers` swaps a kept field's codec, e.g. a nest's reader for one that reads
 * that nest through a subset table in turn. Decode only: the result writes nothing.
 */
export function pickTable(t: AttrTable, keep: readonly string[], readers: Readonly<Record<string, Codec>> = {}): AttrTable {
  for (const f of keep) if (!t.spec.some((s) => s[0] === f)) throw new Error(`pickTable: no field ${f} in the table`);
  const spec = t.spec.map(([f, id, c, top]): FieldSpec => (f !== '' && keep.includes(f) ? [f, id, readers[f] ?? c, top] : [f, id, 'skip', top]));
  return { ...attrTable(spec, { keepUnknown: false }), spec: [] };
}

/** Payload length of the TLV at `o` after checking it fits in `end` (for list walks). */
export function tlvLen(b: Buffer, o: number, end: number): number {
  const len = u16(b, o);
  if (len < 4 || o + len > end) throw overrun(u16(b, o + 2), len, o, end);
  return len;
}

/**
 * Decodes the TLVs in `b[start, end)` in place into `out` (fields flagged `top`
 * and unknown ids into `top`). Throws NetlinkMalformedError on an overrun or a
 * fixed-size payload of the wrong size.
 */
export function readAttrs(b: Buffer, start: number, end: number, t: AttrTable, out: Target, top: Target): void {
  const code = t.code;
  const max = code.length;
  for (let o = start; o + 4 <= end; ) {
    const len = u16(b, o);
    const type = u16(b, o + 2) & TYPE_MASK;
    if (len < 4 || o + len > end) throw overrun(type, len, o, end);
    const c = type < max ? code[type]! : C_NONE;
    if (c === C_NONE) {
      if (t.keepUnknown) (top.unknown ??= []).push(rawAttrAt(b, o));
    } else if (c !== C_SKIP) {
      const k = c & ~TOP;
      const v = k === C_CUSTOM ? t.custom[type]!.read(b, o + 4, len - 4, type, out, top) : scalarAt(b, o + 4, len - 4, k, type);
      if (v === KEEP_RAW) (top.unknown ??= []).push(rawAttrAt(b, o));
      else if (v !== undefined) (c & TOP ? top : out)[t.field[type]!] = v;
    }
    o += (len + 3) & ~3;
  }
}

/** A scalar field's value from its `n`-byte payload at `b[p]`. */
function scalarAt(b: Buffer, p: number, n: number, c: number, type: number): unknown {
  switch (c) {
    case C_MAC:
      exactLen(n, 6, type);
      return macAt(b, p);
    case C_IPV4:
      exactLen(n, 4, type);
      return ipv4At(b, p);
    case C_IPV6:
      exactLen(n, 16, type);
      return ipv6At(b, p);
    case C_HEX16:
      exactLen(n, 16, type);
      return b.toString('hex', p, p + 16);
    case C_HEX:
      return b.toString('hex', p, p + n);
    case C_BYTES:
      return new Uint8Array(b.subarray(p, p + n));
    case C_BE16:
      needLen(n, 2, 'be16', type);
      return nbe16(b, p);
    case C_BE32:
      needLen(n, 4, 'be32', type);
      return nbe32(b, p);
    case C_U8:
      needLen(n, 1, 'u8', type);
      return b[p]!;
    case C_U16:
      needLen(n, 2, 'u16', type);
      return u16(b, p);
    case C_U32:
      needLen(n, 4, 'u32', type);
      return u32(b, p);
    case C_U64:
      needLen(n, 8, 'u64', type);
      return u64(b, p);
    case C_FLAG:
      return true;
    case C_BOOL8:
      needLen(n, 1, 'u8', type);
      return b[p] !== 0;
    default:
      return stringAt(b, p, n);
  }
}

/** Writes the fields of `v` that the table names (not `top` ones), in table order. */
export function writeAttrs(w: AttrWriter, v: object, t: AttrTable): void {
  const rec = v as Record<string, unknown>;
  for (const [field, id, codec, top] of t.spec) {
    if (top) continue;
    const x = rec[field];
    if (x === undefined) continue;
    if (typeof codec === 'string') putScalar(w, id, codec, x);
    else codec.write?.(w, id, x as never);
  }
}

function putScalar(w: AttrWriter, id: number, codec: Scalar, v: unknown): void {
  switch (codec) {
    case 'skip':
      return;
    case 'mac':
      w.bytes(id, macToBytes(v as string));
      return;
    case 'ipv4':
      w.bytes(id, ipv4ToBytes(v as string));
      return;
    case 'ipv6':
      w.bytes(id, ipv6ToBytes(v as string));
      return;
    case 'hex16':
      w.bytes(id, hexToBytes(v as string, 16));
      return;
    case 'hex':
      w.bytes(id, hexToBytes(v as string));
      return;
    case 'bytes':
      w.bytes(id, v as Uint8Array);
      return;
    case 'be16':
      w.be16(id, v as number);
      return;
    case 'be32':
      w.be32(id, v as number);
      return;
    case 'u8':
      w.u8(id, v as number);
      return;
    case 'u16':
      w.u16(id, v as number);
      return;
    case 'u32':
      w.u32(id, v as number);
      return;
    case 'u64':
      w.u64(id, v as number);
      return;
    case 'string':
      w.string(id, v as string);
      return;
    case 'flag':
      if (v) w.flag(id);
      return;
    case 'bool8':
      w.u8(id, v ? 1 : 0);
      return;
  }
}
