// Attach bench (issue #5): `npm run bench -- attach [--n 100] [--seq 20] [--cycles 1000] [--leases 1000] [--skip lab,cycles,rig]`. Root.
//  1. on a 2-DPU lab: N concurrent CNI ADDs through host-shim (N shim processes in host1),
//     N concurrent AllocateVf straight through the API (one gRPC client in host1), and the
//     ovn-kubernetes-style baseline on dpu2 (its agent stopped so nothing removes the ports:
//     one `ovs-vsctl add-port … iface-id` process per port, then polling ovn-installed every
//     200 ms with `ovs-vsctl get`, as ovn-k's CNI does); the same three one at a time (--seq);
//     end-to-end p50/p99, and the agent's own time without the ovn-installed wait (its
//     "VF allocated" log lines: agentMs, the same value as dpu_vf_attach_seconds{phase="agent"},
//     and for the API one at a time its split: checks, VF MAC, quarantine lift + plug txn);
//  2. --cycles allocate/release cycles through the API with the quarantine checked after
//     every release (representor down, off br-int, VF MAC scrubbed);
//  3. a rig for --leases leases: the real agent process (release bundle built from source)
//     in a netns with that many veth representors (emulated backend), a real ovsdb-server
//     (Open_vSwitch) and a real OVN NB ovsdb-server, the leases written to OVSDB beforehand
//     (ovn-installed set: no ovn-controller in the rig): RSS 2 s after ready and its max over the next 12 s, and restart →
//     "VF pool rebuilt" / "agent ready" times.
// Ends with one JSON line {"bench":"attach",…}.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { build } from 'esbuild';
import { scrubMac } from '../../dpu-agent/src/hw/representor.ts';
import { plugOps } from '../../dpu-agent/src/ports/lease.ts';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { eq, op } from '../../dpu-agent/src/ovsdb/ops.ts';
import { REPO_ROOT } from '../../scripts/labkit/chassis.ts';
import { checkConsistency } from '../../scripts/labkit/consistency.ts';
import { vsctl, vsctlArgv } from '../../scripts/labkit/dpu.ts';
import { foreignPlug } from '../../scripts/labkit/foreign-plug.ts';
import { HostSide } from '../../scripts/labkit/hostclient.ts';
import { linkShow } from '../../scripts/labkit/netns.ts';
import { macForIp, repName, vfName } from '../../scripts/labkit/plan.ts';
import { createLsp, delPod, dpuOf, preparePod, shimAdd } from '../../scripts/labkit/pods.ts';
import { isAlive, rssKiB, spawnDetached, stopProc, type ProcRecord } from '../../scripts/labkit/procs.ts';
import type { LabRun } from '../../scripts/labkit/run.ts';
import { inNs, poll, run as runCmd, sh, sleep } from '../../scripts/labkit/sh.ts';
import type { DpuState } from '../../scripts/labkit/state.ts';
import { quantile } from '../../scripts/labkit/quantile.ts';
import { down, missingPrerequisites, up } from '../../scripts/labkit/topology.ts';
import { keyOf, lspOnlyPod, type LspPod } from '../helpers/attacks.ts';
import { startOvsdbServer } from '../helpers/ovsdb/server.ts';
import { makePki } from '../helpers/pki.ts';

const out = (s: string) => process.stdout.write(`${s}\n`);
const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

const stats = (xs: number[]) => ({ n: xs.length, p50: r1(quantile(xs, 0.5)), p99: r1(quantile(xs, 0.99)), max: r1(Math.max(...xs)) });

