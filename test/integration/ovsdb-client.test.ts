import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { NamedUuid, Uuid, decodeValue, strMap, valuesEqual, type Row } from '../../dpu-agent/src/ovsdb/atoms.ts';
import { op, eq } from '../../dpu-agent/src/ovsdb/ops.ts';
import type { RowChange } from '../../dpu-agent/src/ovsdb/replica.ts';
import type { DatabaseSchema } from '../../dpu-agent/src/ovsdb/schema.ts';
import { OvsdbError } from '../../dpu-agent/src/errors.ts';
import { ovsdbClientDump, ovsVsctl } from '../helpers/ovsdb/cli.ts';
import { startOvsdbServer } from '../helpers/ovsdb/server.ts';

const run = promisify(execFile);

t.on('end', () => process.removeListener('unhandledRejection', onUnhandled));
function onUnhandled(err: unknown): void {
  t.fail(`unhandled rejection: ${String(err)}`);
}
process.on('unhandledRejection', onUnhandled);

function client(t: { teardown(fn: () => unknown): void }, remotes: string, extra: Partial<ConstructorParameters<typeof OvsdbClient>[0]> = {}): OvsdbClient {
  const c = new OvsdbClient({ remotes, database: 'Open_vSwitch', backoff: { minMs: 50, maxMs: 200 }, requestTimeoutMs: 5000, ...extra });
  t.teardown(() => c.stop());
  return c;
}

/** Replica rows compared with `ovsdb-client dump`, decoded with the same schema. */
function sameAsDump(schema: DatabaseSchema, table: string, replica: ReadonlyMap<string, Row>, dump: Record<string, unknown>[]): string[] {
  const problems: string[] = [];
  const cols = schema.tables[table]?.columns ?? {};
  if (replica.size !== dump.length) problems.push(`${table}: replica has ${replica.size} rows, server ${dump.length}`);
  for (const d of dump) {
    const uuid = (d['_uuid'] as [string, string])[1];
    const r = replica.get(uuid);
    if (!r) {
      problems.push(`${table} ${uuid} missing from replica`);
      continue;
    }
    for (const [col, wire] of Object.entries(d)) {
      if (col === '_uuid' || col === '_version') continue;
      const want = decodeValue(wire, cols[col]?.type);
      if (!valuesEqual(r[col], want)) problems.push(`${table} ${uuid} ${col}: replica ${JSON.stringify(r[col])} != server ${JSON.stringify(wire)}`);
    }
  }
  return problems;
}

t.test('transact round trips over unix and tcp', async (t) => {
  const srv = await startOvsdbServer(t, { tcp: true });
  for (const remote of [srv.unixRemote, srv.tcpRemote as string]) {
    const c = client(t, remote);
    await c.start();
    t.same((await c.listDbs()).sort(), ['Open_vSwitch', '_Server'], `${remote}: list_dbs`);
    t.equal((await c.getSchema()).name, 'Open_vSwitch');
    const name = `br${remote.startsWith('unix') ? 'u' : 't'}`;
    const res = await c.transact([
      op.insert('Interface', { name, type: 'internal' }, 'i'),
      op.insert('Port', { name, interfaces: new NamedUuid('i') }, 'p'),
      op.insert('Bridge', { name, ports: [new NamedUuid('p')], external_ids: new Map([['k', 'v']]) }, 'b'),
      op.mutate('Open_vSwitch', [], [['bridges', 'insert', [new NamedUuid('b')]]]),
      op.comment('test'),
    ]);
    t.match(res[2]?.uuid, /^[0-9a-f-]{36}$/, 'insert returns the row uuid');
    t.equal(res[3]?.count, 1, 'mutate count');
    const sel = await c.transact([op.select('Bridge', [eq('name', name)], ['name', 'external_ids', 'ports'])]);
    const row = sel[0]?.rows?.[0];
    t.equal(row?.['name'], name);
    t.same(Object.fromEntries(strMap(row?.['external_ids'])), { k: 'v' });
    t.equal((row?.['ports'] as Uuid[]).length, 1, 'set column decoded as array');
    const up = await c.transact([op.update('Bridge', [eq('name', name)], { external_ids: new Map([['k', 'w']]) })]);
    t.equal(up[0]?.count, 1);
    const cli = await ovsVsctl(srv.unixRemote, 'get', 'Bridge', name, 'external_ids:k');
    t.equal(cli.trim(), 'w', 'ovs-vsctl sees our update');
    const del = await c.transact([op.mutate('Open_vSwitch', [], [['bridges', 'delete', [new Uuid(res[2]?.uuid as string)]]])]);
    t.equal(del[0]?.count, 1);
    t.same((await c.transact([op.select('Bridge', [eq('name', name)])]))[0]?.rows, [], 'unreferenced bridge garbage-collected');
  }
});

