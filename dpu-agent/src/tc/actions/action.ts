// The generic action envelope inside TCA_FLOWER_ACT (TCA_ACT_*, linux/pkt_cls.h):
// KIND, OPTIONS (per kind: ./<kind>.ts), INDEX, STATS, COOKIE, flags, hw stats.
// The action list is a nest whose children are numbered 1..n in execution order
// (TCA_ACT_MAX_PRIO = 32; OVS refuses more, lib/tc.c). Pure; decoding reads the
// received buffer in place (./walk.ts).
import { type AttrWriter, type NlAttr, type RawAttr, NLA_TYPE_MASK, attrBuf, attrLen, attrOff, hu16, hu32, overrun, rawAttrAt, writeU32 } from '../../netlink/nl.ts';
import { decodeStatsAt, decodeTmAt, encodeStats, encodeTm, type ActionStats, type TcfTm } from '../stats.ts';
import { type AttrTable, type Custom, type Target, attrTable, readAttrs, tlvLen, writeAttrs } from '../../netlink/walk.ts';
import type { Bitfield32, GenParms, KindCodec } from './gen.ts';
import { csum, type CsumParams } from './csum.ts';
import { ct, type CtParams } from './ct.ts';
import { gact, type GactParams } from './gact.ts';
import { mirred, type MirredParams } from './mirred.ts';
import { pedit, type PeditParams } from './pedit.ts';
import { police, type PoliceParams } from './police.ts';
import { tunnelKey, type TunnelKeyParams } from './tunnel-key.ts';
import { vlan, type VlanParams } from './vlan.ts';
import { NetlinkMalformedError, TcInvalidError } from '../../errors.ts';

export const TCA_ACT_MAX_PRIO = 32;

// Per-action attributes (TCA_ACT_*, pkt_cls.h)
export const TCA_ACT_KIND = 1;
export const TCA_ACT_OPTIONS = 2;
export const TCA_ACT_INDEX = 3;
export const TCA_ACT_STATS = 4;
export const TCA_ACT_PAD = 5;
export const TCA_ACT_COOKIE = 6;
export const TCA_ACT_FLAGS = 7;
export const TCA_ACT_HW_STATS = 8;
export const TCA_ACT_USED_HW_STATS = 9;
export const TCA_ACT_IN_HW_COUNT = 10;

export const TCA_ACT_FLAGS_NO_PERCPU_STATS = 1;
export const TCA_ACT_FLAGS_SKIP_HW = 2;
export const TCA_ACT_FLAGS_SKIP_SW = 4;
export const TCA_ACT_HW_STATS_IMMEDIATE = 1;
export const TCA_ACT_HW_STATS_DELAYED = 2;

export type ActionParams = GactParams | MirredParams | VlanParams | TunnelKeyParams | CtParams | PeditParams | CsumParams | PoliceParams;

export interface TcAction {
  kind: string;
  /** Decoded options. Absent for unknown kinds (see `options`) and in terse dumps. */
  params?: ActionParams;
  /** Raw TCA_ACT_OPTIONS children of a kind this code does not decode. */
  options?: RawAttr[];
  /** TCA_ACT_INDEX (terse dumps and action-table ops; normal dumps carry the index in params). */
  actIndex?: number;
  /** TCA_ACT_COOKIE, hex (≤ 16 B). OVS stores the datapath flow UFID here. */
  cookie?: string;
  flags?: Bitfield32;
  hwStats?: Bitfield32;
  usedHwStats?: Bitfield32;
  inHwCount?: number;
  stats?: ActionStats;
  tm?: TcfTm;
  unknown?: RawAttr[];
}

type AnyKind = KindCodec<ActionParams>;
const CODECS = [gact, mirred, vlan, tunnelKey, ct, pedit, csum, police] as unknown as AnyKind[];
const BY_KIND = new Map<string, AnyKind>(CODECS.map((c) => [c.kind, c]));

