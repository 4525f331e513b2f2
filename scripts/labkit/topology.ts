// `lab up` / `lab down` / `lab status`: the whole run, in order, every resource
// recorded in the state file as it is made.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { nbDb, sbDb, upCentral } from './central.ts';
import { chassisConfigured, configureChassis, REPO_ROOT } from './chassis.ts';
import { ControlPlane } from './controlplane.ts';
import { installShim, writeConflist } from './cni.ts';
import { upDpu, warmUnderlay } from './dpu.ts';
import { delNetns, listNetns } from './netns.ts';
import { runDir } from './plan.ts';
import { makeLabPki } from './pki.ts';
import { isAlive, netnsPids, procStartTime, rssKiB, stopProc, type ProcRecord } from './procs.ts';
import { LabRun } from './run.ts';
import { poll, run as runCmd, sh } from './sh.ts';
import { loadState, newState, type LabState } from './state.ts';

export interface UpOptions {
  prefix: string;
  dpus: number;
  sbCluster: number;
  vfs: number;
}

const TOOLS = [
  ['ip', 'iproute2'], ['ping', 'iputils-ping'], ['ethtool', 'ethtool'],
  ['ovsdb-server', 'openvswitch-switch'], ['ovsdb-tool', 'openvswitch-switch'], ['ovs-vswitchd', 'openvswitch-switch'],
  ['ovs-vsctl', 'openvswitch-switch'], ['ovs-appctl', 'openvswitch-switch'],
  ['ovn-controller', 'ovn-host'], ['ovn-northd', 'ovn-central'], ['ovn-nbctl', 'ovn-central'], ['ovn-sbctl', 'ovn-central'],
  ['openssl', 'openssl'], ['nsenter', 'util-linux'],
] as const;
const FILES = [
  ['/usr/share/openvswitch/vswitch.ovsschema', 'openvswitch-switch'],
  ['/usr/share/ovn/ovn-nb.ovsschema', 'ovn-central'],
  ['/usr/share/ovn/ovn-sb.ovsschema', 'ovn-central'],
] as const;

/** Every missing prerequisite, as a list of human-readable lines (empty = all there). */
export async function missingPrerequisites(): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('must run as root (netns, veth, OVS daemons)');
  const pkgs = new Set<string>();
  for (const [tool, pkg] of TOOLS) {
    const r = await runCmd(['sh', '-c', `command -v ${tool}`]);
    if (r.code !== 0) {
      missing.push(`command ${tool} not found`);
      pkgs.add(pkg);
    }
  }
  for (const [f, pkg] of FILES) {
    if (!existsSync(f)) {
      missing.push(`${f} not found`);
      pkgs.add(pkg);
    }
  }
  if (pkgs.size > 0) missing.push(`install with: apt-get install -y ${[...pkgs].join(' ')}`);
  if (!existsSync(join(REPO_ROOT, 'node_modules/tsx'))) missing.push(`node_modules missing: run npm ci in ${REPO_ROOT}`);
  if (!existsSync(join(REPO_ROOT, 'dpu-agent/src/main.ts'))) missing.push('dpu-agent/src/main.ts not found (the lab runs the agent)');
  return missing;
}

export class PrerequisiteError extends Error {
  constructor(readonly missing: string[]) {
    super(`lab prerequisites missing:\n  - ${missing.join('\n  - ')}`);
    this.name = 'PrerequisiteError';
  }
}

/** Whether every recorded process is alive and the run reached `up`. */
export function healthy(s: LabState): boolean {
  return s.phase === 'up' && s.procs.length > 0 && s.procs.every(isAlive);
}

/**
 * Brings a lab up. Idempotent: an existing healthy run with the same shape is
 * returned as is; a broken or half-made one is torn down and made again.
 */
export async function up(opts: UpOptions, log: (msg: string) => void = () => undefined): Promise<LabRun> {
  const missing = await missingPrerequisites();
  if (missing.length > 0) throw new PrerequisiteError(missing);
  const old = loadState(opts.prefix);
  if (old) {
    const same = old.options.dpus === opts.dpus && old.options.sbCluster === opts.sbCluster && old.options.vfs === opts.vfs;
    if (healthy(old) && same) {
      log(`lab ${opts.prefix} is already up`);
      return new LabRun(old);
    }
    if (healthy(old)) throw new Error(`lab ${opts.prefix} is up with a different shape (${JSON.stringify(old.options)}); run lab down first`);
    log(`lab ${opts.prefix} is incomplete (${old.phase}); tearing it down first`);
  }
  if (old || existsSync(runDir(opts.prefix))) await down(opts.prefix);

  const t0 = performance.now();
  const run = new LabRun(newState(opts.prefix, { dpus: opts.dpus, sbCluster: opts.sbCluster, vfs: opts.vfs }));
  run.save();
  const lap = (k: string, since: number) => (run.state.timings[k] = Math.round(performance.now() - since));
  try {
    let t = performance.now();
    await upCentral(run);
    lap('centralMs', t);
    log(`central up (${run.state.options.sbCluster} SB member(s))`);
    t = performance.now();
    const cp = new ControlPlane(nbDb(run));
    const [dpus] = await Promise.all([
      Promise.all(Array.from({ length: opts.dpus }, (_, i) => upDpu(run, i + 1))),
      cp.init(),
      // The lab PKI (CA on the DPUs, a server cert per DPU, a client cert per host) and host-shim as each host's CNI plugin.
      makeLabPki(run, opts.dpus),
      installShim(run),
    ]);
    for (const d of dpus) writeConflist(run, d);
    lap('dpusMs', t);
    log(`${dpus.length} DPU(s) with OVS up, lab PKI and host-shim installed; starting dpu-agent`);
    t = performance.now();
    await Promise.all(dpus.map((d) => configureChassis(run, d)));
    lap('agentsMs', t);
    t = performance.now();
    await waitChassisRegistered(run);
    await warmUnderlay(dpus);
    lap('registerMs', t);
    run.state.phase = 'up';
    run.state.timings['upMs'] = Math.round(performance.now() - t0);
    run.save();
    log(`lab ${opts.prefix} up in ${run.state.timings['upMs']} ms`);
    return run;
  } catch (err) {
    run.state.phase = 'failed';
    run.save();
    throw err;
  }
}

