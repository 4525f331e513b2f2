// A whole tc filter ⇄ RTM_{NEW,DEL,GET}TFILTER message bytes. Pure.
// Message = nlmsghdr + struct tcmsg + TCA_KIND "flower" + TCA_CHAIN + TCA_OPTIONS{…}
// (reference B1/B4; kernel side net/sched/cls_api.c tc_new_tfilter/tcf_fill_node).
import { decodeFlowerOptionsAt, encodeFlowerOptions, type FlowerFlags, type FlowerKey, type FlowerOptions } from './flower.ts';
import type { TcAction } from './actions/index.ts';
import {
  AttrWriter,
  type NlMessage,
  type RawAttr,
  HOST_LE,
  encodeMessage,
  hu16,
  hu32,
  parseAttrs,
  stringAt,
  toRaw,
  writeU32,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_ECHO,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
} from '../netlink/nl.ts';
import { splitCounters, type ActionStats, type Counters } from './stats.ts';
import {
  RTM_DELTFILTER,
  RTM_GETTFILTER,
  RTM_NEWTFILTER,
  TCA_CHAIN,
  TCA_DUMP_FLAGS,
  TCA_DUMP_FLAGS_TERSE,
  TCA_HW_OFFLOAD,
  TCA_KIND,
  TCA_OPTIONS,
  TCMSG_LEN,
  encodeTcMsg,
  tcmInfo,
} from './tcmsg.ts';
import { type Custom, type Target, attrTable, readAttrs } from '../netlink/walk.ts';
import { NetlinkMalformedError, TcInvalidError } from '../errors.ts';

/** Where a filter sits: device (or block), hook, chain, priority, protocol, handle. */
export interface FilterId {
  ifindex: number;
  /** TC_PARENT_INGRESS (ffff:fff2) / TC_PARENT_EGRESS (ffff:fff3), or a block index. */
  parent: number;
  /** Absent = chain 0 (the kernel's default; OVS omits TCA_CHAIN for 0). */
  chain?: number;
  prio: number;
  /** Ethertype, host number (0x0800); ETH_P_ALL = 3. */
  protocol: number;
  /** 0 on add = kernel picks (learn it from the echo). */
  handle: number;
}

export interface FilterStats {
  /** The action with the most packets, as OVS reads a flow's stats (lib/tc.c nl_parse_action_stats). */
  total: Counters;
  hw: Counters;
  sw: Counters;
  /** Smallest tcf_t.lastuse over the actions: USER_HZ ticks since last hit. */
  lastUseTicks?: number;
}

export interface FlowerFilter extends FilterId {
  kind: 'flower';
  key: FlowerKey;
  actions: TcAction[];
  flags?: FlowerFlags;
  inHwCount?: number;
  classid?: number;
  /** TCA_HW_OFFLOAD (u8), present in dumps. */
  hwOffload?: number;
  /** Unknown children of TCA_OPTIONS. */
  optionsUnknown?: RawAttr[];
  /** Unknown top-level attributes. */
  unknown?: RawAttr[];
  /** Derived on decode from the actions' stats (ignored on encode). */
  stats?: FilterStats;
}

/** A filter of another classifier (u32, matchall, bpf…): options left raw. */
export interface OtherFilter extends FilterId {
  kind: string;
  options?: RawAttr[];
  hwOffload?: number;
  unknown?: RawAttr[];
}

export type TcFilter = FlowerFilter | OtherFilter;

export const isFlower = (f: TcFilter): f is FlowerFilter => f.kind === 'flower' && 'key' in f;

export type FilterOp = 'add' | 'replace' | 'delete' | 'get';

/**
 * Request bytes for one filter op. add = CREATE|EXCL (fails with EEXIST), replace
 * = CREATE|REPLACE; both ECHO so the kernel sends back the filter with the handle
 * it chose (OVS tc_replace_flower). delete/get carry only the id + kind + chain:
 * careful, handle 0 deletes every filter of that prio/protocol and prio 0 the
 * whole chain (cls_api.c tc_del_tfilter) — deleteFilter refuses both.
 */
export function encodeFilterRequest(op: FilterOp, f: FilterId & { kind: string }, seq: number, flower?: FlowerFilter): Buffer {
  let type: number;
  let flags = NLM_F_REQUEST | NLM_F_ACK;
  if (op === 'add') {
    type = RTM_NEWTFILTER;
    flags |= NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO;
  } else if (op === 'replace') {
    type = RTM_NEWTFILTER;
    flags |= NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ECHO;
  } else if (op === 'delete') {
    type = RTM_DELTFILTER;
  } else {
    type = RTM_GETTFILTER;
  }
  if (op === 'delete' || op === 'get') {
    if (f.prio === 0 || f.handle === 0) throw new TcInvalidError(`${op} needs prio and handle (prio 0/handle 0 match many filters)`);
  }
  if (f.prio < 0 || f.prio > 0xffff) throw new TcInvalidError(`prio ${f.prio} out of range`);
  const body = op === 'add' || op === 'replace' ? (flower ? asRequest(flower) : undefined) : undefined;
  return encodeMessage({ type, flags, seq }, encodeFilterBody(f, body));
}

