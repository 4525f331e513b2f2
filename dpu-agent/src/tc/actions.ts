// tc actions inside TCA_FLOWER_ACT ⇄ typed TcAction values. Pure.
// Layouts: include/uapi/linux/tc_act/tc_{gact,mirred,vlan,tunnel_key,ct,pedit,csum}.h,
// linux/pkt_cls.h (TCA_ACT_*, tc_gen, TC_ACT_*), linux/pkt_sched.h (tc_police).
// The action list is a nest whose children are numbered 1..n in execution order
// (TCA_ACT_MAX_PRIO = 32; OVS refuses more, lib/tc.c).
import { hexToBytes, ipv4At, ipv4ToBytes, ipv6At, ipv6ToBytes, macAt, macToBytes } from '../netlink/addr.ts';
import { decodeEncOptsAt, encodeEncOpts, type EncOpts } from './encopts.ts';
import {
  type AttrWriter,
  type NlAttr,
  type RawAttr,
  NLA_TYPE_MASK,
  attrBuf,
  attrLen,
  attrOff,
  exactLen,
  hs32,
  hu16,
  hu32,
  hu64,
  nbe16,
  nbe32,
  needLen,
  overrun,
  rawAttrAt,
  stringAt,
  writeS32,
  writeU16,
  writeU32,
} from '../netlink/nl.ts';
import { decodeStatsAt, decodeTmAt, encodeStats, encodeTm, type ActionStats, type TcfTm } from './stats.ts';
import { NetlinkMalformedError, TcInvalidError } from '../errors.ts';

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

