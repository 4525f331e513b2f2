// Action statistics (TCA_ACT_STATS → linux/gen_stats.h TCA_STATS_*) and the
// action timestamps (struct tcf_t). Pure.
//
// BASIC is software + hardware, BASIC_HW hardware only, so software-only is the
// difference (OVS lib/tc.c nl_parse_action_stats; iproute2 tc_util.c prints
// "Sent software … / Sent hardware …" the same way). Packet counts above 2^32−1
// come as TCA_STATS_PKT64 right after the BASIC/BASIC_HW they replace
// (net/core/gen_stats.c ___gnet_stats_copy_basic).
// Counters are JS numbers: exact up to 2^53−1, then rounded (relative error < 2^-52).
import { type AttrWriter, type NlAttr, type RawAttr, NLA_TYPE_MASK, attrBuf, attrLen, attrOff, hu16, hu32, hu64, needLen, overrun, rawAttrAt, writeU32, writeU64 } from '../netlink/nl.ts';
import { NetlinkMalformedError } from '../errors.ts';

// Bound once: under tsx (CommonJS output) every read of an imported binding is a
// getter call (one per re-export hop), a measurable share of a hot decode loop.
const u16 = hu16;
const u32 = hu32;
const u64 = hu64;
const TYPE_MASK = NLA_TYPE_MASK;

export const TCA_STATS_BASIC = 1;
export const TCA_STATS_RATE_EST = 2;
export const TCA_STATS_QUEUE = 3;
export const TCA_STATS_APP = 4;
export const TCA_STATS_RATE_EST64 = 5;
export const TCA_STATS_PAD = 6;
export const TCA_STATS_BASIC_HW = 7;
export const TCA_STATS_PKT64 = 8;

/** USER_HZ: tcf_t values are jiffies_to_clock_t ticks (include/uapi/asm-generic/param.h). */
export const USER_HZ = 100;

export interface Counters {
  bytes: number;
  packets: number;
}

export interface QueueStats {
  qlen: number;
  backlog: number;
  drops: number;
  requeues: number;
  overlimits: number;
}

export interface ActionStats {
  /** TCA_STATS_BASIC: software + hardware. */
  basic?: Counters;
  /** TCA_STATS_BASIC_HW: hardware only. */
  basicHw?: Counters;
  queue?: QueueStats;
  rateEst?: { bps: number; pps: number };
  rateEst64?: { bps: number; pps: number };
  unknown?: RawAttr[];
}

/** struct tcf_t: each field is "USER_HZ ticks ago" (OVS nl_parse_tcf; lastuse == install ⇒ never hit). */
export interface TcfTm {
  install: number;
  lastuse: number;
  expires: number;
  /** Absent on kernels before 4.20 (24-byte tcf_t). */
  firstuse?: number;
}

const BASIC_LEN = 16; // struct gnet_stats_basic {u64 bytes; u32 packets;} padded to 8
const U32_MAX = 0xffffffff;

export function encodeStats(w: AttrWriter, type: number, s: ActionStats): void {
  w.nest(type, (w) => {
    if (s.basic) putBasic(w, TCA_STATS_BASIC, s.basic);
    if (s.basicHw) putBasic(w, TCA_STATS_BASIC_HW, s.basicHw);
    if (s.rateEst) {
      const b = Buffer.alloc(8);
      writeU32(b, 0, s.rateEst.bps);
      writeU32(b, 4, s.rateEst.pps);
      w.bytes(TCA_STATS_RATE_EST, b);
    }
    if (s.rateEst64) {
      const b = Buffer.alloc(16);
      writeU64(b, 0, s.rateEst64.bps);
      writeU64(b, 8, s.rateEst64.pps);
      w.bytes(TCA_STATS_RATE_EST64, b);
    }
    if (s.queue) {
      const b = Buffer.alloc(20);
      const q = s.queue;
      [q.qlen, q.backlog, q.drops, q.requeues, q.overlimits].forEach((v, i) => writeU32(b, i * 4, v));
      w.bytes(TCA_STATS_QUEUE, b);
    }
    w.rawAttrs(s.unknown);
  });
}

function putBasic(w: AttrWriter, type: number, c: Counters): void {
  const b = Buffer.alloc(BASIC_LEN);
  writeU64(b, 0, c.bytes);
  // The kernel truncates to u32 and follows with PKT64 when that lost bits.
  writeU32(b, 8, c.packets % 0x1_0000_0000);
  w.bytes(type, b);
  if (c.packets > U32_MAX) w.u64(TCA_STATS_PKT64, c.packets);
}

export const decodeStats = (a: NlAttr): ActionStats => decodeStatsAt(attrBuf(a), attrOff(a), attrOff(a) + attrLen(a));

/**
 * The children of a TCA_ACT_STATS nest at `b[start, end)`, read in place. A plain
 * loop rather than a walk.ts table: PKT64 amends the BASIC/BASIC_HW right before
 * it, so what an attribute means depends on its neighbour, not only on its id.
 */
