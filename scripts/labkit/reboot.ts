// A DPU reboot in the lab: every process of dpuK stops (agent, ovn-controller,
// ovs-vswitchd, ovsdb-server — by the pids the lab recorded, SIGKILL by default:
// power is cut), conf.db stays (a real DPU's disk), and they start again the way
// `up` starts them. The host and its pods are untouched: whatever comes back must
// come back without any CNI call.
import { spawn } from 'node:child_process';
import { configureChassis } from './chassis.ts';
import { startDpuDaemons, warmUnderlay } from './dpu.ts';
import { ipn, linkExists, linkShow } from './netns.ts';
import { repName, vfName } from './plan.ts';
import { stopProc } from './procs.ts';
import { quantile } from './quantile.ts';
import type { LabRun } from './run.ts';
import { sleep } from './sh.ts';
import type { DpuState, PodState } from './state.ts';

/** Stop order: the agent first (no allocation half-done by a daemon going first), the DB last. */
const STOP_ORDER = ['dpu-agent', 'ovn-controller', 'ovs-vswitchd', 'ovsdb-server'] as const;

/** Stops every recorded process of dpuK, by pid. Throws if one survives. */
export async function stopDpu(run: LabRun, d: DpuState, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
  for (const name of STOP_ORDER) {
    const p = run.state.procs.find((q) => q.name === `${d.name}/${name}`);
    if (!p) continue;
    if (signal === 'SIGKILL') {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (!(await stopProc(p))) throw new Error(`${d.name}/${name} pid ${p.pid} did not stop`);
  }
}

/** The MAC a VF has after the eSwitch forgot its configuration (the lab's "firmware default"). */
export function firmwareMac(j: number): string {
  const h = (n: number) => (n & 0xff).toString(16).padStart(2, '0');
  return `02:fe:00:00:${h(j >> 8)}:${h(j)}`;
}

/**
 * What a reboot does to the eSwitch that the veth pairs would otherwise keep: every
 * representor comes back down and every VF forgets the MAC the agent set (its netdev
 * stays where the host put it: the host netns or a pod). Only for a stopped DPU.
 */
export async function forgetEswitchState(run: LabRun, d: DpuState): Promise<void> {
  const reps = (await linkShow(d.ns)).filter((l) => /^pf0vf\d+$/.test(l.ifname));
  for (const r of reps) {
    const j = Number(r.ifname.slice('pf0vf'.length));
    await ipn(d.ns, 'link', 'set', 'dev', repName(j), 'down');
    if (await linkExists(d.hostNs, vfName(j))) {
      await ipn(d.hostNs, 'link', 'set', 'dev', vfName(j), 'address', firmwareMac(j));
      continue;
    }
    for (const p of Object.values(run.state.pods).filter((x) => x.node === d.k)) {
      const ifname = p.vf === j ? 'eth0' : Object.entries(p.extra ?? {}).find(([, a]) => a.vf === j)?.[0];
      if (ifname && (await linkExists(p.netns, ifname))) await ipn(p.netns, 'link', 'set', 'dev', ifname, 'address', firmwareMac(j));
    }
  }
}

export interface DpuStartTimings {
  /** ovsdb-server, ovs-vswitchd (br-phy) and ovn-controller started. */
  daemonsMs: number;
  /** The agent logged "agent ready" (pool rebuilt from OVSDB, host API listening). */
  agentReadyMs: number;
}

/** Starts a stopped DPU the way `up` does (same daemon and agent start code), then warms the underlay. */
export async function startDpu(run: LabRun, d: DpuState): Promise<DpuStartTimings> {
  const t0 = performance.now();
  await startDpuDaemons(run, d);
  const daemonsMs = performance.now() - t0;
  await configureChassis(run, d);
  const agentReadyMs = performance.now() - t0;
  await warmUnderlay(run.state.dpus);
  return { daemonsMs, agentReadyMs };
}

/** `lab dpu restart dpuK`: stop (power cut, eSwitch state lost), then start. */
export async function restartDpu(run: LabRun, d: DpuState, opts: { signal?: 'SIGKILL' | 'SIGTERM'; forgetEswitch?: boolean } = {}): Promise<DpuStartTimings> {
  await stopDpu(run, d, opts.signal);
  if (opts.forgetEswitch !== false) await forgetEswitchState(run, d);
  return startDpu(run, d);
}

/**
 * Pings `dst` from the pod every 50 ms (ping -D: each reply stamped with the wall
 * clock) until the first reply or `deadlineS`; resolves to that reply's time (epoch
 * ms) or undefined. ping gives up by itself after a few seconds of "Destination Host
 * Unreachable" / ENOBUFS while nothing forwards, so it is started again (bounded by
 * the deadline). Each ping process is ours and is stopped by its own pid.
 */
export async function firstReply(pod: PodState, dst: string, deadlineS: number, opts: { src?: string } = {}): Promise<number | undefined> {
  const until = Date.now() + deadlineS * 1000;
  for (let attempt = 0; attempt < 1000; attempt++) {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) return undefined;
    const at = await pingOnce(pod, dst, left, opts);
    if (at !== undefined) return at;
    await sleep(50);
  }
  return undefined;
}

function pingOnce(pod: PodState, dst: string, deadlineS: number, opts: { src?: string }): Promise<number | undefined> {
  const argv = ['netns', 'exec', pod.netns, 'ping', '-n', '-D', '-i', '0.05', '-W', '1', '-w', String(deadlineS), ...(opts.src ? ['-I', opts.src] : []), dst];
  return new Promise((resolve) => {
    const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    let done = false;
    const finish = (v: number | undefined): void => {
      if (done) return;
      done = true;
      resolve(v);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /^\[(\d+\.\d+)\] \d+ bytes from /m.exec(buf);
      if (m) finish(Math.round(Number(m[1]) * 1000));
    });
    child.on('close', () => finish(undefined));
    child.on('error', () => finish(undefined));
  });
}

export interface RecoveryFigures {
  /** Per pod: ms from the start of the restart to its first reply (undefined: none within the deadline). */
  perPod: (number | undefined)[];
  p50Ms: number | undefined;
  maxMs: number | undefined;
  timings: DpuStartTimings;
}

/**
 * Starts the (stopped) DPU and, from the same instant, pings `dst` from every pod;
 * reports per pod the time from the start of the restart to its traffic resuming.
 * No CNI call, nothing done on the host: the pods just keep trying.
 */
export async function startDpuMeasured(run: LabRun, d: DpuState, pods: readonly PodState[], dst: string, deadlineS = 60): Promise<RecoveryFigures> {
  const t0 = Date.now();
  const replies = pods.map((p) => firstReply(p, dst, deadlineS));
  const timings = await startDpu(run, d);
  const perPod = (await Promise.all(replies)).map((at) => (at === undefined ? undefined : Math.max(0, at - t0)));
  const got = perPod.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  return { perPod, p50Ms: got.length === 0 ? undefined : quantile(got, 0.5), maxMs: got.at(-1), timings };
}
