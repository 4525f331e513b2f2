// Real ovsdb-server instances in disposable temp dirs, for integration tests
// (STYLE §8: real systems in sandboxes, fakes only behind the same interface).
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
//   ours). Bounded (default 10 s); on failure the error carries the log tail.
// - Ports: bind 127.0.0.1:0, read the port, close, hand it to ovsdb-server.
//   That is racy by nature: if ovsdb-server logs "bind: Address already in
//   use" for one of our ports on a first start, the start is redone with fresh
//   ports (bounded). restart() reuses the same ports (ovsdb-server keeps
//   retrying a failed bind by itself, so a restart waits instead).
// Failure modes worth knowing: a unix socket path must fit in sun_path (108
// bytes), so dirs are made under os.tmpdir() with short names; ovsdb-server
// keeps running when a ptcp/pssl bind fails (it just logs and retries).

import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// ---------------------------------------------------------------------------
// public types

export type SchemaName = 'vswitch' | 'ovn-sb' | 'ovn-nb';

/** Anything with tap's `teardown` (a tap `Test`); kept structural on purpose. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

/** PEM contents (what our jsonrpc transport takes). */
export interface TlsPem {
  key: string;
  cert: string;
  ca: string;
}

/** Paths of the same PEM files (what the OVS CLIs take). */
export interface TlsPaths {
  key: string;
  cert: string;
  ca: string;
}

export interface StartOvsdbServerOptions {
  /** default 'vswitch' */
  schema?: SchemaName;
  /** also listen on ptcp:PORT:127.0.0.1 */
  tcp?: boolean;
  /** also listen on pssl:PORT:127.0.0.1 with a throwaway CA (client certs in `tls`) */
  ssl?: boolean;
  /** use this dir (created if missing, must hold no database yet, NOT removed on teardown); default: a fresh temp dir, removed on teardown */
  dir?: string;
  /**
   * Insert the root row the system scripts create (ovs-vsctl init / ovn-nbctl init):
   * Open_vSwitch for 'vswitch', NB_Global for 'ovn-nb'. Default true for those two;
   * 'ovn-sb' has no such row outside ovn-northd, so it is left empty.
   */
  init?: boolean;
  /** extra ovsdb-server arguments, e.g. ['-vjsonrpc:file:dbg'] */
  extraArgs?: string[];
  /** readiness bound, default 10000 */
  readyTimeoutMs?: number;
}

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

export interface OvsdbServer extends OvsdbProcess {
  readonly dir: string;
  readonly dbName: string;
  readonly schema: SchemaName;
  /** 'tcp:127.0.0.1:PORT' when opts.tcp */
  readonly tcpRemote?: string;
  /** 'ssl:127.0.0.1:PORT' when opts.ssl */
  readonly sslRemote?: string;
  /** client key/cert + CA, PEM contents, when opts.ssl */
  readonly tls?: TlsPem;
  /** the same client files as paths (for ovsdb-client/ovs-vsctl), when opts.ssl */
  readonly tlsPaths?: TlsPaths;
}

export interface StartRaftClusterOptions {
  /** default 'ovn-sb' */
  schema?: 'ovn-sb' | 'ovn-nb';
  /** default 3 */
  size?: number;
  /** convergence/readiness bound, default 20000 */
  readyTimeoutMs?: number;
}

export interface RaftStatus {
  serverId: string;
  status: string;
  role: string;
  term: number;
  /** 'self', a short server id, or 'unknown' */
  leader: string;
  /** number of entries in the "Servers:" list */
  servers: number;
}

export interface RaftMember extends OvsdbProcess {
  /** 0-based, equal to the position in `members` */
  readonly index: number;
  readonly tcpRemote: string;
  /** 'tcp:127.0.0.1:RAFTPORT' */
  readonly raftAddress: string;
  /** parsed `ovs-appctl -t <ctl> cluster/status <db>` */
  status(): Promise<RaftStatus>;
}

export interface RaftCluster {
  readonly dir: string;
  readonly members: RaftMember[];
  /** comma-joined tcp remotes, the form ovn-remote takes */
  readonly remotes: string;
  readonly dbName: string;
  /** index of the live member that reports 'Role: leader' (highest term wins); polls until one exists (bounded) */
  leaderIndex(): Promise<number>;
  /** resolves once every live member is a cluster member, all agree on one leader, and the leader lists all members */
  waitConverged(): Promise<void>;
}

