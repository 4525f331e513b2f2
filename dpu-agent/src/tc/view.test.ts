// The partial decode (view.ts) equals the full decode's corresponding fields: on
// every recorded kernel dump (full and terse), on fast-check filters, and against
// `tc -s -j filter show` where the lane recorded it.
import t from 'tap';
import fc from 'fast-check';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeFilterMessage, encodeFilterMessage, isFlower, type TcFilter } from './filter.ts';
import { TCA_CLS_FLAGS_IN_HW, TCA_CLS_FLAGS_NOT_IN_HW, TCA_CLS_FLAGS_SKIP_HW, TCA_CLS_FLAGS_SKIP_SW, TCA_CLS_FLAGS_VERBOSE, type FlowerFlags } from './flower.ts';
import { FilterView, readFilterView, viewStats } from './view.ts';
import { parseMessages, NLM_F_MULTI } from '../netlink/nl.ts';
import { RTM_NEWTFILTER } from './tcmsg.ts';
import { flowerFilter } from './testdata/arbitraries.ts';
import { synthesize } from '../../../test/bench/tc-dump.ts';

const dir = fileURLToPath(new URL('./testdata/', import.meta.url));

const flagBits = (f: FlowerFlags | undefined): number =>
  !f
    ? 0
    : ((f.skipHw ? TCA_CLS_FLAGS_SKIP_HW : 0) |
        (f.skipSw ? TCA_CLS_FLAGS_SKIP_SW : 0) |
        (f.inHw ? TCA_CLS_FLAGS_IN_HW : 0) |
        (f.notInHw ? TCA_CLS_FLAGS_NOT_IN_HW : 0) |
        (f.verbose ? TCA_CLS_FLAGS_VERBOSE : 0) |
        (f.other ?? 0)) >>>
      0;

/** The full decode's fields that the view carries, in the view's terms. */
function fromFull(f: TcFilter): Record<string, unknown> {
  const flower = isFlower(f);
  const stats = flower ? f.stats : undefined;
  return {
    ifindex: f.ifindex,
    parent: f.parent,
    chain: f.chain ?? 0,
    prio: f.prio,
    protocol: f.protocol,
    handle: f.handle,
    kind: f.kind,
    flags: flower ? flagBits(f.flags) : 0,
    inHwCount: flower ? (f.inHwCount ?? -1) : -1,
    actions: flower ? f.actions.length : 0,
    cookie: flower ? f.actions.find((a) => a.cookie !== undefined)?.cookie : undefined,
    stats: stats ? { total: stats.total, hw: stats.hw, sw: stats.sw } : undefined,
  };
}

function fromView(v: FilterView): Record<string, unknown> {
  const { ifindex, parent, chain, prio, protocol, handle, kind, flags, inHwCount, actions, cookie } = v;
  return { ifindex, parent, chain, prio, protocol, handle, kind, flags, inHwCount, actions, cookie, stats: viewStats(v) };
}

const view = new FilterView(); // reused, as the collector reuses it

t.test('every recorded kernel dump: view = full decode, field by field', async (t) => {
  const bins = readdirSync(dir).filter((f) => /^kernel-.*\.bin$/.test(f));
  t.ok(bins.length > 0, 'kernel recordings present');
  for (const name of bins) {
    const msgs = parseMessages(readFileSync(dir + name)).filter((m) => m.hdr.type === RTM_NEWTFILTER);
    let n = 0;
    for (const m of msgs) {
      t.same(fromView(readFilterView(m.body, view)), fromFull(decodeFilterMessage(m)), `${name} #${n++}`);
    }
    t.ok(n > 0, `${name}: ${n} messages compared`);
  }
});

t.test('fast-check filters: view = full decode', async () => {
  fc.assert(
    fc.property(flowerFilter, (f) => {
      const m = parseMessages(encodeFilterMessage(f, { flags: NLM_F_MULTI, seq: 1 }))[0]!;
      const want = fromFull(decodeFilterMessage(m));
      const got = fromView(readFilterView(m.body, view));
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`view ${JSON.stringify(got)} ≠ full ${JSON.stringify(want)}`);
    }),
    { numRuns: 500 },
  );
});

