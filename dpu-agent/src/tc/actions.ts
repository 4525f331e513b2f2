// tc actions inside TCA_FLOWER_ACT ⇄ typed TcAction values. Pure.
// Layouts: include/uapi/linux/tc_act/tc_{gact,mirred,vlan,tunnel_key,ct,pedit,csum}.h,
// linux/pkt_cls.h (TCA_ACT_*, tc_gen, TC_ACT_*), linux/pkt_sched.h (tc_police).
// The action list is a nest whose children are numbered 1..n in execution order
// (TCA_ACT_MAX_PRIO = 32; OVS refuses more, lib/tc.c).
import { bytesToHex, bytesToIpv4, bytesToIpv6, bytesToMac, hexToBytes, ipv4ToBytes, ipv6ToBytes, macToBytes } from './addr.ts';
import { decodeEncOpts, encodeEncOpts, type EncOpts } from './encopts.ts';
import {
  type AttrWriter,
  type NlAttr,
  type RawAttr,
  getBe16,
  getBe32,
  getBytes,
  getString,
  getU16,
  getU32,
  getU64,
  getU8,
  attrLen,
  parseNested,
  readAt,
  readS32,
  readU16,
  readU32,
  toRaw,
  writeS32,
  writeU16,
  writeU32,
} from './nl.ts';
import { decodeStats, decodeTm, encodeStats, encodeTm, type ActionStats, type TcfTm } from './stats.ts';
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

