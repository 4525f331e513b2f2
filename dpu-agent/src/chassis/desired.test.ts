import t from 'tap';
import type { ChassisConfig } from '../config.ts';
import { NamedUuid, Uuid } from '../ovsdb/atoms.ts';
import { op } from '../ovsdb/ops.ts';
import { type ChassisRow, desiredExternalIds, desiredOtherConfig, planChassis } from './desired.ts';

// planChassis is pure: rows in (as the replica holds them, built with the atoms
// module), ops out. Every assertion is on the op values (STYLE §2).

const CFG: ChassisConfig = Object.freeze({
  systemId: 'dpu-0',
  hostname: 'host0',
  ovnRemote: 'tcp:10.0.0.1:6642,tcp:10.0.0.2:6642',
  encapType: 'geneve',
  encapIp: '192.0.2.10',
  bridge: 'br-int',
  datapathType: 'system',
  transportZones: Object.freeze([]),
  hwOffload: true,
  tcPolicy: 'none',
});

const cfg = (over: Partial<ChassisConfig> = {}): ChassisConfig => ({ ...CFG, ...over });

const OVS_UUID = new Uuid('11111111-1111-4111-8111-111111111111');
const BR_UUID = new Uuid('22222222-2222-4222-8222-222222222222');
const BR_PORT_UUID = new Uuid('33333333-3333-4333-8333-333333333333');
const EX_UUID = new Uuid('44444444-4444-4444-8444-444444444444');

const EXT_IDS: ReadonlyArray<[string, string]> = [
  ['system-id', 'dpu-0'],
  ['hostname', 'host0'],
  ['ovn-remote', 'tcp:10.0.0.1:6642,tcp:10.0.0.2:6642'],
  ['ovn-encap-type', 'geneve'],
  ['ovn-encap-ip', '192.0.2.10'],
  ['ovn-bridge', 'br-int'],
];
const OTHER: ReadonlyArray<[string, string]> = [
  ['hw-offload', 'true'],
  ['tc-policy', 'none'],
];

/** The Open_vSwitch row as the monitor delivers it (maps as Map, sets as arrays, `_uuid` a Uuid). */
function ovsRow(opts: { ext?: Array<[string, string]>; other?: Array<[string, string]>; bridges?: Uuid[] } = {}): ChassisRow<'Open_vSwitch'> {
  return {
    _uuid: OVS_UUID,
    external_ids: new Map(opts.ext ?? EXT_IDS),
    other_config: new Map(opts.other ?? OTHER),
    bridges: opts.bridges ?? [BR_UUID],
  };
}

function brRow(over: Partial<Record<keyof ChassisRow<'Bridge'> | 'ports', unknown>> = {}): ChassisRow<'Bridge'> {
  return {
    _uuid: BR_UUID,
    name: 'br-int',
    fail_mode: ['secure'],
    datapath_type: 'system',
    other_config: new Map([['disable-in-band', 'true']]),
    ports: [BR_PORT_UUID],
    ...over,
  } as ChassisRow<'Bridge'>;
}

const comment = op.comment('dpu-agent: chassis dpu-0');
const ovsWhere = [['_uuid', '==', OVS_UUID] as const];
const brWhere = [['_uuid', '==', BR_UUID] as const];

/** same as: ovs-vsctl add-br br-int -- set Bridge br-int fail_mode=secure datapath_type=… other_config:disable-in-band=true */
const addBridgeOps = (datapathType = 'system') => [
  op.insert('Interface', { name: 'br-int', type: 'internal' }, 'brif'),
  op.insert('Port', { name: 'br-int', interfaces: new NamedUuid('brif') }, 'brport'),
  op.insert(
    'Bridge',
    {
      name: 'br-int',
      ports: [new NamedUuid('brport')],
      fail_mode: ['secure'],
      datapath_type: datapathType,
      other_config: new Map([['disable-in-band', 'true']]),
    },
    'br',
  ),
];

t.test('desired keys', async (t) => {
  t.strictSame(desiredExternalIds(CFG), new Map<string, string | undefined>([...EXT_IDS, ['ovn-transport-zones', undefined]]));
  t.equal(desiredExternalIds(cfg({ transportZones: ['tz1', 'tz2'] })).get('ovn-transport-zones'), 'tz1,tz2');
  t.strictSame(desiredOtherConfig(cfg({ hwOffload: false, tcPolicy: 'skip_sw' })), new Map([['hw-offload', 'false'], ['tc-policy', 'skip_sw']]));
});

