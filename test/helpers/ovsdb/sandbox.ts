// The sandbox the test ovsdb-servers live in: temp dirs marked with their
// owner's pid (swept once the owner is dead) and removed at exit if no teardown
// ran, free 127.0.0.1 ports, and the /proc and socket probes that readiness is
// decided by.
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SUN_PATH_MAX = 107;

/** true while `pid` exists (not yet reaped). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------
// temp dirs: marked with the owning pid; dirs of dead owners (a test process
// killed by tap's timeout never runs its teardown) are swept on first use.

const OWNER_MARK = '.dpu-test-owner';
const TEMP_PREFIX = /^ovsdb-(raft-|pki-)?[A-Za-z0-9]{6}$/;
let swept = false;

async function sweepStaleDirs(): Promise<void> {
  if (swept) return;
  swept = true;
  let entries: string[];
  try {
    entries = await readdir(tmpdir());
  } catch {
    return;
  }
  for (const name of entries) {
    if (!TEMP_PREFIX.test(name)) continue;
    const dir = join(tmpdir(), name);
    try {
      const owner = Number((await readFile(join(dir, OWNER_MARK), 'utf8')).trim());
      if (Number.isInteger(owner) && owner > 0 && !pidExists(owner)) await rm(dir, { recursive: true, force: true });
    } catch {
      // no marker (not ours, or being created): leave it
    }
  }
}

export async function makeTempDir(prefix: string): Promise<string> {
  await sweepStaleDirs();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await writeFile(join(dir, OWNER_MARK), `${process.pid}\n`);
  return dir;
}

const removedAtExit = new Set<string>();
let exitHookInstalled = false;

/** Removes `dir` when this process exits, even if no teardown ran. */
export function removeAtExit(dir: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const d of removedAtExit) {
        try {
          rmSync(d, { recursive: true, force: true });
        } catch {
          // best effort
        }
      }
    });
  }
  removedAtExit.add(dir);
}

/** `given` (created if missing, kept) or a fresh temp dir (owned: the caller removes it). */
export async function makeDir(prefix: string, given: string | undefined): Promise<{ dir: string; owned: boolean }> {
  if (given !== undefined) {
    await mkdir(given, { recursive: true });
    return { dir: given, owned: false };
  }
  const dir = await makeTempDir(prefix);
  return { dir, owned: true };
}

export function checkSockPath(path: string): void {
  if (Buffer.byteLength(path) > SUN_PATH_MAX) {
    throw new Error(`unix socket path too long for sun_path (${Buffer.byteLength(path)} bytes): ${path}; use a shorter TMPDIR/dir`);
  }
}

export function serverEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
}

// ---------------------------------------------------------------------------
// ports

const handedOut = new Set<number>();

/** A currently free 127.0.0.1 TCP port, never one handed out before by this process. */
export async function reservePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr !== null ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('could not reserve a free TCP port on 127.0.0.1');
}

/** TCP ports in LISTEN state whose socket belongs to `pid` (this netns). */
export async function listeningPortsOf(pid: number): Promise<Set<number>> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return new Set();
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`));
      if (m?.[1] !== undefined) inodes.add(m[1]);
    } catch {
      // fd closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const local = f[1];
      const inode = f[9];
      if (local === undefined || inode === undefined || f[3] !== '0A' || !inodes.has(inode)) continue;
      const portHex = local.slice(local.lastIndexOf(':') + 1);
      ports.add(parseInt(portHex, 16));
    }
  }
  return ports;
}

export function unixAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ path });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => {
      sock.destroy();
      resolve(false);
    });
  });
}

