import t from 'tap';
import { createMetrics } from '../metrics/metrics.ts';
import { ETH_P_IP, TC_PARENT_INGRESS, mirredAction, type FlowerFilter } from '../tc/index.ts';
import { FakeTc } from '../../../test/helpers/fake-tc.ts';
import { OffloadCollector, growth } from './collector.ts';
import type { OvsView } from './ovs-view.ts';
import { quarantineFlower } from './quarantine.ts';
import { memoryLogger } from '../../../test/helpers/memory-logger.ts';

function flow(ifindex: number, handle: number, hw: number, total: number, inHw = true): FlowerFilter {
  return {
    kind: 'flower', ifindex, parent: TC_PARENT_INGRESS, chain: 0, prio: 2, protocol: ETH_P_IP, handle,
    key: {}, flags: inHw ? { inHw: true } : { notInHw: true },
    actions: [{ ...mirredAction(3, 'egress-redirect', { cookie: 'ab'.repeat(16) }), stats: { basic: { packets: total, bytes: total * 100 }, basicHw: { packets: hw, bytes: hw * 100 } } }],
    stats: { total: { packets: total, bytes: total * 100 }, hw: { packets: hw, bytes: hw * 100 }, sw: { packets: total - hw, bytes: (total - hw) * 100 } },
  };
}

const value = async (m: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string> = {}): Promise<number | undefined> => {
  const got = await m.registry.getSingleMetric(name)?.get();
  return got?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
};

function setup(now: { t: number }) {
  const tc = new FakeTc();
  const metrics = createMetrics({ processMetrics: false });
  const { logger } = memoryLogger();
  const ovs: OvsView = { tcUfids: async () => new Set(), offloadedFlows: async () => 3, offloadStats: async () => '' };
  const devices = [{ name: 'pf0vf0', ifindex: 10 }, { name: 'p0', ifindex: 2 }];
  const c = new OffloadCollector({ tc, devices: async () => devices, intervalMs: 5000, metrics, ovs, logger, now: () => now.t });
  return { tc, metrics, c, devices };
}

t.test('growth (pure)', async (t) => {
  t.equal(growth(undefined, 5), 5);
  t.equal(growth(5, 8), 3);
  t.equal(growth(8, 2), 2, 'went down: a new filter, all of it is growth');
});

t.test('flows by state, hw/sw counters, ratio per port, OVS count; quarantine left out', async (t) => {
  const now = { t: 0 };
  const { tc, metrics, c } = setup(now);
  tc.inject(flow(10, 1, 90, 100));
  tc.inject(flow(10, 2, 0, 10, false));
  tc.inject(flow(2, 1, 50, 50));
  tc.inject(quarantineFlower(2, {}));
  await metrics.registry.metrics(); // first scrape waits for the first dump
  t.equal(await value(metrics, 'dpu_tc_flows', { state: 'in_hw' }), 2);
  t.equal(await value(metrics, 'dpu_tc_flows', { state: 'not_in_hw' }), 1);
  t.equal(await value(metrics, 'dpu_tc_packets_total', { path: 'hw' }), 140);
  t.equal(await value(metrics, 'dpu_tc_packets_total', { path: 'sw' }), 20);
  t.equal(await value(metrics, 'dpu_tc_bytes_total', { path: 'sw' }), 2000);
  t.equal(await value(metrics, 'dpu_tc_offload_ratio', { port: 'pf0vf0' }), 90 / 110);
  t.equal(await value(metrics, 'dpu_tc_offload_ratio', { port: 'p0' }), 1);
  t.equal(await value(metrics, 'dpu_ovs_offloaded_flows'), 3);
  const text = await metrics.registry.metrics();
  t.match(text, /dpu_tc_packets_total\{path="hw"\} 140/);
  t.equal(c.refreshes, 1, 'one dump for several metrics and two scrapes');
});

