// Daemons of a lab run: spawned inside a netns, recorded by pid (+ start time, so
// a recycled pid is never killed), stopped by pid. Never by name.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { inNs, poll, sh, sleep } from './sh.ts';

export interface ProcRecord {
  /** e.g. `dpu1/ovs-vswitchd`. */
  name: string;
  ns: string;
  pid: number;
  /** /proc/<pid>/stat field 22: guards against killing a recycled pid. */
  startTime: string;
  pidfile?: string;
  ctl?: string;
  log: string;
}

/** /proc/<pid>/stat start time (clock ticks since boot), or undefined if gone or a zombie. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces/parens: fields restart after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    return rest[19]; // field 22 overall
  } catch {
    return undefined;
  }
}

export function isAlive(p: Pick<ProcRecord, 'pid' | 'startTime'>): boolean {
  const st = procStartTime(p.pid);
  return st !== undefined && st === p.startTime;
}

/** Resident set size in KiB (VmRSS), 0 if gone. */
export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function readPidfile(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export interface OvsDaemonSpec {
  name: string;
  ns: string;
  /** argv without --pidfile/--detach/--log-file/--unixctl: those are added here. */
  argv: string[];
  dir: string;
  /** File stem for pidfile/log/ctl, e.g. `ovs-vswitchd`. */
  stem: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts an OVS/OVN daemon with `--detach`: it forks, and the parent exits once the
 * child is ready (so db sockets exist when this returns). Same as:
 *   ip netns exec NS ovs-vswitchd … --pidfile=DIR/x.pid --log-file=DIR/x.log --detach
 * The control socket keeps its default name, `$OVS_RUNDIR/<program>.<pid>.ctl`, so
 * `ovs-appctl -t <program>` finds it through `<program>.pid` (ovn-controller 23.03
 * has no --unixctl anyway).
 */
export async function startOvsDaemon(spec: OvsDaemonSpec, record: (p: ProcRecord) => void): Promise<ProcRecord> {
  const pidfile = `${spec.dir}/${spec.stem}.pid`;
  const log = `${spec.dir}/${spec.stem}.log`;
  const program = basename(spec.argv[0] ?? '');
  const ctlOf = (pid: number) => `${spec.dir}/${program}.${pid}.ctl`;
  const argv = [...spec.argv, `--pidfile=${pidfile}`, `--log-file=${log}`, '-vconsole:off', '--detach'];
  let failure: unknown;
  try {
    await sh(inNs(spec.ns, argv), { env: { ...process.env, ...spec.env }, timeoutMs: 30_000 });
  } catch (err) {
    failure = err;
  }
  // Record even if the parent reported failure: a child may be alive anyway.
  const pid = readPidfile(pidfile);
  const startTime = pid ? procStartTime(pid) : undefined;
  const rec = pid && startTime ? { name: spec.name, ns: spec.ns, pid, startTime, pidfile, ctl: ctlOf(pid), log } : undefined;
  if (rec) record(rec);
  if (failure) throw failure;
  if (!rec) throw new Error(`${spec.name}: no live pid in ${pidfile} (see ${log})`);
  return rec;
}

export interface PlainSpawnSpec {
  name: string;
  ns: string;
  argv: string[];
  log: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a long-running non-forking process (the agent) detached inside a netns.
 * `ip netns exec` execs in place, so the pid we get is the process's own.
 */
export async function spawnDetached(spec: PlainSpawnSpec, record: (p: ProcRecord) => void): Promise<ProcRecord> {
  const fd = openSync(spec.log, 'a');
  try {
    const child = spawn('ip', ['netns', 'exec', spec.ns, ...spec.argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
    });
    const pid = child.pid;
    if (!pid) throw new Error(`${spec.name}: spawn failed`);
    child.unref();
    // Read start time after exec (the pid is stable across exec; start time too).
    const startTime = await poll(`${spec.name} pid ${pid}`, () => procStartTime(pid), { tries: 50, intervalMs: 20 });
    const rec: ProcRecord = { name: spec.name, ns: spec.ns, pid, startTime, log: spec.log };
    record(rec);
    return rec;
  } finally {
    closeSync(fd);
  }
}

/**
 * SIGTERM, wait (bounded), then SIGKILL, wait (bounded). Only if the pid still has the
 * recorded start time. Returns true if the process is gone afterwards.
 */
export async function stopProc(p: Pick<ProcRecord, 'pid' | 'startTime'>, termWaitMs = 3000): Promise<boolean> {
  if (!isAlive(p)) return true;
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    return !isAlive(p);
  }
  const step = 20;
  for (let t = 0; t < termWaitMs; t += step) {
    if (!isAlive(p)) return true;
    await sleep(step);
  }
  try {
    process.kill(p.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  for (let t = 0; t < 3000; t += step) {
    if (!isAlive(p)) return true;
    await sleep(step);
  }
  return false;
}

/** Pids of processes inside a netns (all ours: the netns names are the run's own). */
export async function netnsPids(ns: string): Promise<number[]> {
  try {
    const out = await sh(['ip', 'netns', 'pids', ns]);
    return out.split(/\s+/).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}
