// Runs OUR offload stats collector (dpu-agent/src/offload/collector.ts) against a real
// kernel + OVS: started by test/kernel/ovs-offload.ts inside the netns that holds the
// representors (`ip netns exec SW node --import tsx test/helpers/offload-probe.ts`),
// because a netlink socket lives in the netns of the process that opens it.
// Env: PROBE_DEVICES=rep1,rep2  PROBE_RUNDIR=<ovs-vswitchd rundir>  PROBE_PING="ns ip count".
// Refresh, traffic, refresh: the counters must grow with the traffic, the flow count and
// UFIDs must equal `dpctl/dump-flows type=tc` (read through our unixctl client), the
// metrics text must say so. RECORD_FIXTURES=1: prints the raw dump replies as
// "@@fixture kernel-ovs-<dev>[-terse].bin <base64>" (+ .tc.json) for scripts/kernel-fixtures.
// Exit 0 = all checks passed.
import { execFileSync, spawnSync } from 'node:child_process';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { createMetrics } from '../../dpu-agent/src/metrics/metrics.ts';
import { OffloadCollector } from '../../dpu-agent/src/offload/collector.ts';
import { UnixctlOvsView, countFlows } from '../../dpu-agent/src/offload/ovs-view.ts';
import { sysfsIfindex } from '../../dpu-agent/src/offload/tc-api.ts';
import { Tc, TC_PARENT_INGRESS, encodeDumpRequest } from '../../dpu-agent/src/tc/index.ts';
import { encodeMessage } from '../../dpu-agent/src/netlink/nl.ts';