/** How iproute2 prints a verdict (tc_util.c action_n2a): "drop", "pass", "goto chain 3", … */
export function verdictName(v: number): string {
  const op = (v & TC_ACT_EXT_OPCODE_MAX) >>> 0;
  if (op === TC_ACT_GOTO_CHAIN) return `goto chain ${v & TC_ACT_EXT_VAL_MASK}`;
  if (op === TC_ACT_JUMP) return `jump ${v & TC_ACT_EXT_VAL_MASK}`;
  switch (v) {
    case TC_ACT.UNSPEC:
      return 'continue';
    case TC_ACT.OK:
      return 'pass';
    case TC_ACT.RECLASSIFY:
      return 'reclassify';
    case TC_ACT.SHOT:
      return 'drop';
    case TC_ACT.PIPE:
      return 'pipe';
    case TC_ACT.STOLEN:
      return 'stolen';
    case TC_ACT.TRAP:
      return 'trap';
    default:
      return `${v}`;
  }
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

export interface GactParams extends GenParms {
  kind: 'gact';
  prob?: { ptype: number; pval: number; paction: number };
}

export const MIRRED = { EGRESS_REDIR: 1, EGRESS_MIRROR: 2, INGRESS_REDIR: 3, INGRESS_MIRROR: 4 } as const;
export interface MirredParams extends GenParms {
  kind: 'mirred';
  eaction: number;
  ifindex: number;
  blockid?: number;
}

export const VLAN_ACTION = { POP: 1, PUSH: 2, MODIFY: 3, POP_ETH: 4, PUSH_ETH: 5 } as const;
export interface VlanParams extends GenParms {
  kind: 'vlan';
  vAction: number;
  /** Host-order u16 like flower's VLAN_ID (act_vlan: nla_get_u16). */
  id?: number;
  /** be16 ethertype (0x8100 / 0x88a8). */
  proto?: number;
  prio?: number;
  pushEthDst?: string;
  pushEthSrc?: string;
}

export const TUNNEL_KEY_ACTION = { SET: 1, RELEASE: 2 } as const;
export interface TunnelKeyParams extends GenParms {
  kind: 'tunnel_key';
  tAction: number;
  ipv4Src?: string;
  ipv4Dst?: string;
  ipv6Src?: string;
  ipv6Dst?: string;
  keyId?: number;
  dstPort?: number;
  noCsum?: boolean;
  encOpts?: EncOpts;
  tos?: number;
  ttl?: number;
  noFrag?: boolean;
}

export const CT_ACTION = { COMMIT: 1, FORCE: 2, CLEAR: 4, NAT: 8, NAT_SRC: 16, NAT_DST: 32 } as const;
export interface CtParams extends GenParms {
  kind: 'ct';
  /** CT_ACTION bits (host-order u16). */
  ctAction?: number;
  zone?: number;
  mark?: number;
  markMask?: number;
  labels?: string;
  labelsMask?: string;
  natIpv4Min?: string;
  natIpv4Max?: string;
  natIpv6Min?: string;
  natIpv6Max?: string;
  natPortMin?: number;
  natPortMax?: number;
  helperName?: string;
  helperFamily?: number;
  helperProto?: number;
}

export const PEDIT_HTYPE = { NETWORK: 0, ETH: 1, IP4: 2, IP6: 3, TCP: 4, UDP: 5 } as const;
export const PEDIT_CMD = { SET: 0, ADD: 1 } as const;
export interface PeditKey {
  mask: number;
  val: number;
  off: number;
  at: number;
  offmask: number;
  shift: number;
  /** From TCA_PEDIT_KEYS_EX (extended form only). */
  htype?: number;
  cmd?: number;
}
export interface PeditParams extends GenParms {
  kind: 'pedit';
  flags?: number;
  keys: PeditKey[];
  /** PARMS_EX + KEYS_EX (what OVS sends and the kernel dumps when keys_ex exist) vs plain PARMS. */
  extended: boolean;
}

export interface CsumParams extends GenParms {
  kind: 'csum';
  updateFlags: number;
}

export interface RateSpec {
  cellLog: number;
  linklayer: number;
  overhead: number;
  cellAlign: number;
  mpu: number;
  rate: number;
}
/** act_police. `control` is tc_police.action, the exceed verdict; `result` the conform verdict. */
export interface PoliceParams extends GenParms {
  kind: 'police';
  limit?: number;
  /** In psched ticks (64 ns), like tc_police.burst. */
  burst: number;
  mtu?: number;
  rate: RateSpec;
  peakrate?: RateSpec;
  rate64?: number;
  peakrate64?: number;
  pktrate64?: number;
  pktburst64?: number;
  avrate?: number;
  result?: number;
  /** 1024-byte rate table (TCA_POLICE_RATE), request only — the kernel does not dump it. */
  rtab?: Uint8Array;
}

export type ActionParams =
  | GactParams
  | MirredParams
  | VlanParams
  | TunnelKeyParams
  | CtParams
  | PeditParams
  | CsumParams
  | PoliceParams;

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

// Option attribute ids per kind: [TM, PARMS, PAD].
const IDS = {
  gact: { tm: 1, parms: 2, pad: 4 },
  mirred: { tm: 1, parms: 2, pad: 3 },
  vlan: { tm: 1, parms: 2, pad: 5 },
  tunnel_key: { tm: 1, parms: 2, pad: 8 },
  ct: { tm: 2, parms: 1, pad: 15 }, // reversed in tc_ct.h
  pedit: { tm: 1, parms: 2, pad: 3 },
  csum: { tm: 2, parms: 1, pad: 3 },
  police: { tm: 6, parms: 1, pad: 7 },
} as const;
type KnownKind = keyof typeof IDS;
const isKnown = (k: string): k is KnownKind => Object.hasOwn(IDS, k);

const GEN_LEN = 20;

function writeGen(b: Buffer, p: GenParms): void {
  writeU32(b, 0, p.index ?? 0);
  writeU32(b, 4, p.capab ?? 0);
  writeS32(b, 8, p.control);
  writeS32(b, 12, p.refcnt ?? 0);
  writeS32(b, 16, p.bindcnt ?? 0);
}

/** struct tc_gen at `b[o]`: zero fields left out. The caller checked the length. */
function genAt<P extends GenParms>(p: P, b: Buffer, o: number): P {
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

function genAnd(p: GenParms, extra: number, fill: (b: Buffer) => void): Buffer {
  const b = Buffer.alloc(GEN_LEN + extra);
  writeGen(b, p);
  fill(b);
  return b;
}

function bitfield(b: Bitfield32): Buffer {
  const out = Buffer.alloc(8);
  writeU32(out, 0, b.value);
  writeU32(out, 4, b.selector);
  return out;
}

function bitfieldAt(b: Buffer, p: number, n: number): Bitfield32 {
  if (n < 8) throw new NetlinkMalformedError(`bitfield32 of ${n} B`);
  return { value: hu32(b, p), selector: hu32(b, p + 4) };
}

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
    w.nest(
      TCA_ACT_OPTIONS,
      (w) => {
        if (a.params) encodeParams(w, a.params);
        else w.rawAttrs(a.options);
        if (a.tm && isKnown(a.kind)) encodeTm(w, IDS[a.kind].tm, a.tm);
      },
      true,
    );
  }
  if (a.actIndex !== undefined) w.u32(TCA_ACT_INDEX, a.actIndex);
  if (a.stats) encodeStats(w, TCA_ACT_STATS, a.stats);
  if (a.cookie !== undefined) w.bytes(TCA_ACT_COOKIE, hexToBytes(a.cookie));
  if (a.flags) w.bytes(TCA_ACT_FLAGS, bitfield(a.flags));
  if (a.hwStats) w.bytes(TCA_ACT_HW_STATS, bitfield(a.hwStats));
  if (a.usedHwStats) w.bytes(TCA_ACT_USED_HW_STATS, bitfield(a.usedHwStats));
  if (a.inHwCount !== undefined) w.u32(TCA_ACT_IN_HW_COUNT, a.inHwCount);
  w.rawAttrs(a.unknown);
}

