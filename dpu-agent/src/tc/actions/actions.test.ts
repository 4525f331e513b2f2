import t from 'tap';
import {
  TC_ACT,
  decodeAction,
  decodeActions,
  dropAction,
  encodeAction,
  encodeActions,
  gotoChain,
  gotoChainAction,
  jump,
  mirredAction,
  policeAction,
  verdictName,
  type TcAction,
} from './index.ts';
import { AttrWriter, parseAttrs } from '../../netlink/nl.ts';
import { TCA_STATS_PKT64, encodeStats, decodeStats, splitCounters, ticksToMs } from '../stats.ts';

function roundTrip(a: TcAction): TcAction {
  const w = new AttrWriter();
  w.nest(1, (w) => encodeAction(w, a));
  return decodeAction(parseAttrs(w.toBuffer())[0]!);
}

t.test('verdicts print like iproute2', async (t) => {
  t.equal(verdictName(TC_ACT.SHOT), 'drop');
  t.equal(verdictName(TC_ACT.OK), 'pass');
  t.equal(verdictName(TC_ACT.UNSPEC), 'continue');
  t.equal(verdictName(gotoChain(7)), 'goto chain 7');
  t.equal(verdictName(jump(2)), 'jump 2');
  t.equal(gotoChain(7), 0x20000007);
});

t.test('builders: drop, goto chain, mirred redirect/mirror', async (t) => {
  t.same(roundTrip(dropAction({ cookie: 'ab' })), { kind: 'gact', params: { kind: 'gact', control: 2 }, cookie: 'ab' });
  t.same(roundTrip(gotoChainAction(3)).params, { kind: 'gact', control: 0x20000003 });
  t.same(roundTrip(mirredAction(9)).params, { kind: 'mirred', control: TC_ACT.STOLEN, eaction: 1, ifindex: 9 });
  t.same(roundTrip(mirredAction(9, 'ingress-mirror')).params, { kind: 'mirred', control: TC_ACT.PIPE, eaction: 4, ifindex: 9 });
});

t.test('police: rate table and burst in psched ticks (iproute2 tc_calc_rtable/tc_calc_xmittime)', async (t) => {
  const a = policeAction({ rateBytesPerSec: 125_000, burstBytes: 10_000 }); // 1 Mbit/s, 10 kB
  const p = a.params;
  if (p?.kind !== 'police') throw new Error('not police');
  t.equal(p.rate.cellLog, 3, 'mtu 2047 ⇒ cell_log 3 (qdisc_get_rtab needs 1..31)');
  t.equal(p.rtab?.length, 1024);
  t.equal(p.burst, 80000 * 15.625, '10 kB at 125 kB/s = 80 ms = 1.25e6 ticks of 64 ns');
  t.equal(p.control, TC_ACT.SHOT);
  t.same(roundTrip(a), a);
  t.throws(() => policeAction({ rateBytesPerSec: 0, burstBytes: 1 }), { code: 'DPU_ERR_TC_INVALID' });
});

t.test('more than 32 actions is refused before the kernel sees it', async (t) => {
  const w = new AttrWriter();
  t.throws(() => encodeActions(w, Array.from({ length: 33 }, () => dropAction())), { code: 'DPU_ERR_TC_INVALID' });
});

t.test('actions decode in priority order whatever the wire order', async (t) => {
  const w = new AttrWriter();
  w.nest(3, (w) => {
    w.nest(2, (w) => encodeAction(w, mirredAction(5)));
    w.nest(1, (w) => encodeAction(w, dropAction()));
  });
  t.same(decodeActions(parseAttrs(w.toBuffer())[0]!).map((a) => a.kind), ['gact', 'mirred']);
});

t.test('terse dump action: kind + stats, no options', async (t) => {
  const a: TcAction = { kind: 'mirred', actIndex: 4, stats: { basic: { bytes: 10, packets: 1 } } };
  t.same(roundTrip(a), a);
});

t.test('PKT64 is emitted only when packets exceed u32, and wins on decode', async (t) => {
  const w = new AttrWriter();
  encodeStats(w, 4, { basic: { bytes: 1, packets: 2 ** 32 + 1 }, basicHw: { bytes: 1, packets: 7 } });
  const nest = parseAttrs(w.toBuffer())[0]!;
  t.same(parseAttrs(nest.data).map((a) => a.type), [1, TCA_STATS_PKT64, 7]);
  const s = decodeStats(nest);
  t.same(s.basic, { bytes: 1, packets: 2 ** 32 + 1 });
  t.same(splitCounters(s).sw, { bytes: 0, packets: 2 ** 32 - 6 });
  t.equal(ticksToMs(250), 2500);
});

t.test('unknown action kinds keep their options raw', async (t) => {
  const a: TcAction = { kind: 'skbedit', options: [{ type: 7, data: Uint8Array.from([0, 0]) }] };
  t.same(roundTrip(a), a);
});