t.test('OVSDB errors surface typed, with the failing op', async (t) => {
  const srv = await startOvsdbServer(t);
  const c = client(t, srv.unixRemote);
  await c.start();
  // wait with timeout 0 on rows that are not there → "timed out" at op 0.
  const e1 = await c
    .transact([op.wait('Bridge', [eq('name', 'nope')], ['name'], '==', [{ name: 'nope' }], 0), op.comment('x')])
    .catch((e: unknown) => e);
  t.ok(e1 instanceof OvsdbError);
  t.match(e1, { code: 'DPU_ERR_OVSDB', error: 'timed out', opIndex: 0, op: 'wait' });
  // A Port pointing at a missing Interface passes the ops but fails at commit → extra element.
  const e2 = await c
    .transact([op.insert('Port', { name: 'dangling', interfaces: new Uuid('11111111-1111-4111-8111-111111111111') })])
    .catch((e: unknown) => e);
  t.match(e2, { code: 'DPU_ERR_OVSDB', opIndex: 1, op: 'commit' });
  t.match((e2 as OvsdbError).error, /referential integrity|constraint/);
  // Lock not held.
  t.match(await c.transact([op.assert('some_lock')]).catch((e: unknown) => e), { error: 'not owner' });
  // Typos never reach the server.
  t.match(await c.transact([op.select('Brige', [])]).catch((e: unknown) => e), { code: 'DPU_ERR_OVSDB_SCHEMA' });
  t.match(await c.transact([op.select('Bridge', [eq('nmae', 'x')])]).catch((e: unknown) => e), { code: 'DPU_ERR_OVSDB_SCHEMA' });
  t.ok(c.connected, 'still connected after errors');
});

t.test('monitor replica equals the server view (ovsdb-client dump)', async (t) => {
  const srv = await startOvsdbServer(t);
  await ovsVsctl(srv.unixRemote, 'add-br', 'br0', '--', 'set', 'Bridge', 'br0', 'fail_mode=secure', 'external_ids:a=1');
  const c = client(t, srv.unixRemote);
  await c.start();
  const m = c.monitor({ Open_vSwitch: {}, Bridge: {}, Port: {}, Interface: { columns: ['name', 'type', 'external_ids', 'ofport'] } });
  await m.ready;
  const events: RowChange[] = [];
  m.on('change', (e) => events.push(e));
  for (let i = 0; i < 5; i++) {
    await ovsVsctl(srv.unixRemote, 'add-port', 'br0', `p${i}`, '--', 'set', 'Interface', `p${i}`, 'type=internal', `external_ids:iface-id=ns_pod${i}`);
  }
  await ovsVsctl(srv.unixRemote, 'del-port', 'br0', 'p3');
  await ovsVsctl(srv.unixRemote, 'set', 'Bridge', 'br0', 'external_ids:a=2', 'external_ids:b=3');
  // ovs-vsctl --no-wait returns after commit; the update may trail by a moment.
  for (let i = 0; i < 100 && m.table('Port').size !== 5; i++) await new Promise((r) => setTimeout(r, 20));
  const dump = await ovsdbClientDump(srv.unixRemote, 'Open_vSwitch', ['Open_vSwitch', 'Bridge', 'Port']);
  for (const table of ['Open_vSwitch', 'Bridge', 'Port'] as const) {
    t.same(sameAsDump(c.schema, table, m.table(table), dump[table] ?? []), [], `${table} replica == dump`);
  }
  t.equal(events.filter((e) => e.table === 'Interface' && e.kind === 'insert').length, 5, 'five interface inserts');
  t.equal(events.filter((e) => e.table === 'Interface' && e.kind === 'delete').length, 1, 'one interface delete');
  const br = [...m.table('Bridge').values()].find((r) => r['name'] === 'br0');
  t.same(Object.fromEntries(strMap(br?.['external_ids'])), { a: '2', b: '3' });
});

