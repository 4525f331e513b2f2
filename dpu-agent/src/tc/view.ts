// The offload collector's partial decode of a filter message: where the filter
// sits, its flags and in_hw count, its first action cookie (OVS: the UFID) and
// the counters of its busiest action — nothing else. It reads through subsets of
// the full decoder's own tables (filter.ts FILTER_HEAD, flower.ts FLOWER,
// actions/action.ts ACTION; netlink/walk.ts pickTable), so a key, an action's
// options or its tcf_t cost one length jump each. What it reads must equal the
// full decode's corresponding fields (view.test.ts proves it on every fixture).
// One FilterView is filled per message and reused by the caller: no object per
// filter. Pure.
import { hu16, hu32, HOST_LE } from '../netlink/nl.ts';
import { type Custom, type Target, pickTable, readAttrs, tlvLen } from '../netlink/walk.ts';
import { NetlinkMalformedError } from '../errors.ts';
import { ACTION } from './actions/action.ts';
import { FILTER_HEAD, type FilterStats } from './filter.ts';
import { FLOWER } from './flower.ts';
import { HAS_BASIC, HAS_BASIC_HW, readCountersAt } from './stats.ts';
import { TCMSG_LEN } from './tcmsg.ts';

/** One filter as the collector reads it. Counters are those rollupStats (filter.ts) picks. */
export class FilterView {
  ifindex = 0;
  parent = 0;
  /** 0 when TCA_CHAIN is absent (the kernel's default chain). */
  chain = 0;
  prio = 0;
  protocol = 0;
  handle = 0;
  kind = '';
  /** TCA_FLOWER_FLAGS bits (TCA_CLS_FLAGS_*), 0 when absent. */
  flags = 0;
  /** TCA_FLOWER_IN_HW_COUNT, -1 when absent (terse dumps leave it out). */
  inHwCount = -1;
  /** Entries in the action list. */
  actions = 0;
  /** The first action cookie in list order, hex; undefined when no action has one (or `wantCookie` is off). */
  cookie: string | undefined = undefined;
  /** Set by the caller: make `cookie` (a string per filter); off, only its place is noted (cookieHex()). */
  wantCookie = true;
  /** The body read last and where its first cookie sits (-1: none): valid during the visit only. */
  body: Buffer = EMPTY;
  cookieAt = -1;
  cookieLen = 0;
  /** Some action had TCA_ACT_STATS; the counters below are the busiest one's (BASIC = sw + hw). */
  hasStats = false;
  bytes = 0;
  packets = 0;
  hwBytes = 0;
  hwPackets = 0;
  /** Offset of TCA_OPTIONS in the body, -1 when absent (internal to the walk). */
  optAt = -1;

  /** The first cookie, hex, whether or not `wantCookie` made it already (during the visit). */
  cookieHex(): string | undefined {
    if (this.cookie !== undefined || this.cookieAt < 0) return this.cookie;
    return this.body.toString('hex', this.cookieAt, this.cookieAt + this.cookieLen);
  }
}

const EMPTY = Buffer.alloc(0);

// Bound once: under tsx (CommonJS output) every read of an imported binding is a
// getter call (one per re-export hop), a measurable share of a hot decode loop.
const u16 = hu16;
const u32 = hu32;
const walk = readAttrs;
const tlv = tlvLen;
const countersAt = readCountersAt;
const LE = HOST_LE;
const BASIC = HAS_BASIC;
const BASIC_HW = HAS_BASIC_HW;

// Scratch of the action walk: the walk is synchronous, so module-level scratch is never shared.
const counters = new Float64Array(4);
let found = 0;
const HAS_STATS = 4;

const statsReader: Custom = {
  read(b, p, n) {
    counters.fill(0);
    found = countersAt(b, p, p + n, counters) | HAS_STATS;
    return undefined;
  },
};

const firstCookie: Custom = {
  read(b, p, n, _type, _out, top) {
    const v = top as unknown as FilterView;
    if (v.cookieAt >= 0) return undefined;
    v.cookieAt = p;
    v.cookieLen = n;
    if (v.wantCookie) v.cookie = b.toString('hex', p, p + n);
    return undefined;
  },
};

const ACTION_PICK = pickTable(ACTION, ['cookie', 'stats'], { cookie: firstCookie, stats: statsReader });

/** The action list nest: per action only COOKIE and STATS are read; the busiest action's counters are kept. */
const actionsReader: Custom = {
  read(b, p, n, _type, _out, top) {
    const v = top as unknown as FilterView;
    const end = p + n;
    let best = -1;
    for (let o = p; o + 4 <= end; ) {
      const len = tlv(b, o, end);
      found = 0;
      walk(b, o + 4, o + len, ACTION_PICK, top, top);
      v.actions++;
      if (found) {
        // As rollupStats: stats without BASIC count as 0 packets; the first of equals wins.
        const packets = found & BASIC ? counters[1]! : 0;
        if (packets > best) {
          best = packets;
          v.hasStats = true;
          v.bytes = found & BASIC ? counters[0]! : 0;
          v.packets = packets;
          v.hwBytes = found & BASIC_HW ? counters[2]! : 0;
          v.hwPackets = found & BASIC_HW ? counters[3]! : 0;
        }
      }
      o += (len + 3) & ~3;
    }
    return undefined;
  },
};

const HEAD_PICK = pickTable(FILTER_HEAD, ['kind', 'chain', 'optAt']);
const FLOWER_PICK = pickTable(FLOWER, ['flags', 'inHwCount', 'actions'], { flags: 'u32', actions: actionsReader });

/**
 * Fills `v` from one RTM_NEWTFILTER body (a dump entry); returns `v`. TCA_OPTIONS
 * is read for flower only. Throws NetlinkMalformedError as decodeFilterMessage does.
 */
export function readFilterView(b: Buffer, v: FilterView): FilterView {
  const end = b.length;
  if (end < TCMSG_LEN) throw new NetlinkMalformedError(`short tcmsg (${end} B)`);
  // struct tcmsg in place, as decodeFilterMessage reads it.
  v.ifindex = u32(b, 4);
  v.handle = u32(b, 8);
  v.parent = u32(b, 12);
  const info = u32(b, 16);
  v.prio = info >>> 16;
  v.protocol = LE ? (b[16]! << 8) | b[17]! : info & 0xffff;
  v.chain = 0;
  v.kind = '';
  v.flags = 0;
  v.inHwCount = -1;
  v.actions = 0;
  v.cookie = undefined;
  v.body = b;
  v.cookieAt = -1;
  v.hasStats = false;
  v.bytes = v.packets = v.hwBytes = v.hwPackets = 0;
  v.optAt = -1;
  const t = v as unknown as Target;
  walk(b, TCMSG_LEN, end, HEAD_PICK, t, t);
  if (!v.kind) throw new NetlinkMalformedError('filter message without TCA_KIND');
  if (v.kind === 'flower' && v.optAt >= 0) walk(b, v.optAt + 4, v.optAt + u16(b, v.optAt), FLOWER_PICK, t, t);
  return v;
}

/** The view's counters in FilterStats' shape (sw = total − hw, floored at 0), for comparisons. */
export function viewStats(v: FilterView): Omit<FilterStats, 'lastUseTicks'> | undefined {
  if (!v.hasStats) return undefined;
  return {
    total: { bytes: v.bytes, packets: v.packets },
    hw: { bytes: v.hwBytes, packets: v.hwPackets },
    sw: { bytes: Math.max(0, v.bytes - v.hwBytes), packets: Math.max(0, v.packets - v.hwPackets) },
  };
}
