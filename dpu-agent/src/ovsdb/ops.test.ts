import t from 'tap';
import { NamedUuid } from './atoms.ts';
import { encodeOperation, op, operationColumns } from './ops.ts';

t.test('encodes the add-port transaction exactly as the C IDL does (reference A5)', async (t) => {
  const ops = [
    op.insert('Interface', { name: 'vf0rep', type: '', external_ids: new Map([['iface-id', 'lsp-1234']]) }, 'iface0'),
    op.insert('Port', { name: 'vf0rep', interfaces: new NamedUuid('iface0') }, 'port0'),
    op.mutate('Bridge', [['name', '==', 'br-int']], [['ports', 'insert', [new NamedUuid('port0')]]]),
    op.mutate('Open_vSwitch', [], [['next_cfg', '+=', 1]]),
    op.select('Open_vSwitch', [], ['next_cfg']),
    op.comment('ts-agent: add-port br-int vf0rep'),
  ];
  t.same(JSON.parse(JSON.stringify(ops.map(encodeOperation))), [
    { op: 'insert', table: 'Interface', 'uuid-name': 'iface0', row: { name: 'vf0rep', type: '', external_ids: ['map', [['iface-id', 'lsp-1234']]] } },
    { op: 'insert', table: 'Port', 'uuid-name': 'port0', row: { name: 'vf0rep', interfaces: ['named-uuid', 'iface0'] } },
    { op: 'mutate', table: 'Bridge', where: [['name', '==', 'br-int']], mutations: [['ports', 'insert', ['set', [['named-uuid', 'port0']]]]] },
    { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
    { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
    { op: 'comment', comment: 'ts-agent: add-port br-int vf0rep' },
  ]);
});

t.test('wait, delete, update, assert, commit, abort', async (t) => {
  t.same(encodeOperation(op.wait('Port', [['name', '==', 'p']], ['name'], '==', [], 0)), {
    op: 'wait', table: 'Port', where: [['name', '==', 'p']], columns: ['name'], until: '==', rows: [], timeout: 0,
  });
  t.same(encodeOperation(op.delete('Port', [true])), { op: 'delete', table: 'Port', where: [true] });
  t.same(encodeOperation(op.update('Bridge', [['name', '==', 'b']], { fail_mode: ['secure'] })), {
    op: 'update', table: 'Bridge', where: [['name', '==', 'b']], row: { fail_mode: ['set', ['secure']] },
  });
  t.same(encodeOperation(op.assert('lk')), { op: 'assert', lock: 'lk' });
  t.same(encodeOperation(op.commit(true)), { op: 'commit', durable: true });
  t.same(encodeOperation(op.abort()), { op: 'abort' });
});

t.test('operationColumns lists every column an op names (checked against the schema)', async (t) => {
  t.same(
    operationColumns(op.mutate('Bridge', [['name', '==', 'x']], [['ports', 'insert', []]])).sort(),
    ['name', 'ports'],
  );
  t.same(operationColumns(op.wait('T', [], ['a'], '==', [{ b: 1 }])).sort(), ['a', 'b']);
});