/** Waits (bounded) until every DPU's chassis is in the SB with its Geneve encap. */
export async function waitChassisRegistered(run: LabRun): Promise<void> {
  const want = run.state.dpus.map((d) => d.name).sort();
  await poll(
    `chassis ${want.join(',')} in the SB`,
    async () => {
      const out = await sh(['ovn-sbctl', `--db=${sbDb(run)}`, '--timeout=5', '--bare', '--columns=chassis_name', 'list', 'Encap']);
      const have = new Set(out.split(/\s+/).filter(Boolean));
      return want.every((w) => have.has(w)) ? true : undefined;
    },
    { tries: 300, intervalMs: 50 },
  );
}

export interface DownReport {
  prefix: string;
  killed: number[];
  netns: string[];
  leftovers: string[];
}

/**
 * Removes everything a run made, whether or not its `up` finished: processes
 * (recorded pids, pidfiles under the run dir, anything inside the run's netns),
 * then the netns (their links go with them), then the run dir. Idempotent.
 */
export async function down(prefix: string): Promise<DownReport> {
  const dir = runDir(prefix);
  let state: LabState | undefined;
  try {
    state = loadState(prefix);
  } catch {
    state = undefined; // corrupt state file: fall back to scanning
  }
  const nsNames = new Set<string>(state?.netns ?? []);
  for (const n of await listNetns()) if (n.startsWith(`${prefix}-`)) nsNames.add(n);

  const victims = new Map<number, Pick<ProcRecord, 'pid' | 'startTime'>>();
  for (const p of state?.procs ?? []) if (isAlive(p)) victims.set(p.pid, p);
  for (const pid of pidfilesUnder(dir)) {
    const st = procStartTime(pid);
    if (st && cmdlineMentions(pid, dir)) victims.set(pid, { pid, startTime: st });
  }
  for (const ns of nsNames) {
    for (const pid of await netnsPids(ns)) {
      const st = procStartTime(pid);
      if (st) victims.set(pid, { pid, startTime: st });
    }
  }
  const results = await Promise.all([...victims.values()].map(async (p) => ((await stopProc(p)) ? undefined : p.pid)));
  const leftovers = results.filter((x): x is number => x !== undefined).map((pid) => `pid ${pid} still alive`);

  for (const ns of nsNames) {
    try {
      await delNetns(ns);
    } catch (err) {
      leftovers.push(`netns ${ns}: ${(err as Error).message}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return { prefix, killed: [...victims.keys()], netns: [...nsNames], leftovers };
}

function pidfilesUnder(dir: string): number[] {
  const out: number[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 3 || !existsSync(d)) return;
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p, depth + 1);
      else if (name.endsWith('.pid')) {
        const n = Number(readFileSync(p, 'utf8').trim());
        if (Number.isInteger(n) && n > 0) out.push(n);
      }
    }
  };
  walk(dir, 0);
  return out;
}

function cmdlineMentions(pid: number, s: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(s);
  } catch {
    return false;
  }
}

export interface Status {
  prefix: string;
  phase: LabState['phase'];
  healthy: boolean;
  procs: { name: string; pid: number; alive: boolean; rssKiB: number }[];
  chassis: Record<string, boolean>;
  pods: LabState['pods'];
  timings: Record<string, number>;
}

export async function status(run: LabRun): Promise<Status> {
  const s = run.state;
  const chassis: Record<string, boolean> = {};
  for (const d of s.dpus) chassis[d.name] = (await chassisConfigured(d).catch(() => undefined)) !== undefined;
  return {
    prefix: s.prefix,
    phase: s.phase,
    healthy: healthy(s),
    procs: s.procs.map((p) => ({ name: p.name, pid: p.pid, alive: isAlive(p), rssKiB: isAlive(p) ? rssKiB(p.pid) : 0 })),
    chassis,
    pods: s.pods,
    timings: s.timings,
  };
}
