import t from 'tap';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { op } from '../../dpu-agent/src/ovsdb/ops.ts';
import type { RowChange } from '../../dpu-agent/src/ovsdb/replica.ts';
import { ovsdbClientDump } from '../helpers/ovsdb/cli.ts';
import { startRaftCluster } from '../helpers/ovsdb/raft.ts';

async function until(what: string, cond: () => boolean | Promise<boolean>, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('3-member Raft cluster: leader-only client follows the new leader after the leader is killed', async (t) => {
  const cluster = await startRaftCluster(t, { schema: 'ovn-sb', size: 3 });
  const c = new OvsdbClient({
    remotes: cluster.remotes,
    database: cluster.dbName,
    leaderOnly: true,
    backoff: { minMs: 50, maxMs: 300 },
    requestTimeoutMs: 5000,
  });
  t.teardown(() => c.stop());
  await c.start();
  const leader = await cluster.leaderIndex();
  t.equal(c.remote, cluster.members[leader]?.tcpRemote, 'connected to the leader, not just the first remote');

  const m = c.monitor({ Address_Set: { columns: ['name', 'addresses'] } });
  await m.ready;
  const events: RowChange[] = [];
  m.on('change', (e) => events.push(e));
  for (const n of ['a', 'b', 'c']) await c.transact([op.insert('Address_Set', { name: n, addresses: ['10.0.0.1'] })]);
  await until('3 inserts', () => events.length === 3);

  const resumedBefore = m.stats.resumed;
  await cluster.members[leader]?.kill9();
  const newLeader = await cluster.leaderIndex();
  t.not(newLeader, leader, 'cluster elected another leader');
  await until('client on the new leader', () => c.connected && c.remote === cluster.members[newLeader]?.tcpRemote);
  t.ok(m.stats.resumed > resumedBefore, 'monitor_cond_since resumed from the last txn id (found=true)');

  await c.transact([op.insert('Address_Set', { name: 'd', addresses: [] })]);
  await until('4th insert', () => events.length >= 4);
  await new Promise((r) => setTimeout(r, 100));
  t.same(
    events.map((e) => `${e.kind}:${String(e.new?.['name'])}`),
    ['insert:a', 'insert:b', 'insert:c', 'insert:d'],
    'every change exactly once across the failover',
  );
  const dump = await ovsdbClientDump(cluster.members[newLeader]?.tcpRemote as string, cluster.dbName, ['Address_Set']);
  t.same(
    [...m.table('Address_Set').values()].map((r) => r['name']).sort(),
    (dump['Address_Set'] ?? []).map((r) => r['name']).sort(),
    'replica equals the new leader view',
  );
});

t.test('a member that is not the leader is refused when leaderOnly, accepted otherwise', async (t) => {
  const cluster = await startRaftCluster(t, { schema: 'ovn-sb', size: 3 });
  const leader = await cluster.leaderIndex();
  const follower = cluster.members.find((m) => m.index !== leader);
  if (!follower) throw new Error('no follower');
  const strict = new OvsdbClient({ remotes: follower.tcpRemote, database: cluster.dbName, leaderOnly: true, backoff: { minMs: 20, maxMs: 50 } });
  t.teardown(() => strict.stop());
  void strict.start().catch(() => undefined);
  await t.rejects(strict.waitConnected(600), { code: 'DPU_ERR_CONNECTION_CLOSED' }, 'never connects to a follower');
  t.ok(strict.reconnects === 0 && !strict.connected);

  const relaxed = new OvsdbClient({ remotes: follower.tcpRemote, database: cluster.dbName, leaderOnly: false });
  t.teardown(() => relaxed.stop());
  await relaxed.start();
  // Followers forward writes to the leader (ovsdb/trigger.c), so writes work too.
  const r = await relaxed.transact([op.insert('Address_Set', { name: 'via-follower', addresses: [] })]);
  t.match(r[0]?.uuid, /^[0-9a-f-]{36}$/);
});