t.test('empty DB (no Open_vSwitch row): root row, br-int and all keys in one transaction', async (t) => {
  const plan = planChassis(CFG, undefined, []);
  t.strictSame(plan.ops, [
    // same as: ovs-vsctl init
    op.insert('Open_vSwitch', {}, 'ovs'),
    // No wait guard: without a root row no Bridge can exist (Bridge is not a root table).
    ...addBridgeOps(),
    op.mutate(
      'Open_vSwitch',
      [['_uuid', '==', new NamedUuid('ovs')]],
      [
        ['external_ids', 'insert', new Map(EXT_IDS)],
        ['other_config', 'insert', new Map(OTHER)],
        ['bridges', 'insert', [new NamedUuid('br')]],
      ],
    ),
    comment,
  ]);
  // Spelled out once, not only through the helpers above.
  const bridge = plan.ops.find((o) => o.op === 'insert' && o.table === 'Bridge');
  t.match(bridge, { row: { fail_mode: ['secure'], datapath_type: 'system' } });
  t.strictSame(bridge && 'row' in bridge ? bridge.row['other_config'] : undefined, new Map([['disable-in-band', 'true']]));
  const iface = plan.ops.find((o) => o.op === 'insert' && o.table === 'Interface');
  t.strictSame(iface && 'row' in iface ? iface.row : undefined, { name: 'br-int', type: 'internal' });

  t.strictSame(
    plan.differences.map((d) => d.key),
    [...EXT_IDS.map(([k]) => `external_ids:${k}`), ...OTHER.map(([k]) => `other_config:${k}`), 'br-int'],
  );
  t.ok(plan.differences.every((d) => d.have === undefined));
  t.strictSame(plan.differences.at(-1), { kind: 'bridge-missing', key: 'br-int', want: 'present', have: undefined });
});

t.test('empty DB with netdev datapath and transport zones', async (t) => {
  const plan = planChassis(cfg({ datapathType: 'netdev', transportZones: ['tz1', 'tz2'] }), undefined, []);
  t.strictSame(plan.ops.slice(1, 4), addBridgeOps('netdev'));
  const mut = plan.ops[4];
  t.strictSame(mut && 'mutations' in mut ? mut.mutations[0] : undefined, [
    'external_ids',
    'insert',
    new Map([...EXT_IDS, ['ovn-transport-zones', 'tz1,tz2']]),
  ]);
});

t.test('everything matches: zero ops, no differences (a restart writes nothing)', async (t) => {
  const plan = planChassis(CFG, ovsRow(), [brRow()]);
  t.strictSame(plan, { differences: [], ops: [] });
});

t.test('foreign keys and other bridges are not ours to touch', async (t) => {
  const ovs = ovsRow({
    ext: [...EXT_IDS, ['foo', 'bar'], ['ovn-cms-options', 'enable-chassis-as-gw']],
    other: [...OTHER, ['max-idle', '10000']],
    bridges: [BR_UUID, EX_UUID],
  });
  const brEx: ChassisRow<'Bridge'> = { _uuid: EX_UUID, name: 'br-ex', fail_mode: [], datapath_type: 'netdev', other_config: new Map() };
  const br = brRow({ other_config: new Map([['disable-in-band', 'true'], ['hwaddr', '00:11:22:33:44:55']]) });
  t.strictSame(planChassis(CFG, ovs, [brEx, br]), { differences: [], ops: [] });
});

t.test('a changed owned key: delete + insert of only that key; foreign keys untouched', async (t) => {
  const ext: Array<[string, string]> = EXT_IDS.map(([k, v]) => [k, k === 'ovn-encap-ip' ? '198.51.100.1' : v]);
  const plan = planChassis(CFG, ovsRow({ ext: [...ext, ['foo', 'bar']] }), [brRow()]);
  t.strictSame(plan.ops, [
    op.mutate('Open_vSwitch', ovsWhere, [
      ['external_ids', 'delete', ['ovn-encap-ip']],
      ['external_ids', 'insert', new Map([['ovn-encap-ip', '192.0.2.10']])],
    ]),
    comment,
  ]);
  t.strictSame(plan.differences, [
    { kind: 'chassis-external-ids', key: 'external_ids:ovn-encap-ip', want: '192.0.2.10', have: '198.51.100.1' },
  ]);
  t.notOk(JSON.stringify(plan.ops).includes('foo'), 'external_ids:foo appears in no op');
});

