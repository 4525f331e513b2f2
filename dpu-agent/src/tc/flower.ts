// cls_flower TCA_OPTIONS ⇄ a typed FlowerKey (include/uapi/linux/pkt_cls.h
// TCA_FLOWER_*; ids in reference B2). Pure.
//
// Byte order, per attribute, is what the kernel's fl_set_key/fl_dump_key read
// and write (net/sched/cls_flower.c) — not what the uapi comments say:
// ports, ethertypes, IPs, KEY_ID, KEY_FLAGS, TCP_FLAGS are big-endian;
// VLAN_ID/CVLAN_ID (nla_get_u16 & VLAN_VID_MASK), MPLS_LABEL and CT_* are host
// order (OVS lib/tc.c nl_msg_put_u16(TCA_FLOWER_KEY_VLAN_ID); iproute2 f_flower.c
// addattr16). Keys whose mask is all-zero are not dumped by the kernel
// (fl_dump_key_val) and should not be sent (OVS nl_msg_put_masked_value).
import { decodeActionsAt, encodeActions, type TcAction } from './actions/index.ts';
import { encOpts, type EncOpts } from './encopts.ts';
import { type AttrWriter, type RawAttr, hu32, needLen } from '../netlink/nl.ts';
import { type Custom, type Scalar, type Target, attrTable, readAttrs, writeAttrs } from '../netlink/walk.ts';
import { TcInvalidError } from '../errors.ts';

export const TCA_FLOWER_CLASSID = 1;
export const TCA_FLOWER_INDEV = 2;
export const TCA_FLOWER_ACT = 3;
export const TCA_FLOWER_FLAGS = 22;
export const TCA_FLOWER_KEY_ENC_OPTS = 84;
export const TCA_FLOWER_KEY_ENC_OPTS_MASK = 85;
export const TCA_FLOWER_IN_HW_COUNT = 86;

// TCA_FLOWER_FLAGS bits (TCA_CLS_FLAGS_*, pkt_cls.h)
export const TCA_CLS_FLAGS_SKIP_HW = 1;
export const TCA_CLS_FLAGS_SKIP_SW = 2;
export const TCA_CLS_FLAGS_IN_HW = 4;
export const TCA_CLS_FLAGS_NOT_IN_HW = 8;
export const TCA_CLS_FLAGS_VERBOSE = 16;

// TCA_FLOWER_KEY_FLAGS bits (be32 on the wire)
export const FLOWER_KEY_FLAGS = {
  IS_FRAGMENT: 1,
  FRAG_IS_FIRST: 2,
  TUNNEL_CSUM: 4,
  TUNNEL_DONT_FRAGMENT: 8,
  TUNNEL_OAM: 16,
  TUNNEL_CRIT_OPT: 32,
} as const;

// ct_state bits (TCA_FLOWER_KEY_CT_FLAGS_*)
export const CT_STATE = { NEW: 1, ESTABLISHED: 2, RELATED: 4, TRACKED: 8, INVALID: 16, REPLY: 32, RPL: 32 } as const;

/**
 * Every match field we understand. Masks are separate fields: an absent mask
 * with a present value means "exact" (the kernel fills all-ones when the mask
 * attribute is missing, fl_set_key_val). Addresses are canonical text (netlink/addr.ts).
 */
