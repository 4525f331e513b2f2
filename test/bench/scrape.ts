// scrape bench: GET /metrics (the agent's management listener, over HTTP) with 1,000
// representors and 10,000 (or --filters 100000) flower filters behind the offload collector.
//   npm run bench -- scrape [--reps 1000] [--filters 10000] [--scrapes 500] [--audit]
// Ends with one JSON line {"bench":"scrape",…}; goal p99 < 10 ms.
//
// Source: a FakeTc whose every dump DECODES netlink reply bytes with our decoder —
// the per-device terse dump replies (no keys; action stats, flags, cookies) are
// synthesized once with our encoder from tc-dump's OVS-like filters (filters/reps
// per representor) — through the collector's own path (Tc.scanFilters: the partial
// view). So a dump costs the real decode; only the syscalls are missing.
// Reported besides the latencies: the full refresh time (p50 and max over the
// refreshes of the run) and the process's RSS and heap after the run (the collector
// keeps typed arrays per device, no object per filter).
// --audit: also three TC audit passes over the same filters as full dumps (what the
// audit reads), every UFID known to OVS: pass time and the heap's peak over the
// pass (sampled every 5 ms) — the audit reads through the view and decodes in
// full only devices with a filter that is not plainly OVS's.
// Scrapes come one after another on a simulated clock that advances 1 s per scrape
// (Prometheus at 1 s, the cache at 5 s): a stale scrape kicks a refresh that runs
// in the background, interleaved with the next scrapes. The fake's dumps run one
// after another, one per event-loop turn, as on the agent's one netlink socket;
// back-to-back scrapes leave a refresh few turns, so it spans many of them (the
// refresh time is therefore also measured on its own, after the scrapes).
// Baseline, same run: the naive agent — dump every device and aggregate at every
// scrape (the same collector with a 0 ms cache whose refresh the scrape awaits).
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { createMetrics } from '../../dpu-agent/src/metrics/metrics.ts';
import { MetricsServer } from '../../dpu-agent/src/metrics/server.ts';
import { OffloadCollector } from '../../dpu-agent/src/offload/collector.ts';
import { FakeTc } from '../helpers/fake-tc.ts';
import { TcAudit } from '../../dpu-agent/src/offload/tc-audit.ts';
import type { TcQuarantine } from '../../dpu-agent/src/offload/quarantine.ts';
import { TC_PARENT_INGRESS } from '../../dpu-agent/src/tc/index.ts';
import { synthesize, terse, toDatagrams } from './tc-dump.ts';

const out = (s: string): void => void process.stdout.write(`${s}\n`);

/** A full GC (the bench runs without --expose-gc; this turns it on for a fresh context). */
function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}
/** JS heap + ArrayBuffer backing stores (the collector's typed arrays live there), after a full GC. */
const heapMiB = (): number => {
  gc();
  const m = process.memoryUsage();
  return (m.heapUsed + m.arrayBuffers) / 1048576;
};
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

