// One chassis's checks for test/kernel/ovn-offload.ts, run inside the chassis's netns
// (a netlink socket lives in the netns of the process that opens it):
//   ip netns exec chK node --jitless --import tsx test/helpers/ovn-probe.ts
// Env: PROBE_CHASSIS=chK  PROBE_RUNDIR=<ovs-vswitchd rundir>  PROBE_DEVICES=pf0vf0,genev_sys_6081,p0
//      PROBE_PING="<pod netns> <peer ip> <count>"
//      PROBE_QUARANTINE="<freed rep> <its VF's netns> <peer ip> <peer mac>" (ch1 only).
// Checks, with OVN's traffic already sent and the datapath flows kept (max-idle 10 min):
// 1. every flow of `dpctl/dump-flows type=tc` is a flower filter on its in_port's ingress
//    (UFID = action cookie), none more; our full decode equals `tc -s -j filter show`
//    field by field (test/helpers/tc-json-strict.ts + tc/testdata/tcjson.ts);
// 2. the collector's filters and dpu_tc_flows equal dpctl's type=tc flows per in_port;
//    dpu_ovs_datapath_flows / dpu_ovs_tc_flow_share equal dpctl's type=tc vs type=ovs; every
//    type=ovs flow has a known reason (conntrack without TC recirc sharing, slow path);
//    new pings move the collector's per-port packets and dpu_tc_packets_total as dpctl's;
// 3. the TC audit classes every filter as OVS's and flags one added with iproute2;
// 4. (ch1) the freed representor is quarantined: drop filter present, traffic dropped.
// RECORD_FIXTURES=1: prints the dumps as "@@fixture kernel-ovn-<chassis>-<dev>.bin" (+ .tc.json),
// `ip -j link` as -links.json and dpctl's text as -dpctl.txt, for scripts/kernel-fixtures.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { createMetrics } from '../../dpu-agent/src/metrics/metrics.ts';
import { encodeMessage } from '../../dpu-agent/src/netlink/nl.ts';
import { OffloadCollector } from '../../dpu-agent/src/offload/collector.ts';
import { UnixctlOvsView, countFlows, ufidsFromDumpFlows } from '../../dpu-agent/src/offload/ovs-view.ts';
import { TcQuarantine, isQuarantineFilter, filterActions } from '../../dpu-agent/src/offload/quarantine.ts';
import { sysfsIfindex } from '../../dpu-agent/src/offload/tc-api.ts';
import { TcAudit, classify } from '../../dpu-agent/src/offload/tc-audit.ts';
import { LinkQuarantine } from '../../dpu-agent/src/hw/quarantine.ts';
import { Tc, TC_PARENT_INGRESS, encodeDumpRequest, type FlowerFilter } from '../../dpu-agent/src/tc/index.ts';
import { compareWithTcJson } from '../../dpu-agent/src/tc/testdata/tcjson.ts';
import { dpctlPerPort, explainKernelOnly } from './dpctl.ts';
import { strictCompare } from './tc-json-strict.ts';

const chassis = process.env['PROBE_CHASSIS'] ?? 'ch?';
const fail = (msg: string): never => {
  console.log(`not ok - ovn-probe ${chassis}: ${msg}`);
  process.exit(1);
};
const say = (msg: string): void => console.log(`ovn-probe ${chassis}: ${msg}`);
const rundir = process.env['PROBE_RUNDIR'] ?? fail('PROBE_RUNDIR unset');
const names = (process.env['PROBE_DEVICES'] ?? '').split(',').filter(Boolean);
const record = process.env['RECORD_FIXTURES'] === '1';
const tcJsonOf = (dev: string): Array<Record<string, any>> =>
  JSON.parse(execFileSync('tc', ['-s', '-j', 'filter', 'show', 'dev', dev, 'ingress'], { encoding: 'utf8' }) || '[]') as Array<Record<string, any>>;
const fixture = (name: string, data: Buffer | string): void => {
  if (record) console.log(`@@fixture kernel-ovn-${chassis}-${name} ${Buffer.from(data).toString('base64')}`);
};
const run = async (argv: readonly string[]) => {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
};

