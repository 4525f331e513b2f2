// Proves test/helpers/ovsdb/ works against the real binaries:
// standalone unix+tcp, restart keeps data, kill9 kills, ssl with client certs,
// a 3-member Raft cluster elects a new leader when the leader dies.

import t from 'tap';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { existsSync } from 'node:fs';
import { ovsAppctl, ovsdbClientDump, ovsVsctl } from '../helpers/ovsdb/cli.ts';
import { parseClusterStatus, startRaftCluster } from '../helpers/ovsdb/raft.ts';
import { pidExists } from '../helpers/ovsdb/sandbox.ts';
import { startOvsdbServer } from '../helpers/ovsdb/server.ts';
import { execFile } from 'node:child_process';

function ovsdbClient(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ovsdb-client', args, { timeout: 15_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

function tcpAccepts(remote: string): Promise<boolean> {
  const m = /^tcp:([\d.]+):(\d+)$/.exec(remote);
  if (!m) throw new Error(`not a tcp remote: ${remote}`);
  return new Promise((resolve) => {
    const s = connect({ host: m[1], port: Number(m[2]) });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

t.test('standalone vswitch server on unix + tcp', async (t) => {
  const srv = await startOvsdbServer(t, { tcp: true });
  t.match(srv.unixRemote, /^unix:\//);
  t.match(srv.tcpRemote, /^tcp:127\.0\.0\.1:\d+$/);
  t.equal(srv.dbName, 'Open_vSwitch');
  t.ok(pidExists(srv.pid), 'pid is alive');

  t.same((await ovsdbClient('list-dbs', srv.unixRemote)).trim().split('\n'), ['Open_vSwitch', '_Server']);
  t.same((await ovsdbClient('list-dbs', srv.tcpRemote ?? '')).trim().split('\n'), ['Open_vSwitch', '_Server']);

  // init created the root row, so ovs-vsctl works out of the box
  await ovsVsctl(srv.tcpRemote ?? '', 'add-br', 'br-int', '--', 'set', 'Bridge', 'br-int', 'external_ids:owner=test');
  const dump = await ovsdbClientDump(srv.unixRemote, 'Open_vSwitch', ['Open_vSwitch', 'Bridge']);
  t.equal(dump['Open_vSwitch']?.length, 1, 'one root row');
  const bridges = dump['Bridge'] ?? [];
  t.equal(bridges.length, 1);
  const br = bridges[0];
  t.equal(br?.['name'], 'br-int');
  t.same(br?.['external_ids'], ['map', [['owner', 'test']]], 'maps keep wire encoding');
  t.match(br?.['_uuid'], ['uuid', /^[0-9a-f-]{36}$/]);
  t.same(br?.['controller'], ['set', []], 'empty sets keep wire encoding');
  t.equal(Object.keys(await ovsdbClientDump(srv.unixRemote, 'Open_vSwitch')).length > 10, true, 'dump without tables gives all');
  await t.rejects(ovsdbClientDump(srv.unixRemote, 'Open_vSwitch', ['NoSuchTable']), /no table NoSuchTable/);

  t.match(await ovsAppctl(srv.ctlPath, 'ovsdb-server/list-dbs'), /Open_vSwitch/);
});

t.test('restart keeps the data, the socket and the port', async (t) => {
  const srv = await startOvsdbServer(t, { tcp: true });
  const pid1 = srv.pid;
  await ovsVsctl(srv.unixRemote, 'add-br', 'br-keep');
  await srv.restart();
  t.not(srv.pid, pid1, 'new process');
  t.notOk(pidExists(pid1), 'old process gone');
  t.equal(await ovsVsctl(srv.tcpRemote ?? '', 'list-br'), 'br-keep', 'same port, same data');

  // and after a SIGKILL too (no clean shutdown)
  await ovsVsctl(srv.unixRemote, 'add-br', 'br-two');
  await srv.kill9();
  await srv.restart();
  t.equal(await ovsVsctl(srv.unixRemote, 'list-br'), 'br-keep\nbr-two');
});

t.test('kill9 really kills, stop is idempotent', async (t) => {
  const srv = await startOvsdbServer(t, { schema: 'ovn-nb' });
  t.equal(srv.dbName, 'OVN_Northbound');
  t.equal((await ovsdbClientDump(srv.unixRemote, 'OVN_Northbound', ['NB_Global']))['NB_Global']?.length, 1, 'NB_Global created');
  const pid = srv.pid;
  await srv.kill9();
  t.notOk(pidExists(pid), 'pid gone after kill9');
  t.notOk(srv.alive);
  await srv.stop();
  await srv.kill9();
  t.pass('stop/kill9 on a dead server are no-ops');
});

t.test('teardown removes the temp dir and the process', async (t) => {
  let dir = '';
  let pid = 0;
  await t.test('inner', async (t) => {
    const srv = await startOvsdbServer(t, { schema: 'ovn-sb' });
    dir = srv.dir;
    pid = srv.pid;
    t.ok(existsSync(dir));
    t.same(await ovsdbClientDump(srv.unixRemote, 'OVN_Southbound', ['SB_Global']), { SB_Global: [] }, 'sb left empty');
  });
  t.notOk(existsSync(dir), 'dir removed');
  t.notOk(pidExists(pid), 'process gone');
});

t.test('ssl server accepts a client with the test PKI', async (t) => {
  const srv = await startOvsdbServer(t, { ssl: true });
  t.match(srv.sslRemote, /^ssl:127\.0\.0\.1:\d+$/);
  const paths = srv.tlsPaths;
  if (paths === undefined || srv.tls === undefined || srv.sslRemote === undefined) throw new Error('no tls material');
  t.match(srv.tls.cert, /BEGIN CERTIFICATE/);
  t.match(srv.tls.key, /BEGIN PRIVATE KEY/);
  t.match(srv.tls.ca, /BEGIN CERTIFICATE/);
  const out = await ovsdbClient(
    `--private-key=${paths.key}`,
    `--certificate=${paths.cert}`,
    `--ca-cert=${paths.ca}`,
    'list-dbs',
    srv.sslRemote,
  );
  t.match(out, /Open_vSwitch/);
  const dump = await ovsdbClientDump(srv.sslRemote, 'Open_vSwitch', ['Open_vSwitch'], { tls: paths });
  t.equal(dump['Open_vSwitch']?.length, 1, 'dump over ssl');

  // the PEM contents work with Node's TLS as is (server cert has IP SAN 127.0.0.1, default verification)
  const port = Number(srv.sslRemote.split(':')[2]);
  const tls = srv.tls;
  const reply = await new Promise<unknown>((resolve, reject) => {
    const sock = tlsConnect({ host: '127.0.0.1', port, key: tls.key, cert: tls.cert, ca: tls.ca }, () => {
      sock.write(JSON.stringify({ method: 'list_dbs', params: [], id: 1 }));
    });
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      try {
        resolve(JSON.parse(buf));
        sock.destroy();
      } catch {
        // partial
      }
    });
    sock.once('error', reject);
  });
  t.same(reply, { id: 1, result: ['Open_vSwitch', '_Server'], error: null }, 'node tls client talks to pssl');
});

t.test('parseClusterStatus', async (t) => {
  const st = parseClusterStatus(`3d7e
Name: OVN_Southbound
Cluster ID: f938 (f938f0f1-a3c5-4d86-bf74-ce420dde25a4)
Server ID: 3d7e (3d7e91c6-0d6b-49c7-8b14-b0a49da338ac)
Address: tcp:127.0.0.1:16641
Status: cluster member
Role: follower
Term: 4
Leader: 5d72
Vote: unknown

Servers:
    47cf (47cf at tcp:127.0.0.1:16643) last msg 294 ms ago
    5d72 (5d72 at tcp:127.0.0.1:16642)
    3d7e (3d7e at tcp:127.0.0.1:16641) (self)
`);
  t.same(st, { serverId: '3d7e', status: 'cluster member', role: 'follower', term: 4, leader: '5d72', servers: 3 });
});

t.test('raft cluster of 3: one leader, a new one after the leader dies', async (t) => {
  const cluster = await startRaftCluster(t, { schema: 'ovn-sb', size: 3 });
  t.equal(cluster.dbName, 'OVN_Southbound');
  t.equal(cluster.members.length, 3);
  t.equal(cluster.remotes, cluster.members.map((m) => m.tcpRemote).join(','));
  t.match(cluster.remotes, /^tcp:127\.0\.0\.1:\d+,tcp:127\.0\.0\.1:\d+,tcp:127\.0\.0\.1:\d+$/);

  const statuses = await Promise.all(cluster.members.map((m) => m.status()));
  t.equal(statuses.filter((s) => s.role === 'leader').length, 1, 'exactly one leader');
  t.ok(statuses.every((s) => s.status === 'cluster member' && s.servers === 3), 'all joined');

  for (const m of cluster.members) {
    t.ok(await tcpAccepts(m.tcpRemote), `member ${m.index} serves clients on tcp`);
    t.match(await ovsdbClient('list-dbs', m.unixRemote), /OVN_Southbound/, `member ${m.index} serves on unix`);
  }

  // a write through one member is visible through every member
  await ovsdbClient('transact', cluster.members[0]?.tcpRemote ?? '', JSON.stringify(['OVN_Southbound', { op: 'insert', table: 'SB_Global', row: {} }]));
  for (const m of cluster.members) {
    const dump = await waitFor(async () => {
      const d = await ovsdbClientDump(m.tcpRemote, 'OVN_Southbound', ['SB_Global']);
      return d['SB_Global']?.length === 1 ? d : undefined;
    });
    t.equal(dump['SB_Global']?.length, 1, `member ${m.index} sees the write`);
  }

  const old = await cluster.leaderIndex();
  const oldMember = cluster.members[old];
  if (oldMember === undefined) throw new Error('bad leader index');
  const oldPid = oldMember.pid;
  await oldMember.kill9();
  t.notOk(pidExists(oldPid), 'old leader is dead');
  const next = await cluster.leaderIndex();
  t.not(next, old, 'a different member leads');
  t.ok(cluster.members[next]?.alive, 'the new leader is alive');
  const st = await cluster.members[next]?.status();
  t.ok((st?.term ?? 0) > statuses[old]!.term, 'in a later term');

  // the old leader comes back as a follower and the cluster converges again
  await oldMember.restart();
  await cluster.waitConverged();
  t.equal((await oldMember.status()).status, 'cluster member', 'old leader rejoined');
});

async function waitFor<T>(fn: () => Promise<T | undefined>, boundMs = 10_000): Promise<T> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('waitFor: condition not met');
    await new Promise((r) => setTimeout(r, 50));
  }
}
