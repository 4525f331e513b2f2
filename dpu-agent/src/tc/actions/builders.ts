// Builders for the actions the agent writes (same as the tc CLI lines quoted). Pure.
import { writeU32 } from '../../netlink/nl.ts';
import type { TcAction } from './action.ts';
import { type Bitfield32, TC_ACT, gotoChain } from './gen.ts';
import { MIRRED } from './mirred.ts';
import type { PoliceParams } from './police.ts';
import { TcInvalidError } from '../../errors.ts';

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