t.test('offload coverage: datapath flows in TC vs kernel-only, as dpctl type=tc / type=ovs count them', async (t) => {
  const metrics = createMetrics({ processMetrics: false });
  const counts = { tc: 3, ovs: 6 };
  const ovs: OvsView = { tcUfids: async () => new Set(), offloadedFlows: async () => 0, offloadStats: async () => '', datapathFlows: async () => counts };
  const c = new OffloadCollector({ tc: new FakeTc(), devices: async () => [], intervalMs: 5000, metrics, ovs, logger: memoryLogger().logger });
  t.same((await c.refresh()).datapathFlows, counts);
  t.equal(await value(metrics, 'dpu_ovs_datapath_flows', { dp: 'tc' }), 3);
  t.equal(await value(metrics, 'dpu_ovs_datapath_flows', { dp: 'ovs' }), 6);
  t.equal(await value(metrics, 'dpu_ovs_tc_flow_share'), 1 / 3);
  counts.tc = 0;
  counts.ovs = 0;
  await c.refresh();
  t.ok(Number.isNaN(await value(metrics, 'dpu_ovs_tc_flow_share')), 'no flows: 0/0 (NaN), not 0');
  t.equal(await value(metrics, 'dpu_ovs_datapath_flows', { dp: 'tc' }), 0);
});

t.test('counters never go down: filters grow, vanish, get replaced', async (t) => {
  const now = { t: 0 };
  const { tc, metrics, c } = setup(now);
  tc.inject(flow(10, 1, 90, 100));
  await c.refresh();
  // grows by 10 hw + 5 sw
  tc.filters.set(10, [flow(10, 1, 100, 115)]);
  await c.refresh();
  t.equal(await value(metrics, 'dpu_tc_packets_total', { path: 'hw' }), 100);
  t.equal(await value(metrics, 'dpu_tc_packets_total', { path: 'sw' }), 15);
  // vanishes: nothing taken back
  tc.filters.set(10, []);
  await c.refresh();
  t.equal(await value(metrics, 'dpu_tc_packets_total', { path: 'hw' }), 100);
  // replaced at the same handle, counting from 0 again
  tc.filters.set(10, [flow(10, 1, 7, 7)]);
  await c.refresh();
  t.equal(await value(metrics, 'dpu_tc_packets_total', { path: 'hw' }), 107);
  t.equal(await value(metrics, 'dpu_tc_flows', { state: 'in_hw' }), 1);
  // a device whose dump fails keeps its readings: no double count when it is back
  tc.failNext.set('filter dump', new (await import('../errors.ts')).TcError('filter dump', 10, 22, 'EINVAL', undefined));
  await c.refresh();
  tc.filters.set(10, [flow(10, 1, 9, 9)]);
  await c.refresh();
  t.equal(await value(metrics, 'dpu_tc_packets_total', { path: 'hw' }), 109);
});

t.test('cache: at most one dump per interval, single-flight, stale served while refreshing', async (t) => {
  const now = { t: 0 };
  const { tc, metrics, c } = setup(now);
  tc.inject(flow(10, 1, 1, 1));
  await Promise.all([metrics.registry.metrics(), metrics.registry.metrics(), metrics.registry.metrics()]);
  t.equal(c.refreshes, 1, 'concurrent first scrapes share one dump');
  const dumps = tc.dumps;
  now.t = 4999;
  await metrics.registry.metrics();
  t.equal(tc.dumps, dumps, 'fresh: no dump');
  t.equal(await value(metrics, 'dpu_tc_stats_age_seconds'), 4.999);
  now.t = 5000;
  tc.filters.set(10, [flow(10, 1, 5, 5)]);
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const dump = tc.scanFilters.bind(tc);
  tc.scanFilters = async (...a) => {
    await gate;
    return dump(...a);
  };
  await metrics.registry.metrics();
  open();
  t.equal(await value(metrics, 'dpu_tc_packets_total', { path: 'hw' }), 1, 'stale: this scrape serves the previous dump…');
  await c.refresh(); // …joined with the refresh it kicked
  t.equal(await value(metrics, 'dpu_tc_packets_total', { path: 'hw' }), 5, '…the next one the new dump');
  t.equal(c.refreshes, 2);
});