async function measure(label: string, nReps: number, nFilters: number, byDev: Map<number, Buffer[]>, intervalMs: number, awaitRefresh: boolean, scrapes: number) {
  const heapBefore = heapMiB();
  const tc = new FakeTc({ replies: (ifindex) => byDev.get(ifindex) ?? [] });
  const metrics = createMetrics();
  const now = { t: 0 };
  const devices = Array.from({ length: nReps }, (_, i) => ({ name: `pf0vf${i}`, ifindex: 100 + i }));
  const c = new OffloadCollector({ tc, devices: async () => devices, intervalMs, metrics, logger: silentLogger(), now: () => now.t });
  if (awaitRefresh) metrics.bindTcCollector(async () => void (await c.refresh()));
  const srv = new MetricsServer({ metrics, listenAddress: '127.0.0.1', port: 0, ready: () => ({ ready: true, reasons: [] }), logger: silentLogger() });
  await srv.start();
  const url = `http://127.0.0.1:${srv.address().port}/metrics`;
  const times: number[] = [];
  const refreshMs: number[] = [];
  let lastSnap: unknown;
  let bytes = 0;
  const want = `dpu_tc_flows{state="in_hw"} ${nFilters}`;
  try {
    for (let i = 0; i < scrapes + 5; i++) {
      const t0 = performance.now();
      const r = await fetch(url);
      const text = await r.text();
      const ms = performance.now() - t0;
      if (r.status !== 200 || !text.includes(want)) throw new Error(`${label}: bad scrape (status ${r.status})`);
      if (c.snapshot && c.snapshot !== lastSnap) {
        lastSnap = c.snapshot;
        refreshMs.push(c.snapshot.ms);
      }
      bytes = text.length;
      if (i >= 5) times.push(ms); // warm-up excluded
      if (process.env["SCRAPE_DEBUG"] && ms > 30) out(`  slow scrape ${i}: ${ms.toFixed(1)} ms (t=${now.t})`);
      now.t += 1000;
    }
  } finally {
    await srv.stop();
  }
  const res = { p50_ms: Number(pct(times, 50).toFixed(2)), p99_ms: Number(pct(times, 99).toFixed(2)), max_ms: Number(Math.max(...times).toFixed(2)), dumps: tc.dumps, refreshes: c.refreshes };
  out(`${label}: p50 ${res.p50_ms} ms, p99 ${res.p99_ms} ms, max ${res.max_ms} ms over ${times.length} scrapes; ${c.refreshes} refreshes (${tc.dumps} device dumps); /metrics ${(bytes / 1024).toFixed(0)} KiB`);
  // The refresh on its own (no scrapes competing for the event loop), as between two 1 s scrapes.
  await c.refresh(); // joins the one in flight, if any
  const alone: number[] = [];
  for (let i = 0; i < 5; i++) alone.push((await c.refresh()).ms);
  // What the collector (and the metrics registry) keep between scrapes: heap after a full GC, minus before it existed.
  const retainedMiB = heapMiB() - heapBefore;
  const mem = process.memoryUsage();
  return { ...res, refreshP50: pct(alone, 50), refreshMax: Math.max(...alone), refreshesSeen: refreshMs.length, rssMiB: mem.rss / 1048576, retainedMiB, keep: c };
}