function encodeParams(w: AttrWriter, p: ActionParams): void {
  const ids = IDS[p.kind];
  switch (p.kind) {
    case 'gact':
      w.bytes(ids.parms, genAnd(p, 0, () => {}));
      if (p.prob) {
        const b = Buffer.alloc(8);
        writeU16(b, 0, p.prob.ptype);
        writeU16(b, 2, p.prob.pval);
        writeS32(b, 4, p.prob.paction);
        w.bytes(3, b);
      }
      break;
    case 'mirred':
      w.bytes(
        ids.parms,
        genAnd(p, 8, (b) => {
          writeS32(b, 20, p.eaction);
          writeU32(b, 24, p.ifindex);
        }),
      );
      if (p.blockid !== undefined) w.u32(4, p.blockid);
      break;
    case 'vlan':
      w.bytes(ids.parms, genAnd(p, 4, (b) => writeS32(b, 20, p.vAction)));
      if (p.id !== undefined) w.u16(3, p.id);
      if (p.proto !== undefined) w.be16(4, p.proto);
      if (p.prio !== undefined) w.u8(6, p.prio);
      if (p.pushEthDst !== undefined) w.bytes(7, macToBytes(p.pushEthDst));
      if (p.pushEthSrc !== undefined) w.bytes(8, macToBytes(p.pushEthSrc));
      break;
    case 'tunnel_key':
      w.bytes(ids.parms, genAnd(p, 4, (b) => writeS32(b, 20, p.tAction)));
      if (p.ipv4Src !== undefined) w.bytes(3, ipv4ToBytes(p.ipv4Src));
      if (p.ipv4Dst !== undefined) w.bytes(4, ipv4ToBytes(p.ipv4Dst));
      if (p.ipv6Src !== undefined) w.bytes(5, ipv6ToBytes(p.ipv6Src));
      if (p.ipv6Dst !== undefined) w.bytes(6, ipv6ToBytes(p.ipv6Dst));
      if (p.keyId !== undefined) w.be32(7, p.keyId);
      if (p.dstPort !== undefined) w.be16(9, p.dstPort);
      if (p.noCsum !== undefined) w.u8(10, p.noCsum ? 1 : 0);
      if (p.encOpts) encodeEncOpts(w, 11, p.encOpts);
      if (p.tos !== undefined) w.u8(12, p.tos);
      if (p.ttl !== undefined) w.u8(13, p.ttl);
      if (p.noFrag) w.flag(14);
      break;
    case 'ct':
      w.bytes(ids.parms, genAnd(p, 0, () => {}));
      if (p.ctAction !== undefined) w.u16(3, p.ctAction);
      if (p.zone !== undefined) w.u16(4, p.zone);
      if (p.mark !== undefined) w.u32(5, p.mark);
      if (p.markMask !== undefined) w.u32(6, p.markMask);
      if (p.labels !== undefined) w.bytes(7, hexToBytes(p.labels, 16));
      if (p.labelsMask !== undefined) w.bytes(8, hexToBytes(p.labelsMask, 16));
      if (p.natIpv4Min !== undefined) w.bytes(9, ipv4ToBytes(p.natIpv4Min));
      if (p.natIpv4Max !== undefined) w.bytes(10, ipv4ToBytes(p.natIpv4Max));
      if (p.natIpv6Min !== undefined) w.bytes(11, ipv6ToBytes(p.natIpv6Min));
      if (p.natIpv6Max !== undefined) w.bytes(12, ipv6ToBytes(p.natIpv6Max));
      if (p.natPortMin !== undefined) w.be16(13, p.natPortMin);
      if (p.natPortMax !== undefined) w.be16(14, p.natPortMax);
      if (p.helperName !== undefined) w.string(16, p.helperName);
      if (p.helperFamily !== undefined) w.u8(17, p.helperFamily);
      if (p.helperProto !== undefined) w.u8(18, p.helperProto);
      break;
    case 'pedit': {
      if (p.keys.length > 255) throw new TcInvalidError(`pedit with ${p.keys.length} keys (nkeys is a u8)`);
      const b = genAnd(p, 4 + 24 * p.keys.length, (b) => {
        b.writeUInt8(p.keys.length, 20);
        b.writeUInt8(p.flags ?? 0, 21);
        p.keys.forEach((k, i) => {
          const o = 24 + i * 24;
          writeU32(b, o, k.mask);
          writeU32(b, o + 4, k.val);
          writeS32(b, o + 8, k.off);
          writeU32(b, o + 12, k.at);
          writeU32(b, o + 16, k.offmask);
          writeU32(b, o + 20, k.shift);
        });
      });
      if (p.extended) {
        w.bytes(4, b);
        w.nest(
          5,
          (w) => {
            for (const k of p.keys) {
              w.nest(
                6,
                (w) => {
                  w.u16(1, k.htype ?? 0);
                  w.u16(2, k.cmd ?? 0);
                },
                true,
              );
            }
          },
          true,
        );
      } else {
        w.bytes(2, b);
      }
      break;
    }
    case 'csum':
      w.bytes(ids.parms, genAnd(p, 4, (b) => writeU32(b, 20, p.updateFlags)));
      break;
    case 'police': {
      const b = Buffer.alloc(56);
      writeU32(b, 0, p.index ?? 0);
      writeS32(b, 4, p.control);
      writeU32(b, 8, p.limit ?? 0);
      writeU32(b, 12, p.burst);
      writeU32(b, 16, p.mtu ?? 0);
      writeRateSpec(b, 20, p.rate);
      if (p.peakrate) writeRateSpec(b, 32, p.peakrate);
      writeS32(b, 44, p.refcnt ?? 0);
      writeS32(b, 48, p.bindcnt ?? 0);
      writeU32(b, 52, p.capab ?? 0);
      w.bytes(1, b);
      if (p.rtab) w.bytes(2, p.rtab);
      if (p.avrate !== undefined) w.u32(4, p.avrate);
      if (p.result !== undefined) w.u32(5, p.result);
      if (p.rate64 !== undefined) w.u64(8, p.rate64);
      if (p.peakrate64 !== undefined) w.u64(9, p.peakrate64);
      if (p.pktrate64 !== undefined) w.u64(10, p.pktrate64);
      if (p.pktburst64 !== undefined) w.u64(11, p.pktburst64);
      break;
    }
  }
  w.rawAttrs(p.unknown);
}