export interface FlowerKey {
  indev?: string;
  ethDst?: string;
  ethDstMask?: string;
  ethSrc?: string;
  ethSrcMask?: string;
  ethType?: number;
  ipProto?: number;
  ipv4Src?: string;
  ipv4SrcMask?: string;
  ipv4Dst?: string;
  ipv4DstMask?: string;
  ipv6Src?: string;
  ipv6SrcMask?: string;
  ipv6Dst?: string;
  ipv6DstMask?: string;
  tcpSrc?: number;
  tcpSrcMask?: number;
  tcpDst?: number;
  tcpDstMask?: number;
  udpSrc?: number;
  udpSrcMask?: number;
  udpDst?: number;
  udpDstMask?: number;
  sctpSrc?: number;
  sctpSrcMask?: number;
  sctpDst?: number;
  sctpDstMask?: number;
  /** 12-bit VID, host-order u16 on the wire (byte-order trap, reference B2). */
  vlanId?: number;
  vlanPrio?: number;
  vlanEthType?: number;
  cvlanId?: number;
  cvlanPrio?: number;
  cvlanEthType?: number;
  /** Tunnel id (VNI), be32. */
  encKeyId?: number;
  encIpv4Src?: string;
  encIpv4SrcMask?: string;
  encIpv4Dst?: string;
  encIpv4DstMask?: string;
  encIpv6Src?: string;
  encIpv6SrcMask?: string;
  encIpv6Dst?: string;
  encIpv6DstMask?: string;
  encUdpSrcPort?: number;
  encUdpSrcPortMask?: number;
  encUdpDstPort?: number;
  encUdpDstPortMask?: number;
  encIpTos?: number;
  encIpTosMask?: number;
  encIpTtl?: number;
  encIpTtlMask?: number;
  encOpts?: EncOpts;
  encOptsMask?: EncOpts;
  /** FLOWER_KEY_FLAGS bits (frag etc.), be32. */
  keyFlags?: number;
  keyFlagsMask?: number;
  icmpv4Type?: number;
  icmpv4TypeMask?: number;
  icmpv4Code?: number;
  icmpv4CodeMask?: number;
  icmpv6Type?: number;
  icmpv6TypeMask?: number;
  icmpv6Code?: number;
  icmpv6CodeMask?: number;
  arpSip?: string;
  arpSipMask?: string;
  arpTip?: string;
  arpTipMask?: string;
  arpOp?: number;
  arpOpMask?: number;
  arpSha?: string;
  arpShaMask?: string;
  arpTha?: string;
  arpThaMask?: string;
  mplsTtl?: number;
  mplsBos?: number;
  mplsTc?: number;
  /** 20-bit label, host-order u32. */
  mplsLabel?: number;
  tcpFlags?: number;
  tcpFlagsMask?: number;
  ipTos?: number;
  ipTosMask?: number;
  ipTtl?: number;
  ipTtlMask?: number;
  portSrcMin?: number;
  portSrcMax?: number;
  portDstMin?: number;
  portDstMax?: number;
  /** CT_STATE bits, host-order u16. */
  ctState?: number;
  ctStateMask?: number;
  ctZone?: number;
  ctZoneMask?: number;
  ctMark?: number;
  ctMarkMask?: number;
  /** 128-bit label, 32 hex digits (bytes as in memory). */
  ctLabels?: string;
  ctLabelsMask?: string;
  numOfVlans?: number;
}

/** TCA_FLOWER_FLAGS as booleans; `other` keeps bits this code does not name. */
export interface FlowerFlags {
  skipHw?: boolean;
  skipSw?: boolean;
  /** Set by the kernel in replies: some hardware holds the rule. */
  inHw?: boolean;
  /** Set by the kernel in replies: the rule is software-only. */
  notInHw?: boolean;
  verbose?: boolean;
  other?: number;
}

/** Everything inside TCA_OPTIONS of a flower filter. */
export interface FlowerOptions {
  key: FlowerKey;
  actions: TcAction[];
  flags?: FlowerFlags;
  /** Number of devices holding the rule in hardware (dump only). */
  inHwCount?: number;
  classid?: number;
  /** TCA_OPTIONS children this code does not know (newer kernels): kept, re-emitted. */
  unknown?: RawAttr[];
}

type ScalarKey = Exclude<keyof FlowerKey, 'encOpts' | 'encOptsMask'>;

