// What every action kind shares: verdicts (TC_ACT_*, linux/pkt_cls.h), struct tc_gen
// at the start of each kind's PARMS, and the shape of a kind's codec. Pure.
import { type AttrWriter, type RawAttr, hs32, hu32, writeS32, writeU32 } from '../../netlink/nl.ts';
import { type AttrTable, type FieldSpec, attrTable } from '../../netlink/walk.ts';
import { NetlinkMalformedError } from '../../errors.ts';

/** Verdicts (TC_ACT_*): the `control` of every action. */
export const TC_ACT = {
  UNSPEC: -1,
  OK: 0,
  RECLASSIFY: 1,
  SHOT: 2,
  PIPE: 3,
  STOLEN: 4,
  QUEUED: 5,
  REPEAT: 6,
  REDIRECT: 7,
  TRAP: 8,
} as const;
export const TC_ACT_JUMP = 0x10000000;
export const TC_ACT_GOTO_CHAIN = 0x20000000;
const TC_ACT_EXT_OPCODE_MAX = 0xf0000000;
const TC_ACT_EXT_VAL_MASK = 0x0fffffff;

/** `goto chain N` verdict (OVS recirc: gact GOTO_CHAIN | recirc_id). */
export const gotoChain = (chain: number): number => (TC_ACT_GOTO_CHAIN | (chain & TC_ACT_EXT_VAL_MASK)) >>> 0;
/** `jump N` verdict: skip N actions. */
export const jump = (n: number): number => (TC_ACT_JUMP | (n & TC_ACT_EXT_VAL_MASK)) >>> 0;

const VERDICT_NAMES = new Map<number, string>([
  [TC_ACT.UNSPEC, 'continue'],
  [TC_ACT.OK, 'pass'],
  [TC_ACT.RECLASSIFY, 'reclassify'],
  [TC_ACT.SHOT, 'drop'],
  [TC_ACT.PIPE, 'pipe'],
  [TC_ACT.STOLEN, 'stolen'],
  [TC_ACT.TRAP, 'trap'],
]);

/** How iproute2 prints a verdict (tc_util.c action_n2a): "drop", "pass", "goto chain 3", … */
export function verdictName(v: number): string {
  const op = (v & TC_ACT_EXT_OPCODE_MAX) >>> 0;
  if (op === TC_ACT_GOTO_CHAIN) return `goto chain ${v & TC_ACT_EXT_VAL_MASK}`;
  if (op === TC_ACT_JUMP) return `jump ${v & TC_ACT_EXT_VAL_MASK}`;
  return VERDICT_NAMES.get(v) ?? `${v}`;
}

/** nla_bitfield32: {value, selector} (which bits of value are meaningful). */
export interface Bitfield32 {
  value: number;
  selector: number;
}

/** Fields of struct tc_gen every action's PARMS starts with. Zero values are omitted when decoding. */
export interface GenParms {
  /** Verdict after this action (TC_ACT_*, gotoChain(), jump()). */
  control: number;
  index?: number;
  capab?: number;
  refcnt?: number;
  bindcnt?: number;
  /** Option attributes this code does not know (newer kernels). */
  unknown?: RawAttr[];
}

export const GEN_LEN = 20;

/** A zeroed PARMS of `GEN_LEN + extra` bytes starting with struct tc_gen. */
export function genParms(p: GenParms, extra: number): Buffer {
  const b = Buffer.alloc(GEN_LEN + extra);
  writeU32(b, 0, p.index ?? 0);
  writeU32(b, 4, p.capab ?? 0);
  writeS32(b, 8, p.control);
  writeS32(b, 12, p.refcnt ?? 0);
  writeS32(b, 16, p.bindcnt ?? 0);
  return b;
}

/** Checks that a PARMS of `n` bytes holds the kind's struct of `size` bytes. */
export function needParms(n: number, size: number, what: string): void {
  if (n < size) throw new NetlinkMalformedError(`${what} of ${n} B`);
}

/** struct tc_gen at `b[o]` into `p` (control read by the caller): zero fields left out. */
export function genAt<P extends GenParms>(p: P, b: Buffer, o: number): P {
  const index = hu32(b, o);
  const capab = hu32(b, o + 4);
  const refcnt = hs32(b, o + 12);
  const bindcnt = hs32(b, o + 16);
  if (index) p.index = index;
  if (capab) p.capab = capab;
  if (refcnt) p.refcnt = refcnt;
  if (bindcnt) p.bindcnt = bindcnt;
  return p;
}

/**
 * One action kind's codec. Option ids of TM, PARMS and PAD differ per kind
 * (tc_<kind>.h); `table` lists every other option attribute (and those three as
 * `skip`), so the options after PARMS are one readAttrs/writeAttrs over it.
 */
export interface KindCodec<P extends GenParms & { kind: string }> {
  readonly kind: P['kind'];
  readonly tm: number;
  readonly parms: number;
  /** A second PARMS id (pedit's PARMS_EX), -1 if none. */
  readonly parmsAlt: number;
  readonly pad: number;
  readonly table: AttrTable;
  /** Params from the PARMS payload `b[o, o+n)` of option type `type` (checks `n`). */
  parmsAt(b: Buffer, o: number, n: number, type: number): P;
  /** Writes PARMS (and any option the table does not write). */
  writeParms(w: AttrWriter, p: P): void;
}

/** A kind's codec from its option ids, its option attributes (besides TM, PARMS, PAD) and its PARMS struct. */
export function defineKind<P extends GenParms & { kind: string }>(d: {
  kind: P['kind'];
  tm: number;
  parms: number;
  parmsAlt?: number;
  pad: number;
  spec?: readonly FieldSpec[];
  parmsAt: KindCodec<P>['parmsAt'];
  writeParms: KindCodec<P>['writeParms'];
}): KindCodec<P> {
  const skip: FieldSpec[] = [d.tm, d.parms, d.pad, ...(d.parmsAlt !== undefined ? [d.parmsAlt] : [])].map((id) => ['', id, 'skip']);
  return {
    kind: d.kind,
    tm: d.tm,
    parms: d.parms,
    parmsAlt: d.parmsAlt ?? -1,
    pad: d.pad,
    table: attrTable([...(d.spec ?? []), ...skip]),
    parmsAt: d.parmsAt,
    writeParms: d.writeParms,
  };
}
