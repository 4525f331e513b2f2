// "Is the lab still sound?" — the invariants every attack, fault and bench run
// ends by checking, read from the systems themselves (OVSDB on each DPU, the
// links in the DPU and host netns, the agent's own /metrics and /healthz from the
// DPU side), never from what the lab believes:
//   - every Interface carrying a lease is on br-int and belongs to a live lab pod
//     (pod netns exists, its interface — eth0 or a further one — has the leased MAC);
//   - every plugged pod holds exactly one lease per attachment;
//   - nothing sits on br-int that nobody owns (br-int itself, ovn-controller's
//     tunnels/patches, leases);
//   - an unleased representor is down (quarantined) and on no bridge; its VF is in
//     the host netns with the scrubbed MAC;
//   - the agent answers /healthz and its free count = representors − leases.
import { scrubMac } from '../../dpu-agent/src/hw/representor.ts';
import { EXT } from '../../dpu-agent/src/ports/lease.ts';
import { vsctl } from './dpu.ts';
import { linkShow } from './netns.ts';
import { METRICS_PORT, repName, vfName } from './plan.ts';
import type { LabRun } from './run.ts';
import { inNs, run as runCmd } from './sh.ts';
import type { DpuState } from './state.ts';

/** GET http://127.0.0.1:<metrics port><path> from inside the DPU's netns (the management side). */
export async function dpuHttpGet(d: DpuState, path: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  const js = `fetch('http://127.0.0.1:${METRICS_PORT}'+process.argv[1],{signal:AbortSignal.timeout(${timeoutMs})}).then(async r=>process.stdout.write(r.status+'\\n'+await r.text())).catch(e=>{process.stdout.write('0\\n'+e.message)})`;
  const r = await runCmd(inNs(d.ns, [process.execPath, '-e', js, path]), { timeoutMs: timeoutMs + 5000 });
  const nl = r.stdout.indexOf('\n');
  return { status: Number(r.stdout.slice(0, nl)), body: r.stdout.slice(nl + 1) };
}

/** One sample of a Prometheus text metric, e.g. metricValue(text, 'dpu_vf_pool', {state: 'free'}). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}

interface OvsRow {
  name: string;
  uuid: string;
  ext: Map<string, string>;
  ports?: string[];
  interfaces?: string[];
}

/** `ovs-vsctl -f json list TABLE` → rows (name, _uuid, external_ids, ports/interfaces uuid sets). */
async function listRows(d: DpuState, table: string): Promise<OvsRow[]> {
  const out = await vsctl(d, '-f', 'json', '--columns=_uuid,name,external_ids' + (table === 'Bridge' ? ',ports' : table === 'Port' ? ',interfaces' : ''), 'list', table);
  const j = JSON.parse(out) as { headings: string[]; data: unknown[][] };
  const col = (n: string) => j.headings.indexOf(n);
  const set = (v: unknown): string[] => {
    const a = v as [string, unknown];
    if (a[0] === 'uuid') return [String((a as unknown as [string, string])[1])];
    if (a[0] === 'set') return (a[1] as [string, string][]).map((x) => x[1]);
    return [];
  };
  return j.data.map((r) => ({
    uuid: String((r[col('_uuid')] as [string, string])[1]),
    name: String(r[col('name')]),
    ext: new Map(((r[col('external_ids')] as [string, [string, string][]])[1] ?? []).map(([k, v]) => [k, v])),
    ...(col('ports') >= 0 ? { ports: set(r[col('ports')]) } : {}),
    ...(col('interfaces') >= 0 ? { interfaces: set(r[col('interfaces')]) } : {}),
  }));
}

export interface DpuLeaseView {
  /** Representor → lease external_ids, for Interfaces on br-int that carry a lease. */
  leases: Map<string, Map<string, string>>;
  /** Port names on br-int. */
  ports: string[];
  /** br-int ports nobody owns. */
  foreign: string[];
  /** Representors present on any bridge. */
  onAnyBridge: Set<string>;
}

/** What OVSDB on dpuK says about br-int and leases. */
export async function dpuLeaseView(d: DpuState): Promise<DpuLeaseView> {
  const [bridges, ports, ifaces] = await Promise.all([listRows(d, 'Bridge'), listRows(d, 'Port'), listRows(d, 'Interface')]);
  const portBy = new Map(ports.map((p) => [p.uuid, p]));
  const ifaceBy = new Map(ifaces.map((i) => [i.uuid, i]));
  const brInt = bridges.find((b) => b.name === 'br-int');
  const leases = new Map<string, Map<string, string>>();
  const foreign: string[] = [];
  const names: string[] = [];
  for (const pu of brInt?.ports ?? []) {
    const p = portBy.get(pu);
    if (!p) continue;
    names.push(p.name);
    const its = (p.interfaces ?? []).map((u) => ifaceBy.get(u)).filter((x): x is OvsRow => x !== undefined);
    const leased = its.length === 1 && its[0]!.ext.has(EXT.podUid) && its[0]!.ext.has(EXT.ifaceId);
    if (leased) leases.set(p.name, its[0]!.ext);
    const ovnOwned = p.ext.has('ovn-chassis-id') || [...p.ext.keys()].some((k) => k.startsWith('ovn-') && k.endsWith('-port'));
    if (p.name !== 'br-int' && !leased && !ovnOwned) foreign.push(p.name);
  }
  const onAnyBridge = new Set(bridges.flatMap((b) => (b.ports ?? []).map((u) => portBy.get(u)?.name ?? '')));
  return { leases, ports: names, foreign, onAnyBridge };
}

