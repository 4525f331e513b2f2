// Lab bench: time to `up` with 1, 2, 4 DPUs; plug → ovn-installed latency over
// 50 ports (p50/p99); RSS per DPU. Run as root: `npm run bench -- lab [--reps N] [--ports N]`.
// `--kernel`: OVN on the kernel datapath with TC offload in the kernel lane instead (lab-kernel.ts).
// Ends with one JSON line {"bench":"lab",…}.
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { strMap } from '../../dpu-agent/src/ovsdb/atoms.ts';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { vsctlArgv } from '../../scripts/labkit/dpu.ts';
import { addPod } from '../../scripts/labkit/pods.ts';
import type { DpuState } from '../../scripts/labkit/state.ts';
import { isAlive, rssKiB } from '../../scripts/labkit/procs.ts';
import { run as runCmd } from '../../scripts/labkit/sh.ts';
import { quantile } from '../../scripts/labkit/quantile.ts';
import { down, missingPrerequisites, up } from '../../scripts/labkit/topology.ts';

/** Figures from the lab prototype (DESIGN §6) to compare against. */
const BASELINE = { up_ms: { 1: 2000, 2: 3000, 4: 4000 }, ovn_installed_ms: { p50: 55, p99: 170 }, ovs_ovn_rss_mib: 93 };

const out = (s: string) => process.stdout.write(`${s}\n`);

/**
 * Watches a DPU's Interface table with the agent's OVSDB client: when each
 * representor row appears (the plug committed) and when ovn-controller marks it
 * ovn-installed. Their difference is the plug → ovn-installed latency, free of
 * any CLI process start-up.
 */
async function watchInstalls(d: DpuState) {
  const client = new OvsdbClient({ remotes: `unix:${d.dir}/db.sock`, database: 'Open_vSwitch' });
  await client.start();
  const m = client.monitor({ Interface: { columns: ['name', 'external_ids'] } });
  await m.ready;
  const inserted = new Map<string, number>();
  const latencies = new Map<string, number>();
  m.on('change', (c) => {
    const now = performance.now();
    const name = c.new?.['name'];
    if (typeof name !== 'string' || !/^pf\d+vf\d+$/.test(name)) return;
    if (c.kind === 'insert') inserted.set(name, now);
    const t0 = inserted.get(name);
    if (t0 !== undefined && !latencies.has(name) && strMap(c.new?.['external_ids']).get('ovn-installed') === 'true') {
      latencies.set(name, now - t0);
    }
  });
  return { latencies, stop: () => client.stop() };
}