const bitfield: Custom = {
  read(b, p, n) {
    if (n < 8) throw new NetlinkMalformedError(`bitfield32 of ${n} B`);
    return { value: hu32(b, p), selector: hu32(b, p + 4) };
  },
  write(w: AttrWriter, type: number, v: Bitfield32): void {
    const out = Buffer.alloc(8);
    writeU32(out, 0, v.value);
    writeU32(out, 4, v.selector);
    w.bytes(type, out);
  },
};

const stats: Custom = {
  read: (b, p, n) => decodeStatsAt(b, p, p + n),
  write: (w: AttrWriter, type: number, v: ActionStats) => encodeStats(w, type, v),
};

/** OPTIONS: decoded by the action's kind (already read: KIND comes first), written by encodeAction. */
const options: Custom = {
  read(b, p, n, _type, out) {
    optionsAt(out as unknown as TcAction, b, p, p + n);
    return undefined;
  },
};

// In wire order: encodeAction writes KIND and OPTIONS itself, then the rest of this table.
export const ACTION: AttrTable = attrTable([
  ['kind', TCA_ACT_KIND, 'skip'],
  ['', TCA_ACT_OPTIONS, options],
  ['actIndex', TCA_ACT_INDEX, 'u32'],
  ['stats', TCA_ACT_STATS, stats],
  ['', TCA_ACT_PAD, 'skip'],
  ['cookie', TCA_ACT_COOKIE, 'hex'],
  ['flags', TCA_ACT_FLAGS, bitfield],
  ['hwStats', TCA_ACT_HW_STATS, bitfield],
  ['usedHwStats', TCA_ACT_USED_HW_STATS, bitfield],
  ['inHwCount', TCA_ACT_IN_HW_COUNT, 'u32'],
]);

// ---------------------------------------------------------------------------
// Encoding

export function encodeActions(w: AttrWriter, actions: readonly TcAction[]): void {
  if (actions.length > TCA_ACT_MAX_PRIO) {
    throw new TcInvalidError(`${actions.length} actions, at most ${TCA_ACT_MAX_PRIO} (TCA_ACT_MAX_PRIO)`);
  }
  actions.forEach((a, i) => w.nest(i + 1, (w) => encodeAction(w, a)));
}

export function encodeAction(w: AttrWriter, a: TcAction): void {
  if (a.params && a.params.kind !== a.kind) throw new TcInvalidError(`action kind ${a.kind} with ${a.params.kind} params`);
  w.string(TCA_ACT_KIND, a.kind);
  // NLA_F_NESTED on TCA_ACT_OPTIONS: iproute2 m_action.c sends it, and actions
  // parsed with strict nla_parse_nested (act_ct, act_mpls, …) reject the nest without it.
  if (a.params || a.options || a.tm) {
    const codec = BY_KIND.get(a.kind);
    w.nest(
      TCA_ACT_OPTIONS,
      (w) => {
        if (a.params) {
          const c = BY_KIND.get(a.params.kind)!;
          c.writeParms(w, a.params);
          writeAttrs(w, a.params, c.table);
          w.rawAttrs(a.params.unknown);
        } else w.rawAttrs(a.options);
        if (a.tm && codec) encodeTm(w, codec.tm, a.tm);
      },
      true,
    );
  }
  writeAttrs(w, a, ACTION);
  w.rawAttrs(a.unknown);
}

// ---------------------------------------------------------------------------
// Decoding

/** Decodes TCA_FLOWER_ACT: children ordered by their 1-based priority. */
export const decodeActions = (nest: NlAttr): TcAction[] => decodeActionsAt(attrBuf(nest), attrOff(nest), attrOff(nest) + attrLen(nest));

export const decodeAction = (nest: NlAttr): TcAction => decodeActionAt(attrBuf(nest), attrOff(nest), attrOff(nest) + attrLen(nest));