function readGen(b: Buffer): GenParms {
  if (b.length < GEN_LEN) throw new NetlinkMalformedError(`tc_gen of ${b.length} B`);
  const g: GenParms = { control: readS32(b, 8) };
  const index = readU32(b, 0);
  const capab = readU32(b, 4);
  const refcnt = readS32(b, 12);
  const bindcnt = readS32(b, 16);
  if (index) g.index = index;
  if (capab) g.capab = capab;
  if (refcnt) g.refcnt = refcnt;
  if (bindcnt) g.bindcnt = bindcnt;
  return g;
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

function getBitfield(a: NlAttr): Bitfield32 {
  if (attrLen(a) < 8) throw new NetlinkMalformedError(`bitfield32 of ${attrLen(a)} B`);
  return { value: readAt(a, 0, readU32), selector: readAt(a, 4, readU32) };
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
  const ca = readU16(b, at + 4);
  return {
    cellLog: b[at]!,
    linklayer: b[at + 1]!,
    overhead: readU16(b, at + 2),
    cellAlign: ca >= 0x8000 ? ca - 0x10000 : ca,
    mpu: readU16(b, at + 6),
    rate: readU32(b, at + 8),
  };
}

// ---------------------------------------------------------------------------
// Decoding

const byType = (x: NlAttr, y: NlAttr): number => x.type - y.type;

/** Decodes TCA_FLOWER_ACT: children ordered by their 1-based priority. */
export function decodeActions(nest: NlAttr): TcAction[] {
  const list = parseNested(nest);
  list.sort(byType);
  return list.map(decodeAction);
}

export function decodeAction(nest: NlAttr): TcAction {
  const attrs = parseNested(nest);
  let kind = '';
  for (const a of attrs) if (a.type === TCA_ACT_KIND) kind = getString(a);
  const out: TcAction = { kind };
  for (const a of attrs) {
    switch (a.type) {
      case TCA_ACT_KIND:
        break;
      case TCA_ACT_OPTIONS:
        decodeOptions(out, a);
        break;
      case TCA_ACT_INDEX:
        out.actIndex = getU32(a);
        break;
      case TCA_ACT_STATS:
        out.stats = decodeStats(a);
        break;
      case TCA_ACT_PAD:
        break;
      case TCA_ACT_COOKIE:
        out.cookie = bytesToHex(a.data);
        break;
      case TCA_ACT_FLAGS:
        out.flags = getBitfield(a);
        break;
      case TCA_ACT_HW_STATS:
        out.hwStats = getBitfield(a);
        break;
      case TCA_ACT_USED_HW_STATS:
        out.usedHwStats = getBitfield(a);
        break;
      case TCA_ACT_IN_HW_COUNT:
        out.inHwCount = getU32(a);
        break;
      default:
        (out.unknown ??= []).push(toRaw(a));
    }
  }
  return out;
}

function decodeOptions(out: TcAction, opts: NlAttr): void {
  const attrs = parseNested(opts);
  const kind = out.kind;
  if (!isKnown(kind)) {
    out.options = attrs.map(toRaw);
    return;
  }
  const ids = IDS[kind];
  const rest: NlAttr[] = [];
  let parms: NlAttr | undefined;
  for (const a of attrs) {
    if (a.type === ids.tm) out.tm = decodeTm(a);
    else if (a.type === ids.pad) continue;
    else if (a.type === ids.parms || (kind === 'pedit' && a.type === 4)) parms = a;
    else rest.push(a);
  }
  if (!parms) {
    // Options without PARMS (should not happen): keep them raw rather than guess.
    if (rest.length) out.options = rest.map(toRaw);
    return;
  }
  out.params = decodeParams(kind, parms, rest);
}

function withUnknown<P extends GenParms>(p: P, unknown: RawAttr[]): P {
  if (unknown.length) p.unknown = unknown;
  return p;
}

function decodeParams(kind: KnownKind, parms: NlAttr, rest: NlAttr[]): ActionParams {
  const b = parms.data;
  const unknown: RawAttr[] = [];
  switch (kind) {
    case 'gact': {
      const p: GactParams = { kind, ...readGen(b) };
      for (const a of rest) {
        if (a.type === 3 && a.data.length >= 8) {
          p.prob = { ptype: readU16(a.data, 0), pval: readU16(a.data, 2), paction: readS32(a.data, 4) };
        } else unknown.push(toRaw(a));
      }
      return withUnknown(p, unknown);
    }
    case 'mirred': {
      if (b.length < 28) throw new NetlinkMalformedError(`tc_mirred of ${b.length} B`);
      const p: MirredParams = { kind, ...readGen(b), eaction: readS32(b, 20), ifindex: readU32(b, 24) };
      for (const a of rest) {
        if (a.type === 4) p.blockid = getU32(a);
        else unknown.push(toRaw(a));
      }
      return withUnknown(p, unknown);
    }
    case 'vlan': {
      if (b.length < 24) throw new NetlinkMalformedError(`tc_vlan of ${b.length} B`);
      const p: VlanParams = { kind, ...readGen(b), vAction: readS32(b, 20) };
      for (const a of rest) {
        if (a.type === 3) p.id = getU16(a);
        else if (a.type === 4) p.proto = getBe16(a);
        else if (a.type === 6) p.prio = getU8(a);
        else if (a.type === 7) p.pushEthDst = bytesToMac(getBytes(a, 6));
        else if (a.type === 8) p.pushEthSrc = bytesToMac(getBytes(a, 6));
        else unknown.push(toRaw(a));
      }
      return withUnknown(p, unknown);
    }
    case 'tunnel_key': {
      if (b.length < 24) throw new NetlinkMalformedError(`tc_tunnel_key of ${b.length} B`);
      const p: TunnelKeyParams = { kind, ...readGen(b), tAction: readS32(b, 20) };
      for (const a of rest) {
        if (a.type === 3) p.ipv4Src = bytesToIpv4(getBytes(a, 4));
        else if (a.type === 4) p.ipv4Dst = bytesToIpv4(getBytes(a, 4));
        else if (a.type === 5) p.ipv6Src = bytesToIpv6(getBytes(a, 16));
        else if (a.type === 6) p.ipv6Dst = bytesToIpv6(getBytes(a, 16));
        else if (a.type === 7) p.keyId = getBe32(a);
        else if (a.type === 9) p.dstPort = getBe16(a);
        else if (a.type === 10) p.noCsum = getU8(a) !== 0;
        else if (a.type === 11) p.encOpts = decodeEncOpts(a);
        else if (a.type === 12) p.tos = getU8(a);
        else if (a.type === 13) p.ttl = getU8(a);
        else if (a.type === 14) p.noFrag = true;
        else unknown.push(toRaw(a));
      }
      return withUnknown(p, unknown);
    }
    case 'ct': {
      const p: CtParams = { kind, ...readGen(b) };
      for (const a of rest) {
        if (a.type === 3) p.ctAction = getU16(a);
        else if (a.type === 4) p.zone = getU16(a);
        else if (a.type === 5) p.mark = getU32(a);
        else if (a.type === 6) p.markMask = getU32(a);
        else if (a.type === 7) p.labels = bytesToHex(getBytes(a, 16));
        else if (a.type === 8) p.labelsMask = bytesToHex(getBytes(a, 16));
        else if (a.type === 9) p.natIpv4Min = bytesToIpv4(getBytes(a, 4));
        else if (a.type === 10) p.natIpv4Max = bytesToIpv4(getBytes(a, 4));
        else if (a.type === 11) p.natIpv6Min = bytesToIpv6(getBytes(a, 16));
        else if (a.type === 12) p.natIpv6Max = bytesToIpv6(getBytes(a, 16));
        else if (a.type === 13) p.natPortMin = getBe16(a);
        else if (a.type === 14) p.natPortMax = getBe16(a);
        else if (a.type === 16) p.helperName = getString(a);
        else if (a.type === 17) p.helperFamily = getU8(a);
        else if (a.type === 18) p.helperProto = getU8(a);
        else unknown.push(toRaw(a));
      }
      return withUnknown(p, unknown);
    }
    case 'pedit': {
      if (b.length < 24) throw new NetlinkMalformedError(`tc_pedit_sel of ${b.length} B`);
      const nkeys = b[20]!;
      if (b.length < 24 + 24 * nkeys) throw new NetlinkMalformedError(`tc_pedit_sel with ${nkeys} keys in ${b.length} B`);
      const keys: PeditKey[] = [];
      for (let i = 0; i < nkeys; i++) {
        const o = 24 + i * 24;
        keys.push({
          mask: readU32(b, o),
          val: readU32(b, o + 4),
          off: readS32(b, o + 8),
          at: readU32(b, o + 12),
          offmask: readU32(b, o + 16),
          shift: readU32(b, o + 20),
        });
      }
      const p: PeditParams = { kind, ...readGen(b), keys, extended: parms.type === 4 };
      if (b[21]) p.flags = b[21];
      for (const a of rest) {
        if (a.type === 5) {
          parseNested(a).forEach((kex, i) => {
            const k = keys[i];
            if (!k) return;
            for (const f of parseNested(kex)) {
              if (f.type === 1) k.htype = getU16(f);
              else if (f.type === 2) k.cmd = getU16(f);
            }
          });
        } else unknown.push(toRaw(a));
      }
      return withUnknown(p, unknown);
    }
    case 'csum': {
      if (b.length < 24) throw new NetlinkMalformedError(`tc_csum of ${b.length} B`);
      for (const a of rest) unknown.push(toRaw(a));
      return withUnknown({ kind, ...readGen(b), updateFlags: readU32(b, 20) }, unknown);
    }
    case 'police': {
      if (b.length < 56) throw new NetlinkMalformedError(`tc_police of ${b.length} B`);
      const p: PoliceParams = {
        kind,
        control: readS32(b, 4),
        burst: readU32(b, 12),
        rate: readRateSpec(b, 20),
      };
      const index = readU32(b, 0);
      const limit = readU32(b, 8);
      const mtu = readU32(b, 16);
      const peak = readRateSpec(b, 32);
      const refcnt = readS32(b, 44);
      const bindcnt = readS32(b, 48);
      const capab = readU32(b, 52);
      if (index) p.index = index;
      if (limit) p.limit = limit;
      if (mtu) p.mtu = mtu;
      if (peak.rate || peak.cellLog || peak.mpu || peak.overhead || peak.cellAlign || peak.linklayer) p.peakrate = peak;
      if (refcnt) p.refcnt = refcnt;
      if (bindcnt) p.bindcnt = bindcnt;
      if (capab) p.capab = capab;
      for (const a of rest) {
        if (a.type === 2) p.rtab = getBytes(a);
        else if (a.type === 4) p.avrate = getU32(a);
        else if (a.type === 5) p.result = getU32(a);
        else if (a.type === 8) p.rate64 = getU64(a);
        else if (a.type === 9) p.peakrate64 = getU64(a);
        else if (a.type === 10) p.pktrate64 = getU64(a);
        else if (a.type === 11) p.pktburst64 = getU64(a);
        else if (a.type !== 3) unknown.push(toRaw(a));
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