t.test('a missing owned key is inserted without a delete', async (t) => {
  const plan = planChassis(CFG, ovsRow({ ext: EXT_IDS.filter(([k]) => k !== 'hostname'), other: [['tc-policy', 'none']] }), [brRow()]);
  t.strictSame(plan.ops, [
    op.mutate('Open_vSwitch', ovsWhere, [
      ['external_ids', 'insert', new Map([['hostname', 'host0']])],
      ['other_config', 'insert', new Map([['hw-offload', 'true']])],
    ]),
    comment,
  ]);
  t.strictSame(
    plan.differences.map((d) => [d.kind, d.key, d.have]),
    [
      ['chassis-external-ids', 'external_ids:hostname', undefined],
      ['chassis-other-config', 'other_config:hw-offload', undefined],
    ],
  );
});

t.test('other_config changes (hw-offload, tc-policy) in one mutate', async (t) => {
  const plan = planChassis(cfg({ hwOffload: false, tcPolicy: 'skip_hw' }), ovsRow(), [brRow()]);
  t.strictSame(plan.ops, [
    op.mutate('Open_vSwitch', ovsWhere, [
      ['other_config', 'delete', ['hw-offload', 'tc-policy']],
      ['other_config', 'insert', new Map([['hw-offload', 'false'], ['tc-policy', 'skip_hw']])],
    ]),
    comment,
  ]);
});

t.test('transportZones empty removes an existing ovn-transport-zones key (delete only)', async (t) => {
  const plan = planChassis(CFG, ovsRow({ ext: [...EXT_IDS, ['ovn-transport-zones', 'tz1,tz2'], ['foo', 'bar']] }), [brRow()]);
  t.strictSame(plan.ops, [op.mutate('Open_vSwitch', ovsWhere, [['external_ids', 'delete', ['ovn-transport-zones']]]), comment]);
  t.strictSame(plan.differences, [
    { kind: 'chassis-external-ids', key: 'external_ids:ovn-transport-zones', want: undefined, have: 'tz1,tz2' },
  ]);
});

t.test('transportZones set: inserted joined by commas, replaced when different', async (t) => {
  const tz = cfg({ transportZones: ['tz1', 'tz2'] });
  t.strictSame(planChassis(tz, ovsRow(), [brRow()]).ops, [
    op.mutate('Open_vSwitch', ovsWhere, [['external_ids', 'insert', new Map([['ovn-transport-zones', 'tz1,tz2']])]]),
    comment,
  ]);
  t.strictSame(planChassis(tz, ovsRow({ ext: [...EXT_IDS, ['ovn-transport-zones', 'tz1']] }), [brRow()]).ops, [
    op.mutate('Open_vSwitch', ovsWhere, [
      ['external_ids', 'delete', ['ovn-transport-zones']],
      ['external_ids', 'insert', new Map([['ovn-transport-zones', 'tz1,tz2']])],
    ]),
    comment,
  ]);
  t.strictSame(planChassis(tz, ovsRow({ ext: [...EXT_IDS, ['ovn-transport-zones', 'tz1,tz2']] }), [brRow()]).ops, []);
});

t.test('fail_mode / datapath_type drift → one update of the bridge row', async (t) => {
  t.test('both drifted', async (t) => {
    const plan = planChassis(CFG, ovsRow(), [brRow({ fail_mode: ['standalone'], datapath_type: 'netdev' })]);
    t.strictSame(plan.ops, [op.update('Bridge', brWhere, { fail_mode: ['secure'], datapath_type: 'system' }), comment]);
    t.strictSame(plan.differences, [
      { kind: 'bridge-config', key: 'fail_mode', want: 'secure', have: 'standalone' },
      { kind: 'bridge-config', key: 'datapath_type', want: 'system', have: 'netdev' },
    ]);
  });
  t.test('fail_mode unset (empty set)', async (t) => {
    const plan = planChassis(CFG, ovsRow(), [brRow({ fail_mode: [] })]);
    t.strictSame(plan.ops, [op.update('Bridge', brWhere, { fail_mode: ['secure'] }), comment]);
    t.strictSame(plan.differences, [{ kind: 'bridge-config', key: 'fail_mode', want: 'secure', have: undefined }]);
  });
  t.test('fail_mode as a bare atom is the same as a 1-element set', async (t) => {
    t.strictSame(planChassis(CFG, ovsRow(), [brRow({ fail_mode: 'secure' })]).ops, []);
  });
  t.test('datapath_type "" (the schema default) differs from "system"', async (t) => {
    t.strictSame(planChassis(CFG, ovsRow(), [brRow({ datapath_type: '' })]).ops, [
      op.update('Bridge', brWhere, { datapath_type: 'system' }),
      comment,
    ]);
  });
  t.test('netdev wanted', async (t) => {
    t.strictSame(planChassis(cfg({ datapathType: 'netdev' }), ovsRow(), [brRow()]).ops, [
      op.update('Bridge', brWhere, { datapath_type: 'netdev' }),
      comment,
    ]);
  });
});