function writeRateSpec(b: Buffer, at: number, r: RateSpec): void {
  b.writeUInt8(r.cellLog, at);
  b.writeUInt8(r.linklayer, at + 1);
  writeU16(b, at + 2, r.overhead);
  writeU16(b, at + 4, r.cellAlign & 0xffff);
  writeU16(b, at + 6, r.mpu);
  writeU32(b, at + 8, r.rate);
}

function readRateSpec(b: Buffer, at: number): RateSpec {
  const ca = hu16(b, at + 4);
  return {
    cellLog: b[at]!,
    linklayer: b[at + 1]!,
    overhead: hu16(b, at + 2),
    cellAlign: ca >= 0x8000 ? ca - 0x10000 : ca,
    mpu: hu16(b, at + 6),
    rate: hu32(b, at + 8),
  };
}

// ---------------------------------------------------------------------------
// Decoding: in place over the received buffer (netlink/nl.ts "range decoders"); the
// NlAttr entry points are thin wrappers.

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
    const len = hu16(b, o);
    const type = hu16(b, o + 2) & NLA_TYPE_MASK;
    if (len < 4 || o + len > end) throw overrun(type, len, o, end);
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
export function decodeActionAt(b: Buffer, start: number, end: number): TcAction {
  // KIND first (the kernel sends it first; the last one wins, as parsing into a table would).
  let kind = '';
  for (let o = start; o + 4 <= end; ) {
    const len = hu16(b, o);
    const type = hu16(b, o + 2) & NLA_TYPE_MASK;
    if (len < 4 || o + len > end) throw overrun(type, len, o, end);
    if (type === TCA_ACT_KIND) kind = kindAt(b, o + 4, len - 4);
    o += (len + 3) & ~3;
  }
  const out: TcAction = { kind };
  for (let o = start; o + 4 <= end; ) {
    const len = hu16(b, o);
    const type = hu16(b, o + 2) & NLA_TYPE_MASK;
    const p = o + 4;
    const n = len - 4;
    switch (type) {
      case TCA_ACT_KIND:
        break;
      case TCA_ACT_OPTIONS:
        decodeOptionsAt(out, b, p, p + n);
        break;
      case TCA_ACT_INDEX:
        needLen(n, 4, 'u32', type);
        out.actIndex = hu32(b, p);
        break;
      case TCA_ACT_STATS:
        out.stats = decodeStatsAt(b, p, p + n);
        break;
      case TCA_ACT_PAD:
        break;
      case TCA_ACT_COOKIE:
        out.cookie = b.toString('hex', p, p + n);
        break;
      case TCA_ACT_FLAGS:
        out.flags = bitfieldAt(b, p, n);
        break;
      case TCA_ACT_HW_STATS:
        out.hwStats = bitfieldAt(b, p, n);
        break;
      case TCA_ACT_USED_HW_STATS:
        out.usedHwStats = bitfieldAt(b, p, n);
        break;
      case TCA_ACT_IN_HW_COUNT:
        needLen(n, 4, 'u32', type);
        out.inHwCount = hu32(b, p);
        break;
      default:
        (out.unknown ??= []).push(rawAttrAt(b, o));
    }
    o += (len + 3) & ~3;
  }
  return out;
}