/** agentMs / ovnInstalledMs of the agent's "VF allocated" lines written after byte `since`. */
type Phases = { checks: number; mac: number; plug: number };
type Allocated = { agentMs: number; ovnInstalledMs: number; phasesMs?: Phases };
function allocatedLines(log: string, since: number): Allocated[] {
  const text = readFileSync(log).subarray(since).toString('utf8');
  const outL: Allocated[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"msg":"VF allocated"')) continue;
    const j = JSON.parse(line) as Allocated;
    outL.push({ agentMs: j.agentMs, ovnInstalledMs: j.ovnInstalledMs, ...(j.phasesMs ? { phasesMs: j.phasesMs } : {}) });
  }
  return outL;
}
/** p50/p99 of each phase of the agent's time (the "VF allocated" lines' phasesMs). */
function phaseStats(lines: Allocated[]): Record<keyof Phases, ReturnType<typeof stats>> | undefined {
  const ps = lines.flatMap((l) => (l.phasesMs ? [l.phasesMs] : []));
  if (ps.length === 0) return undefined;
  return { checks: stats(ps.map((p) => p.checks)), mac: stats(ps.map((p) => p.mac)), plug: stats(ps.map((p) => p.plug)) };
}
const logSize = (p: string) => statSync(p).size;

/** The "VF allocated" lines of `n` allocations: pino writes asynchronously, so wait (bounded) for the last ones. */
async function awaitAllocatedLines(log: string, since: number, n: number): Promise<Allocated[]> {
  let lines = allocatedLines(log, since);
  for (let i = 0; i < 40 && lines.length < n; i++) {
    await sleep(50);
    lines = allocatedLines(log, since);
  }
  return lines;
}

async function pool<T, R>(items: T[], width: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const res: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) res[i] = await fn(items[i] as T, i);
    }),
  );
  return res;
}

/** Path A: CNI ADD through host-shim for `n` pods, `width` at a time. Returns per-ADD ms; DELs after. */
async function viaShim(run: LabRun, tag: string, n: number, width: number): Promise<{ ms: number[]; agent: number[]; failed: number }> {
  const d = dpuOf(run, 1);
  const pods = [];
  for (let i = 0; i < n; i++) {
    const p = await preparePod(run, { namespace: 'bench', name: `${tag}${i}` }, { node: 1 });
    await createLsp(run, p);
    pods.push(p);
  }
  const since = logSize(run.proc(`${d.name}/dpu-agent`).log);
  const adds = await pool(pods, width, (p) => shimAdd(run, p, 120_000));
  const failed = adds.filter((r) => r.exit !== 0).length;
  const agent = (await awaitAllocatedLines(run.proc(`${d.name}/dpu-agent`).log, since, adds.length - failed)).map((x) => x.agentMs);
  await pool(pods, 8, (p) => delPod(run, p));
  return { ms: adds.filter((r) => r.exit === 0).map((r) => r.ms), agent, failed };
}

/** Path B: AllocateVf straight through the API (one client in host1), `width` at a time; releases after. */
async function viaApi(run: LabRun, hs: HostSide, tag: string, n: number, width: number, base: number): Promise<{ ms: number[]; agent: number[]; phases: ReturnType<typeof phaseStats>; failed: number }> {
  const d = dpuOf(run, 1);
  const pods = await pool(Array.from({ length: n }, (_, i) => i), 8, (i) => lspOnlyPod(run, { namespace: 'bench', name: `${tag}${i}` }, `198.18.${base + Math.floor(i / 200)}.${(i % 200) + 1}`, 1));
  const since = logSize(run.proc(`${d.name}/dpu-agent`).log);
  const res = await pool(pods, width, (p) => hs.allocate(keyOf(p), { timeoutMs: 120_000 }));
  const lines = await awaitAllocatedLines(run.proc(`${d.name}/dpu-agent`).log, since, res.filter((r) => r.ok).length);
  const agent = lines.map((x) => x.agentMs);
  await pool(pods, 16, (p) => hs.release(keyOf(p)));
  await pool(pods, 8, (p) => run.state && sh(['ovn-nbctl', `--db=unix:${run.state.central?.nbSock}`, '--if-exists', 'lsp-del', p.lsp]));
  return { ms: res.filter((r) => r.ok).map((r) => r.ms), agent, phases: phaseStats(lines), failed: res.filter((r) => !r.ok).length };
}