/** Three audit passes over `nReps` leased representors whose full dumps are `byDev`; every UFID is OVS's. */
async function auditPasses(nReps: number, byDev: Map<number, Buffer[]>, ufids: Set<string>): Promise<{ passMs: number[]; peakMiB: number }> {
  const tc = new FakeTc({ replies: (ifindex, parent) => (parent === TC_PARENT_INGRESS ? (byDev.get(ifindex) ?? []) : []) });
  for (let d = 0; d < nReps; d++) tc.qdiscs.set(100 + d, 'ingress');
  const names = Array.from({ length: nReps }, (_, i) => `pf0vf${i}`);
  const quarantine = { quarantined: () => new Map<string, number>(), lifted: () => names, mode: 'flower' } as unknown as TcQuarantine;
  const ovs = { tcUfids: async () => ufids, offloadedFlows: async () => 0, offloadStats: async () => '' };
  const ifindexOf = async (n: string): Promise<number> => 100 + Number(n.slice('pf0vf'.length));
  const audit = new TcAudit({ tc, quarantine, uplinks: [], repair: false, intervalMs: 1e9, confirmMs: 0, logger: silentLogger(), ovs, ifindexOf });
  const passMs: number[] = [];
  audit.on('pass', (r) => {
    if (r.findings !== 0) throw new Error(`audit: ${r.findings} findings, want none`);
    passMs.push(r.ms);
  });
  gc();
  const base = process.memoryUsage().heapUsed;
  let peak = base;
  const sampler = setInterval(() => void (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5);
  try {
    for (let i = 0; i < 3; i++) await audit.schedule();
  } finally {
    clearInterval(sampler);
  }
  return { passMs, peakMiB: (peak - base) / 1048576 };
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { reps: { type: 'string', default: '1000' }, filters: { type: 'string', default: '10000' }, scrapes: { type: 'string', default: '500' }, audit: { type: 'boolean', default: false } } });
  const nReps = Number(values.reps);
  const nFilters = Number(values.filters);
  const scrapes = Number(values.scrapes);
  // tc-dump's OVS-like filters, dealt round-robin over the representors, in the terse shape the collector asks for.
  const perDev = Array.from({ length: nReps }, () => [] as ReturnType<typeof terse>[]);
  synthesize(nFilters).forEach((f, i) => perDev[i % nReps]!.push({ ...terse(f), ifindex: 100 + (i % nReps) }));
  const byDev = new Map<number, Buffer[]>();
  for (let d = 0; d < nReps; d++) byDev.set(100 + d, toDatagrams(perDev[d]!));
  perDev.length = 0;
  const dumpBytes = [...byDev.values()].flat().reduce((s, g) => s + g.length, 0);
  out(`scrape: ${nReps} representors, ${nFilters} filters, ${(dumpBytes / 1048576).toFixed(1)} MiB of terse dump replies decoded per full refresh`);

  const cached = await measure('cached (5 s, scrape every 1 s)', nReps, nFilters, byDev, 5000, false, scrapes);
  out(`full refresh (${nReps} dumps + view decode + aggregate), 5 on their own after the scrapes: p50 ${cached.refreshP50.toFixed(1)} ms, max ${cached.refreshMax.toFixed(1)} ms; process RSS ${cached.rssMiB.toFixed(0)} MiB (the synthesized dump bytes included), heap + array buffers kept by the collector + metrics between scrapes ${cached.retainedMiB.toFixed(1)} MiB`);
  const naive = await measure('naive (dump + aggregate every scrape)', nReps, nFilters, byDev, 0, true, Math.min(scrapes, nFilters > 10000 ? 30 : 60));
  let auditFig: Record<string, number> = {};
  if (values.audit) {
    byDev.clear();
    const ufids = new Set<string>();
    const full = Array.from({ length: nReps }, () => [] as ReturnType<typeof synthesize>);
    synthesize(nFilters).forEach((f, i) => {
      full[i % nReps]!.push({ ...f, ifindex: 100 + (i % nReps) });
      for (const a of f.actions) if (a.cookie) ufids.add(a.cookie);
    });
    const fullByDev = new Map<number, Buffer[]>();
    for (let d = 0; d < nReps; d++) fullByDev.set(100 + d, toDatagrams(full[d]!));
    full.length = 0;
    const a = await auditPasses(nReps, fullByDev, ufids);
    out(`TC audit, ${nFilters} filters over ${nReps} representors (full dumps, all UFIDs known): passes ${a.passMs.map((x) => x.toFixed(0)).join(' / ')} ms; heap peak over the passes +${a.peakMiB.toFixed(1)} MiB`);
    auditFig = { audit_pass_ms: Number(pct(a.passMs, 50).toFixed(1)), audit_heap_peak_mib: Number(a.peakMiB.toFixed(1)) };
  }
  out(
    JSON.stringify({
      bench: 'scrape',
      representors: nReps,
      filters: nFilters,
      p99_ms: cached.p99_ms,
      p50_ms: cached.p50_ms,
      baseline_p99_ms: naive.p99_ms,
      baseline_p50_ms: naive.p50_ms,
      refresh_ms: Number(cached.refreshP50.toFixed(1)),
      refresh_max_ms: Number(cached.refreshMax.toFixed(1)),
      rss_mib: Number(cached.rssMiB.toFixed(0)),
      retained_heap_mib: Number(cached.retainedMiB.toFixed(1)),
      dump_bytes_mib: Number((dumpBytes / 1048576).toFixed(1)),
      speedup_p99: Number((naive.p99_ms / cached.p99_ms).toFixed(1)),
      goal_p99_ms: 10,
      ...auditFig,
      source: 'fake Tc decoding synthesized terse dump bytes per dump',
    }),
  );
  return cached.p99_ms < 10 ? 0 : 1;
}