t.test('real kernel terse dumps (recorded in the lane from OVS): flags and counters are there', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const { parseMessages } = await import('../netlink/nl.ts');
  const { decodeFilterMessage, RTM_NEWTFILTER } = await import('../tc/index.ts');
  const dir = fileURLToPath(new URL('../tc/testdata/', import.meta.url));
  const load = (name: string) =>
    parseMessages(readFileSync(dir + name))
      .filter((m) => m.hdr.type === RTM_NEWTFILTER)
      .map(decodeFilterMessage)
      .filter((f) => f.handle !== 0);
  const terse = load('kernel-ovs-rep1-terse.bin');
  const full = load('kernel-ovs-rep1.bin');
  t.ok(terse.length > 0 && terse.length === full.length);
  const tc = new FakeTc({ dumpSource: () => terse.map((f) => ({ ...f, parent: TC_PARENT_INGRESS })) });
  const metrics = createMetrics({ processMetrics: false });
  const c = new OffloadCollector({ tc, devices: async () => [{ name: 'rep1', ifindex: terse[0]!.ifindex }], intervalMs: 5000, metrics, logger: memoryLogger().logger });
  const s = await c.refresh();
  t.equal(s.notInHw, terse.length, 'terse dumps carry NOT_IN_HW');
  t.ok(s.delta.swPackets > 0, 'and the action counters');
  const fullSw = full.reduce((n, f) => n + ('stats' in f && f.stats ? f.stats.sw.packets : 0), 0);
  t.equal(s.delta.swPackets, fullSw, 'same counters as the full dump');
});

t.test('readings: a filter finds its previous reading whatever came, went or moved in between', async (t) => {
  const { Readings } = await import('./readings.ts');
  const r = new Readings(1); // grows past its capacity
  for (let h = 1; h <= 10; h++) r.push(0, 2, ETH_P_IP, h, h, h * 10, 0, 0);
  t.equal(r.n, 10);
  t.equal(r.find(0, 2, ETH_P_IP, 1), 0, 'in order: at the cursor');
  t.equal(r.find(0, 2, ETH_P_IP, 2), 1);
  t.equal(r.find(0, 2, ETH_P_IP, 99), -1, 'new filter');
  t.equal(r.find(0, 2, ETH_P_IP, 5), 4, 'two went away: found by the index');
  t.equal(r.find(0, 2, ETH_P_IP, 6), 5, 'then at the cursor again');
  t.equal(r.find(0, 2, ETH_P_IP, 3), 2, 'moved back');
  t.equal(r.find(1, 2, ETH_P_IP, 4), -1, 'same handle, other chain');
  t.equal(r.find(0, 3, ETH_P_IP, 4), -1, 'same handle, other prio');
  t.equal(r.get(9, 1), 100);
});

t.test('counters: filters added in the middle and removed, over many devices: growth only', async (t) => {
  const now = { t: 0 };
  const { tc, metrics, c } = setup(now);
  const list = (handles: number[], bump: number) => handles.map((h) => flow(10, h, h + bump, 2 * h + bump));
  tc.filters.set(10, list([1, 2, 3, 4], 0));
  await c.refresh();
  const hw0 = (await value(metrics, 'dpu_tc_packets_total', { path: 'hw' }))!;
  t.equal(hw0, 1 + 2 + 3 + 4);
  tc.filters.set(10, list([1, 5, 3, 4], 1)); // 2 gone, 5 new (counts whole), the rest grow by 1
  await c.refresh();
  t.equal(await value(metrics, 'dpu_tc_packets_total', { path: 'hw' }), hw0 + 3 + 6);
  t.equal(await value(metrics, 'dpu_tc_flows', { state: 'in_hw' }), 4);
});
