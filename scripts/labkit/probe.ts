// Traffic checks between lab pods, shared by the demo, the e2e tests and the
// bench. Everything is sent from inside a pod netns to a lab pod address.
import { spawn } from 'node:child_process';
import { REPO_ROOT } from './chassis.ts';
import { ipn } from './netns.ts';
import { podKey, type PodRef } from './plan.ts';
import type { LabRun } from './run.ts';
import { inNs, run as runCmd, sh } from './sh.ts';
import type { PodState } from './state.ts';

export function pod(run: LabRun, ref: PodRef | string): PodState {
  const key = typeof ref === 'string' ? ref : podKey(ref);
  const p = run.state.pods[key];
  if (!p) throw new Error(`no pod ${key}`);
  return p;
}

export interface PingResult {
  sent: number;
  received: number;
  /** ping exited with "local error" (e.g. EMSGSIZE for a DF packet over the MTU). */
  localError: boolean;
}

/** same as: ip netns exec POD ping -c N -i 0.2 -W 1 [-M do -s SIZE] DST */
export async function ping(from: PodState, dst: string, opts: { count?: number; size?: number; df?: boolean; waitS?: number; src?: string } = {}): Promise<PingResult> {
  const count = opts.count ?? 3;
  const argv = ['ping', '-n', '-c', String(count), '-i', '0.2', '-W', String(opts.waitS ?? 1)];
  if (opts.size !== undefined) argv.push('-s', String(opts.size));
  if (opts.df) argv.push('-M', 'do');
  if (opts.src) argv.push('-I', opts.src);
  argv.push(dst);
  const r = await runCmd(inNs(from.netns, argv), { timeoutMs: (count * 0.2 + (opts.waitS ?? 1) + 5) * 1000 });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return {
    sent: m ? Number(m[1]) : 0,
    received: m ? Number(m[2]) : 0,
    localError: /\+\d+ errors|message too long|local error/i.test(r.stdout + r.stderr),
  };
}

/** ICMP echo requests the pod's stack has received (per-netns /proc/net/snmp Icmp InEchos). */
export async function inEchos(p: PodState): Promise<number> {
  const snmp = await sh(inNs(p.netns, ['cat', '/proc/net/snmp']));
  const lines = snmp.split('\n').filter((l) => l.startsWith('Icmp:'));
  const head = lines[0]?.split(/\s+/) ?? [];
  const vals = lines[1]?.split(/\s+/) ?? [];
  const i = head.indexOf('InEchos');
  if (i < 0) throw new Error('no Icmp InEchos in /proc/net/snmp');
  return Number(vals[i]);
}

export interface SpoofResult {
  /** Echo requests the receiver got while the sender was spoofing (must be 0). */
  delivered: number;
  sent: number;
  /** Echo requests the receiver got from the same sender unspoofed, before and after (must be > 0). */
  controlBefore: number;
  controlAfter: number;
}

/**
 * Sends pings from `from` to `to` with a forged source (MAC or IP) and counts what
 * arrives at the receiver's stack. A static neighbour entry takes ARP out of the
 * picture, so only the forged ICMP frames are in flight. Restores the sender after.
 */
export async function spoof(from: PodState, to: PodState, kind: 'mac' | 'ip', count = 5): Promise<SpoofResult> {
  await ipn(from.netns, 'neigh', 'replace', to.ip, 'lladdr', to.mac, 'dev', 'eth0', 'nud', 'permanent');
  const control = async () => {
    const before = await inEchos(to);
    await ping(from, to.ip, { count: 2 });
    return (await inEchos(to)) - before;
  };
  const controlBefore = await control();
  const fakeIp = '198.18.250.250';
  const before = await inEchos(to);
  let sent: number;
  try {
    if (kind === 'mac') {
      await ipn(from.netns, 'link', 'set', 'dev', 'eth0', 'address', '0a:58:de:ad:be:ef');
      sent = (await ping(from, to.ip, { count })).sent;
    } else {
      await ipn(from.netns, 'addr', 'add', `${fakeIp}/32`, 'dev', 'eth0');
      sent = (await ping(from, to.ip, { count, src: fakeIp })).sent;
    }
  } finally {
    if (kind === 'mac') await ipn(from.netns, 'link', 'set', 'dev', 'eth0', 'address', from.mac);
    else await runCmd(['ip', '-n', from.netns, 'addr', 'del', `${fakeIp}/32`, 'dev', 'eth0']);
  }
  const delivered = (await inEchos(to)) - before;
  const controlAfter = await control();
  await runCmd(['ip', '-n', from.netns, 'neigh', 'del', to.ip, 'dev', 'eth0']);
  return { delivered, sent, controlBefore, controlAfter };
}

export interface TcpResult {
  bytes: number;
  echoed: number;
  ms: number;
  mbit: number;
}

/** A TCP transfer of `bytes` from `from` to a one-shot server in `to` (scripts/labkit/tcp.ts). */
export async function tcpTransfer(from: PodState, to: PodState, bytes: number, port = 5201, timeoutMs = 30_000): Promise<TcpResult> {
  const server = spawn('ip', inNs(to.netns, [process.execPath, '--import', 'tsx', 'scripts/labkit/tcp.ts', 'serve', to.ip, String(port), String(timeoutMs)]).slice(1), {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('tcp server did not start')), 15_000);
      server.stdout.on('data', (b: Buffer) => {
        if (b.toString().includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      server.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`tcp server exited ${code}`));
      });
    });
    const out = await sh(inNs(from.netns, [process.execPath, '--import', 'tsx', 'scripts/labkit/tcp.ts', 'send', to.ip, String(port), String(bytes), String(timeoutMs)]), {
      cwd: REPO_ROOT,
      timeoutMs: timeoutMs + 10_000,
    });
    return JSON.parse(out.split('\n').pop() ?? '{}') as TcpResult;
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}

/**
 * Counts how many 1-packet probes it takes until `want` holds (reachable or not),
 * at most `tries`; undefined if it never did. Used to show a policy takes effect
 * within a bounded number of tries rather than asserting wall time.
 */
export async function triesUntil(from: PodState, dst: string, want: 'reachable' | 'unreachable', tries: number): Promise<number | undefined> {
  for (let i = 1; i <= tries; i++) {
    const r = await ping(from, dst, { count: 1, waitS: 0.2 });
    if ((r.received > 0) === (want === 'reachable')) return i;
  }
  return undefined;
}