export interface ConsistencyReport {
  problems: string[];
  perDpu: { dpu: string; total: number; leased: number; free: number | undefined; healthz: number }[];
}

/**
 * Checks every DPU of the run. `allowLease(dpu, ext)` may accept a lease that
 * belongs to no lab pod (a test holding a VF through the API directly).
 */
export async function checkConsistency(run: LabRun, allowLease: (d: DpuState, ext: Map<string, string>) => boolean = () => false): Promise<ConsistencyReport> {
  const problems: string[] = [];
  const perDpu: ConsistencyReport['perDpu'] = [];
  for (const d of run.state.dpus) {
    const p = (s: string) => problems.push(`${d.name}: ${s}`);
    const view = await dpuLeaseView(d);
    for (const f of view.foreign) p(`port ${f} on br-int has no owner`);
    const pods = Object.values(run.state.pods).filter((x) => x.node === d.k);
    // A pod's attachments: eth0 on its own LSP, each further interface on NS_NAME_IFNAME.
    const attachmentsOf = (x: (typeof pods)[number]) => [{ ifname: 'eth0', lsp: x.lsp }, ...Object.entries(x.extra ?? {}).map(([ifname, a]) => ({ ifname, lsp: a.lsp }))];
    for (const [rep, ext] of view.leases) {
      const pod = pods.find((x) => attachmentsOf(x).some((a) => a.lsp === ext.get(EXT.ifaceId)) && x.sandbox === ext.get(EXT.sandbox) && x.uid === ext.get(EXT.podUid));
      if (!pod) {
        if (!allowLease(d, ext)) p(`lease on ${rep} (${ext.get(EXT.ifaceId)}, sandbox ${ext.get(EXT.sandbox)}) belongs to no live pod`);
        continue;
      }
      const ifname = attachmentsOf(pod).find((a) => a.lsp === ext.get(EXT.ifaceId))?.ifname ?? 'eth0';
      const [dev] = await linkShow(pod.netns, ifname).catch(() => []);
      if (!dev) p(`lease on ${rep} for ${pod.namespace}/${pod.name}: no ${ifname} in the pod`);
      else if (dev.address !== ext.get(EXT.attachedMac)) p(`lease on ${rep}: pod ${ifname} MAC ${dev.address} ≠ leased ${ext.get(EXT.attachedMac)}`);
    }
    const leasedLsps = [...view.leases.values()].map((e) => e.get(EXT.ifaceId));
    for (const pod of pods.filter((x) => x.plugged)) {
      for (const a of attachmentsOf(pod)) {
        const n = leasedLsps.filter((l) => l === a.lsp).length;
        if (n === 0) p(`pod ${pod.namespace}/${pod.name} ${a.ifname} has no lease`);
        else if (n > 1) p(`pod ${pod.namespace}/${pod.name} ${a.ifname} has ${n} leases`);
      }
    }
    const reps = (await linkShow(d.ns)).filter((l) => /^pf0vf\d+$/.test(l.ifname));
    const hostLinks = new Map((await linkShow(d.hostNs)).map((l) => [l.ifname, l]));
    for (const r of reps) {
      const j = Number(r.ifname.slice('pf0vf'.length));
      const leased = view.leases.has(r.ifname);
      const adminUp = (r.flags ?? []).includes('UP');
      if (leased) {
        if (!adminUp) p(`${r.ifname} is leased but down`);
        continue;
      }
      if (adminUp) p(`${r.ifname} is free but not quarantined (up)`);
      if (view.onAnyBridge.has(r.ifname)) p(`${r.ifname} is free but on a bridge`);
      const vf = hostLinks.get(vfName(j));
      if (!vf) p(`${vfName(j)} (free) is not in the host netns`);
      else if (vf.address !== scrubMac(0, j)) p(`${vfName(j)} (free) has MAC ${vf.address}, not the scrubbed ${scrubMac(0, j)}`);
      if (repName(j) !== r.ifname) p(`unexpected representor ${r.ifname}`);
    }
    const health = await dpuHttpGet(d, '/healthz');
    if (health.status !== 200) p(`agent /healthz answered ${health.status} ${health.body.slice(0, 80)}`);
    const metrics = await dpuHttpGet(d, '/metrics');
    const free = metricValue(metrics.body, 'dpu_vf_pool', { state: 'free' });
    const total = metricValue(metrics.body, 'dpu_vf_pool', { state: 'total' });
    if (total !== reps.length) p(`agent says ${total} VFs in total, the DPU has ${reps.length} representors`);
    if (free !== reps.length - view.leases.size) p(`agent says ${free} free, OVSDB says ${reps.length} − ${view.leases.size} leases`);
    perDpu.push({ dpu: d.name, total: reps.length, leased: view.leases.size, free, healthz: health.status });
  }
  return { problems, perDpu };
}