const devices = await Promise.all(names.map(async (name) => ({ name, ifindex: (await sysfsIfindex(name)) ?? fail(`no device ${name}`) })));
const ifname = new Map(devices.map((d) => [d.ifindex, d.name]));
const tc = new Tc({ timeoutMs: 30_000 });
const ovs = new UnixctlOvsView(rundir, { timeoutMs: 30_000 });
const metrics = createMetrics({ processMetrics: false });
const collector = new OffloadCollector({ tc, devices: async () => devices, intervalMs: 600_000, metrics, ovs, logger: silentLogger() });
const value = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
  (await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? NaN;

/** Step 1-2 problems after the last attempt: reported at the end, so steps 3-4 still run. */
const failures: string[] = [];
try {
  // 1 + 2. Nothing moves now (no traffic, flows kept): one collector refresh, one dpctl read,
  // one full dump per device, one tc -s -j per device must all describe the same flows.
  // A retry covers OVS's revalidator replacing a filter in between (at most 3 tries).
  let ok = false;
  for (let attempt = 1; attempt <= 3 && !ok; attempt++) {
    const problems: string[] = [];
    const snap = await collector.refresh();
    const tcText = await ovs.dumpFlows('type=tc', true);
    const ovsText = await ovs.dumpFlows('type=ovs', true);
    const show = execFileSync('ovs-appctl', ['-t', 'ovs-vswitchd', 'dpctl/show'], { encoding: 'utf8', env: { ...process.env, OVS_RUNDIR: rundir } });
    const ufids = ufidsFromDumpFlows(tcText);
    const perPort = dpctlPerPort(tcText, show);
    const full = new Map<string, FlowerFilter[]>();
    const pending: [string, Buffer | string][] = [];
    const bins = new Map<string, Buffer>();
    let cmpErrors = 0;
    let cmpFields = 0;
    let badFilters = 0;
    for (const d of devices) {
      const msgs = await tc.nl.dump((seq) => encodeDumpRequest(d.ifindex, TC_PARENT_INGRESS, seq), 'probe dump').catch(() => []);
      bins.set(d.name, Buffer.concat(msgs.map((m) => encodeMessage({ type: m.hdr.type, flags: m.hdr.flags, seq: m.hdr.seq, pid: m.hdr.pid }, m.body))));
      const fs = msgs.length ? (await tc.dumpFilters(d.ifindex, TC_PARENT_INGRESS)).filter((f) => !isQuarantineFilter(f)) : [];
      full.set(d.name, fs);
      if (fs.length === 0) continue;
      const json = tcJsonOf(d.name);
      const loose = compareWithTcJson(fs, json);
      const strict = strictCompare(fs, json, ifname);
      cmpFields += strict.fields;
      for (const e of [...loose.errors, ...strict.errors]) problems.push(`${d.name}: decode != tc -s -j: ${e}`);
      cmpErrors += loose.errors.length + strict.errors.length;
      // Errors name their filter first: "chain C prio P handle H: …".
      badFilters += new Set([...loose.errors, ...strict.errors].map((e) => e.split(':')[0])).size;
      for (const w of loose.warnings) say(`warn ${d.name}: ${w}`);
      pending.push([`${d.name}.bin`, bins.get(d.name)!], [`${d.name}.tc.json`, JSON.stringify(json, null, 1) + '\n']);
    }
    const all = [...full.values()].flat();
    const cookies = new Set(all.flatMap((f) => f.actions.flatMap((a) => (a.cookie ? [a.cookie] : []))));
    if (all.length !== countFlows(tcText)) problems.push(`flower filters ${all.length} vs dpctl type=tc flows ${countFlows(tcText)}`);
    const missing = [...ufids].filter((u) => !cookies.has(u));
    const extra = [...cookies].filter((c) => !ufids.has(c));
    if (missing.length || extra.length) problems.push(`UFIDs not found as cookies: ${missing.join(',')}; cookies OVS does not list: ${extra.join(',')}`);
    // Each flow on its in_port's device: dpctl's per-port flows and packets = ours.
    for (const [port, want] of perPort) {
      const fs = full.get(port);
      if (!fs) {
        problems.push(`dpctl lists ${want.flows} tc flows on ${port}, not a probed device`);
        continue;
      }
      if (fs.length !== want.flows) problems.push(`${port}: ${fs.length} filters, dpctl ${want.flows} flows`);
    }
    if (snap.filters !== all.length) problems.push(`collector saw ${snap.filters} filters, full dumps ${all.length}`);
    const swTotal = [...snap.ports.values()].reduce((s, t) => s + t.swPackets, 0);
    if ((await value('dpu_tc_packets_total', { path: 'sw' })) !== swTotal) problems.push(`dpu_tc_packets_total{path=sw} ${await value('dpu_tc_packets_total', { path: 'sw' })} != ${swTotal}`);
    if ((await value('dpu_tc_flows', { state: 'not_in_hw' })) !== all.length) problems.push(`dpu_tc_flows{not_in_hw} != ${all.length}`);
    // Offload coverage: the share of datapath flows OVS put into TC.
    const nTc = countFlows(tcText);
    const nOvs = countFlows(ovsText);
    const share = await value('dpu_ovs_tc_flow_share');
    const mTc = await value('dpu_ovs_datapath_flows', { dp: 'tc' });
    const mOvs = await value('dpu_ovs_datapath_flows', { dp: 'ovs' });
    if (mTc !== nTc || mOvs !== nOvs) problems.push(`dpu_ovs_datapath_flows tc ${mTc} ovs ${mOvs}, dpctl ${nTc} / ${nOvs}`);
    if (!(Math.abs(share - nTc / (nTc + nOvs)) < 1e-9)) problems.push(`dpu_ovs_tc_flow_share ${share}, dpctl ${nTc}/${nTc + nOvs}`);
    if (!(nTc > 0)) problems.push('no datapath flow in TC');
    pending.push(['links.json', execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })]);
    pending.push(['dpctl.txt', `# dpctl/dump-flows -m type=tc\n${tcText}# dpctl/dump-flows -m type=ovs\n${ovsText}# dpctl/show\n${show}`]);
    // What OVN's pod traffic must have put into TC: Geneve encap on a representor
    // (tunnel_key set with OVN's option, class 0x0102 type 0x80) and decap on the tunnel port.
    const encap = all.filter((f) => f.actions.some((a) => a.params?.kind === 'tunnel_key' && a.params.tAction === 1 && a.params.encOpts?.geneve?.[0]?.class === 0x0102));
    const decap = (full.get('genev_sys_6081') ?? []).filter((f) => f.key.encOpts?.geneve?.[0]?.class === 0x0102 && f.actions.some((a) => a.kind === 'mirred'));
    if (encap.length === 0 || decap.length === 0) problems.push(`Geneve in TC: ${encap.length} encap (tunnel_key set, OVN option) and ${decap.length} decap (enc_opts + mirred) filters`);
    // Why the rest stayed in the kernel datapath: each type=ovs flow is explained.
    const reasons = explainKernelOnly(ovsText);
    const log = readFileSync(`${rundir}/ovs-vswitchd.log`, 'utf8');
    const noSharing = (log.match(/recirc_id sharing not supported/g) ?? []).length;
    if (reasons.other.length) problems.push(`type=ovs flows without a known reason to stay out of TC: ${reasons.other.join(' | ')}`);
    if (reasons.conntrack > 0 && noSharing === 0) problems.push(`${reasons.conntrack} conntrack flows kept out of TC, but ovs-vswitchd.log does not say why`);
    say(`kept in the kernel datapath: ${reasons.conntrack} conntrack/recirculation (ovs-vswitchd: "recirc_id sharing not supported" x${noSharing}), ${reasons.slowPath} slow path (userspace action)`);
    const kinds = new Set(all.flatMap((f) => f.actions.map((a) => a.kind)));
    const geneve = all.filter((f) => f.key.encOpts?.geneve?.length || f.actions.some((a) => a.params?.kind === 'tunnel_key' && a.params.encOpts?.geneve?.length)).length;
    const ct = all.filter((f) => f.key.ctState !== undefined || f.actions.some((a) => a.kind === 'ct')).length;
    say(`attempt ${attempt}: ${all.length} flower filters (${[...full].map(([n, fs]) => `${n} ${fs.length}`).join(', ')}), action kinds ${[...kinds].join(',')}, ${geneve} with Geneve options, ${ct} with ct; dpctl type=tc ${nTc}, type=ovs ${nOvs}, share ${share.toFixed(3)}; decode vs tc -s -j: ${cmpFields} fields compared, ${cmpErrors} differ`);
    console.log(`ovn-probe-bench ${JSON.stringify({ chassis, tcFlows: nTc, ovsFlows: nOvs, share, filters: all.length, fieldsCompared: cmpFields, fieldErrors: cmpErrors, decodeEqual: all.length - badFilters })}`);
    if (problems.length === 0 || attempt === 3) for (const [n, data] of pending) fixture(n, data);
    if (problems.length === 0) ok = true;
    else if (attempt === 3) failures.push(...problems.slice(0, 40));
    else say(`attempt ${attempt}: ${problems.length} problems, retrying: ${problems.slice(0, 5).join(' | ')}`);
  }

  // 2'. Per-port counts: new pod traffic moves our collector's per-port packets exactly as
  // dpctl's per in_port. (Absolute values differ by design: when OVS replaces a flow's filter
  // it carries the old filter's counts over in its own memory, netdev-offload-tc adjust_stats,
  // while the kernel's new filter starts at 0; the agent's collector, running all along, adds
  // the old filter's growth before it goes.)
  const [pingNs, pingIp, pingCount] = (process.env['PROBE_PING'] ?? '').split(' ');
  if (pingNs) {
    const show = execFileSync('ovs-appctl', ['-t', 'ovs-vswitchd', 'dpctl/show'], { encoding: 'utf8', env: { ...process.env, OVS_RUNDIR: rundir } });
    const s1 = await collector.refresh();
    const m1 = (await value('dpu_tc_packets_total', { path: 'sw' })) + (await value('dpu_tc_packets_total', { path: 'hw' }));
    const before = new Map([...s1.ports].map(([p, t]) => [p, t.swPackets + t.hwPackets]));
    const d1 = dpctlPerPort(await ovs.dumpFlows('type=tc'), show);
    const ping = spawnSync('ip', ['netns', 'exec', pingNs, 'ping', '-c', pingCount!, '-i', '0.2', '-W', '2', pingIp!], { encoding: 'utf8' });
    if (ping.status !== 0) failures.push(`ping ${pingIp} from ${pingNs} failed: ${ping.stdout}`);
    const s2 = await collector.refresh();
    const d2 = dpctlPerPort(await ovs.dumpFlows('type=tc'), show);
    const rows: string[] = [];
    for (const port of new Set([...d1.keys(), ...d2.keys()])) {
      const ours = (s2.ports.get(port)?.swPackets ?? 0) + (s2.ports.get(port)?.hwPackets ?? 0) - (before.get(port) ?? 0);
      const theirs = (d2.get(port)?.packets ?? 0) - (d1.get(port)?.packets ?? 0);
      rows.push(`${port} +${ours}/+${theirs}`);
      if (ours !== theirs) failures.push(`${port}: collector +${ours} packets, dpctl +${theirs}`);
    }
    const moved = s2.delta.swPackets + s2.delta.hwPackets;
    if (moved < Number(pingCount)) failures.push(`collector moved by ${moved} packets for ${pingCount} pings`);
    // The exported series moved by what dpctl counted on all ports together.
    const m2 = (await value('dpu_tc_packets_total', { path: 'sw' })) + (await value('dpu_tc_packets_total', { path: 'hw' }));
    const dpctlMoved = [...d2].reduce((s, [p, x]) => s + x.packets - (d1.get(p)?.packets ?? 0), 0);
    if (m2 - m1 !== dpctlMoved) failures.push(`dpu_tc_packets_total moved by ${m2 - m1}, dpctl by ${dpctlMoved}`);
    rows.push(`dpu_tc_packets_total +${m2 - m1}/+${dpctlMoved}`);
    say(`per-port packets for ${pingCount} pings, collector/dpctl: ${rows.join(', ')}`);
  }

  // 3. TC audit: OVS's filters (UFID known to ovs-vswitchd) recognised, a foreign one flagged.
  const noLink = { apply: async () => undefined, lift: async () => undefined };
  const auditQ = new TcQuarantine({ tc, link: noLink, tcPolicy: 'none', logger: silentLogger(), run });
  const audit = new TcAudit({ tc, quarantine: auditQ, uplinks: names, repair: false, intervalMs: 600_000, confirmMs: 200, ovs, logger: silentLogger() });
  const ufidsNow = await ovs.tcUfids();
  const owners = (await Promise.all(devices.map((d) => tc.dumpAnyFilters(d.ifindex, TC_PARENT_INGRESS).catch(() => [])))).flat().map((f) => classify(f, ufidsNow).owner);
  if (owners.some((o) => o !== 'ovs')) fail(`audit classes: ${owners.join(',')}`);
  const clean = await audit.schedule();
  if (clean.length !== 0) fail(`audit before: ${clean.map((f) => `${f.kind} ${f.device.name}`).join(', ')}`);
  const rep = names[0]!;
  execFileSync('tc', ['filter', 'add', 'dev', rep, 'ingress', 'prio', '40000', 'protocol', 'ip', 'flower', 'ip_proto', 'icmp', 'action', 'drop']);
  const found = await audit.schedule();
  execFileSync('tc', ['filter', 'del', 'dev', rep, 'ingress', 'prio', '40000']);
  if (found.length !== 1 || found[0]!.kind !== 'foreign-tc-filter' || found[0]!.device.name !== rep) fail(`audit after a foreign filter: ${found.map((f) => `${f.kind} ${f.device.name}`).join(', ')}`);
  say(`TC audit: ${owners.length} filters all OVS's (UFID known to ovs-vswitchd), the foreign flower filter on ${rep} flagged`);

  // 4. The freed representor, quarantined on the kernel datapath.
  const qs = process.env['PROBE_QUARANTINE'];
  if (qs) {
    const [frep, vfNs, peerIp, peerMac] = qs.split(' ') as [string, string, string, string];
    const ifindex = (await sysfsIfindex(frep)) ?? fail(`no ${frep}`);
    const q = new TcQuarantine({ tc, link: noLink, tcPolicy: 'none', logger: silentLogger(), run });
    await q.apply(frep);
    const ours = (await tc.dumpAnyFilters(ifindex, TC_PARENT_INGRESS)).filter(isQuarantineFilter);
    if (ours.length !== 1 || q.mode !== 'flower') fail(`quarantine on ${frep}: mode ${q.mode}, ${ours.length} drop filters`);
    // The eSwitch forwards whatever the representor's state: the filter alone must drop.
    execFileSync('ip', ['-n', vfNs, 'neigh', 'replace', peerIp, 'lladdr', peerMac, 'dev', 'eth0']);
    const ping = spawnSync('ip', ['netns', 'exec', vfNs, 'ping', '-c', '3', '-i', '0.2', '-W', '1', peerIp]);
    if (ping.status === 0) fail(`ping from ${frep}'s VF passed the quarantine`);
    const dropped = Math.max(0, ...tcJsonOf(frep).flatMap((f) => f['options']?.['actions'] ?? []).map((a: any) => a.stats?.packets ?? 0));
    if (dropped < 3) fail(`quarantine drop counter ${dropped}, expected >= 3`);
    if (filterActions(ours[0]!)[0]?.kind !== 'gact') fail('quarantine filter is not a drop');
    await q.lift(frep);
    const ql = new TcQuarantine({ tc, link: new LinkQuarantine(run), tcPolicy: 'none', logger: silentLogger(), run });
    await ql.apply(frep);
    const link = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'dev', frep], { encoding: 'utf8' })) as Array<{ flags: string[] }>;
    if (link[0]!.flags.includes('UP')) fail(`${frep} still up under quarantine`);
    if (!(await tc.dumpAnyFilters(ifindex, TC_PARENT_INGRESS)).some(isQuarantineFilter)) fail(`${frep}: no drop filter under link quarantine`);
    say(`quarantine: ${frep} (freed from br-int) filtered: ${dropped} packets dropped at ingress; link down + drop filter with the link quarantine`);
  }
  if (failures.length) fail(failures.join('\n  '));
} catch (err) {
  fail(err instanceof Error ? (err.stack ?? err.message) : String(err));
} finally {
  tc.close();
}
console.log(`ok - ovn-probe ${chassis}`);
process.exit(0);