/** The full message as a kernel dump/echo would carry it (no request clean-up): fixtures, benches, tests. */
export function encodeFilterMessage(f: TcFilter, hdr: { type?: number; flags: number; seq: number; pid?: number }): Buffer {
  return encodeMessage({ type: hdr.type ?? RTM_NEWTFILTER, flags: hdr.flags, seq: hdr.seq, pid: hdr.pid ?? 0 }, encodeFilterBody(f, f));
}

/**
 * What a request may carry of a filter that may come from a dump: the kernel
 * rejects IN_HW/NOT_IN_HW in TCA_FLOWER_FLAGS (cls_api.h tc_flags_valid ⇒ EINVAL),
 * and counters, timestamps, in_hw counts and refcounts are reply-only.
 */
function asRequest(f: FlowerFilter): FlowerFilter {
  const { inHwCount: _h, hwOffload: _o, stats: _s, ...rest } = f;
  const out: FlowerFilter = { ...rest, actions: f.actions.map(actionAsRequest) };
  if (f.flags) {
    const { inHw: _i, notInHw: _n, ...req } = f.flags;
    out.flags = req;
  }
  return out;
}

function actionAsRequest(a: TcAction): TcAction {
  const { stats: _s, tm: _t, inHwCount: _i, usedHwStats: _u, ...rest } = a;
  if (rest.params) {
    const { refcnt: _r, bindcnt: _b, ...p } = rest.params;
    rest.params = p as typeof rest.params;
  }
  return rest;
}

/** tcmsg + KIND + CHAIN [+ OPTIONS]. */
export function encodeFilterBody(f: FilterId & { kind: string }, flower?: FlowerFilter | TcFilter): Buffer {
  const w = new AttrWriter(512);
  w.raw(encodeTcMsg({ family: 0, ifindex: f.ifindex, handle: f.handle, parent: f.parent, info: tcmInfo(f.prio, f.protocol) }));
  w.string(TCA_KIND, f.kind);
  if (f.chain !== undefined) w.u32(TCA_CHAIN, f.chain);
  if (flower) {
    if (isFlower(flower)) {
      w.nest(TCA_OPTIONS, (w) => encodeFlowerOptions(w, toOptions(flower)));
    } else if ((flower as OtherFilter).options) {
      w.nest(TCA_OPTIONS, (w) => w.rawAttrs((flower as OtherFilter).options));
    }
    if (flower.hwOffload !== undefined) w.u8(TCA_HW_OFFLOAD, flower.hwOffload);
    w.rawAttrs(flower.unknown);
  }
  return w.toBuffer();
}

function toOptions(f: FlowerFilter): FlowerOptions {
  const o: FlowerOptions = { key: f.key, actions: f.actions };
  if (f.flags !== undefined) o.flags = f.flags;
  if (f.inHwCount !== undefined) o.inHwCount = f.inHwCount;
  if (f.classid !== undefined) o.classid = f.classid;
  if (f.optionsUnknown !== undefined) o.unknown = f.optionsUnknown;
  return o;
}

/**
 * RTM_GETTFILTER dump of one hook: tcm_info 0 = all prios/protocols; TCA_CHAIN to
 * pick one chain; terse = TCA_DUMP_FLAGS TERSE (no keys, action stats only).
 */
export function encodeDumpRequest(ifindex: number, parent: number, seq: number, o: { chain?: number; terse?: boolean } = {}): Buffer {
  const w = new AttrWriter(64);
  w.raw(encodeTcMsg({ family: 0, ifindex, handle: 0, parent, info: 0 }));
  if (o.chain !== undefined) w.u32(TCA_CHAIN, o.chain);
  if (o.terse) {
    const b = Buffer.alloc(8);
    writeU32(b, 0, TCA_DUMP_FLAGS_TERSE); // nla_bitfield32 {value, selector}
    writeU32(b, 4, TCA_DUMP_FLAGS_TERSE);
    w.bytes(TCA_DUMP_FLAGS, b);
  }
  return encodeMessage({ type: RTM_GETTFILTER, flags: NLM_F_REQUEST | NLM_F_DUMP, seq }, w.toBuffer());
}

/** The top-level attributes of a filter message; OPTIONS by the offset of its header (decoded once KIND is known). */
interface Head {
  kind: string;
  chain?: number;
  optAt: number;
  hwOffload?: number;
  unknown?: RawAttr[];
}