/**
 * Baseline, ovn-kubernetes style, on dpu2 with its agent stopped: one ovs-vsctl process to
 * plug (add-port … external_ids:iface-id), then `ovs-vsctl get … ovn-installed` every 200 ms.
 */
async function viaOvnK(run: LabRun, tag: string, n: number, width: number, base: number): Promise<{ ms: number[]; failed: number }> {
  const d2 = dpuOf(run, 2);
  const pods = await pool(Array.from({ length: n }, (_, i) => i), 8, (i) => lspOnlyPod(run, { namespace: 'bench', name: `${tag}${i}` }, `198.18.${base + Math.floor(i / 200)}.${(i % 200) + 1}`, 2));
  const one = async (p: LspPod, i: number): Promise<number | undefined> => {
    const rep = repName(i);
    const t0 = performance.now();
    await foreignPlug(d2, rep, p.lsp, macForIp(p.ip), p.uid);
    for (let k = 0; k < 300; k++) {
      const v = await runCmd(vsctlArgv(d2, ['--if-exists', 'get', 'Interface', rep, 'external_ids:ovn-installed']));
      if (v.stdout.replace(/"/g, '').trim() === 'true') return performance.now() - t0;
      await sleep(200);
    }
    return undefined;
  };
  const ms = await pool(pods, width, one);
  await pool(pods, 8, (_p, i) => vsctl(d2, '--if-exists', 'del-port', 'br-int', repName(i)));
  await pool(pods, 8, (p) => sh(['ovn-nbctl', `--db=unix:${run.state.central?.nbSock}`, '--if-exists', 'lsp-del', p.lsp]));
  return { ms: ms.filter((x): x is number => x !== undefined), failed: ms.filter((x) => x === undefined).length };
}

/** --cycles allocate/release through the API with the quarantine checked after each release. */
async function cycles(run: LabRun, hs: HostSide, n: number): Promise<{ cycles: number; problems: number; first: string[]; ms_per_cycle: number }> {
  const d = dpuOf(run, 1);
  const pods = await Promise.all(Array.from({ length: 4 }, (_, i) => lspOnlyPod(run, { namespace: 'bench', name: `cyc${i}` }, `198.18.150.${i + 1}`, 1)));
  const problems: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const key = keyOf(pods[i % 4] as LspPod, { sandboxId: `cycle-${i}` });
    const a = await hs.allocate(key);
    if (!a.ok) {
      problems.push(`cycle ${i}: allocate ${a.code} ${a.reason}`);
      continue;
    }
    const j = Number((a.res?.['vf'] as { vfIndex?: number } | undefined)?.vfIndex ?? 0);
    const r = await hs.release(key);
    if (!r.ok || r.res?.['released'] !== true) problems.push(`cycle ${i}: release failed`);
    const [rep, vf, ports] = await Promise.all([linkShow(d.ns, repName(j)), linkShow(d.hostNs, vfName(j)), vsctl(d, 'list-ports', 'br-int')]);
    if ((rep[0]?.flags ?? []).includes('UP')) problems.push(`cycle ${i}: ${repName(j)} up after release`);
    if (ports.split('\n').includes(repName(j))) problems.push(`cycle ${i}: ${repName(j)} on br-int after release`);
    if (vf[0]?.address !== scrubMac(0, j)) problems.push(`cycle ${i}: ${vfName(j)} MAC not scrubbed`);
  }
  const ms = performance.now() - t0;
  for (const p of pods) await sh(['ovn-nbctl', `--db=unix:${run.state.central?.nbSock}`, '--if-exists', 'lsp-del', p.lsp]);
  return { cycles: n, problems: problems.length, first: problems.slice(0, 5), ms_per_cycle: r1(ms / n) };
}

/** The node flags of the packaged launcher (images/bluefield/agent/dpu-agent), so the rig runs the agent as deployed. */
function launcher(): { flags: string[]; env: Record<string, string> } {
  const sh = readFileSync(join(REPO_ROOT, 'images/bluefield/agent/dpu-agent'), 'utf8');
  const m = /^exec \/usr\/bin\/node((?: --[^ ]+)*) \/usr\/lib\/dpu-agent\/dpu-agent\.mjs/m.exec(sh);
  if (!m) throw new Error('cannot find the node command line in images/bluefield/agent/dpu-agent');
  const env = Object.fromEntries([...sh.matchAll(/^export ([A-Z_][A-Z0-9_]*)=(\S+)$/gm)].map((e) => [e[1]!, e[2]!]));
  return { flags: (m[1] ?? '').trim().split(' ').filter(Boolean), env };
}

/** Part 3: the real agent process with `n` leases (see the header). */
async function leaseRig(n: number): Promise<Record<string, unknown>> {
  const tag = `dpr${randomBytes(3).toString('hex')}`;
  const dpuNs = `${tag}-dpu`;
  const hostNs = `${tag}-host`;
  // Under the repo's .run/ (git-ignored) so the bundle's native externals resolve from node_modules.
  mkdirSync(join(REPO_ROOT, '.run'), { recursive: true });
  const dir = mkdtempSync(join(REPO_ROOT, '.run', 'rig-'));
  const teardowns: (() => unknown)[] = [];
  const th = { teardown: (fn: () => unknown) => void teardowns.push(fn) };
  let agent: ProcRecord | undefined;
  try {
    await sh(['ip', 'netns', 'add', dpuNs]);
    await sh(['ip', 'netns', 'add', hostNs]);
    // n veth pairs in one `ip -batch` each side (same as: ip link add pf0vfJ type veth peer name vfJ netns HOST)
    writeFileSync(`${dir}/links`, Array.from({ length: n }, (_, j) => `link add ${repName(j)} type veth peer name ${vfName(j)} netns ${hostNs}`).join('\n') + '\n');
    await sh(['ip', '-n', dpuNs, '-batch', `${dir}/links`], { timeoutMs: 120_000 });
    const ovs = await startOvsdbServer(th, { dir: `${dir}/ovs` });
    const nb = await startOvsdbServer(th, { schema: 'ovn-nb', dir: `${dir}/nb` });
    // The leases as the agent writes them, plus ovn-installed (no ovn-controller here).
    const c = new OvsdbClient({ remotes: ovs.unixRemote, database: 'Open_vSwitch' });
    await c.start();
    await sh(['ovs-vsctl', `--db=${ovs.unixRemote}`, '--no-wait', 'add-br', 'br-int', '--', 'set', 'Bridge', 'br-int', 'fail_mode=secure']);
    const macs: string[] = [];
    const lsps: string[] = [];
    for (let j = 0; j < n; j++) {
      const ip = `10.${100 + Math.floor(j / 250)}.${j % 250}.10`;
      const mac = macForIp(ip);
      macs.push(mac);
      lsps.push(`rig_p${j}`);
      await c.transact([
        ...plugOps({ bridge: 'br-int', representor: repName(j), pf: 0, vf: j, lsp: `rig_p${j}`, mac, key: { pod: { namespace: 'rig', name: `p${j}`, uid: '00000000-0000-4000-8000-' + String(j).padStart(12, '0') }, sandboxId: `s${j}`, ifname: 'eth0' }, peer: 'host1', leaseTime: new Date().toISOString() }),
        op.mutate('Interface', [eq('name', repName(j))], [['external_ids', 'insert', new Map([['ovn-installed', 'true']])]]),
      ]);
    }
    await c.stop();
    // LSPs for them in the NB, requested on the rig chassis (one ovn-nbctl run).
    const nbArgs = ['ovn-nbctl', `--db=${nb.unixRemote}`, 'ls-add', 'rig'];
    for (let j = 0; j < n; j++) nbArgs.push('--', 'lsp-add', 'rig', lsps[j]!, '--', 'lsp-set-addresses', lsps[j]!, `${macs[j]} 10.${100 + Math.floor(j / 250)}.${j % 250}.10`, '--', 'lsp-set-options', lsps[j]!, 'requested-chassis=rig');
    await sh(nbArgs, { timeoutMs: 120_000 });
    // The VFs already carry their lease MAC and the representors are up: a restart has nothing to change.
    writeFileSync(`${dir}/host`, macs.map((m, j) => `link set ${vfName(j)} address ${m}`).join('\n') + '\n');
    await sh(['ip', '-n', hostNs, '-batch', `${dir}/host`], { timeoutMs: 120_000 });
    writeFileSync(`${dir}/up`, Array.from({ length: n }, (_, j) => `link set ${repName(j)} up`).join('\n') + '\n');
    await sh(['ip', '-n', dpuNs, '-batch', `${dir}/up`], { timeoutMs: 120_000 });
    const pki = await makePki();
    teardowns.push(() => pki.cleanup());
    // The release bundle, built from the current source (same options as scripts/build.ts).
    await build({
      entryPoints: [join(REPO_ROOT, 'dpu-agent/src/main.ts')], outfile: `${dir}/dpu-agent.mjs`, bundle: true, platform: 'node', target: 'node20', format: 'esm',
      external: ['netlink', 'koffi'], banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      legalComments: 'none', minifyWhitespace: true, logLevel: 'warning',
    });
    const { flags: nodeFlags, env: launcherEnv } = launcher();
    writeFileSync(`${dir}/agent.json`, JSON.stringify({
      ovsdb: { remote: ovs.unixRemote },
      chassis: { systemId: 'rig', hostname: 'rig', ovnRemote: 'tcp:127.0.0.1:6642', encapIp: '192.0.2.10', datapathType: 'netdev', hwOffload: false },
      ovn: { nbRemote: nb.unixRemote, controllerRundir: dir },
      api: { listenAddress: '127.0.0.1', port: 50051, tls: { key: pki.server.keyPath, cert: pki.server.certPath, clientCa: pki.caPath } },
      metrics: { listenAddress: '127.0.0.1', port: 9110 },
      hw: { backend: 'emulated', hostNetns: hostNs },
      ports: { maxLeasesPerHost: 4096 },
      log: { level: 'info' },
    }));
    const startOnce = async (k: number) => {
      const log = `${dir}/agent-${k}.log`;
      const t0 = performance.now();
      const rec = await spawnDetached({ name: 'rig/dpu-agent', ns: dpuNs, env: launcherEnv, argv: [process.execPath, ...nodeFlags, `${dir}/dpu-agent.mjs`, '--config', `${dir}/agent.json`], log, cwd: REPO_ROOT }, () => undefined);
      // Recorded before the wait: an agent that never gets ready is still stopped by the finally below.
      agent = rec;
      await poll('rig agent ready', () => {
        if (!isAlive(rec)) throw new Error(`rig agent died: ${readFileSync(log, 'utf8').slice(-800)}`);
        return readFileSync(log, 'utf8').includes('"msg":"agent ready"') ? true : undefined;
      }, { tries: 1200, intervalMs: 50 });
      const readyMs = performance.now() - t0;
      const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { time: string; msg: string; leases?: number; writes?: number });
      const at = (m: string) => Date.parse(lines.find((l) => l.msg === m)?.time ?? '');
      const firstLine = Date.parse(lines[0]?.time ?? '');
      const rebuilt = lines.find((l) => l.msg === 'VF pool rebuilt from OVSDB');
      return { rec, readyMs, sinceFirstLogMs: at('agent ready') - firstLine, poolRebuildMs: at('VF pool rebuilt from OVSDB') - at('ovsdb connected'), leases: rebuilt?.leases, writes: lines.find((l) => l.msg === 'agent ready')?.writes };
    };
    const first = await startOnce(1);
    await sleep(2000);
    const rssMiB = r1(rssKiB(first.rec.pid) / 1024);
    // And over the next 12 s, which include a periodic pass (ports.gcIntervalMs: rescan + orphan sweep).
    let rssMaxMiB = rssMiB;
    for (let i = 0; i < 12; i++) {
      await sleep(1000);
      rssMaxMiB = Math.max(rssMaxMiB, r1(rssKiB(first.rec.pid) / 1024));
    }
    await stopProc(first.rec);
    agent = undefined;
    const second = await startOnce(2);
    await stopProc(second.rec);
    agent = undefined;
    return {
      leases: second.leases,
      agent: `release bundle (esbuild of dpu-agent/src/main.ts), ${Object.entries(launcherEnv).map(([k, v]) => `${k}=${v} `).join('')}node ${nodeFlags.join(' ') || '(no flags)'} as the launcher, emulated hw on veth pairs, real ovsdb-server + OVN NB ovsdb-server, host API on`,
      rss_mib: rssMiB,
      rss_max_next_12s_mib: rssMaxMiB,
      restart_to_ready_ms: Math.round(second.readyMs),
      restart_first_log_to_ready_ms: second.sinceFirstLogMs,
      restart_pool_rebuild_ms: second.poolRebuildMs,
      restart_writes: second.writes,
    };
  } finally {
    if (agent) await stopProc(agent);
    for (const f of teardowns.reverse()) await Promise.resolve(f()).catch(() => undefined);
    await runCmd(['ip', 'netns', 'del', dpuNs]);
    await runCmd(['ip', 'netns', 'del', hostNs]);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { n: { type: 'string' }, seq: { type: 'string' }, cycles: { type: 'string' }, leases: { type: 'string' }, skip: { type: 'string' } } });
  const n = Number(values.n ?? 100);
  const seqN = Number(values.seq ?? 20);
  const nCycles = Number(values.cycles ?? 1000);
  const nLeases = Number(values.leases ?? 1000);
  const skipParts = new Set((values.skip ?? '').split(',').filter(Boolean));
  const missing = await missingPrerequisites();
  if (missing.length > 0) throw new Error(`lab prerequisites missing: ${missing.join('; ')}`);
  const result: Record<string, unknown> = { bench: 'attach', n, seq: seqN };

  const prefix = `dpba${randomBytes(3).toString('hex')}`;
  // --skip lab: the lease rig only (restart → ready and RSS with --leases leases).
  if (!skipParts.has('lab')) try {
    const tUp = performance.now();
    const run = await up({ prefix, dpus: 2, sbCluster: 1, vfs: Math.max(n, seqN) + 8 });
    out(`lab up (2 DPUs, ${Math.max(n, seqN) + 8} VFs each) in ${Math.round(performance.now() - tUp)} ms`);
    const hs = await HostSide.start(run, dpuOf(run, 1));
    try {
      const shimSeq = await viaShim(run, 'ss', seqN, 1);
      const apiSeq = await viaApi(run, hs, 'as', seqN, 1, 120);
      const shimBurst = await viaShim(run, 'sb', n, n);
      const apiBurst = await viaApi(run, hs, 'ab', n, n, 122);
      out(`host-shim, one at a time (${seqN}): ${JSON.stringify(stats(shimSeq.ms))} ms end to end; agent ${JSON.stringify(stats(shimSeq.agent))} ms`);
      out(`API, one at a time (${seqN}): ${JSON.stringify(stats(apiSeq.ms))} ms; agent ${JSON.stringify(stats(apiSeq.agent))} ms`);
      out(`host-shim, ${n} concurrent: ${JSON.stringify(stats(shimBurst.ms))} ms end to end (${shimBurst.failed} failed); agent ${JSON.stringify(stats(shimBurst.agent))} ms`);
      out(`API, ${n} concurrent: ${JSON.stringify(stats(apiBurst.ms))} ms (${apiBurst.failed} failed); agent ${JSON.stringify(stats(apiBurst.agent))} ms`);
      const cyc = skipParts.has('cycles') ? undefined : await cycles(run, hs, nCycles);
      if (cyc) out(`${cyc.cycles} allocate/release cycles (quarantine checked after each release): ${cyc.problems} problems ${JSON.stringify(cyc.first)}, ${cyc.ms_per_cycle} ms/cycle incl. checks`);
      const consistent = await checkConsistency(run);
      out(`consistency after: ${consistent.problems.length === 0 ? 'ok' : JSON.stringify(consistent.problems)}`);
      // Baseline on dpu2: its agent stopped (the bridge audit would rightly remove ovs-vsctl ports).
      const d2: DpuState = dpuOf(run, 2);
      await stopProc(run.proc(`${d2.name}/dpu-agent`));
      const ovnkSeq = await viaOvnK(run, 'ks', seqN, 1, 130);
      const ovnkBurst = await viaOvnK(run, 'kb', n, n, 132);
      out(`ovn-k style (ovs-vsctl add-port + poll 200 ms), one at a time (${seqN}): ${JSON.stringify(stats(ovnkSeq.ms))} ms`);
      out(`ovn-k style, ${n} concurrent: ${JSON.stringify(stats(ovnkBurst.ms))} ms (${ovnkBurst.failed} failed)`);
      Object.assign(result, {
        shim_seq_ms: stats(shimSeq.ms),
        api_seq_ms: stats(apiSeq.ms),
        shim_concurrent_ms: { ...stats(shimBurst.ms), failed: shimBurst.failed },
        api_concurrent_ms: { ...stats(apiBurst.ms), failed: apiBurst.failed },
        agent_ms_excl_ovn_installed: { seq: stats([...shimSeq.agent, ...apiSeq.agent]), concurrent: stats([...shimBurst.agent, ...apiBurst.agent]) },
        agent_phases_api_seq_ms: apiSeq.phases,
        agent_phases_api_concurrent_ms: apiBurst.phases,
        ovnk_seq_ms: stats(ovnkSeq.ms),
        ovnk_concurrent_ms: { ...stats(ovnkBurst.ms), failed: ovnkBurst.failed },
        ratio_vs_ovnk: {
          api_seq_p50: r3(quantile(apiSeq.ms, 0.5) / quantile(ovnkSeq.ms, 0.5)),
          shim_seq_p50: r3(quantile(shimSeq.ms, 0.5) / quantile(ovnkSeq.ms, 0.5)),
          api_concurrent_p50: r3(quantile(apiBurst.ms, 0.5) / quantile(ovnkBurst.ms, 0.5)),
          api_concurrent_p99: r3(quantile(apiBurst.ms, 0.99) / quantile(ovnkBurst.ms, 0.99)),
          shim_concurrent_p50: r3(quantile(shimBurst.ms, 0.5) / quantile(ovnkBurst.ms, 0.5)),
          shim_concurrent_p99: r3(quantile(shimBurst.ms, 0.99) / quantile(ovnkBurst.ms, 0.99)),
        },
        cycles: cyc ?? 'skipped',
        consistent_after: consistent.problems.length === 0,
      });
    } finally {
      await hs.close();
    }
  } finally {
    await down(prefix);
  }

  if (!skipParts.has('rig')) {
    const rig = await leaseRig(nLeases);
    out(`rig, ${nLeases} leases: ${JSON.stringify(rig)}`);
    result['leases_rig'] = rig;
  }
  result['goals'] = { agent_p99_ms: 5, rss_mib: 80, restart_ms: 1000 };
  out(JSON.stringify(result));
  return 0;
}
