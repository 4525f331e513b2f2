// One ovsdb-server process in a disposable temp dir (sandbox.ts): spawn,
// readiness, stop, kill -9, restart, and the bookkeeping that keeps a test run
// from leaking processes. server.ts (standalone) and raft.ts (clusters) build on
// it, cli.ts drives the OVS tools against it (STYLE §8: real systems in
// sandboxes, fakes only behind the same interface).
//
// Contract:
// - Every server is a child of this process (spawned WITHOUT --detach), on its
//   own unix socket and, on request, 127.0.0.1 TCP/SSL ports. Nothing touches
//   /var/run/openvswitch or the system databases.
// - `t.teardown` stops it by pid (SIGTERM, SIGKILL after a bound) and removes
//   the temp dir. Belt and braces: children get PR_SET_PDEATHSIG=SIGKILL (via
//   util-linux `setpriv`) so they die with this process even when it is
//   SIGKILLed by tap's timeout, and a process 'exit' hook kills any left alive.
//   Temp dirs carry the owner's pid; dirs of dead owners are swept on first use.
// - Readiness = the unix socket accepts a connection AND every requested TCP
//   port (client, ssl, raft) is in LISTEN state owned by that very pid (checked
//   in /proc, so a foreign process that grabbed the port is not mistaken for
//   ours). Bounded; on failure the error carries the log tail.
// - Ports: bind 127.0.0.1:0, read the port, close, hand it to ovsdb-server.
//   That is racy by nature: if ovsdb-server logs "bind: Address already in
//   use" for one of our ports on a first start, waitReady throws PortInUseError
//   and the caller starts again with fresh ports (bounded, START_ATTEMPTS).
//   restart() reuses the same ports (ovsdb-server keeps retrying a failed bind
//   by itself, so a restart waits instead).
// Failure modes worth knowing: a unix socket path must fit in sun_path (108
// bytes), so dirs are made under os.tmpdir() with short names; ovsdb-server
// keeps running when a ptcp/pssl bind fails (it just logs and retries).

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { listeningPortsOf, unixAccepts } from './sandbox.ts';

export type SchemaName = 'vswitch' | 'ovn-sb' | 'ovn-nb';

/** Anything with tap's `teardown` (a tap `Test`); kept structural on purpose. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

export const SCHEMAS: Record<SchemaName, { path: string; dbName: string; root?: string }> = {
  vswitch: { path: '/usr/share/openvswitch/vswitch.ovsschema', dbName: 'Open_vSwitch', root: 'Open_vSwitch' },
  'ovn-sb': { path: '/usr/share/ovn/ovn-sb.ovsschema', dbName: 'OVN_Southbound' },
  'ovn-nb': { path: '/usr/share/ovn/ovn-nb.ovsschema', dbName: 'OVN_Northbound', root: 'NB_Global' },
};

/** One ovsdb-server process we started: what both a standalone server and a Raft member offer. */
export interface OvsdbProcess {
  readonly dbFile: string;
  /** 'unix:/…/db.sock' */
  readonly unixRemote: string;
  /** pid of the current (or last) ovsdb-server process */
  readonly pid: number;
  readonly alive: boolean;
  /** unixctl socket, for `ovs-appctl -t <ctlPath> …` */
  readonly ctlPath: string;
  readonly logFile: string;
  /** SIGKILL and wait until the process is reaped */
  kill9(): Promise<void>;
  /** SIGTERM, SIGKILL after a bound; resolves once reaped. Idempotent. */
  stop(): Promise<void>;
  /** stop if running, start again on the same db file, sockets and ports; resolves when ready */
  restart(): Promise<void>;
}

/** How many times a first start is redone with fresh ports after PortInUseError. */
export const START_ATTEMPTS = 4;
const STOP_GRACE_MS = 5_000;
const POLL_MS = 20;

// ---------------------------------------------------------------------------
// process registry: kill leftovers when this process exits

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
}