const KINDS = Object.keys(IDS) as KnownKind[];
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

function decodeOptionsAt(out: TcAction, b: Buffer, start: number, end: number): void {
  const kind = out.kind;
  if (!isKnown(kind)) {
    out.options = rawList(b, start, end, -1, -1, -1);
    return;
  }
  const ids = IDS[kind];
  const parmsAlt = kind === 'pedit' ? 4 : -1;
  let po = -1;
  let pn = 0;
  let pType = 0;
  let rest = false;
  for (let o = start; o + 4 <= end; ) {
    const len = hu16(b, o);
    const type = hu16(b, o + 2) & NLA_TYPE_MASK;
    if (len < 4 || o + len > end) throw overrun(type, len, o, end);
    if (type === ids.tm) out.tm = decodeTmAt(b, o + 4, len - 4);
    else if (type === ids.pad) {
      // padding
    } else if (type === ids.parms || type === parmsAlt) {
      po = o + 4;
      pn = len - 4;
      pType = type;
    } else rest = true;
    o += (len + 3) & ~3;
  }
  if (po < 0) {
    // Options without PARMS (should not happen): keep them raw rather than guess.
    if (rest) out.options = rawList(b, start, end, ids.tm, ids.pad, -1);
    return;
  }
  out.params = decodeParamsAt(kind, b, po, pn, pType, start, end, rest);
}

/** RawAttr copies of the TLVs in `b[start, end)` except the given types. */
function rawList(b: Buffer, start: number, end: number, skip1: number, skip2: number, skip3: number): RawAttr[] {
  const out: RawAttr[] = [];
  for (let o = start; o + 4 <= end; ) {
    const len = hu16(b, o);
    const type = hu16(b, o + 2) & NLA_TYPE_MASK;
    if (len < 4 || o + len > end) throw overrun(type, len, o, end);
    if (type !== skip1 && type !== skip2 && type !== skip3) out.push(rawAttrAt(b, o));
    o += (len + 3) & ~3;
  }
  return out;
}

// No closures per call below: under tsx (esbuild keepNames) every closure made is also
// a __name() defineProperty call, and that showed up as ~20% of a dump's decode.

/** Whether an option attribute is one a kind's decoder reads beyond PARMS (not TM, PAD, PARMS). */
const isRest = (ids: { tm: number; parms: number; pad: number }, alt: number, type: number): boolean =>
  type !== ids.tm && type !== ids.pad && type !== ids.parms && type !== alt;

const pushRaw = (list: RawAttr[] | undefined, b: Buffer, o: number): RawAttr[] => {
  const l = list ?? [];
  l.push(rawAttrAt(b, o));
  return l;
};

function withUnknown<P extends GenParms>(p: P, unknown: RawAttr[] | undefined): P {
  if (unknown) p.unknown = unknown;
  return p;
}

function needGen(pn: number): void {
  if (pn < GEN_LEN) throw new NetlinkMalformedError(`tc_gen of ${pn} B`);
}