const FLOWER = [0x66, 0x6c, 0x6f, 0x77, 0x65, 0x72]; // "flower"
/** TCA_KIND payload is "flower" (NUL-terminated or not): the common case, without making a string. */
function isFlowerKind(b: Buffer, p: number, n: number): boolean {
  if (n < 6 || (n > 6 && b[p + 6] !== 0)) return false;
  for (let i = 0; i < 6; i++) if (b[p + i] !== FLOWER[i]) return false;
  return true;
}

const kindCodec: Custom = { read: (b, p, n) => (isFlowerKind(b, p, n) ? 'flower' : stringAt(b, p, n)) };
const optionsAt: Custom = { read: (_b, p) => p - 4 };
/** The top-level attributes of a filter message (exported for the partial decode, view.ts). */
export const FILTER_HEAD = attrTable([
  ['kind', TCA_KIND, kindCodec],
  ['chain', TCA_CHAIN, 'u32'],
  ['optAt', TCA_OPTIONS, optionsAt],
  ['hwOffload', TCA_HW_OFFLOAD, 'u8'],
]);

/** Decodes one RTM_NEWTFILTER (dump entry, echo, get reply) or RTM_DELTFILTER notification. */
export function decodeFilterMessage(msg: NlMessage): TcFilter {
  const b = msg.body;
  const end = b.length;
  if (end < TCMSG_LEN) throw new NetlinkMalformedError(`short tcmsg (${end} B)`);
  // struct tcmsg, read in place (tcmsg.ts decodeTcMsg + splitTcmInfo).
  const ifindex = hu32(b, 4); // s32 on the wire; the shared-block magic 0xffffffff stays unsigned
  const handle = hu32(b, 8);
  const parent = hu32(b, 12);
  const info = hu32(b, 16);
  const prio = info >>> 16;
  const protocol = HOST_LE ? (b[16]! << 8) | b[17]! : info & 0xffff; // __be16 in the low half (tcmInfo)
  const h: Head = { kind: '', optAt: -1 };
  readAttrs(b, TCMSG_LEN, end, FILTER_HEAD, h as unknown as Target, h as unknown as Target);
  const { kind, chain, hwOffload, unknown } = h;
  const optOff = h.optAt >= 0 ? h.optAt + 4 : -1;
  const optEnd = h.optAt >= 0 ? h.optAt + hu16(b, h.optAt) : 0;
  if (!kind) throw new NetlinkMalformedError('filter message without TCA_KIND');
  if (kind === 'flower') {
    // A dump also lists each (prio, protocol) head with handle 0 and no options.
    const f: FlowerFilter = { ifindex, parent, prio, protocol, handle, kind: 'flower', key: {}, actions: [] };
    if (chain !== undefined) f.chain = chain;
    if (optOff >= 0) {
      const o = decodeFlowerOptionsAt(b, optOff, optEnd);
      f.key = o.key;
      f.actions = o.actions;
      if (o.flags !== undefined) f.flags = o.flags;
      if (o.inHwCount !== undefined) f.inHwCount = o.inHwCount;
      if (o.classid !== undefined) f.classid = o.classid;
      if (o.unknown) f.optionsUnknown = o.unknown;
    }
    if (hwOffload !== undefined) f.hwOffload = hwOffload;
    if (unknown) f.unknown = unknown;
    const stats = rollupStats(f.actions);
    if (stats) f.stats = stats;
    return f;
  }
  const other: OtherFilter = { ifindex, parent, prio, protocol, handle, kind };
  if (chain !== undefined) other.chain = chain;
  if (optOff >= 0) other.options = parseAttrs(b, optOff, optEnd).map(toRaw);
  if (hwOffload !== undefined) other.hwOffload = hwOffload;
  if (unknown) other.unknown = unknown;
  return other;
}

/** Filter stats: the action with the most packets (OVS), its hw/sw split, and the freshest lastuse. */
export function rollupStats(actions: readonly TcAction[]): FilterStats | undefined {
  let best: ActionStats | undefined;
  let bestPackets = -1;
  let lastUse: number | undefined;
  for (const a of actions) {
    if (a.tm) lastUse = lastUse === undefined ? a.tm.lastuse : Math.min(lastUse, a.tm.lastuse);
    const s = a.stats;
    if (!s) continue;
    const packets = s.basic?.packets ?? 0;
    if (packets > bestPackets) {
      best = s;
      bestPackets = packets;
    }
  }
  if (!best) return undefined;
  const split = splitCounters(best);
  const out: FilterStats = { total: split.total, hw: split.hw, sw: split.sw };
  if (lastUse !== undefined) out.lastUseTicks = lastUse;
  return out;
}