t.test('the benches\' OVS-like filters (cookies on every action, BASIC_HW): view = full decode', async (t) => {
  for (const f of synthesize(64)) {
    const m = parseMessages(encodeFilterMessage(f, { flags: NLM_F_MULTI, seq: 1 }))[0]!;
    t.same(fromView(readFilterView(m.body, view)), fromFull(decodeFilterMessage(m)));
  }
});

t.test('PKT64 amends the counter right before it, as the full decode does', async (t) => {
  const f = synthesize(1)[0]!;
  const big = { bytes: 2 ** 40, packets: 2 ** 33 + 5 };
  f.actions = [{ ...f.actions[0]!, stats: { basic: big, basicHw: { bytes: 2 ** 39, packets: 2 ** 32 + 1 } } }];
  const m = parseMessages(encodeFilterMessage(f, { flags: NLM_F_MULTI, seq: 1 }))[0]!;
  const v = readFilterView(m.body, view);
  t.equal(v.packets, 2 ** 33 + 5);
  t.equal(v.hwPackets, 2 ** 32 + 1);
  t.same(fromView(v), fromFull(decodeFilterMessage(m)));
});

type Json = Record<string, any>;

t.test('against tc -s -j filter show (recorded with the dumps)', async (t) => {
  const pairs = readdirSync(dir).filter((f) => /^kernel-.*\.bin$/.test(f) && existsSync(dir + f.replace(/\.bin$/, '.tc.json')));
  t.ok(pairs.length > 0, 'recordings with tc JSON present');
  for (const name of pairs) {
    const tcJson = (JSON.parse(readFileSync(dir + name.replace(/\.bin$/, '.tc.json'), 'utf8')) as Json[]).filter((e) => e['options'] !== undefined);
    const msgs = parseMessages(readFileSync(dir + name)).filter((m) => m.hdr.type === RTM_NEWTFILTER);
    let n = 0;
    for (const m of msgs) {
      const v = readFilterView(m.body, view);
      if (v.handle === 0) continue;
      const e = tcJson.find((x) => (x['chain'] ?? 0) === v.chain && x['pref'] === v.prio && x['options']['handle'] === v.handle);
      if (!t.ok(e, `${name}: chain ${v.chain} prio ${v.prio} handle ${v.handle} in tc's output`) || !e) continue;
      const o: Json = e['options'];
      const acts: Json[] = o['actions'] ?? [];
      t.equal(!!(v.flags & TCA_CLS_FLAGS_IN_HW), !!o['in_hw'], 'in_hw');
      t.equal(!!(v.flags & TCA_CLS_FLAGS_NOT_IN_HW), !!o['not_in_hw'], 'not_in_hw');
      // tc prints in_hw_count only next to in_hw (f_flower.c); a not_in_hw filter's count is 0.
      if (o['in_hw_count'] !== undefined) t.equal(v.inHwCount, o['in_hw_count'], 'in_hw_count');
      else t.ok(v.inHwCount <= 0, 'in_hw_count 0 or absent when tc prints none');
      t.equal(v.actions, acts.length, 'action count');
      t.equal(v.cookie, acts.find((a) => a['cookie'] !== undefined)?.['cookie'], 'first cookie');
      // The busiest action (most packets, first of equals), as tc prints its stats.
      let best: Json | undefined;
      for (const a of acts) if (a['stats'] && (!best || (a['stats']['packets'] ?? 0) > (best['stats']['packets'] ?? 0))) best = a;
      const s: Json = best?.['stats'] ?? {};
      t.same([v.bytes, v.packets, v.hwBytes, v.hwPackets], [s['bytes'] ?? 0, s['packets'] ?? 0, s['hw_bytes'] ?? 0, s['hw_packets'] ?? 0], 'busiest action counters');
      n++;
    }
    t.equal(n, tcJson.length, `${name}: every filter of tc's output compared`);
  }
});

t.test('wantCookie off: no cookie string made, cookieHex() still finds it', async (t) => {
  const f = synthesize(1)[0]!;
  const m = parseMessages(encodeFilterMessage(f, { flags: NLM_F_MULTI, seq: 1 }))[0]!;
  const v = new FilterView();
  v.wantCookie = false;
  readFilterView(m.body, v);
  t.equal(v.cookie, undefined);
  t.equal(v.cookieHex(), f.actions[0]!.cookie);
  const { cookie: _c, ...rest } = fromView(v);
  const { cookie: _w, ...want } = fromFull(decodeFilterMessage(m));
  t.same(rest, want, 'the rest as with cookies');
});