t.test('kill -9 mid-monitor, changes while down, restart: replica converges, no duplicate or missing events', async (t) => {
  const srv = await startOvsdbServer(t);
  await ovsVsctl(srv.unixRemote, 'add-br', 'keep', '--', 'add-br', 'gone');
  const c = client(t, srv.unixRemote);
  await c.start();
  const m = c.monitor({ Bridge: { columns: ['name', 'external_ids'] } });
  await m.ready;
  const events: RowChange[] = [];
  m.on('change', (e) => events.push(e));
  const disconnected = new Promise((r) => c.once('disconnected', r));
  await srv.kill9();
  await disconnected;
  t.notOk(c.connected, 'sees the loss');
  // Change the database while the server is down, as an upgrade or a crash-recovery would.
  const ovs = (await run('ovsdb-tool', ['query', srv.dbFile, JSON.stringify(['Open_vSwitch', { op: 'select', table: 'Open_vSwitch', where: [], columns: ['_uuid'] }])])).stdout;
  const ovsUuid = (JSON.parse(ovs) as [{ rows: [{ _uuid: [string, string] }] }])[0].rows[0]._uuid[1];
  const gone = [...m.table('Bridge').values()].find((r) => r['name'] === 'gone')?.['_uuid']?.toString() as string;
  const out = await run('ovsdb-tool', [
    'transact',
    srv.dbFile,
    JSON.stringify([
      'Open_vSwitch',
      { op: 'insert', table: 'Interface', row: { name: 'new', type: 'internal' }, 'uuid-name': 'i' },
      { op: 'insert', table: 'Port', row: { name: 'new', interfaces: ['named-uuid', 'i'] }, 'uuid-name': 'p' },
      { op: 'insert', table: 'Bridge', row: { name: 'new', ports: ['named-uuid', 'p'] }, 'uuid-name': 'b' },
      { op: 'update', table: 'Bridge', where: [['name', '==', 'keep']], row: { external_ids: ['map', [['x', 'y']]] } },
      {
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [['_uuid', '==', ['uuid', ovsUuid]]],
        // Unreferenced bridges are garbage-collected: this deletes 'gone'.
        mutations: [['bridges', 'insert', ['set', [['named-uuid', 'b']]]], ['bridges', 'delete', ['set', [['uuid', gone]]]]],
      },
    ]),
  ]);
  t.notMatch(out.stdout, /"error"/, 'offline transaction applied');
  const synced = new Promise((r) => m.once('synced', r));
  const reconnected = new Promise((r) => c.once('connected', r));
  await srv.restart();
  await synced;
  await reconnected;
  t.ok(c.connected, 'reconnected');
  const byKind = (k: string): string[] => events.filter((e) => e.kind === k).map((e) => String((e.new ?? e.old)?.['name'])).sort();
  t.same(byKind('insert'), ['new'], 'exactly one insert (the row created while down)');
  t.same(byKind('delete'), ['gone'], 'exactly one delete');
  t.same(byKind('modify'), ['keep'], 'exactly one modify');
  const dump = await ovsdbClientDump(srv.unixRemote, 'Open_vSwitch', ['Bridge']);
  t.same(sameAsDump(c.schema, 'Bridge', m.table('Bridge'), (dump['Bridge'] ?? []).map((r) => ({ _uuid: r['_uuid'], name: r['name'], external_ids: r['external_ids'] }))), []);
  t.ok(m.stats.snapshots >= 2, 'standalone db answered found=false: resynced by snapshot diff');
  // And the client still works for writes.
  await c.transact([op.mutate('Bridge', [eq('name', 'keep')], [['external_ids', 'insert', new Map([['z', '1']])]])]);
});

t.test('ssl remote with a client certificate', async (t) => {
  const srv = await startOvsdbServer(t, { ssl: true });
  const tls = srv.tls as { key: string; cert: string; ca: string };
  // ovs-pki style certs name no host; OVS checks only the CA chain, so pass the cert's CN as servername if needed.
  const c = client(t, srv.sslRemote as string, { tls });
  await c.start();
  t.same((await c.listDbs()).sort(), ['Open_vSwitch', '_Server']);
});

t.test('stop() while the server is unreachable returns promptly and leaves nothing pending', async (t) => {
  const srv = await startOvsdbServer(t);
  const c = client(t, srv.unixRemote);
  await c.start();
  await srv.kill9();
  await new Promise((r) => setTimeout(r, 150));
  t.rejects(c.transact([op.select('Bridge', [])]), { code: 'DPU_ERR_CONNECTION_CLOSED' });
  await c.stop();
  t.notOk(c.connected);
});