// [field, attribute id, codec] in the order we emit them: value then its mask,
// by value id — the order of reference B4's example.
const FIELDS: ReadonlyArray<readonly [ScalarKey, number, Scalar]> = [
  ['indev', 2, 'string'],
  ['ethDst', 4, 'mac'],
  ['ethDstMask', 5, 'mac'],
  ['ethSrc', 6, 'mac'],
  ['ethSrcMask', 7, 'mac'],
  ['ethType', 8, 'be16'],
  ['ipProto', 9, 'u8'],
  ['ipv4Src', 10, 'ipv4'],
  ['ipv4SrcMask', 11, 'ipv4'],
  ['ipv4Dst', 12, 'ipv4'],
  ['ipv4DstMask', 13, 'ipv4'],
  ['ipv6Src', 14, 'ipv6'],
  ['ipv6SrcMask', 15, 'ipv6'],
  ['ipv6Dst', 16, 'ipv6'],
  ['ipv6DstMask', 17, 'ipv6'],
  ['tcpSrc', 18, 'be16'],
  ['tcpSrcMask', 35, 'be16'],
  ['tcpDst', 19, 'be16'],
  ['tcpDstMask', 36, 'be16'],
  ['udpSrc', 20, 'be16'],
  ['udpSrcMask', 37, 'be16'],
  ['udpDst', 21, 'be16'],
  ['udpDstMask', 38, 'be16'],
  ['vlanId', 23, 'u16'],
  ['vlanPrio', 24, 'u8'],
  ['vlanEthType', 25, 'be16'],
  ['encKeyId', 26, 'be32'],
  ['encIpv4Src', 27, 'ipv4'],
  ['encIpv4SrcMask', 28, 'ipv4'],
  ['encIpv4Dst', 29, 'ipv4'],
  ['encIpv4DstMask', 30, 'ipv4'],
  ['encIpv6Src', 31, 'ipv6'],
  ['encIpv6SrcMask', 32, 'ipv6'],
  ['encIpv6Dst', 33, 'ipv6'],
  ['encIpv6DstMask', 34, 'ipv6'],
  ['sctpSrc', 41, 'be16'],
  ['sctpSrcMask', 39, 'be16'],
  ['sctpDst', 42, 'be16'],
  ['sctpDstMask', 40, 'be16'],
  ['encUdpSrcPort', 43, 'be16'],
  ['encUdpSrcPortMask', 44, 'be16'],
  ['encUdpDstPort', 45, 'be16'],
  ['encUdpDstPortMask', 46, 'be16'],
  ['keyFlags', 47, 'be32'],
  ['keyFlagsMask', 48, 'be32'],
  ['icmpv4Code', 49, 'u8'],
  ['icmpv4CodeMask', 50, 'u8'],
  ['icmpv4Type', 51, 'u8'],
  ['icmpv4TypeMask', 52, 'u8'],
  ['icmpv6Code', 53, 'u8'],
  ['icmpv6CodeMask', 54, 'u8'],
  ['icmpv6Type', 55, 'u8'],
  ['icmpv6TypeMask', 56, 'u8'],
  ['arpSip', 57, 'ipv4'],
  ['arpSipMask', 58, 'ipv4'],
  ['arpTip', 59, 'ipv4'],
  ['arpTipMask', 60, 'ipv4'],
  ['arpOp', 61, 'u8'],
  ['arpOpMask', 62, 'u8'],
  ['arpSha', 63, 'mac'],
  ['arpShaMask', 64, 'mac'],
  ['arpTha', 65, 'mac'],
  ['arpThaMask', 66, 'mac'],
  ['mplsTtl', 67, 'u8'],
  ['mplsBos', 68, 'u8'],
  ['mplsTc', 69, 'u8'],
  ['mplsLabel', 70, 'u32'],
  ['tcpFlags', 71, 'be16'],
  ['tcpFlagsMask', 72, 'be16'],
  ['ipTos', 73, 'u8'],
  ['ipTosMask', 74, 'u8'],
  ['ipTtl', 75, 'u8'],
  ['ipTtlMask', 76, 'u8'],
  ['cvlanId', 77, 'u16'],
  ['cvlanPrio', 78, 'u8'],
  ['cvlanEthType', 79, 'be16'],
  ['encIpTos', 80, 'u8'],
  ['encIpTosMask', 81, 'u8'],
  ['encIpTtl', 82, 'u8'],
  ['encIpTtlMask', 83, 'u8'],
  ['portSrcMin', 87, 'be16'],
  ['portSrcMax', 88, 'be16'],
  ['portDstMin', 89, 'be16'],
  ['portDstMax', 90, 'be16'],
  ['ctState', 91, 'u16'],
  ['ctStateMask', 92, 'u16'],
  ['ctZone', 93, 'u16'],
  ['ctZoneMask', 94, 'u16'],
  ['ctMark', 95, 'u32'],
  ['ctMarkMask', 96, 'u32'],
  ['ctLabels', 97, 'hex16'],
  ['ctLabelsMask', 98, 'hex16'],
  ['numOfVlans', 102, 'u8'],
];