t.test('bridge other_config drift → mutate of only disable-in-band', async (t) => {
  const plan = planChassis(CFG, ovsRow(), [brRow({ other_config: new Map([['disable-in-band', 'false'], ['hwaddr', 'x']]) })]);
  t.strictSame(plan.ops, [
    op.mutate('Bridge', brWhere, [
      ['other_config', 'delete', ['disable-in-band']],
      ['other_config', 'insert', new Map([['disable-in-band', 'true']])],
    ]),
    comment,
  ]);
  t.strictSame(plan.differences, [{ kind: 'bridge-config', key: 'other_config:disable-in-band', want: 'true', have: 'false' }]);
  t.strictSame(planChassis(CFG, ovsRow(), [brRow({ other_config: new Map() })]).ops, [
    op.mutate('Bridge', brWhere, [['other_config', 'insert', new Map([['disable-in-band', 'true']])]]),
    comment,
  ]);
});

t.test('bridge missing but root present: wait guard + inserts, attached to the existing root row', async (t) => {
  const brEx: ChassisRow<'Bridge'> = { _uuid: EX_UUID, name: 'br-ex', fail_mode: [], datapath_type: 'system', other_config: new Map() };
  const plan = planChassis(CFG, ovsRow({ bridges: [EX_UUID] }), [brEx]);
  t.strictSame(plan.ops, [
    // Fails the txn if br-int appeared since our read, instead of creating a second one.
    op.wait('Bridge', [['name', '==', 'br-int']], ['name'], '==', [], 0),
    ...addBridgeOps(),
    op.mutate('Open_vSwitch', ovsWhere, [['bridges', 'insert', [new NamedUuid('br')]]]),
    comment,
  ]);
  t.strictSame(plan.differences, [{ kind: 'bridge-missing', key: 'br-int', want: 'present', have: undefined }]);
});

t.test('bridge missing and keys changed: one transaction, one Open_vSwitch mutate', async (t) => {
  const plan = planChassis(cfg({ bridge: 'br-dpu', systemId: 'dpu-9' }), ovsRow(), [brRow()]);
  t.same(
    plan.ops.map((o) => `${o.op}${'table' in o ? ` ${o.table}` : ''}`),
    ['wait Bridge', 'insert Interface', 'insert Port', 'insert Bridge', 'mutate Open_vSwitch', 'comment'],
  );
  t.strictSame(plan.ops[0], op.wait('Bridge', [['name', '==', 'br-dpu']], ['name'], '==', [], 0));
  t.strictSame(plan.ops[4], op.mutate('Open_vSwitch', ovsWhere, [
    ['external_ids', 'delete', ['system-id', 'ovn-bridge']],
    ['external_ids', 'insert', new Map([['system-id', 'dpu-9'], ['ovn-bridge', 'br-dpu']])],
    ['bridges', 'insert', [new NamedUuid('br')]],
  ]));
  t.strictSame(plan.ops[5], op.comment('dpu-agent: chassis dpu-9'));
});

t.test('pure: inputs are not modified and the same inputs give the same plan', async (t) => {
  const ovs = ovsRow({ ext: [['system-id', 'old']] });
  const br = brRow({ fail_mode: [] });
  const before = JSON.stringify([...ovs.external_ids]);
  const a = planChassis(CFG, ovs, [br]);
  const b = planChassis(CFG, ovs, [br]);
  t.strictSame(a, b);
  t.equal(JSON.stringify([...ovs.external_ids]), before);
  t.strictSame(br.fail_mode, []);
});
