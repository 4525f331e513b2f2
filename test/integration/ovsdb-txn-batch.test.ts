import t from 'tap';
import { NamedUuid } from '../../dpu-agent/src/ovsdb/atoms.ts';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { eq, op, type Operation } from '../../dpu-agent/src/ovsdb/ops.ts';
import { TxnBatcher } from '../../dpu-agent/src/ovsdb/txn-batch.ts';
import { OvsdbError } from '../../dpu-agent/src/errors.ts';
import { ovsVsctl, startOvsdbServer } from '../helpers/ovsdb-server.ts';

// Group commit against a real ovsdb-server: what the pool's plugs go through.

/** A plug as the pool writes it: guard, Interface + Port by named-uuid, bridge mutate. */
const plug = (name: string): Operation[] => [
  op.wait('Port', [eq('name', name)], ['name'], '==', [], 0),
  op.insert('Interface', { name, type: 'internal' }, 'iface'),
  op.insert('Port', { name, interfaces: new NamedUuid('iface') }, 'port'),
  op.mutate('Bridge', [eq('name', 'br-int')], [['ports', 'insert', [new NamedUuid('port')]]]),
];

async function rig(t: Tap): Promise<{ c: OvsdbClient; remote: string; txns: () => number }> {
  const ovs = await startOvsdbServer(t);
  await ovsVsctl(ovs.unixRemote, 'add-br', 'br-int');
  const c = new OvsdbClient({ remotes: ovs.unixRemote, database: 'Open_vSwitch', requestTimeoutMs: 5000 });
  t.teardown(() => c.stop());
  await c.start();
  let txns = 0;
  const real = c.transact.bind(c);
  c.transact = (ops, o) => {
    txns++;
    return real(ops, o);
  };
  return { c, remote: ovs.unixRemote, txns: () => txns };
}
type Tap = { teardown(fn: () => unknown): void };

const ports = async (remote: string): Promise<string[]> => (await ovsVsctl(remote, 'list-ports', 'br-int')).split('\n').filter(Boolean).sort();

t.test('a burst goes out as few transactions; each caller gets the results of its own operations', async (t) => {
  const { c, remote, txns } = await rig(t);
  const sizes: number[] = [];
  const b = new TxnBatcher(c, { onBatch: (n) => sizes.push(n) });
  const names = Array.from({ length: 60 }, (_, i) => `p${i}`);
  const results = await Promise.all(names.map((n) => b.transact(plug(n))));
  t.same(await ports(remote), [...names].sort(), 'all 60 ports on the bridge');
  t.ok(txns() <= 2, `${txns()} transaction(s) for 60 plugs (batches of ${sizes.join(', ')})`);
  t.ok(results.every((r) => r.length === 4), 'four results each');
  // The Interface uuid each caller got is the row it inserted.
  const rows = new Map(
    (await ovsVsctl(remote, '-f', 'csv', '--no-headings', '--columns=name,_uuid', 'list', 'Interface'))
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(',') as [string, string]),
  );
  t.same(names.filter((n, i) => rows.get(n) !== results[i]?.[1]?.uuid), [], "each caller's Interface uuid is the row named after its port");
  // Idle: one submission, one transaction of its own.
  const before = txns();
  await b.transact(plug('alone'));
  t.equal(txns() - before, 1);
});

t.test('one member refused: only it fails (with its own error), the others commit', async (t) => {
  const { c, remote } = await rig(t);
  await ovsVsctl(remote, 'add-port', 'br-int', 'taken', '--', 'set', 'Interface', 'taken', 'type=internal');
  const b = new TxnBatcher(c);
  const names = ['a1', 'a2', 'taken', 'a3'];
  const out = await Promise.allSettled(names.map((n) => b.transact(plug(n))));
  t.same(out.map((o) => o.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  const err = (out[2] as PromiseRejectedResult).reason;
  t.ok(err instanceof OvsdbError, 'an OvsdbError');
  t.match(err, { error: 'timed out', opIndex: 0 }, "the member's own failing op (its wait), indexed in its own operations");
  t.same(await ports(remote), ['a1', 'a2', 'a3', 'taken']);
});

t.test('a connection error reaches every member of the batch (outcome unknown: nothing is retried)', async (t) => {
  const { c } = await rig(t);
  const b = new TxnBatcher(c);
  const pending = ['x1', 'x2', 'x3'].map((n) => b.transact(plug(n)));
  await c.stop();
  const out = await Promise.allSettled(pending);
  t.same(out.map((o) => o.status), ['rejected', 'rejected', 'rejected']);
  t.notOk(out.some((o) => o.status === 'rejected' && o.reason instanceof OvsdbError), 'not an OvsdbError');
});
