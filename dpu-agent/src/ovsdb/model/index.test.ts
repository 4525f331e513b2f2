import t from 'tap';
import { readFileSync } from 'node:fs';
import { Uuid } from '../atoms.ts';
import { Replica } from '../replica.ts';
import { parseSchema } from '../schema.ts';
import { ovnNbColumns, vswitchColumns } from './index.ts';

// The generated row types describe the replica's own values: decode through the
// committed schemas and read the result through the types, without casts.

const vswitch = parseSchema(JSON.parse(readFileSync(new URL('../schemas/vswitch.ovsschema', import.meta.url), 'utf8')));
const nb = parseSchema(JSON.parse(readFileSync(new URL('../schemas/ovn-nb.ovsschema', import.meta.url), 'utf8')));
const BR = '11111111-1111-4111-8111-111111111111';
const P1 = '33333333-3333-4333-8333-333333333333';
const LSP = '44444444-4444-4444-8444-444444444444';

const VIEW = vswitchColumns({ Bridge: ['name', 'ports', 'fail_mode', 'external_ids', 'datapath_type'] });

t.test('a selection is its monitor request', async (t) => {
  t.strictSame(VIEW.requests, { Bridge: { columns: ['name', 'ports', 'fail_mode', 'external_ids', 'datapath_type'] } });
});

t.test('vswitch rows read through the types as the replica holds them, uncopied', async (t) => {
  const r = new Replica(vswitch, ['Bridge'], new Map(Object.entries(VIEW.requests).map(([k, v]) => [k, v.columns])));
  r.applyUpdates2({
    Bridge: { [BR]: { initial: { name: 'br-int', ports: ['uuid', P1], fail_mode: 'secure', external_ids: ['map', [['k', 'v']]] } } },
  });
  t.equal(VIEW.rows(r, 'Bridge'), r.table('Bridge') as unknown, 'the replica map itself');
  const br = VIEW.row(r, 'Bridge', BR);
  t.ok(br);
  if (!br) return;
  t.equal(br.name, 'br-int');
  t.equal(br._uuid.value, BR);
  t.ok(br.ports[0] instanceof Uuid);
  t.equal(br.ports[0]?.value, P1);
  t.strictSame(br.fail_mode, ['secure'], 'a 0..1 column is a 0/1-element array');
  t.equal(br.external_ids.get('k'), 'v');
  t.equal(br.datapath_type, '', 'an omitted 1..1 column has its default');
  const ch = r.applyUpdates2({ Bridge: { [BR]: { modify: { fail_mode: ['set', []] } } } });
  t.strictSame(VIEW.changed('Bridge', ch[0]?.new)?.fail_mode, []);
  t.strictSame(VIEW.changed('Bridge', ch[0]?.old)?.fail_mode, ['secure']);
});

t.test('ovn-nb rows: optional boolean, sets of strings, maps', async (t) => {
  const v = ovnNbColumns({ Logical_Switch_Port: ['name', 'up', 'addresses', 'options'] });
  const r = new Replica(nb, ['Logical_Switch_Port']);
  r.applyUpdates2({
    Logical_Switch_Port: { [LSP]: { initial: { name: 'p1', up: true, addresses: '0a:00:00:00:00:01 10.0.0.5', options: ['map', [['requested-chassis', 'c1']]] } } },
  });
  const p = v.row(r, 'Logical_Switch_Port', LSP);
  t.strictSame(p?.up, [true]);
  t.strictSame(p?.addresses, ['0a:00:00:00:00:01 10.0.0.5']);
  t.equal(p?.options.get('requested-chassis'), 'c1');
});
