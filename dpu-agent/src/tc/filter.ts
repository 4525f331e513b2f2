// A whole tc filter ⇄ RTM_{NEW,DEL,GET}TFILTER message bytes. Pure.
// Message = nlmsghdr + struct tcmsg + TCA_KIND "flower" + TCA_CHAIN + TCA_OPTIONS{…}
// (reference B1/B4; kernel side net/sched/cls_api.c tc_new_tfilter/tcf_fill_node).
import { decodeFlowerOptions, encodeFlowerOptions, type FlowerFlags, type FlowerKey, type FlowerOptions } from './flower.ts';
import type { TcAction } from './actions.ts';
import {
  AttrWriter,
  type NlMessage,
  type RawAttr,
  encodeMessage,
  getString,
  getU32,
  getU8,
  parseAttrs,
  toRaw,
  writeU32,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_ECHO,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
} from './nl.ts';
import { splitCounters, type Counters } from './stats.ts';
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
  decodeTcMsg,
  encodeTcMsg,
  splitTcmInfo,
  tcmInfo,
} from './tcmsg.ts';
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
export function asRequest(f: FlowerFilter): FlowerFilter {
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

/** Decodes one RTM_NEWTFILTER (dump entry, echo, get reply) or RTM_DELTFILTER notification. */
export function decodeFilterMessage(msg: NlMessage): TcFilter {
  const tcm = decodeTcMsg(msg.body);
  const { prio, protocol } = splitTcmInfo(tcm.info);
  const id: FilterId = { ifindex: tcm.ifindex, parent: tcm.parent, prio, protocol, handle: tcm.handle };
  let kind = '';
  let chain: number | undefined;
  let options: ReturnType<typeof parseAttrs>[number] | undefined;
  let hwOffload: number | undefined;
  const unknown: RawAttr[] = [];
  for (const a of parseAttrs(msg.body, TCMSG_LEN)) {
    switch (a.type) {
      case TCA_KIND:
        kind = getString(a);
        break;
      case TCA_CHAIN:
        chain = getU32(a);
        break;
      case TCA_OPTIONS:
        options = a;
        break;
      case TCA_HW_OFFLOAD:
        hwOffload = getU8(a);
        break;
      default:
        unknown.push(toRaw(a));
    }
  }
  if (!kind) throw new NetlinkMalformedError('filter message without TCA_KIND');
  if (chain !== undefined) id.chain = chain;
  if (kind === 'flower') {
    // A dump also lists each (prio, protocol) head with handle 0 and no options.
    const o: FlowerOptions = options ? decodeFlowerOptions(options) : { key: {}, actions: [] };
    const f: FlowerFilter = { ...id, kind: 'flower', key: o.key, actions: o.actions };
    if (o.flags !== undefined) f.flags = o.flags;
    if (o.inHwCount !== undefined) f.inHwCount = o.inHwCount;
    if (o.classid !== undefined) f.classid = o.classid;
    if (o.unknown) f.optionsUnknown = o.unknown;
    if (hwOffload !== undefined) f.hwOffload = hwOffload;
    if (unknown.length) f.unknown = unknown;
    const stats = rollupStats(f.actions);
    if (stats) f.stats = stats;
    return f;
  }
  const other: OtherFilter = { ...id, kind };
  if (options) other.options = parseAttrs(options.data).map(toRaw);
  if (hwOffload !== undefined) other.hwOffload = hwOffload;
  if (unknown.length) other.unknown = unknown;
  return other;
}

/** Filter stats: the action with the most packets (OVS), its hw/sw split, and the freshest lastuse. */
export function rollupStats(actions: readonly TcAction[]): FilterStats | undefined {
  let best: FilterStats | undefined;
  let lastUse: number | undefined;
  for (const a of actions) {
    if (a.tm) lastUse = lastUse === undefined ? a.tm.lastuse : Math.min(lastUse, a.tm.lastuse);
    if (!a.stats) continue;
    const s = splitCounters(a.stats);
    if (!best || s.total.packets > best.total.packets) best = { total: s.total, hw: s.hw, sw: s.sw };
  }
  if (best && lastUse !== undefined) best.lastUseTicks = lastUse;
  return best;
}