let setprivPath: string | null | undefined;
function pdeathsigWrapper(): string | null {
  if (setprivPath === undefined) {
    setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? null;
  }
  return setprivPath;
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export class PortInUseError extends Error {}

// ---------------------------------------------------------------------------
// one ovsdb-server process (start/stop/restart with fixed argv)

export interface ProcSpec {
  label: string;
  argv: string[];
  sockPath: string;
  logFile: string;
  ports: number[];
  env: NodeJS.ProcessEnv;
}

export class ServerProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stderrTail = '';
  private lastPid = 0;
  private spawnFailed = false;

  constructor(readonly spec: ProcSpec) {}

  get pid(): number {
    return this.lastPid;
  }

  get alive(): boolean {
    const c = this.child;
    return c !== undefined && !this.spawnFailed && c.exitCode === null && c.signalCode === null;
  }

  spawn(): void {
    if (this.alive) throw new Error(`${this.spec.label}: already running (pid ${this.lastPid})`);
    installExitHook();
    const wrapper = pdeathsigWrapper();
    const [cmd, args] =
      wrapper !== null
        ? [wrapper, ['--pdeathsig', 'KILL', '--', 'ovsdb-server', ...this.spec.argv]]
        : ['ovsdb-server', this.spec.argv];
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: this.spec.env });
    this.stderrTail = '';
    this.spawnFailed = false;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-4096);
    });
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        live.delete(child);
        resolve();
      });
      child.once('error', (err) => {
        this.stderrTail += `\nspawn error: ${err.message}`;
        this.spawnFailed = true;
        live.delete(child);
        resolve();
      });
    });
    if (child.pid === undefined) {
      // spawn failed synchronously (ENOENT…); 'error' follows
      this.child = child;
      return;
    }
    live.add(child);
    this.child = child;
    this.lastPid = child.pid;
  }

  /**
   * Wait until the unix socket accepts and all ports are listened on by our pid.
   * `firstStart`: a logged bind failure on one of our ports throws PortInUseError (caller re-picks ports).
   */
  async waitReady(timeoutMs: number, firstStart: boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.alive) {
        await this.exited;
        throw new Error(
          `${this.spec.label}: ovsdb-server exited during startup (code ${this.child?.exitCode}, signal ${this.child?.signalCode})\n` +
            `stderr: ${this.stderrTail.trim()}\nlog tail:\n${await tail(this.spec.logFile)}`,
        );
      }
      const sockOk = await unixAccepts(this.spec.sockPath);
      let missing: number[] = [];
      if (sockOk) {
        const listening = await listeningPortsOf(this.lastPid);
        missing = this.spec.ports.filter((p) => !listening.has(p));
        if (missing.length === 0) return;
      }
      if (firstStart && missing.length > 0) {
        const log = await tail(this.spec.logFile, 200);
        const stolen = missing.find((p) => log.includes(`${p}:127.0.0.1: bind: Address already in use`));
        if (stolen !== undefined) throw new PortInUseError(`${this.spec.label}: port ${stolen} taken by another process`);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `${this.spec.label}: not ready after ${timeoutMs} ms (unix socket ${sockOk ? 'ok' : 'not accepting'}` +
            `${missing.length > 0 ? `, ports not listening: ${missing.join(',')}` : ''})\n` +
            `stderr: ${this.stderrTail.trim()}\nlog tail:\n${await tail(this.spec.logFile)}`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  async kill9(): Promise<void> {
    if (this.alive) {
      try {
        process.kill(this.lastPid, 'SIGKILL');
      } catch {
        // raced with exit
      }
    }
    await this.exited;
  }

  async stop(): Promise<void> {
    if (this.alive) {
      try {
        process.kill(this.lastPid, 'SIGTERM');
      } catch {
        // raced with exit
      }
      // ref: false — the grace timer must not keep the test process alive after the exit
      const done = await Promise.race([this.exited.then(() => true), sleep(STOP_GRACE_MS, false, { ref: false })]);
      if (!done) await this.kill9();
    }
    await this.exited;
  }
}

export type ProcessControl = Pick<OvsdbProcess, 'pid' | 'alive' | 'kill9' | 'stop' | 'restart'>;

/** `fields` plus the OvsdbProcess controls of `p` (pid and alive read live); restart() waits up to `readyMs`. */
export function withControls<T extends object>(p: ServerProcess, readyMs: number, fields: T): T & ProcessControl {
  return {
    ...fields,
    get pid() {
      return p.pid;
    },
    get alive() {
      return p.alive;
    },
    kill9: () => p.kill9(),
    stop: () => p.stop(),
    restart: async () => {
      await p.stop();
      p.spawn();
      await p.waitReady(readyMs, false);
    },
  };
}