const actions: Custom = { read: (b, p, n) => decodeActionsAt(b, p, p + n) };
const flags: Custom = {
  read(b, p, n, type) {
    needLen(n, 4, 'u32', type);
    return numberToFlags(hu32(b, p));
  },
};

/** Key fields into the FlowerKey, the rest of TCA_OPTIONS (`top`) into FlowerOptions. */
export const FLOWER = attrTable([
  ...FIELDS,
  ['encOpts', TCA_FLOWER_KEY_ENC_OPTS, encOpts],
  ['encOptsMask', TCA_FLOWER_KEY_ENC_OPTS_MASK, encOpts],
  ['classid', TCA_FLOWER_CLASSID, 'u32', true],
  ['actions', TCA_FLOWER_ACT, actions, true],
  ['flags', TCA_FLOWER_FLAGS, flags, true],
  ['inHwCount', TCA_FLOWER_IN_HW_COUNT, 'u32', true],
]);

function flagsToNumber(f: FlowerFlags): number {
  return (
    ((f.skipHw ? TCA_CLS_FLAGS_SKIP_HW : 0) |
      (f.skipSw ? TCA_CLS_FLAGS_SKIP_SW : 0) |
      (f.inHw ? TCA_CLS_FLAGS_IN_HW : 0) |
      (f.notInHw ? TCA_CLS_FLAGS_NOT_IN_HW : 0) |
      (f.verbose ? TCA_CLS_FLAGS_VERBOSE : 0) |
      (f.other ?? 0)) >>>
    0
  );
}

const NAMED_FLAGS = TCA_CLS_FLAGS_SKIP_HW | TCA_CLS_FLAGS_SKIP_SW | TCA_CLS_FLAGS_IN_HW | TCA_CLS_FLAGS_NOT_IN_HW | TCA_CLS_FLAGS_VERBOSE;

function numberToFlags(n: number): FlowerFlags {
  const f: FlowerFlags = {};
  if (n & TCA_CLS_FLAGS_SKIP_HW) f.skipHw = true;
  if (n & TCA_CLS_FLAGS_SKIP_SW) f.skipSw = true;
  if (n & TCA_CLS_FLAGS_IN_HW) f.inHw = true;
  if (n & TCA_CLS_FLAGS_NOT_IN_HW) f.notInHw = true;
  if (n & TCA_CLS_FLAGS_VERBOSE) f.verbose = true;
  const other = (n & ~NAMED_FLAGS) >>> 0;
  if (other) f.other = other;
  return f;
}

/** Writes the children of TCA_OPTIONS (the caller opens the nest). */
export function encodeFlowerOptions(w: AttrWriter, o: FlowerOptions): void {
  if (o.classid !== undefined) w.u32(TCA_FLOWER_CLASSID, o.classid);
  if (o.actions.length) w.nest(TCA_FLOWER_ACT, (w) => encodeActions(w, o.actions));
  writeAttrs(w, o.key, FLOWER);
  if (o.flags !== undefined) w.u32(TCA_FLOWER_FLAGS, flagsToNumber(o.flags));
  if (o.inHwCount !== undefined) w.u32(TCA_FLOWER_IN_HW_COUNT, o.inHwCount);
  w.rawAttrs(o.unknown);
}

/** The children of a flower TCA_OPTIONS nest at `b[start, end)`, read in place. Unknown ids are kept in `unknown`. */
export function decodeFlowerOptionsAt(b: Buffer, start: number, end: number): FlowerOptions {
  const key: FlowerKey = {};
  const out: FlowerOptions = { key, actions: [] };
  readAttrs(b, start, end, FLOWER, key as Target, out as unknown as Target);
  return out;
}

/** Checks what the kernel would refuse before we send it (helpful errors instead of EINVAL). */
export function checkFlowerKey(k: FlowerKey): void {
  if (k.vlanId !== undefined && (k.vlanId < 0 || k.vlanId > 4095)) {
    throw new TcInvalidError(`vlanId ${k.vlanId} out of range 0..4095`);
  }
}