/** The action list nest at `b[start, end)`; the kernel sends it in order, else it is sorted (stable) by priority. */
export function decodeActionsAt(b: Buffer, start: number, end: number): TcAction[] {
  const list: TcAction[] = [];
  let prios: number[] | undefined;
  let last = -1;
  let sorted = true;
  for (let o = start; o + 4 <= end; ) {
    const len = tlvLen(b, o, end);
    const type = hu16(b, o + 2) & NLA_TYPE_MASK;
    (prios ??= []).push(type);
    if (type < last) sorted = false;
    last = type;
    list.push(decodeActionAt(b, o + 4, o + len));
    o += (len + 3) & ~3;
  }
  if (sorted || !prios) return list;
  const order = list.map((_, i) => i).sort((x, y) => prios[x]! - prios[y]!);
  return order.map((i) => list[i]!);
}

/** One action's nest (TCA_ACT_KIND, OPTIONS, STATS, …) at `b[start, end)`. */
function decodeActionAt(b: Buffer, start: number, end: number): TcAction {
  // KIND first (the kernel sends it first; the last one wins, as parsing into a table would).
  let kind = '';
  for (let o = start; o + 4 <= end; ) {
    const len = tlvLen(b, o, end);
    if ((hu16(b, o + 2) & NLA_TYPE_MASK) === TCA_ACT_KIND) kind = kindAt(b, o + 4, len - 4);
    o += (len + 3) & ~3;
  }
  const out: TcAction = { kind };
  readAttrs(b, start, end, ACTION, out as unknown as Target, out as unknown as Target);
  return out;
}

const KINDS = CODECS.map((c) => c.kind);
/** TCA_ACT_KIND text; the kinds we know come back as the same interned strings (no allocation). */
function kindAt(b: Buffer, p: number, n: number): string {
  let e = p;
  while (e < p + n && b[e] !== 0) e++;
  const l = e - p;
  for (const k of KINDS) {
    if (k.length !== l) continue;
    let i = 0;
    while (i < l && b[p + i] === k.charCodeAt(i)) i++;
    if (i === l) return k;
  }
  return b.toString('utf8', p, e);
}

/** TCA_ACT_OPTIONS at `b[start, end)`: TM and PARMS located first, then the kind's table over the rest. */
function optionsAt(out: TcAction, b: Buffer, start: number, end: number): void {
  const c = BY_KIND.get(out.kind);
  if (!c) {
    out.options = rawList(b, start, end, -1, -1);
    return;
  }
  let po = -1;
  let pn = 0;
  let pType = 0;
  let rest = false;
  for (let o = start; o + 4 <= end; ) {
    const len = tlvLen(b, o, end);
    const type = hu16(b, o + 2) & NLA_TYPE_MASK;
    if (type === c.tm) out.tm = decodeTmAt(b, o + 4, len - 4);
    else if (type === c.parms || type === c.parmsAlt) {
      po = o + 4;
      pn = len - 4;
      pType = type;
    } else if (type !== c.pad) rest = true;
    o += (len + 3) & ~3;
  }
  if (po < 0) {
    // Options without PARMS (should not happen): keep them raw rather than guess.
    if (rest) out.options = rawList(b, start, end, c.tm, c.pad);
    return;
  }
  const p: GenParms = c.parmsAt(b, po, pn, pType);
  if (rest) readAttrs(b, start, end, c.table, p as unknown as Target, p as unknown as Target);
  out.params = p as ActionParams;
}

/** RawAttr copies of the TLVs in `b[start, end)` except the given types. */
function rawList(b: Buffer, start: number, end: number, skip1: number, skip2: number): RawAttr[] {
  const out: RawAttr[] = [];
  for (let o = start; o + 4 <= end; ) {
    const len = hu16(b, o);
    const type = hu16(b, o + 2) & NLA_TYPE_MASK;
    if (len < 4 || o + len > end) throw overrun(type, len, o, end);
    if (type !== skip1 && type !== skip2) out.push(rawAttrAt(b, o));
    o += (len + 3) & ~3;
  }
  return out;
}
