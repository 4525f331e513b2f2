import t from 'tap';
import { readFileSync } from 'node:fs';
import { Uuid, strMap } from './atoms.ts';
import { Replica } from './replica.ts';
import { parseSchema } from './schema.ts';

const schema = parseSchema(JSON.parse(readFileSync(new URL('./testdata/mini.ovsschema', import.meta.url), 'utf8')));
const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const P1 = '33333333-3333-4333-8333-333333333333';

t.test('update2: initial fills defaults, modify applies set/map/scalar diffs, delete removes', async (t) => {
  const r = new Replica(schema, ['Bridge']);
  let ch = r.applyUpdates2({ Bridge: { [U1]: { initial: { name: 'br-int', external_ids: ['map', [['a', '1'], ['b', '2']]] } } } });
  t.equal(ch.length, 1);
  t.equal(ch[0]?.kind, 'insert');
  const row = r.table('Bridge').get(U1);
  t.same(row?.['ports'], [], 'omitted set column defaults to empty');
  t.equal(row?.['fail_mode'] instanceof Array, true);
  t.equal((row?.['_uuid'] as Uuid).value, U1);

  ch = r.applyUpdates2({
    Bridge: {
      [U1]: {
        modify: {
          ports: ['uuid', P1], // bare atom = 1-element set diff → added
          external_ids: ['map', [['a', '1'], ['b', '3'], ['c', '4']]], // a removed, b changed, c added
          name: 'br-x',
        },
      },
    },
  });
  t.equal(ch[0]?.kind, 'modify');
  const m = r.table('Bridge').get(U1);
  t.same((m?.['ports'] as Uuid[]).map((u) => u.value), [P1]);
  t.same(Object.fromEntries(strMap(m?.['external_ids'])), { b: '3', c: '4' });
  t.equal(m?.['name'], 'br-x');
  t.same(strMap(ch[0]?.old?.['external_ids']).get('a'), '1', 'old row kept in the event');

  r.applyUpdates2({ Bridge: { [U1]: { modify: { ports: ['set', [['uuid', P1]]] } } } });
  t.same(r.table('Bridge').get(U1)?.['ports'], [], 'toggling an existing member removes it');

  // 0..1 columns carry the new value, not a diff (what ovsdb-server 3.1 sends).
  r.applyUpdates2({ Bridge: { [U1]: { modify: { fail_mode: 'secure' } } } });
  t.same(r.table('Bridge').get(U1)?.['fail_mode'], ['secure']);
  r.applyUpdates2({ Bridge: { [U1]: { modify: { fail_mode: 'standalone' } } } });
  t.same(r.table('Bridge').get(U1)?.['fail_mode'], ['standalone'], 'optional scalar replaced, not toggled');
  r.applyUpdates2({ Bridge: { [U1]: { modify: { fail_mode: ['set', []] } } } });
  t.same(r.table('Bridge').get(U1)?.['fail_mode'], [], 'cleared');

  ch = r.applyUpdates2({ Bridge: { [U1]: { delete: null } } });
  t.equal(ch[0]?.kind, 'delete');
  t.equal(r.table('Bridge').size, 0);
});

t.test('modify of an unknown row is a protocol error (replica must resync)', async (t) => {
  const r = new Replica(schema, ['Bridge']);
  t.throws(() => r.applyUpdates2({ Bridge: { [U1]: { modify: { name: 'x' } } } }), { code: 'DPU_ERR_PROTOCOL' });
});

t.test('monitor v1 updates: new carries full row, old only changed columns', async (t) => {
  const r = new Replica(schema, ['Bridge']);
  r.applyUpdates({ Bridge: { [U1]: { new: { name: 'a', ports: ['set', []], external_ids: ['map', []], fail_mode: ['set', []] } } } });
  const ch = r.applyUpdates({ Bridge: { [U1]: { old: { name: 'a' }, new: { name: 'b', ports: ['set', []], external_ids: ['map', []], fail_mode: ['set', []] } } } });
  t.equal(ch[0]?.kind, 'modify');
  t.equal(r.table('Bridge').get(U1)?.['name'], 'b');
  r.applyUpdates({ Bridge: { [U1]: { old: { name: 'b' } } } });
  t.equal(r.table('Bridge').size, 0);
});