const fail = (msg: string): never => {
  console.log(`not ok - offload-probe: ${msg}`);
  process.exit(1);
};
const names = (process.env['PROBE_DEVICES'] ?? '').split(',').filter(Boolean);
const rundir = process.env['PROBE_RUNDIR'] ?? fail('PROBE_RUNDIR unset');
const [pingNs, pingIp, pingCount] = (process.env['PROBE_PING'] ?? '').split(' ');
const devices = await Promise.all(names.map(async (name) => ({ name, ifindex: (await sysfsIfindex(name)) ?? fail(`no device ${name}`) })));
const tc = new Tc({ timeoutMs: 20_000 });
const ovs = new UnixctlOvsView(rundir, { timeoutMs: 20_000 });
const metrics = createMetrics({ processMetrics: false });
const c = new OffloadCollector({ tc, devices: async () => devices, intervalMs: 60_000, metrics, ovs, logger: silentLogger() });
const value = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
  (await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? NaN;

try {
  const s1 = await c.refresh();
  const sw1 = await value('dpu_tc_packets_total', { path: 'sw' });
  const ping = spawnSync('ip', ['netns', 'exec', pingNs!, 'ping', '-c', pingCount!, '-i', '0.2', '-W', '2', pingIp!], { encoding: 'utf8' });
  if (ping.status !== 0) fail(`ping failed: ${ping.stdout}`);
  const s2 = await c.refresh();
  const sw2 = await value('dpu_tc_packets_total', { path: 'sw' });
  const hw2 = await value('dpu_tc_packets_total', { path: 'hw' });
  // Flow count and UFIDs vs OVS: a datapath flow may expire (10 s idle) between our dump
  // and OVS's, so compare up to three times, each dpctl read right after a fresh dump.
  let s3 = s2;
  let tcText = '';
  let ufids = new Set<string>();
  let cookies = new Set<string>();
  for (let i = 0; i < 3; i++) {
    s3 = i === 0 ? s2 : await c.refresh();
    tcText = await ovs.dumpFlows('type=tc');
    ufids = await ovs.tcUfids();
    const filters = (await Promise.all(devices.map((d) => tc.dumpFilters(d.ifindex, TC_PARENT_INGRESS)))).flat();
    cookies = new Set(filters.flatMap((f) => f.actions.flatMap((a) => (a.cookie ? [a.cookie] : []))));
    if (s3.filters === countFlows(tcText) && ufids.size === cookies.size) break;
  }
  const offloaded = await ovs.offloadedFlows();
  // DESIGN §8: empty for TC — on OVS 3.1 it is an error reply (EOPNOTSUPP); record whatever it says.
  const statsShow = await ovs.offloadStats().catch((err: unknown) => `error: ${err instanceof Error ? err.message : String(err)}`);
  const notInHw = await value('dpu_tc_flows', { state: 'not_in_hw' });
  const inHw = await value('dpu_tc_flows', { state: 'in_hw' });
  const report = {
    refresh1: { filters: s1.filters, ms: Math.round(s1.ms) },
    refresh2: { filters: s2.filters, ms: Math.round(s2.ms), delta: s2.delta }, compared: s3.filters,
    metrics: { swPackets: [sw1, sw2], hwPackets: hw2, inHw, notInHw, ratio: Object.fromEntries([...s2.ports].map(([p, t]) => [p, t.hwPackets / Math.max(1, t.hwPackets + t.swPackets)])), ovsOffloaded: await value('dpu_ovs_offloaded_flows') },
    ovs: { dumpFlowsTypeTc: countFlows(tcText), ufids: ufids.size, offloaded, offloadStatsShow: statsShow.trim() },
  };
  console.log(`offload-probe: ${JSON.stringify(report)}`);
  const want = Number(pingCount) - 2; // the first request and reply may be upcalls
  if (!(s2.delta.swPackets >= want)) fail(`collector sw packets grew by ${s2.delta.swPackets}, expected >= ${want}`);
  if (!(sw2 - sw1 === s2.delta.swPackets)) fail(`dpu_tc_packets_total{path=sw} moved by ${sw2 - sw1}, the refresh added ${s2.delta.swPackets}`);
  if (hw2 !== 0 || inHw !== 0) fail(`hw counters on veths: packets ${hw2}, in_hw ${inHw}`);
  if (notInHw !== s3.filters || s3.filters === 0) fail(`dpu_tc_flows{not_in_hw}=${notInHw}, collector saw ${s3.filters}`);
  if (s3.filters !== countFlows(tcText)) fail(`collector counts ${s3.filters} flower filters, dpctl/dump-flows type=tc ${countFlows(tcText)} flows`);
  const missing = [...ufids].filter((u) => !cookies.has(u));
  if (ufids.size !== s3.filters || missing.length) fail(`UFIDs from dpctl (${ufids.size}) vs action cookies (${[...cookies].join(',')}): missing ${missing.join(',')}`);
  console.log(`offload-probe: collector = dpctl/dump-flows type=tc (${s3.filters} flows, UFIDs = action cookies), +${s2.delta.swPackets} sw packets; offload-stats-show: ${JSON.stringify(statsShow.trim())}`);

  if (process.env['RECORD_FIXTURES'] === '1') {
    // The dump and tc's view of it must describe the same filters: OVS may add or expire
    // a flow in between, so take them until the counts agree (at most 5 times).
    const take = async (ifindex: number, terse: boolean): Promise<{ bin: Buffer; n: number }> => {
      const msgs = await tc.nl.dump((seq) => encodeDumpRequest(ifindex, TC_PARENT_INGRESS, seq, { terse }), 'record dump');
      const bin = Buffer.concat(msgs.map((m) => encodeMessage({ type: m.hdr.type, flags: m.hdr.flags, seq: m.hdr.seq, pid: m.hdr.pid }, m.body)));
      return { bin, n: msgs.filter((m) => m.body.readUInt32LE(8) !== 0).length };
    };
    for (const d of devices) {
      for (let i = 0; i < 5; i++) {
        const full = await take(d.ifindex, false);
        const json = JSON.parse(execFileSync('tc', ['-s', '-j', 'filter', 'show', 'dev', d.name, 'ingress'], { encoding: 'utf8' })) as Array<{ options?: unknown }>;
        const terse = await take(d.ifindex, true);
        if (json.filter((f) => f.options !== undefined).length !== full.n || terse.n !== full.n) continue;
        console.log(`@@fixture kernel-ovs-${d.name}.bin ${full.bin.toString('base64')}`);
        console.log(`@@fixture kernel-ovs-${d.name}.tc.json ${Buffer.from(JSON.stringify(json, null, 1) + '\n').toString('base64')}`);
        console.log(`@@fixture kernel-ovs-${d.name}-terse.bin ${terse.bin.toString('base64')}`);
        break;
      }
    }
  }
} catch (err) {
  fail(err instanceof Error ? (err.stack ?? err.message) : String(err));
} finally {
  tc.close();
}
process.exit(0);
