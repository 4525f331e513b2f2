// The run's state file, written incrementally: each resource is recorded the
// moment it is created (netns) or right after (pid), so `down` can undo a crashed
// `up`. Writes are atomic (tmp + rename); a lock dir serialises CLI invocations.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { isAlive, procStartTime, type ProcRecord } from './procs.ts';
import { join } from 'node:path';
import { RUN_ROOT, runDir } from './plan.ts';

export interface DpuState {
  k: number;
  name: string;
  ns: string;
  hostNs: string;
  dir: string;
  tunnelIp: string;
  vfs: number;
  /** Filled once the chassis is configured (by the agent). */
  chassisReady?: boolean;
  /** Overrides of the agent's `ports` config (e.g. a short orphanGraceMs for a test); applied at the next agent start. */
  agentPorts?: { orphanGraceMs?: number; gcIntervalMs?: number };
}

export interface PodState {
  namespace: string;
  name: string;
  /** Pod UID (CNI_ARGS K8S_POD_UID; the LSP's external_ids:pod-uid). */
  uid: string;
  /** CNI container (sandbox) id. */
  sandbox: string;
  lsp: string;
  node: number;
  /** VF index the agent handed out (-1 until ADD succeeded). */
  vf: number;
  mac: string;
  ip: string;
  netns: string;
  /** Set once CNI ADD succeeded (the agent plugged the representor, ovn-installed). */
  plugged?: boolean;
  /** Further attachments (CNI ADD with another CNI_IFNAME), by interface name: own LSP NS_NAME_IFNAME and address. */
  extra?: Record<string, { lsp: string; ip: string; mac: string; vf: number }>;
}

export interface PolicyState {
  /** `deny` rule id: target pod key plus optional source pod key. */
  id: string;
  pg: string;
  target: string;
  from?: string;
}

export interface LabState {
  version: 1;
  prefix: string;
  dir: string;
  phase: 'creating' | 'up' | 'failed' | 'deleting';
  createdAt: string;
  options: { dpus: number; sbCluster: number; vfs: number };
  /** Netns this run created, in creation order. */
  netns: string[];
  /** Links created (informational: all live inside the run's netns, so netns deletion removes them). */
  links: string[];
  procs: ProcRecord[];
  central?: { ns: string; ip: string; dir: string; nbSock: string; sbSocks: string[]; sbRemotes: string[] };
  dpus: DpuState[];
  pods: Record<string, PodState>;
  policies: PolicyState[];
  timings: Record<string, number>;
}

export function newState(prefix: string, options: LabState['options']): LabState {
  return {
    version: 1,
    prefix,
    dir: runDir(prefix),
    phase: 'creating',
    createdAt: new Date().toISOString(),
    options,
    netns: [],
    links: [],
    procs: [],
    dpus: [],
    pods: {},
    policies: [],
    timings: {},
  };
}

export const statePath = (prefix: string): string => join(runDir(prefix), 'state.json');

export function loadState(prefix: string): LabState | undefined {
  const p = statePath(prefix);
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, 'utf8')) as LabState;
}

export function saveState(s: LabState): void {
  mkdirSync(s.dir, { recursive: true });
  const p = statePath(s.prefix);
  const tmp = `${p}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n');
  renameSync(tmp, p);
}

/** Prefixes that have a run dir (whether or not their state file made it). */
export function listRuns(): string[] {
  if (!existsSync(RUN_ROOT)) return [];
  return readdirSync(RUN_ROOT).filter((n) => statSync(join(RUN_ROOT, n)).isDirectory()).sort();
}

/**
 * Takes the run's lock (mkdir is atomic; the owner's pid and start time go inside),
 * runs fn, releases. A lock whose owner is dead (a CLI killed mid-`up`) is broken at
 * once; one without an owner file is broken after `staleMs`. Bounded: gives up after `tries`.
 */
export async function withLock<T>(prefix: string, fn: () => Promise<T>, tries = 600, staleMs = 5_000): Promise<T> {
  const dir = runDir(prefix);
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'lock');
  const owner = join(lock, 'owner');
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      writeFileSync(owner, JSON.stringify({ pid: process.pid, startTime: procStartTime(process.pid) }));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (lockIsStale(lock, owner, staleMs)) rmSync(lock, { recursive: true, force: true });
      else if (i >= tries) throw new Error(`lab ${prefix} is locked by another lab command (${lock})`);
      else await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function lockIsStale(lock: string, owner: string, staleMs: number): boolean {
  try {
    const o = JSON.parse(readFileSync(owner, 'utf8')) as { pid: number; startTime?: string };
    return !isAlive({ pid: o.pid, startTime: o.startTime ?? '' });
  } catch {
    try {
      return Date.now() - statSync(lock).mtimeMs > staleMs;
    } catch {
      return false; // released meanwhile
    }
  }
}