function decodeParamsAt(kind: KnownKind, b: Buffer, po: number, pn: number, pType: number, start: number, end: number, rest: boolean): ActionParams {
  let unknown: RawAttr[] | undefined;
  const ids = IDS[kind];
  const alt = kind === 'pedit' ? 4 : -1;
  // Each case: PARMS, then (when there are any) the other option attributes in one pass.
  switch (kind) {
    case 'gact': {
      needGen(pn);
      const p = genAt<GactParams>({ kind, control: hs32(b, po + 8) }, b, po);
      if (rest)
        for (let o = start; o + 4 <= end; o += (hu16(b, o) + 3) & ~3) {
          const type = hu16(b, o + 2) & NLA_TYPE_MASK;
          if (!isRest(ids, alt, type)) continue;
          const q = o + 4;
          const n = hu16(b, o) - 4;
          if (type === 3 && n >= 8) p.prob = { ptype: hu16(b, q), pval: hu16(b, q + 2), paction: hs32(b, q + 4) };
          else unknown = pushRaw(unknown, b, o);
        }
      return withUnknown(p, unknown);
    }
    case 'mirred': {
      if (pn < 28) throw new NetlinkMalformedError(`tc_mirred of ${pn} B`);
      const p = genAt<MirredParams>({ kind, control: hs32(b, po + 8), eaction: 0, ifindex: 0 }, b, po);
      p.eaction = hs32(b, po + 20);
      p.ifindex = hu32(b, po + 24);
      if (rest)
        for (let o = start; o + 4 <= end; o += (hu16(b, o) + 3) & ~3) {
          const type = hu16(b, o + 2) & NLA_TYPE_MASK;
          if (!isRest(ids, alt, type)) continue;
          const q = o + 4;
          const n = hu16(b, o) - 4;
          if (type === 4) {
            needLen(n, 4, 'u32', type);
            p.blockid = hu32(b, q);
          } else unknown = pushRaw(unknown, b, o);
        }
      return withUnknown(p, unknown);
    }
    case 'vlan': {
      if (pn < 24) throw new NetlinkMalformedError(`tc_vlan of ${pn} B`);
      const p = genAt<VlanParams>({ kind, control: hs32(b, po + 8), vAction: 0 }, b, po);
      p.vAction = hs32(b, po + 20);
      if (rest)
        for (let o = start; o + 4 <= end; o += (hu16(b, o) + 3) & ~3) {
          const type = hu16(b, o + 2) & NLA_TYPE_MASK;
          if (!isRest(ids, alt, type)) continue;
          const q = o + 4;
          const n = hu16(b, o) - 4;
          if (type === 3) {
            needLen(n, 2, 'u16', type);
            p.id = hu16(b, q);
          } else if (type === 4) {
            needLen(n, 2, 'be16', type);
            p.proto = nbe16(b, q);
          } else if (type === 6) {
            needLen(n, 1, 'u8', type);
            p.prio = b[q]!;
          } else if (type === 7) {
            exactLen(n, 6, type);
            p.pushEthDst = macAt(b, q);
          } else if (type === 8) {
            exactLen(n, 6, type);
            p.pushEthSrc = macAt(b, q);
          } else unknown = pushRaw(unknown, b, o);
        }
      return withUnknown(p, unknown);
    }
    case 'tunnel_key': {
      if (pn < 24) throw new NetlinkMalformedError(`tc_tunnel_key of ${pn} B`);
      const p = genAt<TunnelKeyParams>({ kind, control: hs32(b, po + 8), tAction: 0 }, b, po);
      p.tAction = hs32(b, po + 20);
      if (rest)
        for (let o = start; o + 4 <= end; o += (hu16(b, o) + 3) & ~3) {
          const type = hu16(b, o + 2) & NLA_TYPE_MASK;
          if (!isRest(ids, alt, type)) continue;
          const q = o + 4;
          const n = hu16(b, o) - 4;
          switch (type) {
            case 3:
              exactLen(n, 4, type);
              p.ipv4Src = ipv4At(b, q);
              break;
            case 4:
              exactLen(n, 4, type);
              p.ipv4Dst = ipv4At(b, q);
              break;
            case 5:
              exactLen(n, 16, type);
              p.ipv6Src = ipv6At(b, q);
              break;
            case 6:
              exactLen(n, 16, type);
              p.ipv6Dst = ipv6At(b, q);
              break;
            case 7:
              needLen(n, 4, 'be32', type);
              p.keyId = nbe32(b, q);
              break;
            case 9:
              needLen(n, 2, 'be16', type);
              p.dstPort = nbe16(b, q);
              break;
            case 10:
              needLen(n, 1, 'u8', type);
              p.noCsum = b[q] !== 0;
              break;
            case 11:
              p.encOpts = decodeEncOptsAt(b, q, q + n);
              break;
            case 12:
              needLen(n, 1, 'u8', type);
              p.tos = b[q]!;
              break;
            case 13:
              needLen(n, 1, 'u8', type);
              p.ttl = b[q]!;
              break;
            case 14:
              p.noFrag = true;
              break;
            default:
              unknown = pushRaw(unknown, b, o);
          }
        }
      return withUnknown(p, unknown);
    }
    case 'ct': {
      needGen(pn);
      const p = genAt<CtParams>({ kind, control: hs32(b, po + 8) }, b, po);
      if (rest)
        for (let o = start; o + 4 <= end; o += (hu16(b, o) + 3) & ~3) {
          const type = hu16(b, o + 2) & NLA_TYPE_MASK;
          if (!isRest(ids, alt, type)) continue;
          const q = o + 4;
          const n = hu16(b, o) - 4;
          switch (type) {
            case 3:
              needLen(n, 2, 'u16', type);
              p.ctAction = hu16(b, q);
              break;
            case 4:
              needLen(n, 2, 'u16', type);
              p.zone = hu16(b, q);
              break;
            case 5:
              needLen(n, 4, 'u32', type);
              p.mark = hu32(b, q);
              break;
            case 6:
              needLen(n, 4, 'u32', type);
              p.markMask = hu32(b, q);
              break;
            case 7:
              exactLen(n, 16, type);
              p.labels = b.toString('hex', q, q + 16);
              break;
            case 8:
              exactLen(n, 16, type);
              p.labelsMask = b.toString('hex', q, q + 16);
              break;
            case 9:
              exactLen(n, 4, type);
              p.natIpv4Min = ipv4At(b, q);
              break;
            case 10:
              exactLen(n, 4, type);
              p.natIpv4Max = ipv4At(b, q);
              break;
            case 11:
              exactLen(n, 16, type);
              p.natIpv6Min = ipv6At(b, q);
              break;
            case 12:
              exactLen(n, 16, type);
              p.natIpv6Max = ipv6At(b, q);
              break;
            case 13:
              needLen(n, 2, 'be16', type);
              p.natPortMin = nbe16(b, q);
              break;
            case 14:
              needLen(n, 2, 'be16', type);
              p.natPortMax = nbe16(b, q);
              break;
            case 16:
              p.helperName = stringAt(b, q, n);
              break;
            case 17:
              needLen(n, 1, 'u8', type);
              p.helperFamily = b[q]!;
              break;
            case 18:
              needLen(n, 1, 'u8', type);
              p.helperProto = b[q]!;
              break;
            default:
              unknown = pushRaw(unknown, b, o);
          }
        }
      return withUnknown(p, unknown);
    }
    case 'pedit': {
      if (pn < 24) throw new NetlinkMalformedError(`tc_pedit_sel of ${pn} B`);
      const nkeys = b[po + 20]!;
      if (pn < 24 + 24 * nkeys) throw new NetlinkMalformedError(`tc_pedit_sel with ${nkeys} keys in ${pn} B`);
      const keys: PeditKey[] = [];
      for (let i = 0; i < nkeys; i++) {
        const o = po + 24 + i * 24;
        keys.push({ mask: hu32(b, o), val: hu32(b, o + 4), off: hs32(b, o + 8), at: hu32(b, o + 12), offmask: hu32(b, o + 16), shift: hu32(b, o + 20) });
      }
      const p = genAt<PeditParams>({ kind, control: hs32(b, po + 8), keys, extended: pType === 4 }, b, po);
      if (b[po + 21]) p.flags = b[po + 21]!;
      if (rest)
        for (let o = start; o + 4 <= end; o += (hu16(b, o) + 3) & ~3) {
          const type = hu16(b, o + 2) & NLA_TYPE_MASK;
          if (!isRest(ids, alt, type)) continue;
          const q = o + 4;
          const n = hu16(b, o) - 4;
          if (type !== 5) {
            unknown = pushRaw(unknown, b, o);
            continue;
          }
          let i = 0;
          for (let x = q; x + 4 <= q + n; ) {
            const xl = hu16(b, x);
            const xt = hu16(b, x + 2) & NLA_TYPE_MASK;
            if (xl < 4 || x + xl > q + n) throw overrun(xt, xl, x, q + n);
            const k = keys[i++];
            if (k) {
              for (let f = x + 4; f + 4 <= x + xl; ) {
                const fl = hu16(b, f);
                const ft = hu16(b, f + 2) & NLA_TYPE_MASK;
                if (fl < 4 || f + fl > x + xl) throw overrun(ft, fl, f, x + xl);
                if (ft === 1 || ft === 2) {
                  needLen(fl - 4, 2, 'u16', ft);
                  if (ft === 1) k.htype = hu16(b, f + 4);
                  else k.cmd = hu16(b, f + 4);
                }
                f += (fl + 3) & ~3;
              }
            }
            x += (xl + 3) & ~3;
          }
        }
      return withUnknown(p, unknown);
    }
    case 'csum': {
      if (pn < 24) throw new NetlinkMalformedError(`tc_csum of ${pn} B`);
      const p = genAt<CsumParams>({ kind, control: hs32(b, po + 8), updateFlags: 0 }, b, po);
      p.updateFlags = hu32(b, po + 20);
      if (rest) for (let o = start; o + 4 <= end; o += (hu16(b, o) + 3) & ~3) if (isRest(ids, alt, hu16(b, o + 2) & NLA_TYPE_MASK)) unknown = pushRaw(unknown, b, o);
      return withUnknown(p, unknown);
    }
    case 'police': {
      if (pn < 56) throw new NetlinkMalformedError(`tc_police of ${pn} B`);
      const p: PoliceParams = { kind, control: hs32(b, po + 4), burst: hu32(b, po + 12), rate: readRateSpec(b, po + 20) };
      const index = hu32(b, po);
      const limit = hu32(b, po + 8);
      const mtu = hu32(b, po + 16);
      const peak = readRateSpec(b, po + 32);
      const refcnt = hs32(b, po + 44);
      const bindcnt = hs32(b, po + 48);
      const capab = hu32(b, po + 52);
      if (index) p.index = index;
      if (limit) p.limit = limit;
      if (mtu) p.mtu = mtu;
      if (peak.rate || peak.cellLog || peak.mpu || peak.overhead || peak.cellAlign || peak.linklayer) p.peakrate = peak;
      if (refcnt) p.refcnt = refcnt;
      if (bindcnt) p.bindcnt = bindcnt;
      if (capab) p.capab = capab;
      if (rest)
        for (let o = start; o + 4 <= end; o += (hu16(b, o) + 3) & ~3) {
          const type = hu16(b, o + 2) & NLA_TYPE_MASK;
          if (!isRest(ids, alt, type)) continue;
          const q = o + 4;
          const n = hu16(b, o) - 4;
          switch (type) {
            case 2:
              p.rtab = new Uint8Array(b.subarray(q, q + n));
              break;
            case 4:
              needLen(n, 4, 'u32', type);
              p.avrate = hu32(b, q);
              break;
            case 5:
              needLen(n, 4, 'u32', type);
              p.result = hu32(b, q);
              break;
            case 8:
            case 9:
            case 10:
            case 11: {
              needLen(n, 8, 'u64', type);
              const v = hu64(b, q);
              if (type === 8) p.rate64 = v;
              else if (type === 9) p.peakrate64 = v;
              else if (type === 10) p.pktrate64 = v;
              else p.pktburst64 = v;
              break;
            }
            case 3:
              break;
            default:
              unknown = pushRaw(unknown, b, o);
          }
        }
      return withUnknown(p, unknown);
    }
  }
}