export function decodeStatsAt(b: Buffer, start: number, end: number): ActionStats {
  const s: ActionStats = {};
  let last: Counters | undefined;
  for (let o = start; o + 4 <= end; ) {
    const len = hu16(b, o);
    const type = hu16(b, o + 2) & NLA_TYPE_MASK;
    if (len < 4 || o + len > end) throw overrun(type, len, o, end);
    const p = o + 4;
    const n = len - 4;
    switch (type) {
      case TCA_STATS_BASIC:
      case TCA_STATS_BASIC_HW: {
        // 12 bytes on 32-bit ABIs (u64 aligned to 4), 16 elsewhere.
        if (n < 12) throw new NetlinkMalformedError(`gnet_stats_basic of ${n} B`);
        last = { bytes: hu64(b, p), packets: hu32(b, p + 8) };
        if (type === TCA_STATS_BASIC) s.basic = last;
        else s.basicHw = last;
        break;
      }
      case TCA_STATS_PKT64:
        if (last) {
          needLen(n, 8, 'u64', type);
          last.packets = hu64(b, p);
        }
        break;
      case TCA_STATS_RATE_EST:
        if (n >= 8) s.rateEst = { bps: hu32(b, p), pps: hu32(b, p + 4) };
        last = undefined;
        break;
      case TCA_STATS_RATE_EST64:
        if (n >= 16) s.rateEst64 = { bps: hu64(b, p), pps: hu64(b, p + 8) };
        last = undefined;
        break;
      case TCA_STATS_QUEUE: {
        if (n < 20) throw new NetlinkMalformedError(`gnet_stats_queue of ${n} B`);
        s.queue = { qlen: hu32(b, p), backlog: hu32(b, p + 4), drops: hu32(b, p + 8), requeues: hu32(b, p + 12), overlimits: hu32(b, p + 16) };
        last = undefined;
        break;
      }
      case TCA_STATS_PAD:
        break;
      default:
        (s.unknown ??= []).push(rawAttrAt(b, o));
        last = undefined;
    }
    o += (len + 3) & ~3;
  }
  return s;
}

/** Which of BASIC / BASIC_HW readCountersAt found (bits). */
export const HAS_BASIC = 1;
export const HAS_BASIC_HW = 2;

/**
 * Only the counters of a TCA_ACT_STATS nest at `b[start, end)`, into `c` =
 * [basic bytes, basic packets, basic_hw bytes, basic_hw packets], without an
 * object: the same reading as decodeStatsAt (PKT64 amends the BASIC/BASIC_HW
 * right before it; anything else in between breaks that link). Returns which of
 * the two it found (HAS_BASIC | HAS_BASIC_HW); absent ones are left as they were.
 */
export function readCountersAt(b: Buffer, start: number, end: number, c: Float64Array): number {
  let found = 0;
  let last = -1; // index in `c` of the packets PKT64 would amend
  for (let o = start; o + 4 <= end; ) {
    const len = u16(b, o);
    const type = u16(b, o + 2) & TYPE_MASK;
    if (len < 4 || o + len > end) throw overrun(type, len, o, end);
    const p = o + 4;
    const n = len - 4;
    if (type === TCA_STATS_BASIC || type === TCA_STATS_BASIC_HW) {
      if (n < 12) throw new NetlinkMalformedError(`gnet_stats_basic of ${n} B`);
      const i = type === TCA_STATS_BASIC ? 0 : 2;
      c[i] = u64(b, p);
      c[i + 1] = u32(b, p + 8);
      found |= type === TCA_STATS_BASIC ? HAS_BASIC : HAS_BASIC_HW;
      last = i + 1;
    } else if (type === TCA_STATS_PKT64) {
      if (last >= 0) {
        needLen(n, 8, 'u64', type);
        c[last] = u64(b, p);
      }
    } else if (type !== TCA_STATS_PAD) last = -1;
    o += (len + 3) & ~3;
  }
  return found;
}

/** Total, hardware and software counters of one action (sw = total − hw, floored at 0: hw lags). */
export function splitCounters(s: ActionStats): { total: Counters; hw: Counters; sw: Counters } {
  const total = s.basic ?? { bytes: 0, packets: 0 };
  const hw = s.basicHw ?? { bytes: 0, packets: 0 };
  return {
    total,
    hw,
    sw: { bytes: Math.max(0, total.bytes - hw.bytes), packets: Math.max(0, total.packets - hw.packets) },
  };
}

export function encodeTm(w: AttrWriter, type: number, tm: TcfTm): void {
  const b = Buffer.alloc(tm.firstuse === undefined ? 24 : 32);
  writeU64(b, 0, tm.install);
  writeU64(b, 8, tm.lastuse);
  writeU64(b, 16, tm.expires);
  if (tm.firstuse !== undefined) writeU64(b, 24, tm.firstuse);
  w.bytes(type, b);
}

/** struct tcf_t of `n` bytes at `b[o]`. */
export function decodeTmAt(b: Buffer, o: number, n: number): TcfTm {
  if (n < 24) throw new NetlinkMalformedError(`tcf_t of ${n} B`);
  const tm: TcfTm = { install: hu64(b, o), lastuse: hu64(b, o + 8), expires: hu64(b, o + 16) };
  if (n >= 32) tm.firstuse = hu64(b, o + 24);
  return tm;
}

/** USER_HZ ticks → milliseconds. */
export const ticksToMs = (ticks: number): number => (ticks * 1000) / USER_HZ;