t.test('snapshot after reconnect reports only real differences', async (t) => {
  const r = new Replica(schema, ['Bridge']);
  r.applyUpdates2({
    Bridge: { [U1]: { initial: { name: 'keep' } }, [U2]: { initial: { name: 'gone' } } },
  });
  const U3 = '44444444-4444-4444-8444-444444444444';
  const changes = r.replaceWithSnapshot(
    { Bridge: { [U1]: { initial: { name: 'keep' } }, [U3]: { initial: { name: 'new' } } } },
    2,
  );
  t.same(
    changes.map((c) => [c.kind, c.uuid]).sort(),
    [['delete', U2], ['insert', U3]].sort(),
  );
  t.same(r.replaceWithSnapshot({ Bridge: { [U1]: { initial: { name: 'keep' } }, [U3]: { initial: { name: 'new' } } } }, 2), []);
  const mod = r.replaceWithSnapshot({ Bridge: { [U1]: { initial: { name: 'changed' } }, [U3]: { initial: { name: 'new' } } } }, 2);
  t.same(mod.map((c) => [c.kind, c.uuid]), [['modify', U1]]);
});

t.test('rows carry the monitored columns only (defaults for those), all columns when none are named', async (t) => {
  const some = new Replica(schema, ['Bridge'], new Map([['Bridge', ['name', 'ports']]]));
  some.applyUpdates2({ Bridge: { [U1]: { initial: { name: 'br-int' } } } });
  const row = some.table('Bridge').get(U1);
  t.same(Object.keys(row ?? {}).sort(), ['_uuid', 'name', 'ports'], 'no default-valued unmonitored columns');
  t.same(row?.['ports'], [], 'a monitored column the server omitted still gets its default');
  const again = some.replaceWithSnapshot({ Bridge: { [U1]: { initial: { name: 'br-int' } } } }, 2);
  t.same(again, [], 'a resync with the same content is no change');
  t.same(Object.keys(some.table('Bridge').get(U1) ?? {}).sort(), ['_uuid', 'name', 'ports'], 'same after a resync');
  const all = new Replica(schema, ['Bridge'], new Map([['Bridge', undefined]]));
  all.applyUpdates2({ Bridge: { [U1]: { initial: { name: 'br-int' } } } });
  t.ok(Object.keys(all.table('Bridge').get(U1) ?? {}).includes('fail_mode'), 'every schema column without a column list');
});

t.test('generation moves with every applied update, snapshot and clear; rows are replaced, not mutated', async (t) => {
  const r = new Replica(schema, ['Bridge']);
  const g0 = r.generation;
  r.applyUpdates2({ Bridge: { [U1]: { initial: { name: 'a' } } } });
  const g1 = r.generation;
  t.ok(g1 > g0, 'update2');
  const before = r.table('Bridge').get(U1);
  r.applyUpdates2({ Bridge: { [U1]: { modify: { name: 'b' } } } });
  t.ok(r.generation > g1, 'modify');
  t.equal(before?.['name'], 'a', 'the row read before the modify is unchanged (derived state keyed on the generation stays sound)');
  const g2 = r.generation;
  r.applyUpdates({ Bridge: { [U1]: { new: { name: 'c' } } } });
  t.ok(r.generation > g2, 'update (v1)');
  const g3 = r.generation;
  r.replaceWithSnapshot({ Bridge: {} }, 2);
  t.ok(r.generation > g3, 'snapshot');
  const g4 = r.generation;
  r.clear();
  t.ok(r.generation > g4, 'clear');
});