// ---------------------------------------------------------------------------
// Builders for the actions the agent writes (same as the tc CLI lines quoted).

const common = (a: TcAction, o?: { cookie?: string; flags?: Bitfield32 }): TcAction => {
  if (o?.cookie !== undefined) a.cookie = o.cookie;
  if (o?.flags !== undefined) a.flags = o.flags;
  return a;
};

/** `action drop` (gact SHOT). */
export const dropAction = (o?: { cookie?: string }): TcAction =>
  common({ kind: 'gact', params: { kind: 'gact', control: TC_ACT.SHOT } }, o);

/** `action goto chain N` (OVS recirc). */
export const gotoChainAction = (chain: number, o?: { cookie?: string }): TcAction =>
  common({ kind: 'gact', params: { kind: 'gact', control: gotoChain(chain) } }, o);

/** `action mirred egress redirect dev X`: STOLEN for redirect, PIPE for mirror (m_mirred.c). */
export function mirredAction(
  ifindex: number,
  how: 'egress-redirect' | 'egress-mirror' | 'ingress-redirect' | 'ingress-mirror' = 'egress-redirect',
  o?: { cookie?: string; flags?: Bitfield32 },
): TcAction {
  const eaction = {
    'egress-redirect': MIRRED.EGRESS_REDIR,
    'egress-mirror': MIRRED.EGRESS_MIRROR,
    'ingress-redirect': MIRRED.INGRESS_REDIR,
    'ingress-mirror': MIRRED.INGRESS_MIRROR,
  }[how];
  const control = how.endsWith('redirect') ? TC_ACT.STOLEN : TC_ACT.PIPE;
  return common({ kind: 'mirred', params: { kind: 'mirred', control, eaction, ifindex } }, o);
}