/** A cell in OVSDB wire encoding (RFC 7047 §5.1): atoms, ["uuid",…], ["set",[…]], ["map",[[k,v]…]]. */
export type OvsdbJson = null | boolean | number | string | OvsdbJson[] | { [key: string]: OvsdbJson };
export type OvsdbDumpRow = Record<string, OvsdbJson>;

// ---------------------------------------------------------------------------
// constants

const SCHEMAS: Record<SchemaName, { path: string; dbName: string; root?: string }> = {
  vswitch: { path: '/usr/share/openvswitch/vswitch.ovsschema', dbName: 'Open_vSwitch', root: 'Open_vSwitch' },
  'ovn-sb': { path: '/usr/share/ovn/ovn-sb.ovsschema', dbName: 'OVN_Southbound' },
  'ovn-nb': { path: '/usr/share/ovn/ovn-nb.ovsschema', dbName: 'OVN_Northbound', root: 'NB_Global' },
};

const DEFAULT_READY_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const CLI_TIMEOUT_MS = 15_000;
const POLL_MS = 20;
const START_ATTEMPTS = 4;
const SUN_PATH_MAX = 107;

// ---------------------------------------------------------------------------
// process registry: kill leftovers when this process exits

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
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
    for (const dir of tempDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
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

// ---------------------------------------------------------------------------
// small process utilities

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Run a CLI to completion (bounded); reject with its stderr on non-zero exit. */
function run(cmd: string, args: string[], opts: { timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? CLI_TIMEOUT_MS, maxBuffer: 256 * 1024 * 1024, cwd: opts.cwd, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const detail = stderr.trim() || stdout.trim();
          reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message.split('\n')[0]}${detail ? `\n${detail}` : ''}`, { cause: err }));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function isAlive(pid: number): boolean {
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
      if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) await rm(dir, { recursive: true, force: true });
    } catch {
      // no marker (not ours, or being created): leave it
    }
  }
}

async function makeTempDir(prefix: string): Promise<string> {
  await sweepStaleDirs();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await writeFile(join(dir, OWNER_MARK), `${process.pid}\n`);
  return dir;
}

// ---------------------------------------------------------------------------
// ports

const handedOut = new Set<number>();

/** A currently free 127.0.0.1 TCP port, never one handed out before by this process. */
async function reservePort(): Promise<number> {
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
async function listeningPortsOf(pid: number): Promise<Set<number>> {
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

function unixAccepts(path: string): Promise<boolean> {
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

class PortInUseError extends Error {}

// ---------------------------------------------------------------------------
// one ovsdb-server process (start/stop/restart with fixed argv)

interface ProcSpec {
  label: string;
  argv: string[];
  sockPath: string;
  logFile: string;
  ports: number[];
  env: NodeJS.ProcessEnv;
}

class ServerProcess {
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

// ---------------------------------------------------------------------------
// PKI (one throwaway CA per process)

interface Pki {
  dir: string;
  server: TlsPaths;
  client: TlsPaths;
  clientPem: TlsPem;
}

const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[v3_client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
`;

let pkiPromise: Promise<Pki> | undefined;

/** CA + server + client certs (EC P-256) made with the openssl CLI, cached for this process. */
export function testPki(): Promise<Pki> {
  pkiPromise ??= makePki().catch((err: unknown) => {
    pkiPromise = undefined;
    throw err;
  });
  return pkiPromise;
}

async function makePki(): Promise<Pki> {
  installExitHook();
  const dir = await makeTempDir('ovsdb-pki-');
  tempDirs.add(dir);
  const cnf = join(dir, 'openssl.cnf');
  await writeFile(cnf, OPENSSL_CNF);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', ['req', '-x509', ...newKey, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3650',
    '-subj', '/CN=dpu-agent test CA', '-config', cnf, '-extensions', 'v3_ca'], { cwd: dir });
  for (const [name, cn, ext] of [['server', 'ovsdb-server', 'v3_server'], ['client', 'dpu-agent-test', 'v3_client']] as const) {
    await run('openssl', ['req', '-new', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`,
      '-subj', `/CN=${cn}`, '-config', cnf], { cwd: dir });
    await run('openssl', ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
      '-CAcreateserial', '-out', `${name}.pem`, '-days', '3650', '-extfile', cnf, '-extensions', ext], { cwd: dir });
  }
  const paths = (name: string): TlsPaths => ({ key: join(dir, `${name}.key`), cert: join(dir, `${name}.pem`), ca: join(dir, 'ca.pem') });
  const client = paths('client');
  return {
    dir,
    server: paths('server'),
    client,
    clientPem: {
      key: await readFile(client.key, 'utf8'),
      cert: await readFile(client.cert, 'utf8'),
      ca: await readFile(client.ca, 'utf8'),
    },
  };
}

// ---------------------------------------------------------------------------
// standalone server

async function makeDir(prefix: string, given: string | undefined): Promise<{ dir: string; owned: boolean }> {
  if (given !== undefined) {
    await mkdir(given, { recursive: true });
    return { dir: given, owned: false };
  }
  const dir = await makeTempDir(prefix);
  return { dir, owned: true };
}

function checkSockPath(path: string): void {
  if (Buffer.byteLength(path) > SUN_PATH_MAX) {
    throw new Error(`unix socket path too long for sun_path (${Buffer.byteLength(path)} bytes): ${path}; use a shorter TMPDIR/dir`);
  }
}

function serverEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
}

/**
 * Start a standalone ovsdb-server on a fresh database.
 * same as: ovsdb-tool create DB SCHEMA; ovsdb-server DB --remote=punix:… [--remote=ptcp:PORT:127.0.0.1]
 *          [--remote=pssl:PORT:127.0.0.1 --private-key … --certificate … --ca-cert …] --unixctl … --pidfile … --no-chdir --log-file …
 */
export async function startOvsdbServer(t: TeardownHost, opts: StartOvsdbServerOptions = {}): Promise<OvsdbServer> {
  const schema = opts.schema ?? 'vswitch';
  const { path: schemaPath, dbName, root } = SCHEMAS[schema];
  const { dir, owned } = await makeDir('ovsdb-', opts.dir);
  const readyMs = opts.readyTimeoutMs ?? DEFAULT_READY_MS;

  let proc: ServerProcess | undefined;
  t.teardown(async () => {
    await proc?.stop();
    if (owned) await rm(dir, { recursive: true, force: true });
  });

  const dbFile = join(dir, `${dbName}.db`);
  const sockPath = join(dir, 'db.sock');
  const ctlPath = join(dir, 'ovsdb-server.ctl');
  const logFile = join(dir, 'ovsdb-server.log');
  checkSockPath(sockPath);
  checkSockPath(ctlPath);
  await run('ovsdb-tool', ['create', dbFile, schemaPath]);

  const pki = opts.ssl === true ? await testPki() : undefined;
  let tcpPort: number | undefined;
  let sslPort: number | undefined;
  for (let attempt = 1; ; attempt++) {
    tcpPort = opts.tcp === true ? await reservePort() : undefined;
    sslPort = pki !== undefined ? await reservePort() : undefined;
    const argv = [
      dbFile,
      `--remote=punix:${sockPath}`,
      ...(tcpPort !== undefined ? [`--remote=ptcp:${tcpPort}:127.0.0.1`] : []),
      ...(sslPort !== undefined && pki !== undefined
        ? [`--remote=pssl:${sslPort}:127.0.0.1`, `--private-key=${pki.server.key}`, `--certificate=${pki.server.cert}`, `--ca-cert=${pki.server.ca}`]
        : []),
      `--unixctl=${ctlPath}`,
      `--pidfile=${join(dir, 'ovsdb-server.pid')}`,
      '--no-chdir',
      `--log-file=${logFile}`,
      '-vconsole:off',
      ...(opts.extraArgs ?? []),
    ];
    const ports = [tcpPort, sslPort].filter((p): p is number => p !== undefined);
    proc = new ServerProcess({ label: `ovsdb-server(${schema}) in ${dir}`, argv, sockPath, logFile, ports, env: serverEnv(dir) });
    proc.spawn();
    try {
      await proc.waitReady(readyMs, true);
      break;
    } catch (err) {
      await proc.kill9();
      if (!(err instanceof PortInUseError) || attempt >= START_ATTEMPTS) throw err;
    }
  }

  const unixRemote = `unix:${sockPath}`;
  if (opts.init ?? (root !== undefined)) {
    if (root === undefined) throw new Error(`init: schema ${schema} has no root row to create`);
    // same as: ovs-vsctl --no-wait init / ovn-nbctl init on a fresh db (insert the root row)
    await ovsdbClientTransact(unixRemote, [dbName, { op: 'insert', table: root, row: {} }]);
  }

  const p = proc;
  const server: OvsdbServer = {
    dir,
    dbFile,
    dbName,
    schema,
    unixRemote,
    ...(tcpPort !== undefined ? { tcpRemote: `tcp:127.0.0.1:${tcpPort}` } : {}),
    ...(sslPort !== undefined ? { sslRemote: `ssl:127.0.0.1:${sslPort}` } : {}),
    ...(pki !== undefined ? { tls: pki.clientPem, tlsPaths: pki.client } : {}),
    get pid() {
      return p.pid;
    },
    get alive() {
      return p.alive;
    },
    ctlPath,
    logFile,
    kill9: () => p.kill9(),
    stop: () => p.stop(),
    restart: async () => {
      await p.stop();
      p.spawn();
      await p.waitReady(readyMs, false);
    },
  };
  return server;
}

// ---------------------------------------------------------------------------
// raft cluster

/** Parse `ovs-appctl cluster/status DB` text. */
export function parseClusterStatus(text: string): RaftStatus {
  const field = (name: string): string => {
    const m = new RegExp(`^${name}: (.*)$`, 'm').exec(text);
    return m?.[1]?.trim() ?? '';
  };
  const serversBlock = text.split(/^Servers:\s*$/m)[1] ?? '';
  const servers = serversBlock.split('\n').filter((l) => /^\s+[0-9a-f]{4} \(/.test(l)).length;
  return {
    serverId: field('Server ID').split(' ')[0] ?? '',
    status: field('Status'),
    role: field('Role'),
    term: Number(field('Term')) || 0,
    leader: field('Leader') || 'unknown',
    servers,
  };
}

/**
 * Start a Raft cluster of `size` ovsdb-servers on 127.0.0.1, and wait until it converged.
 * same as: ovsdb-tool create-cluster db1 SCHEMA tcp:127.0.0.1:R1
 *          ovsdb-tool join-cluster dbN DBNAME tcp:127.0.0.1:RN tcp:127.0.0.1:R1   (N ≥ 2)
 *          ovsdb-server dbN --remote=ptcp:PN:127.0.0.1 --remote=punix:… …
 */
export async function startRaftCluster(t: TeardownHost, opts: StartRaftClusterOptions = {}): Promise<RaftCluster> {
  const schema = opts.schema ?? 'ovn-sb';
  const size = opts.size ?? 3;
  if (!Number.isInteger(size) || size < 1) throw new Error(`raft cluster size must be a positive integer, got ${size}`);
  const { path: schemaPath, dbName } = SCHEMAS[schema];
  const readyMs = opts.readyTimeoutMs ?? 20_000;
  const dir = await makeTempDir('ovsdb-raft-');

  let procs: ServerProcess[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  interface Layout {
    mdir: string;
    dbFile: string;
    sockPath: string;
    ctlPath: string;
    logFile: string;
    port: number;
    raftPort: number;
  }
  let layout: Layout[] = [];

  for (let attempt = 1; ; attempt++) {
    await Promise.all(procs.map((p) => p.kill9()));
    procs = [];
    layout = [];
    for (let i = 0; i < size; i++) {
      const mdir = join(dir, `m${i}`);
      await rm(mdir, { recursive: true, force: true });
      await mkdir(mdir, { recursive: true });
      const l: Layout = {
        mdir,
        dbFile: join(mdir, `${dbName}.db`),
        sockPath: join(mdir, 'db.sock'),
        ctlPath: join(mdir, 'ovsdb-server.ctl'),
        logFile: join(mdir, 'ovsdb-server.log'),
        port: await reservePort(),
        raftPort: await reservePort(),
      };
      checkSockPath(l.sockPath);
      checkSockPath(l.ctlPath);
      layout.push(l);
    }
    const first = layout[0];
    if (first === undefined) throw new Error('unreachable');
    const raftAddr = (l: Layout): string => `tcp:127.0.0.1:${l.raftPort}`;
    await run('ovsdb-tool', ['create-cluster', first.dbFile, schemaPath, raftAddr(first)]);
    for (const l of layout.slice(1)) {
      await run('ovsdb-tool', ['join-cluster', l.dbFile, dbName, raftAddr(l), raftAddr(first)]);
    }
    procs = layout.map(
      (l, i) =>
        new ServerProcess({
          label: `raft member ${i} (${dbName}) in ${l.mdir}`,
          argv: [
            l.dbFile,
            `--remote=punix:${l.sockPath}`,
            `--remote=ptcp:${l.port}:127.0.0.1`,
            `--unixctl=${l.ctlPath}`,
            `--pidfile=${join(l.mdir, 'ovsdb-server.pid')}`,
            '--no-chdir',
            `--log-file=${l.logFile}`,
            '-vconsole:off',
          ],
          sockPath: l.sockPath,
          logFile: l.logFile,
          ports: [l.port, l.raftPort],
          env: serverEnv(l.mdir),
        }),
    );
    for (const p of procs) p.spawn();
    try {
      await Promise.all(procs.map((p) => p.waitReady(readyMs, true)));
      break;
    } catch (err) {
      if (!(err instanceof PortInUseError) || attempt >= START_ATTEMPTS) {
        await Promise.all(procs.map((p) => p.kill9()));
        throw err;
      }
    }
  }

  const members: RaftMember[] = layout.map((l, index) => {
    const p = procs[index];
    if (p === undefined) throw new Error('unreachable');
    return {
      index,
      tcpRemote: `tcp:127.0.0.1:${l.port}`,
      unixRemote: `unix:${l.sockPath}`,
      raftAddress: `tcp:127.0.0.1:${l.raftPort}`,
      get pid() {
        return p.pid;
      },
      get alive() {
        return p.alive;
      },
      ctlPath: l.ctlPath,
      dbFile: l.dbFile,
      logFile: l.logFile,
      kill9: () => p.kill9(),
      stop: () => p.stop(),
      restart: async () => {
        await p.stop();
        p.spawn();
        await p.waitReady(readyMs, false);
      },
      status: async () => parseClusterStatus(await ovsAppctl(l.ctlPath, 'cluster/status', dbName)),
    };
  });

  const liveStatuses = async (): Promise<Array<{ index: number; st: RaftStatus }>> => {
    const out: Array<{ index: number; st: RaftStatus }> = [];
    for (const m of members) {
      if (!m.alive) continue;
      try {
        out.push({ index: m.index, st: await m.status() });
      } catch {
        // member restarting or busy: skip this round
      }
    }
    return out;
  };

  const describe = (sts: Array<{ index: number; st: RaftStatus }>): string =>
    sts.map(({ index, st }) => `#${index} ${st.serverId} ${st.status} role=${st.role} term=${st.term} leader=${st.leader} servers=${st.servers}`).join('; ') ||
    '(no live member answered)';

  const cluster: RaftCluster = {
    dir,
    members,
    remotes: members.map((m) => m.tcpRemote).join(','),
    dbName,
    leaderIndex: async () => {
      const deadline = Date.now() + readyMs;
      for (;;) {
        const sts = await liveStatuses();
        const leaders = sts.filter(({ st }) => st.role === 'leader').sort((a, b) => b.st.term - a.st.term);
        const best = leaders[0];
        if (best !== undefined) return best.index;
        if (Date.now() > deadline) throw new Error(`no raft leader among live members after ${readyMs} ms: ${describe(sts)}`);
        await sleep(50);
      }
    },
    waitConverged: async () => {
      const deadline = Date.now() + readyMs;
      for (;;) {
        const sts = await liveStatuses();
        const alive = members.filter((m) => m.alive).length;
        const leader = sts.find(({ st }) => st.role === 'leader');
        const ok =
          alive > 0 &&
          sts.length === alive &&
          leader !== undefined &&
          leader.st.servers === members.length &&
          sts.every(
            ({ st }) =>
              st.status === 'cluster member' &&
              st.term === leader.st.term &&
              (st.leader === 'self' ? st.serverId === leader.st.serverId : st.leader === leader.st.serverId),
          );
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`raft cluster not converged after ${readyMs} ms: ${describe(sts)}`);
        await sleep(50);
      }
    },
  };
  await cluster.waitConverged();
  return cluster;
}

// ---------------------------------------------------------------------------
// CLI wrappers (baselines and cross-checks)

function tlsArgs(tls: TlsPaths | undefined): string[] {
  return tls === undefined ? [] : [`--private-key=${tls.key}`, `--certificate=${tls.cert}`, `--ca-cert=${tls.ca}`];
}

/** same as: ovs-appctl -t CTL ARGS…  (stdout) */
export async function ovsAppctl(ctlPath: string, ...args: string[]): Promise<string> {
  return (await run('ovs-appctl', [`--timeout=${CLI_TIMEOUT_MS / 1000}`, '-t', ctlPath, ...args])).stdout;
}

/** same as: ovs-vsctl --db=REMOTE --no-wait ARGS…  (trimmed stdout). Pass --private-key etc. first in args for ssl:. */
export async function ovsVsctl(remote: string, ...args: string[]): Promise<string> {
  return (await run('ovs-vsctl', [`--db=${remote}`, '--no-wait', `--timeout=${CLI_TIMEOUT_MS / 1000}`, ...args])).stdout.trim();
}

/** same as: ovsdb-client transact REMOTE 'TXN'  → parsed result array (throws if any op failed) */
export async function ovsdbClientTransact(remote: string, txn: unknown[], opts: { tls?: TlsPaths } = {}): Promise<unknown[]> {
  const { stdout } = await run('ovsdb-client', [...tlsArgs(opts.tls), 'transact', remote, JSON.stringify(txn)]);
  const result = JSON.parse(stdout) as unknown[];
  const failed = result.find((r) => typeof r === 'object' && r !== null && 'error' in r);
  if (failed !== undefined) throw new Error(`ovsdb-client transact on ${remote} failed: ${JSON.stringify(failed)}`);
  return result;
}

/**
 * The real server's view of a database, for comparing with our replica.
 * same as: ovsdb-client --format=json dump REMOTE DB
 * Returns rows per table (all tables, or only `tables`), each row as {column: wire-encoded value}
 * including `_uuid` (["uuid", "…"]); rows are sorted by _uuid. (`dump` has no `_version`.)
 */
export async function ovsdbClientDump(
  remote: string,
  db: string,
  tables?: string[],
  opts: { tls?: TlsPaths } = {},
): Promise<Record<string, OvsdbDumpRow[]>> {
  // `ovsdb-client dump REMOTE DB TABLE COLUMN…` takes one table only, so dump all and filter.
  const { stdout } = await run('ovsdb-client', [...tlsArgs(opts.tls), '--format=json', 'dump', remote, db]);
  const all: Record<string, OvsdbDumpRow[]> = {};
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const tbl = JSON.parse(line) as { caption: string; headings: string[]; data: OvsdbJson[][] };
    const name = tbl.caption.replace(/ table$/, '');
    const rows = tbl.data.map((cells) => {
      const row: OvsdbDumpRow = {};
      tbl.headings.forEach((h, i) => {
        row[h] = cells[i] ?? null;
      });
      return row;
    });
    rows.sort((a, b) => uuidOf(a).localeCompare(uuidOf(b)));
    all[name] = rows;
  }
  if (tables === undefined) return all;
  const out: Record<string, OvsdbDumpRow[]> = {};
  for (const name of tables) {
    const rows = all[name];
    if (rows === undefined) throw new Error(`ovsdbClientDump: no table ${name} in ${db} (have ${Object.keys(all).join(', ')})`);
    out[name] = rows;
  }
  return out;
}

function uuidOf(row: OvsdbDumpRow): string {
  const u = row['_uuid'];
  return Array.isArray(u) && typeof u[1] === 'string' ? u[1] : '';
}

/** true while `pid` exists (not yet reaped). */
export function pidExists(pid: number): boolean {
  return isAlive(pid);
}
