// A Raft cluster of ovsdb-servers on 127.0.0.1 in one temp dir: members that
// can be killed, stopped and restarted one by one, the leader as the members
// report it, and convergence. Every member follows the contract in process.ts.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ovsAppctl, ovsdbTool } from './cli.ts';
import { type OvsdbProcess, PortInUseError, SCHEMAS, START_ATTEMPTS, ServerProcess, type TeardownHost, withControls } from './process.ts';
import { checkSockPath, makeTempDir, reservePort, serverEnv } from './sandbox.ts';

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
    await ovsdbTool('create-cluster', first.dbFile, schemaPath, raftAddr(first));
    for (const l of layout.slice(1)) {
      await ovsdbTool('join-cluster', l.dbFile, dbName, raftAddr(l), raftAddr(first));
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
    return withControls(p, readyMs, {
      index,
      tcpRemote: `tcp:127.0.0.1:${l.port}`,
      unixRemote: `unix:${l.sockPath}`,
      raftAddress: `tcp:127.0.0.1:${l.raftPort}`,
      ctlPath: l.ctlPath,
      dbFile: l.dbFile,
      logFile: l.logFile,
      status: async () => parseClusterStatus(await ovsAppctl(l.ctlPath, 'cluster/status', dbName)),
    });
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