// psched clock: 1 tick = 64 ns on every kernel with PSCHED_SHIFT 6 (/proc/net/psched
// "000003e8 00000040 …" ⇒ 1000/64 = 15.625 ticks per µs, iproute2 tc_core.c).
const TICKS_PER_USEC = 15.625;
const xmitTime = (rateBytes: number, size: number): number =>
  Math.floor(Math.floor((1e6 * size) / rateBytes) * TICKS_PER_USEC) >>> 0;

/**
 * `action police rate <rate>bit burst <burst> conform-exceed drop/pipe`-like police
 * with the rate table iproute2 (m_police.c, tc_core.c tc_calc_rtable) and OVS
 * (lib/tc.c tc_put_rtab) send: the kernel rejects a rate without a 1024-byte
 * table whose cell_log is 1..31 (qdisc_get_rtab).
 */
export function policeAction(o: { rateBytesPerSec: number; burstBytes: number; mtu?: number; exceed?: number; conform?: number; index?: number }): TcAction {
  if (!(o.rateBytesPerSec > 0) || !(o.burstBytes > 0)) throw new TcInvalidError('police rate and burst must be > 0');
  const mtu = o.mtu ?? 0;
  let cellLog = 0;
  const m = mtu || 2047;
  while (m >> cellLog > 255) cellLog++;
  const rate32 = Math.min(o.rateBytesPerSec, 0xffffffff);
  const rtab = Buffer.alloc(1024);
  for (let i = 0; i < 256; i++) writeU32(rtab, i * 4, xmitTime(rate32, (i + 1) << cellLog));
  const p: PoliceParams = {
    kind: 'police',
    control: o.exceed ?? TC_ACT.SHOT,
    burst: xmitTime(rate32, o.burstBytes),
    rate: { cellLog, linklayer: 1, overhead: 0, cellAlign: -1, mpu: 0, rate: rate32 },
    rtab,
  };
  if (mtu) p.mtu = mtu;
  if (o.index) p.index = o.index;
  if (o.conform !== undefined) p.result = o.conform;
  if (o.rateBytesPerSec > 0xffffffff) p.rate64 = o.rateBytesPerSec;
  return { kind: 'police', params: p };
}
