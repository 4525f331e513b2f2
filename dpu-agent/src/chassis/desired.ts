import type { ChassisConfig } from '../config.ts';
import { NamedUuid, type Value } from '../ovsdb/atoms.ts';
import { type RowOf, vswitchColumns } from '../ovsdb/model/index.ts';
import { type Mutation, type Operation, eq, op } from '../ovsdb/ops.ts';

// Pure: what the local Open_vSwitch DB must say for ovn-controller to act as
// this chassis, and the smallest set of ops that gets it there from what the
// replica shows. No ops when nothing differs, so a restart writes nothing.

/** What the chassis reconciler reads (ovsdb/model: its monitor request and the row types). */
export const CHASSIS_VIEW = vswitchColumns({
  Open_vSwitch: ['external_ids', 'other_config', 'bridges'],
  Bridge: ['name', 'fail_mode', 'datapath_type', 'other_config'],
});
export type ChassisRow<T extends keyof typeof CHASSIS_VIEW.selection> = RowOf<typeof CHASSIS_VIEW, T>;

export type DriftKind = 'chassis-external-ids' | 'chassis-other-config' | 'bridge-missing' | 'bridge-config';

export interface Difference {
  readonly kind: DriftKind;
  readonly key: string;
  readonly want: string | undefined;
  readonly have: string | undefined;
}

export interface ChassisPlan {
  readonly differences: readonly Difference[];
  readonly ops: readonly Operation[];
}

/** Keys of Open_vSwitch.external_ids the agent owns (ovn-controller(8) "Configuration"). */
export function desiredExternalIds(c: ChassisConfig): Map<string, string | undefined> {
  return new Map<string, string | undefined>([
    ['system-id', c.systemId],
    ['hostname', c.hostname],
    ['ovn-remote', c.ovnRemote],
    ['ovn-encap-type', c.encapType],
    ['ovn-encap-ip', c.encapIp],
    ['ovn-bridge', c.bridge],
    // An empty list means "no zones": the key must be absent, not "".
    ['ovn-transport-zones', c.transportZones.length > 0 ? c.transportZones.join(',') : undefined],
  ]);
}

export function desiredOtherConfig(c: ChassisConfig): Map<string, string | undefined> {
  return new Map<string, string | undefined>([
    ['hw-offload', String(c.hwOffload)],
    ['tc-policy', c.tcPolicy],
  ]);
}

/**
 * @param ovs   the single Open_vSwitch row (undefined if the DB was never initialised)
 * @param bridges all Bridge rows
 */
export function planChassis(c: ChassisConfig, ovs: ChassisRow<'Open_vSwitch'> | undefined, bridges: Iterable<ChassisRow<'Bridge'>>): ChassisPlan {
  const differences: Difference[] = [];
  const ops: Operation[] = [];
  const ovsWhere = ovs ? [eq('_uuid', ovs._uuid)] : [];

  if (!ovs) {
    // ovs-vsctl init does this; an empty DB has no root row and ovs-vswitchd would do nothing.
    ops.push(op.insert('Open_vSwitch', {}, 'ovs'));
  }
  const ext = mapOps('external_ids', 'chassis-external-ids', desiredExternalIds(c), ovs?.external_ids ?? NONE, differences);
  const other = mapOps('other_config', 'chassis-other-config', desiredOtherConfig(c), ovs?.other_config ?? NONE, differences);
  const mutations: Mutation[] = [...ext, ...other];
  const ovsTarget = ovs ? ovsWhere : [eq('_uuid', new NamedUuid('ovs'))];

  const br = [...bridges].find((b) => b.name === c.bridge);
  if (!br) {
    differences.push({ kind: 'bridge-missing', key: c.bridge, want: 'present', have: undefined });
    // same as: ovs-vsctl add-br br-int -- set Bridge br-int fail_mode=secure datapath_type=… other_config:disable-in-band=true
    ops.push(
      // Guard: if someone created it since our read, fail this txn instead of making a second br-int.
      ...(ovs ? [op.wait('Bridge', [eq('name', c.bridge)], ['name'], '==', [], 0)] : []),
      op.insert('Interface', { name: c.bridge, type: 'internal' }, 'brif'),
      op.insert('Port', { name: c.bridge, interfaces: new NamedUuid('brif') }, 'brport'),
      op.insert(
        'Bridge',
        {
          name: c.bridge,
          ports: [new NamedUuid('brport')],
          fail_mode: ['secure'],
          datapath_type: c.datapathType,
          other_config: new Map([['disable-in-band', 'true']]),
        },
        'br',
      ),
    );
    mutations.push(['bridges', 'insert', [new NamedUuid('br')]]);
  } else {
    const row: Record<string, Value> = {};
    const failMode = first(br.fail_mode);
    if (failMode !== 'secure') {
      differences.push({ kind: 'bridge-config', key: 'fail_mode', want: 'secure', have: failMode });
      row['fail_mode'] = ['secure'];
    }
    if (br.datapath_type !== c.datapathType) {
      differences.push({ kind: 'bridge-config', key: 'datapath_type', want: c.datapathType, have: br.datapath_type });
      row['datapath_type'] = c.datapathType;
    }
    const brOps = mapOps(
      'other_config',
      'bridge-config',
      new Map([['disable-in-band', 'true']]),
      br.other_config,
      differences,
    );
    if (Object.keys(row).length > 0) ops.push(op.update('Bridge', [eq('_uuid', br._uuid)], row));
    if (brOps.length > 0) ops.push(op.mutate('Bridge', [eq('_uuid', br._uuid)], brOps));
  }
  if (mutations.length > 0) ops.push(op.mutate('Open_vSwitch', ovsTarget, mutations));
  if (ops.length > 0) ops.push(op.comment(`dpu-agent: chassis ${c.systemId}`));
  return { differences, ops };
}

/**
 * Mutations that set exactly the owned keys of a map column and leave every
 * other key alone (other software, e.g. ovn-controller, writes there too).
 * A map `insert` never overwrites, so changed keys are deleted first (RFC 7047 §5.1 mutate).
 */
function mapOps(
  column: string,
  kind: DriftKind,
  want: Map<string, string | undefined>,
  have: ReadonlyMap<string, string>,
  differences: Difference[],
): Array<readonly [string, 'delete' | 'insert', string[] | Map<string, string>]> {
  const del: string[] = [];
  const ins = new Map<string, string>();
  for (const [k, v] of want) {
    const h = have.get(k);
    if (h === v) continue;
    if (v === undefined && h === undefined) continue;
    differences.push({ kind, key: `${column}:${k}`, want: v, have: h });
    if (h !== undefined) del.push(k);
    if (v !== undefined) ins.set(k, v);
  }
  const out: Array<readonly [string, 'delete' | 'insert', string[] | Map<string, string>]> = [];
  if (del.length > 0) out.push([column, 'delete', del]);
  if (ins.size > 0) out.push([column, 'insert', ins]);
  return out;
}

const NONE: ReadonlyMap<string, string> = new Map();

/** A 0..1 column's value; a bare atom (the wire's 1-element set, RFC 7047 §5.1) counts as that element. */
function first(v: readonly string[] | string): string | undefined {
  if (Array.isArray(v)) return v[0];
  return v as string;
}
