import t from 'tap';
import { EventEmitter } from 'node:events';
import { NotLeaderError } from '../errors.ts';
import type { JsonRpcConnection } from '../jsonrpc/connection.ts';
import { ServerDbCheck } from './server-db.ts';

// The _Server.Database verdicts, without a server: a fake connection answers the
// monitor_cond with one row; updates are given as ovsdb-server sends them (update2).

const U = '11111111-1111-4111-8111-111111111111';

function conn(initial: Record<string, unknown> | undefined): JsonRpcConnection {
  const c = new EventEmitter() as unknown as JsonRpcConnection & { request: unknown };
  (c as { request: unknown }).request = async () => ({ Database: initial ? { [U]: { initial } } : {} });
  return c;
}

const clustered = (over: Record<string, unknown> = {}) => ({ name: 'OVN_Northbound', model: 'clustered', connected: true, leader: true, index: 10, ...over });

t.test('initial row: standalone passes, clustered must be connected, leader and not stale', async (t) => {
  await new ServerDbCheck('db', true).check(conn({ name: 'db', model: 'standalone' }), 'r');
  await new ServerDbCheck('db', true).check(conn(clustered()), 'r');
  await t.rejects(new ServerDbCheck('db', true).check(conn(undefined), 'r'), NotLeaderError);
  await t.rejects(new ServerDbCheck('db', true).check(conn(clustered({ leader: false })), 'r'), { message: /not the leader/ });
  await new ServerDbCheck('db', false).check(conn(clustered({ leader: false })), 'r');
  await t.rejects(new ServerDbCheck('db', true).check(conn(clustered({ connected: false })), 'r'), { message: /not connected/ });
  const s = new ServerDbCheck('db', true);
  await s.check(conn(clustered({ index: ['set', [20]] })), 'r');
  await t.rejects(s.check(conn(clustered({ index: 15 })), 'r2'), { message: /stale data \(index 15 < 20\)/ });
});

t.test('updates: leadership moved, cluster lost, row deleted; the index only rises', async (t) => {
  const s = new ServerDbCheck('db', true);
  t.ok(s.isServerUpdate('update2', [['dpu-agent', '_Server'], {}]));
  t.notOk(s.isServerUpdate('update3', [['dpu-agent', '_Server'], {}]));
  t.notOk(s.isServerUpdate('update2', [['dpu-agent', 1], {}]));
  t.equal(s.problemIn({ Database: { [U]: { modify: { index: 30 } } } }), undefined);
  t.equal(s.problemIn({ Database: { [U]: { modify: { leader: false } } } }), 'leadership moved');
  t.equal(new ServerDbCheck('db', false).problemIn({ Database: { [U]: { modify: { leader: false } } } }), undefined);
  t.equal(s.problemIn({ Database: { [U]: { modify: { connected: false } } } }), 'member lost cluster connection');
  t.equal(s.problemIn({ Database: { [U]: { delete: null } } }), 'database removed');
  await t.rejects(s.check(conn(clustered({ index: 25 })), 'r'), { message: /stale data \(index 25 < 30\)/ });
});