const median = (xs: number[]) => quantile(xs, 0.5);
const prefix = (tag: string) => `${tag}${randomBytes(3).toString('hex')}`;

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--kernel')) return (await import('./lab-kernel.ts')).main(argv.filter((a) => a !== '--kernel'));
  const { values } = parseArgs({ args: argv, options: { reps: { type: 'string' }, ports: { type: 'string' } } });
  const reps = Number(values.reps ?? 2);
  const ports = Number(values.ports ?? 50);
  const missing = await missingPrerequisites();
  if (missing.length > 0) throw new Error(`lab prerequisites missing: ${missing.join('; ')}`);

  // 1. time to up
  const upMs: Record<string, number> = {};
  const upPhases: Record<string, Record<string, number>> = {};
  for (const n of [1, 2, 4]) {
    const samples: number[] = [];
    for (let r = 0; r < reps; r++) {
      const p = prefix('dplbu');
      try {
        const t0 = performance.now();
        const run = await up({ prefix: p, dpus: n, sbCluster: 1, vfs: 8 });
        samples.push(performance.now() - t0);
        upPhases[String(n)] = run.state.timings;
      } finally {
        await down(p);
      }
    }
    upMs[String(n)] = Math.round(median(samples));
    out(`up with ${n} DPU(s): median ${upMs[String(n)]} ms over ${reps} (${samples.map((x) => Math.round(x)).join(', ')}); phases ${JSON.stringify(upPhases[String(n)])}`);
  }

  // 2. plug → ovn-installed over `ports` ports on 2 DPUs, and RSS per DPU with them bound
  const p = prefix('dplbp');
  let installed: number[] = [];
  let viaCli: number[] = [];
  let spawnMs = 0;
  const rss: { dpu: string; ovsOvnMiB: number; agentMiB: number }[] = [];
  try {
    const perDpu = Math.ceil(ports / 2);
    const run = await up({ prefix: p, dpus: 2, sbCluster: 1, vfs: perDpu });
    const watchers = await Promise.all(run.state.dpus.map(watchInstalls));
    try {
      for (let i = 0; i < ports; i++) {
        const r = await addPod(run, { namespace: 'bench', name: `p${i}` }, { node: (i % 2) + 1 });
        if (r.installedMs === undefined) throw new Error(`pod ${i} not installed`);
        viaCli.push(r.installedMs);
      }
    } finally {
      await Promise.all(watchers.map((w) => w.stop()));
    }
    installed = watchers.flatMap((w) => [...w.latencies.values()]).map((x) => Math.round(x * 10) / 10).sort((a, b) => a - b);
    viaCli = viaCli.sort((a, b) => a - b);
    // What the measurement itself costs: two ovs-vsctl runs (add-port, wait-until) on a no-op.
    const d = run.state.dpus[0]!;
    const spawns: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      await runCmd(vsctlArgv(d, ['wait-until', 'Open_vSwitch', '.']));
      spawns.push(performance.now() - t0);
    }
    spawnMs = Math.round(2 * median(spawns));
    for (const dd of run.state.dpus) {
      const procs = run.state.procs.filter((q) => q.name.startsWith(`${dd.name}/`) && isAlive(q));
      const kib = (pred: (name: string) => boolean) => procs.filter((q) => pred(q.name)).reduce((s, q) => s + rssKiB(q.pid), 0);
      rss.push({ dpu: dd.name, ovsOvnMiB: kib((x) => !x.endsWith('/dpu-agent')) / 1024, agentMiB: kib((x) => x.endsWith('/dpu-agent')) / 1024 });
    }
  } finally {
    await down(p);
  }
  const p50 = quantile(installed, 0.5);
  const p99 = quantile(installed, 0.99);
  out(`plug → ovn-installed over ${installed.length} ports (OVSDB monitor timestamps): p50 ${p50} ms, p99 ${p99} ms, max ${installed.at(-1)} ms`);
  out(`  as the lab CLI sees it (add-port … wait-until, ~${spawnMs} ms of it ovs-vsctl start-up): p50 ${quantile(viaCli, 0.5)} ms, p99 ${quantile(viaCli, 0.99)} ms`);
  for (const r of rss) out(`RSS ${r.dpu} (${Math.ceil(ports / 2)} ports): OVS+OVN ${r.ovsOvnMiB.toFixed(1)} MiB, dpu-agent ${r.agentMiB.toFixed(1)} MiB`);
  const avg = (f: (r: (typeof rss)[number]) => number) => Math.round((rss.reduce((s, r) => s + f(r), 0) / Math.max(1, rss.length)) * 10) / 10;
  const result = {
    bench: 'lab',
    up_ms: upMs,
    up_phases_ms: upPhases,
    ovn_installed_ms: { n: installed.length, p50, p99, max: installed.at(-1) },
    ovn_installed_cli_ms: { p50: quantile(viaCli, 0.5), p99: quantile(viaCli, 0.99), ovs_vsctl_overhead_ms: spawnMs },
    rss_mib_per_dpu: { ovs_ovn: avg((r) => r.ovsOvnMiB), agent: avg((r) => r.agentMiB), total: avg((r) => r.ovsOvnMiB + r.agentMiB) },
    baseline: BASELINE,
    ratio_to_baseline: {
      up_4: Math.round((upMs['4']! / BASELINE.up_ms[4]) * 100) / 100,
      ovn_installed_p50: Math.round((p50 / BASELINE.ovn_installed_ms.p50) * 100) / 100,
      ovn_installed_p99: Math.round((p99 / BASELINE.ovn_installed_ms.p99) * 100) / 100,
      ovs_ovn_rss: Math.round((avg((r) => r.ovsOvnMiB) / BASELINE.ovs_ovn_rss_mib) * 100) / 100,
    },
  };
  out(JSON.stringify(result));
  return 0;
}
